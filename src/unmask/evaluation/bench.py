"""`unmask bench`: the per-source comparison protocol, the same for every model and data set.

    result = bench([BenchModel("fused", "work/models/fused"),
                    BenchModel("artifact", "work/crossval/artifact/{source}/model")],
                   "work/prepared", out="work/bench")

For every model and every source S of the evaluated split (default `test`):
  - the model that scores S: the model folder, or, when its path holds `{source}`, the folder
    made for S (e.g. by `unmask crossval`, which trains one model per held-out source), so a
    leave-one-source-out run is one command;
  - a composite model's fusion is refitted leave-one-source-out: member calibration, fusion
    rule and threshold fitted on the `val` rows of every source except S (`--no-refit` keeps
    the saved fusion). Members are not retrained: name per-source folders for that.
  - the rows compared: S's rows; a source with fakes only is compared against the reals of
    every source in the split (its AUC says "fakes of S vs all reals"), a source with reals
    only reports its false-positive rate;
  - the figures: AUC with a bootstrap 95% CI, TPR at 1% and 5% FPR (thresholds from the
    compared reals' scores), expected calibration error of P(fake) (10 equal-width bins), and
    at the model's own threshold the detection rate (TPR) and false-positive rate (FPR).
  - for a source with fakes only, also the size-matched AUC: the reals weighted so that their
    face sizes (crop-box side, bins a factor sqrt(2) wide) follow the fakes' sizes, and the
    share of fakes whose size bin has reals at all (`cover`). Sources differ in face size,
    so "fakes of S vs all reals" also rewards a model for telling large faces from small
    ones; the size-matched AUC does not (None when the rows carry no crop boxes).
Writes OUT/bench.json, OUT/bench.md, OUT/bench.png and OUT/scores.csv (one column per model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unmask.errors import UnmaskError
from unmask.evaluation.perturb import NONE, Perturbation

SOURCE_FIELD = "{source}"


@dataclass(frozen=True)
class BenchModel:
    name: str
    path: str  # a model folder; "{source}" is replaced by the held-out source
    fallback: str | None = None  # used where the {source} folder does not exist

    def folder(self, source: str) -> Path:
        p = Path(self.path.replace(SOURCE_FIELD, source))
        if self.fallback and not (p / "model.json").is_file():
            return Path(self.fallback)
        return p


def parse_models(items: Sequence[str]) -> list[BenchModel]:
    """`[NAME=]PATH[|FALLBACK]` -> BenchModels (name = the folder's name), names unique.
    FALLBACK scores the sources whose `{source}` folder does not exist (e.g. sources the
    model never trained on, so that its all-sources model is already held out for them)."""
    out: list[BenchModel] = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            path = item
            name = Path(item.split("|")[0].replace(SOURCE_FIELD, "")).name
        path, bar, fallback = path.partition("|")
        if not name or not path or (bar and not fallback):
            raise UnmaskError(f"--model {item!r}: expected [NAME=]PATH[|FALLBACK]")
        out.append(BenchModel(name, path, fallback or None))
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise UnmaskError(f"model names must be unique, got {names}; use NAME=PATH")
    if not out:
        raise UnmaskError("give at least one --model")
    return out


def _y(labels: Any) -> np.ndarray:
    return (np.asarray(labels).astype(str) != "real").astype(np.int64)


def source_figures(
    y: np.ndarray, s: np.ndarray, threshold: float, n_boot: int = 500, seed: int = 0
) -> dict[str, Any]:
    """The bench figures for one compared set (y = 1 fake)."""
    from unmask.metrics import bootstrap_ci, expected_calibration_error, roc_auc, tpr_at_fpr

    n_fake, n_real = int(y.sum()), int((1 - y).sum())
    out: dict[str, Any] = {"n_fake": n_fake, "n_real": n_real}
    both = n_fake > 0 and n_real > 0
    out["auc"] = roc_auc(y, s) if both else None
    out["auc_ci"] = list(bootstrap_ci(y, s, roc_auc, n_boot, seed)) if both else None
    out["tpr_at_1fpr"] = tpr_at_fpr(y, s, 0.01) if both else None
    out["tpr_at_5fpr"] = tpr_at_fpr(y, s, 0.05) if both else None
    out["ece"] = expected_calibration_error(y, s)
    out["tpr"] = float(np.mean(s[y == 1] >= threshold)) if n_fake else None
    out["fpr"] = float(np.mean(s[y == 0] >= threshold)) if n_real else None
    return out


def size_matched(y: np.ndarray, s: np.ndarray, side: np.ndarray) -> dict[str, Any]:
    """AUC with the reals weighted to the fakes' face-size distribution, over the fakes
    whose size bin holds reals; and that share of the fakes (`size_matched_cover`)."""
    from unmask.metrics import matching_weights, weighted_roc_auc

    none = {"auc_size_matched": None, "size_matched_cover": None}
    real, fake = y == 0, y == 1
    if not real.any() or not fake.any() or not np.all(np.isfinite(side)) or (side <= 0).any():
        return none
    w_real, covered = matching_weights(side[real], side[fake])
    if not covered.any():
        return {**none, "size_matched_cover": 0.0}
    keep = real.copy()
    keep[np.flatnonzero(fake)[covered]] = True
    w = np.where(real, 0.0, 1.0)
    w[real] = w_real
    return {
        "auc_size_matched": weighted_roc_auc(y[keep], s[keep], w[keep]),
        "size_matched_cover": float(covered.mean()),
    }


def breakdowns(
    df: Any, own: np.ndarray, sel: np.ndarray, y: np.ndarray, score: np.ndarray, thr: float
) -> dict[str, Any]:
    """Per fake method of a source (each method's fakes vs the same compared reals), when it
    has more than one; and per video (mean P(fake) over its frames, the same rule as
    `unmask eval`), when the source's rows are video frames."""
    from unmask.evaluation.report import video_scores
    from unmask.metrics import roc_auc

    out: dict[str, Any] = {}
    if "method" in df.columns:
        method = df["method"].astype(str).to_numpy()
        fakes = sorted(set(method[own & (y == 1)]))
        if len(fakes) > 1 and (y[sel] == 0).any():
            out["by_method"] = {
                m: {
                    "n_fake": int((own & (y == 1) & (method == m)).sum()),
                    "auc": roc_auc(
                        y[sel & ((y == 0) | (method == m))], score[sel & ((y == 0) | (method == m))]
                    ),
                }
                for m in fakes
            }
    v = video_scores(df[own].reset_index(drop=True), score[own])
    if len(v):
        out["videos"] = [
            {
                "video": str(r.group).split("|")[-1],
                "label": str(r.label),
                "frames": int(r.frames),
                "score": float(r.score),
                "verdict": "fake" if r.score >= thr else "real",
            }
            for r in v.itertuples()
        ]
    return out


class _Scorer:
    """Scores of one model folder on the rows, computed once and reused across sources."""

    def __init__(self, df_eval: Any, df_val: Any, perturbation: Perturbation, progress: bool):
        self.df_eval, self.df_val = df_eval, df_val
        self.perturbation, self.progress = perturbation, progress
        self._cache: dict[Any, dict[str, Any]] = {}

    def get(self, folder: Path, refit: bool) -> dict[str, Any]:
        key = folder.resolve()
        if key in self._cache:
            return self._cache[key]
        from unmask.evaluation.scoring import score_rows
        from unmask.inference.composite import tile_size
        from unmask.inference.loader import load_predictor, predictor_kind
        from unmask.inference.predictor import p_fake

        pred = load_predictor(folder)
        entry: dict[str, Any] = {
            "threshold": float(pred.threshold),
            "fusion": None,
            "tile_size": tile_size(pred),  # read for a composite's members only
        }
        if refit and predictor_kind(pred).has_members and len(self.df_val):
            from unmask.modelfile import member_dir

            # members scored as models of their own (cached: `--model NAME=COMPOSITE/
            # members/NAME` costs nothing more), on val for the refit and on the eval rows
            names = [m.name for m in pred.fusion.members]
            folders = [member_dir(folder, n) for n in names]
            from unmask.evaluation.compose import saved_max_fpr

            entry["fusion"] = pred.fusion.rule
            entry["max_fpr"] = saved_max_fpr(pred.meta)
            entry["names"] = names
            entry["members_eval"] = np.stack([self.get(f, refit)["score"] for f in folders], 1)
            entry["members_val"] = np.stack([self._val_score(f) for f in folders], 1)
            # which member may score which row, as the composite decides it in `detect`
            # (from the original's size: a resize perturbation is not taken into account)
            from unmask.evaluation.scoring import row_box_sides, row_image_sizes
            from unmask.inference.composite import tile_usable

            tiles = [self.get(f, refit)["tile_size"] for f in folders]
            entry["usable_eval"] = tile_usable(
                tiles, row_image_sizes(self.df_eval), row_box_sides(self.df_eval)
            )
        else:
            proba = score_rows(pred, self.df_eval, self.perturbation, progress=self.progress)
            entry["score"] = p_fake(proba)
        self._cache[key] = entry
        return entry

    def _val_score(self, folder: Path) -> np.ndarray:
        from unmask.evaluation.scoring import score_rows
        from unmask.inference.loader import load_predictor
        from unmask.inference.predictor import p_fake

        key = ("val", folder.resolve())
        if key not in self._cache:
            pred = load_predictor(folder)
            proba = score_rows(pred, self.df_val, self.perturbation, progress=self.progress)
            self._cache[key] = {"score": p_fake(proba)}
        return self._cache[key]["score"]


def refit_rows(df_val: Any, held: str) -> tuple[np.ndarray, str]:
    """Which val rows a leave-`held`-out fusion may be fitted on: every other source's; if
    those hold one class only (`held` has the only reals), every row but `held`'s fakes."""
    y = _y(df_val["label"])
    other = (df_val["source"].astype(str) != held).to_numpy()
    if len(np.unique(y[other])) == 2:
        return other, f"val rows of every source but {held}"
    keep = other | (y == 0)
    if len(np.unique(y[keep])) == 2:
        return keep, f"val rows but {held}'s fakes (the other sources hold one class)"
    raise UnmaskError(f"val rows without {held!r} hold one class: cannot refit the fusion")


def _scores_for(entry: dict[str, Any], df_val: Any, held: str) -> tuple[np.ndarray, float, str]:
    """Eval-row scores, threshold, and what the fusion was fitted on (refitted without
    `held` for a composite)."""
    if entry["fusion"] is None:
        return entry["score"], entry["threshold"], "saved"
    from unmask.evaluation.compose import choose_threshold, fit_fusion
    from unmask.inference.composite import fuse

    keep, note = refit_rows(df_val, held)
    yv = _y(df_val["label"])[keep]
    fusion = fit_fusion(entry["members_val"][keep], yv, entry["names"], entry["fusion"])
    src_v = df_val["source"].astype(str).to_numpy()[keep]
    thr, _ = choose_threshold(
        yv, fuse(entry["members_val"][keep], fusion)[0], src_v, entry["max_fpr"]
    )
    return fuse(entry["members_eval"], fusion, usable=entry["usable_eval"])[0], thr, note


def bench(
    models: Sequence[BenchModel],
    data: str | Path,
    out: str | Path,
    split: str = "test",
    perturbation: Perturbation = NONE,
    refit: bool = True,
    n_boot: int = 500,
    seed: int = 0,
    progress: bool = True,
    max_per_source: int = 0,
) -> dict[str, Any]:
    from unmask.evaluation.report import load_eval_rows
    from unmask.evaluation.scoring import row_box_sides
    from unmask.inference.loader import load_predictor

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    first = models[0].folder("") if SOURCE_FIELD not in models[0].path else None
    spec = load_predictor(first).spec if first is not None else None
    rows = load_eval_rows(data, split=None, spec=spec, work_dir=out, progress=progress)
    df_eval = _cap(rows[rows["split"].astype(str) == split], max_per_source, seed)
    df_val = _cap(rows[rows["split"].astype(str) == "val"], max_per_source, seed)
    if not len(df_eval):
        raise UnmaskError(f"{data}: no rows in split {split!r}")
    sources = sorted(set(df_eval["source"].astype(str)))
    y = _y(df_eval["label"])
    src = df_eval["source"].astype(str).to_numpy()
    side = row_box_sides(df_eval)
    scorer = _Scorer(df_eval, df_val, perturbation, progress)
    table: dict[str, dict[str, Any]] = {}
    score_cols: dict[str, np.ndarray] = {}
    for m in models:
        per: dict[str, Any] = {}
        col = np.full(len(df_eval), np.nan)
        for s in sources:
            folder = m.folder(s)
            if not (folder / "model.json").is_file():
                per[s] = {"error": f"no model at {folder}"}
                continue
            entry = scorer.get(folder, refit)
            score, thr, fitted_on = _scores_for(entry, df_val, s)
            own = src == s
            fake_only, real_only = y[own].min() == 1, y[own].max() == 0
            # a fakes-only source is compared with every real of the split
            sel = own | (y == 0) if fake_only else own
            fig = source_figures(y[sel], score[sel], thr, n_boot, seed)
            fig.update(
                model=str(folder),
                threshold=thr,
                compared="fakes of the source vs all reals" if fake_only else "the source",
                fusion_refit=entry["fusion"] is not None,
                fusion_fitted_on=fitted_on,
            )
            if real_only:
                fig["compared"] = "reals of the source (false positives only)"
            if fake_only:
                fig.update(size_matched(y[sel], score[sel], side[sel]))
            fig.update(breakdowns(df_eval, own, sel, y, score, thr))
            per[s] = fig
            col[own] = score[own]
        table[m.name] = per
        score_cols[m.name] = col
    result = {
        "schema": 1,
        "data": str(data),
        "split": split,
        "perturbation": perturbation.name,
        "sources": sources,
        "models": {m.name: m.path for m in models},
        "refit_fusion": refit,
        "max_per_source": max_per_source,
        "table": table,
        "protocol": __doc__.split("\n\n", 2)[2].strip() if __doc__ else "",
    }
    write_bench(result, df_eval, score_cols, out)
    return result


def _cap(df: Any, n: int, seed: int) -> Any:
    """At most n rows per (source, label), drawn with a fixed seed (0: all rows). Video
    frames are rows too: a cap may keep part of a video."""
    if n > 0:
        df = df.sample(frac=1.0, random_state=seed).groupby(["source", "label"]).head(n)
        df = df.sort_index()
    return df.reset_index(drop=True)


def _cell(v: Any, nd: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{nd}f}"


def format_bench(result: dict[str, Any], md: bool = False) -> str:
    from unmask.evaluation.tables import format_table

    header = [
        "model",
        "source",
        "n fake/real",
        "AUC [95% CI]",
        "AUC size-matched (cover)",
        "TPR@1%",
        "TPR@5%",
        "ECE",
        "TPR",
        "FPR",
    ]
    rows = []
    for name, per in result["table"].items():
        for s in result["sources"]:
            f = per.get(s, {})
            if "error" in f or not f:
                rows.append([name, s, "-", f.get("error", "-"), "", "", "", "", "", ""])
                continue
            ci = f["auc_ci"] or [None, None]
            auc = (
                f"{_cell(f['auc'])} [{_cell(ci[0])}, {_cell(ci[1])}]"
                if f["auc"] is not None
                else "-"
            )
            matched = "-"
            if f.get("auc_size_matched") is not None:
                matched = f"{_cell(f['auc_size_matched'])} ({_cell(f['size_matched_cover'], 2)})"
            rows.append(
                [name, s, f"{f['n_fake']}/{f['n_real']}", auc, matched, _cell(f["tpr_at_1fpr"]),
                 _cell(f["tpr_at_5fpr"]), _cell(f["ece"]), _cell(f["tpr"]), _cell(f["fpr"])]
            )  # fmt: skip
    return format_table(header, rows, md=md)


def format_breakdowns(result: dict[str, Any]) -> list[str]:
    """Markdown sections: AUC per fake method, and per-video scores, for every model."""
    methods, videos = [], []
    for name, per in result["table"].items():
        for s, f in per.items():
            for m, g in (f.get("by_method") or {}).items():
                methods.append(f"| {name} | {s} | {m} | {g['n_fake']} | {_cell(g['auc'])} |")
            for v in f.get("videos") or []:
                videos.append(
                    f"| {name} | {s} | {v['video']} | {v['label']} | {v['frames']} | "
                    f"{_cell(v['score'])} | {v['verdict']} |"
                )
    md: list[str] = []
    if methods:
        md += ["## By fake method (each method's fakes vs the same reals)", ""]
        md += ["| model | source | method | n fake | AUC |", "|---|---|---|---|---|", *methods, ""]
    if videos:
        md += ["## Videos (mean P(fake) over the scored frames; verdict at the threshold)", ""]
        md += ["| model | source | video | truth | frames | score | verdict |"]
        md += ["|---|---|---|---|---|---|---|", *videos, ""]
    return md


def write_bench(
    result: dict[str, Any], df: Any, score_cols: dict[str, np.ndarray], out: Path
) -> None:
    import pandas as pd

    from unmask.jsonio import dumps

    (out / "bench.json").write_text(dumps(result, indent=2) + "\n")
    md = [
        f"# Bench: {result['data']} ({result['split']} split, perturbation {result['perturbation']})",
        "",
        format_bench(result, md=True),
        "",
        "## Protocol",
        "",
        result["protocol"],
        "",
    ]
    md += format_breakdowns(result)
    (out / "bench.md").write_text("\n".join(md))
    cols = {c: df[c] for c in ("path", "label", "source", "split") if c in df.columns}
    pd.DataFrame({**cols, **{f"p_fake_{k}": v for k, v in score_cols.items()}}).to_csv(
        out / "scores.csv", index=False
    )
    plot_bench(result, out / "bench.png")


def plot_bench(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources, names = result["sources"], list(result["table"])
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(sources) * max(1, len(names)) / 2 + 3), 4))
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        xs, vals, lo, hi = [], [], [], []
        spec_x, spec = [], []  # real-only sources: 1 - false-positive rate, hatched
        for j, s in enumerate(sources):
            f = result["table"][name].get(s, {})
            x = j + (i - (len(names) - 1) / 2) * width
            if f.get("auc") is None:
                if f.get("fpr") is not None:
                    spec_x.append(x)
                    spec.append(1.0 - f["fpr"])
                continue
            ci = f["auc_ci"] if f["auc_ci"] and None not in f["auc_ci"] else [f["auc"], f["auc"]]
            xs.append(x)
            vals.append(f["auc"])
            lo.append(max(f["auc"] - ci[0], 0))
            hi.append(max(ci[1] - f["auc"], 0))
        ax.bar(xs, vals, width, yerr=[lo, hi], capsize=2, label=name, color=f"C{i}")
        matched = [
            (j + (i - (len(names) - 1) / 2) * width, result["table"][name][s]["auc_size_matched"])
            for j, s in enumerate(sources)
            if result["table"][name].get(s, {}).get("auc_size_matched") is not None
        ]
        if matched:
            ax.plot(*zip(*matched, strict=True), "k_", ms=10, mew=2,
                    label="size-matched AUC" if i == 0 else None)  # fmt: skip
        ax.bar(spec_x, spec, width, color=f"C{i}", alpha=0.5, hatch="//", edgecolor="white")
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(len(sources)), sources, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("AUC (95% CI)")
    ax.set_title(
        f"per-source AUC, {result['split']} split, {result['perturbation']} "
        "(hatched: 1 - false-positive rate on sources with reals only;\n"
        "black bar: AUC with reals matched to the fakes' face sizes)"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
