"""The skeleton every `unmask synth` method runs on (see `unmask.synth.pipeline`).

    run = SynthRun.start(manifest, out_dir, keep)      # read the manifest, check --keep
    reals = run.reals(splits, limit, seed)              # the real rows to make fakes from
    rows.append(run.row(rec, path=..., label=..., ...)) # one synthetic manifest row
    return run.finish(rows, info, "no fakes made")      # manifest + info, the summary dict

Shared helpers: reading many crops at one size, reason counts, the spectrum sheet and the
one-line summary.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unmask.errors import UnmaskError
from unmask.synth import common as C

SHEET_ROWS = 8
KEEP = ("all", "real", "none")


@dataclass
class SynthRun:
    manifest: str | Path
    out: Path
    keep: str
    df: Any
    root: Path
    spec: Any
    t0: float = field(default_factory=time.perf_counter)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def start(cls, manifest: str | Path, out_dir: str | Path, keep: str) -> SynthRun:
        if keep not in KEEP:
            raise UnmaskError(f"--keep must be all, real or none, got {keep!r}")
        out = Path(out_dir)
        df, root, spec = C.read_input(manifest, out)
        return cls(manifest, out, keep, df, root, spec)

    def reals(self, splits: Sequence[str] | None, limit: int = 0, seed: int = 0) -> Any:
        return _select(C.real_rows(self.df, splits, self.manifest), limit, seed)

    def rel(self, abs_path: str) -> str:
        return _rel_to_out(abs_path, self.out)

    def row(self, rec: dict[str, Any] | None, parents: Sequence[str] = (), **fields: Any):
        """A synthetic manifest row from parent record `rec` (None: no parent); landmarks
        and parents are written relative to the output folder."""
        if rec is not None:
            fields.setdefault("landmarks", self.rel(rec.get("abs_landmarks", "")))
        fields.setdefault("parent", ";".join(self.rel(p) for p in parents))
        return C.synthetic_row(rec, **fields)

    def info(self, method: str, seed: int, **more: Any) -> dict[str, Any]:
        """The start of synth.json: what was run, on which manifest, with which seed."""
        return {"method": method, "manifest": str(self.manifest), "seed": seed, **more}

    def training_images(self, split: str, size: int, record_skips: bool = True) -> np.ndarray:
        """The readable real crops of `split` at `size` px, to fit a net on; unreadable ones
        are listed in skipped.csv when `record_skips`."""
        rows = C.real_rows(self.df, [split], self.manifest)
        sink = self.skipped if record_skips else []
        imgs, _, _ = _load_many(list(rows["abs_path"]), size, sink, list(rows["path"]))
        return imgs

    def net_ref(self, path: str | Path) -> str:
        """A saved net's file as the synthetic rows' synth_params name it (relative to OUT)."""
        return _rel_to_out(str(Path(path).resolve()), self.out.resolve())

    def finish(
        self, rows: list[dict[str, Any]], info: dict[str, Any], nothing: str = "no fakes made"
    ) -> dict[str, Any]:
        """Write the output manifest (input rows per --keep + `rows`) and return the summary."""
        if not rows:
            raise UnmaskError(f"{nothing}: all input rows skipped ({_reasons(self.skipped)})")
        info.setdefault("skipped_reasons", _reason_counts(self.skipped))
        info["seconds"] = round(time.perf_counter() - self.t0, 2)
        kept = _input_rows(self.df, self.root, self.out, self.keep)
        mpath = C.write_output(self.out, kept, rows, self.root, info, self.skipped)
        return dict(info, manifest_out=str(mpath), made=len(rows), skipped=len(self.skipped))


def load_net(path: str | Path, key: str, what: str) -> tuple[Any, dict[str, Any]]:
    """The `key` net of a file `save_nets` wrote, and the file's metadata; one line when the
    file holds no such net."""
    from unmask.synth.nets import load_nets

    nets, meta = load_nets(path)
    if key not in nets:
        raise UnmaskError(f"{path}: holds no {what}")
    return nets[key], meta


def _select(reals, limit: int, seed: int):
    if limit and len(reals) > limit:
        reals = reals.sample(n=limit, random_state=seed).sort_index()
    return reals


def _rel_to_out(abs_path: str, out: Path) -> str:
    import os

    return os.path.relpath(abs_path, out).replace(os.sep, "/") if abs_path else ""


def _input_rows(df, root: Path, out: Path, keep: str) -> list[dict[str, Any]]:
    if keep not in ("all", "real", "none"):
        raise UnmaskError(f"--keep must be all, real or none, got {keep!r}")
    if keep == "none":
        return []
    sel = df if keep == "all" else df[df["label"] == "real"]
    return C.rebase_rows(sel, root, out)


def _reason_counts(skipped: Sequence[tuple[str, str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, r in skipped:
        key = r.split(":")[0]
        counts[key] = counts.get(key, 0) + 1
    return counts


def _reasons(skipped: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in _reason_counts(skipped).items()) or "none"


def _load_many(
    paths: Sequence[str], size: int, skipped: list[tuple[str, str]], names: Sequence[str]
):
    """Images resized to `size`, keeping only readable ones: (array (N,S,S,3), kept positions)."""
    imgs, keep, shapes = [], [], []
    for i, (p, name) in enumerate(zip(paths, names, strict=True)):
        try:
            im = C.load_rgb(p)
        except UnmaskError:
            skipped.append((name, "corrupt"))
            continue
        shapes.append(im.shape[0])
        imgs.append(C.resize(im, size))
        keep.append(i)
    arr = np.stack(imgs) if imgs else np.zeros((0, size, size, 3), np.uint8)
    return arr, keep, shapes


def spectrum_sheet(real: np.ndarray, fake: np.ndarray, path: Path, title: str) -> Path:
    """Mean log-amplitude spectra (grey, high-passed) of real vs fake and their difference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def spec(x: np.ndarray) -> np.ndarray:
        g = x.astype(np.float32).mean(-1)
        g = g - g.mean(axis=(1, 2), keepdims=True)
        f = np.fft.fftshift(np.abs(np.fft.fft2(g)), axes=(1, 2))
        return np.log1p(f).mean(0)

    a, b = spec(real), spec(fake)
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    for ax, im, t in zip(
        axes, (a, b, b - a), ("real", "reconstruction", "difference"), strict=True
    ):
        ax.imshow(im, cmap="magma" if t != "difference" else "coolwarm")
        ax.set_title(t, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def summary_line(info: dict[str, Any]) -> str:
    extra = {k: info[k] for k in ("train_s", "synth_s", "sample_s", "seconds") if k in info}
    return (
        f"{info['method']}: {info['made']} synthetic rows, {info['skipped']} skipped "
        f"-> {info['manifest_out']} {json.dumps(extra)}"
    )
