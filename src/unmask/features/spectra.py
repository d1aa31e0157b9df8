"""Mean spectra per label and per source (`unmask spectrum`), like the papers' figures.

For every group (each label; each source/label pair): the mean 2-D log-DCT spectrum
(Frank et al., Fig. 1) and the mean +- std of the 1-D azimuthal average of the log power
spectrum (Durall et al., Fig. 2). Crops are converted to grayscale and resized to `size`
first. Statistics are accumulated in float64 chunk by chunk (sum and sum of squares), so
memory stays flat; per-image features go through the shared feature cache.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unmask.labels import LABELS

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass
class GroupStats:
    n: int = 0
    dct_sum: np.ndarray | None = None
    prof_sum: np.ndarray | None = None
    prof_sq: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    def add(self, dct: np.ndarray, prof: np.ndarray) -> None:
        d = dct.astype(np.float64).sum(0)
        p = prof.astype(np.float64)
        if self.dct_sum is None:
            self.dct_sum = np.zeros_like(d)
            self.prof_sum = np.zeros(p.shape[1])
            self.prof_sq = np.zeros(p.shape[1])
        self.dct_sum += d
        self.prof_sum += p.sum(0)
        self.prof_sq += (p**2).sum(0)
        self.n += dct.shape[0]

    @property
    def dct_mean(self) -> np.ndarray:
        return self.dct_sum / self.n

    @property
    def prof_mean(self) -> np.ndarray:
        return self.prof_sum / self.n

    @property
    def prof_std(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.prof_sq / self.n - self.prof_mean**2, 0.0))


def rows_from_folder(folder: Path) -> list[dict[str, str]]:
    """Images under `folder`: label = nearest ancestor folder named real/gan/edited, source =
    the folder above it (or the root's name). Files outside a label folder are skipped."""
    out = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() not in IMAGE_EXTS or any(x.startswith(".") for x in p.parts):
            continue
        rel = p.relative_to(folder).parts[:-1]
        idx = [i for i, x in enumerate(rel) if x.lower() in LABELS]
        if not idx:
            continue
        i = idx[-1]
        source = rel[i - 1] if i > 0 else folder.name
        out.append({"abs_path": str(p), "label": rel[i].lower(), "source": source})
    return out


def compute_spectra(
    rows: Sequence[dict[str, str]],
    size: int = 256,
    cache_dir: str | Path | None = None,
    jobs: int = 2,
    chunk: int = 256,
    progress: bool = True,
) -> dict[tuple[str, str], GroupStats]:
    """{("label", lb) | ("source", "src/lb"): GroupStats} over `rows` (abs_path, label,
    source)."""
    from tqdm import tqdm

    from unmask.features.extract import extract_files

    stats: dict[tuple[str, str], GroupStats] = {}
    bar = tqdm(total=len(rows), desc="spectra", unit="img", disable=not progress)
    for i in range(0, len(rows), chunk):
        part = rows[i : i + chunk]
        paths = [r["abs_path"] for r in part]
        dct = extract_files(paths, "dct", size, cache_dir, jobs, progress=False)
        prof = extract_files(paths, "spectrum", size, cache_dir, jobs, progress=False)
        dct = dct.reshape(len(part), size, size)
        keys = [(("label", r["label"]), ("source", f"{r['source']}/{r['label']}")) for r in part]
        for kind in (0, 1):
            groups: dict[tuple[str, str], list[int]] = {}
            for j, k in enumerate(keys):
                groups.setdefault(k[kind], []).append(j)
            for k, idx in groups.items():
                stats.setdefault(k, GroupStats()).add(dct[idx], prof[idx])
        bar.update(len(part))
    bar.close()
    return stats


def _order(keys: Sequence[str]) -> list[str]:
    def rank(k: str) -> tuple:
        lb = k.split("/")[-1]
        return (k.split("/")[0] if "/" in k else "", LABELS.index(lb) if lb in LABELS else 9)

    return sorted(keys, key=rank)


def write_spectra(stats: dict[tuple[str, str], GroupStats], out: Path, size: int) -> list[Path]:
    """profiles.csv, dct_mean/<group>.csv and the PNG figures; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")

    out.mkdir(parents=True, exist_ok=True)
    freq = np.arange(next(iter(stats.values())).prof_mean.size) / size  # cycles per pixel
    written = [_write_profiles(stats, freq, out / "profiles.csv")]
    (out / "dct_mean").mkdir(exist_ok=True)
    for (kind, key), st in stats.items():
        name = key.replace("/", "__")
        p = out / "dct_mean" / f"{kind}-{name}.csv"
        np.savetxt(p, st.dct_mean, delimiter=",", fmt="%.5g")
        written.append(p)
    for kind, title in (("label", "per label"), ("source", "per source / label")):
        keys = _order([k for (g, k) in stats if g == kind])
        if not keys:
            continue
        group = {k: stats[(kind, k)] for k in keys}
        written.append(_plot_profiles(group, freq, size, title, out / f"profile_by_{kind}.png"))
        written.append(_plot_dct_means(group, title, out / f"dct_by_{kind}.png"))
        diffs = _real_differences(group)
        if diffs:
            written.append(_plot_dct_diffs(diffs, out / f"dct_diff_by_{kind}.png"))
    return written


def _write_profiles(stats: dict[tuple[str, str], GroupStats], freq, path: Path) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["group_by", "group", "n", "radius_px", "cycles_per_px", "mean", "std"])
        for (kind, key), st in sorted(stats.items()):
            for r, (m, s) in enumerate(zip(st.prof_mean, st.prof_std, strict=True)):
                w.writerow([kind, key, st.n, r, f"{freq[r]:.5f}", f"{m:.6g}", f"{s:.6g}"])
    return path


def _savefig(fig: Any, path: Path, tight: bool = True) -> Path:
    import matplotlib.pyplot as plt

    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_profiles(group: dict[str, GroupStats], freq, size: int, title: str, path: Path):
    """The 1-D profiles of the groups, mean ± std."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, st in group.items():
        (line,) = ax.plot(freq, st.prof_mean, lw=1.3, label=f"{key} (n={st.n})")
        ax.fill_between(
            freq,
            st.prof_mean - st.prof_std,
            st.prof_mean + st.prof_std,
            color=line.get_color(),
            alpha=0.15,
        )
    ax.set(
        xlabel="spatial frequency (cycles / pixel; 0.5 = Nyquist)",
        ylabel="log power (azimuthal mean)",
        title=f"1-D power spectrum {title}, mean ± std ({size} px, grayscale)",
    )
    ax.axvline(0.5, color="grey", lw=0.6, ls=":")
    ax.legend(fontsize=7)
    return _savefig(fig, path)


def _plot_dct_means(group: dict[str, GroupStats], title: str, path: Path) -> Path:
    """2-D mean log-DCT heatmaps of the groups, one colour scale."""
    import matplotlib.pyplot as plt

    keys = list(group)
    means = [group[k].dct_mean for k in keys]
    lo = min(np.percentile(m, 1) for m in means)
    hi = max(np.percentile(m, 99.9) for m in means)
    ncol = min(len(keys), 4)
    nrow = int(np.ceil(len(keys) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.3 * ncol, 3.2 * nrow), squeeze=False)
    for ax, key, m in zip(axes.ravel(), keys, means, strict=False):
        im = ax.imshow(m, cmap="magma", vmin=lo, vmax=hi)
        ax.set_title(f"{key} (n={group[key].n})", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[len(keys) :]:
        ax.axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="mean log |DCT|")
    fig.suptitle(f"mean log-DCT spectrum {title} (top-left = low frequencies)")
    return _savefig(fig, path, tight=False)


def _real_differences(group: dict[str, GroupStats]) -> list[tuple[str, str, np.ndarray]]:
    """Each fake group's mean log-DCT minus the real mean of the same source (or overall)."""
    diffs = []
    for key, st in group.items():
        base_key = key.rsplit("/", 1)[0] + "/real" if "/" in key else "real"
        if key.endswith("real") or base_key not in group:
            continue
        diffs.append((key, base_key, st.dct_mean - group[base_key].dct_mean))
    return diffs


def _plot_dct_diffs(diffs: list[tuple[str, str, np.ndarray]], path: Path) -> Path:
    import matplotlib.pyplot as plt

    lim = max(np.percentile(np.abs(d), 99) for *_, d in diffs)
    fig, axes = plt.subplots(1, len(diffs), figsize=(3.4 * len(diffs), 3.4), squeeze=False)
    for ax, (key, base, d) in zip(axes[0], diffs, strict=True):
        im = ax.imshow(d, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"{key} − {base}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="Δ mean log |DCT|")
    return _savefig(fig, path, tight=False)
