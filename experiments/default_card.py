"""Write the fused default model's card (card.md) from what `train_default.sh` measured.

    python experiments/default_card.py work/default            # -> work/default/fused/card.md

Reads, under OUT: fused/model.json, bench-none/bench.json and bench-jpeg90/bench.json (the
leave-one-source-out bench of the fused model, its members and the previous default),
robust-*/bench.json (the fused model under one perturbation each) and videos.json
(`unmask detect` on the four FaceForensics++ videos). Every table in the card comes from
those files, so it cannot drift from the measurements; the known-failures section is the
one written by hand (experiments/default_known_failures.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _f(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}"


def cell(fig: dict[str, Any] | None) -> str:
    """AUC [CI] for a source with fakes, the false-positive rate for one with reals only."""
    if not fig or "error" in fig:
        return "-"
    if fig.get("auc") is None:
        return f"FPR {_f(fig.get('fpr'))}"
    lo, hi = fig.get("auc_ci") or (None, None)
    return f"{_f(fig['auc'])} [{_f(lo)}, {_f(hi)}]"


def source_table(bench: dict[str, Any], models: list[str]) -> list[str]:
    t = bench["table"]
    rows = ["| source | n fake/real | " + " | ".join(models) + " |"]
    rows.append("|---|---|" + "---|" * len(models))
    for s in bench["sources"]:
        first = next((t[m][s] for m in models if s in t.get(m, {})), {})
        n = f"{first.get('n_fake', '-')}/{first.get('n_real', '-')}"
        rows.append(
            f"| {s} | {n} | " + " | ".join(cell(t.get(m, {}).get(s)) for m in models) + " |"
        )
    return rows


def matched_table(bench: dict[str, Any], models: list[str]) -> list[str]:
    """Sources with fakes only: AUC against reals weighted to the fakes' face sizes."""
    t = bench["table"]
    rows = ["| source | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    for s in bench["sources"]:
        figs = [t.get(m, {}).get(s) or {} for m in models]
        if all(f.get("auc_size_matched") is None for f in figs):
            continue
        cells = [
            f"{_f(f.get('auc_size_matched'))} ({f.get('size_matched_cover', 0):.2f})"
            if f.get("auc_size_matched") is not None
            else "-"
            for f in figs
        ]
        rows.append(f"| {s} | " + " | ".join(cells) + " |")
    return rows if len(rows) > 2 else []


def choice_table(rule_file: Path) -> list[str]:
    """experiments/fusion_rule.py's table: each candidate's mean over held-out val sources."""
    if not rule_file.is_file():
        return []
    doc = json.loads(rule_file.read_text())
    crit = "auc_size_matched" if doc.get("criterion") == "matched" else "auc"
    cands = list(doc["mean"])
    sources = list(doc["table"])
    rows = [
        "## How the members were chosen (val split, each source held out)",
        "",
        f"{crit} of each candidate on each val source with fakes, scored by members that "
        f"never trained on it and fitted on the other sources' val rows; in brackets the "
        f"detection rate at that fit's threshold (at most {doc.get('max_fpr', 0):.0%} of "
        "every other real source flagged).",
        "",
        "| candidate | " + " | ".join(sources) + " | mean |",
        "|---|" + "---|" * (len(sources) + 1),
    ]
    eligible = set(doc.get("eligible", cands))
    for c in cands:
        cells = []
        for s in sources:
            v = doc["table"][s][c]
            mark = "" if v.get("held_out", True) else "*"
            cells.append("-" if v[crit] is None else f"{v[crit]:.3f}{mark} ({v['tpr']:.2f})")
        name = c if c in eligible else f"{c} (not eligible)"
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {doc['mean'][c]:.3f} |")
    chosen = doc["chosen"]
    rows += [
        "",
        "\\* a member of that candidate trained on the source's fakes (no leave-one-source-out "
        "folds): not a held-out figure, and such a candidate cannot be chosen.",
        "",
        f"Chosen: {' + '.join(chosen['members'])} ({chosen['rule']}).",
        "",
    ]
    return rows


def rate_table(bench: dict[str, Any], model: str) -> list[str]:
    """At the model's own threshold: detection rate on fakes, false positives on reals."""
    rows = ["| source | TPR@1% FPR | TPR@5% FPR | detected (TPR) | false positives (FPR) | ECE |"]
    rows.append("|---|---|---|---|---|---|")
    for s, f in bench["table"][model].items():
        if "error" in f:
            continue
        rows.append(
            f"| {s} | {_f(f.get('tpr_at_1fpr'))} | {_f(f.get('tpr_at_5fpr'))} | "
            f"{_f(f.get('tpr'))} | {_f(f.get('fpr'))} | {_f(f.get('ece'))} |"
        )
    return rows


def robustness_table(out: Path, model: str) -> list[str]:
    runs = sorted(out.glob("robust-*/bench.json"))
    base = out / "bench-none" / "bench.json"
    runs = ([base] if base.exists() else []) + runs
    if not runs:
        return ["(not measured)"]
    benches = [json.loads(p.read_text()) for p in runs]
    sources = [s for s in benches[0]["sources"]]
    rows = ["| perturbation | " + " | ".join(sources) + " |", "|---|" + "---|" * len(sources)]
    for b in benches:
        per = b["table"].get(model, {})
        rows.append(
            f"| {b['perturbation']} | " + " | ".join(cell(per.get(s)) for s in sources) + " |"
        )
    return rows


def video_table(path: Path) -> list[str]:
    from collections import Counter

    if not path.exists():
        return ["(not measured)"]
    rows = ["| video | truth | tracks: mean P(fake) (frames) | video score | verdict | driver |"]
    rows.append("|---|---|---|---|---|---|")
    for r in json.loads(path.read_text())["results"]:
        name = Path(r.get("file", "?")).name
        truth = "fake" if "/edited/" in r.get("file", "") else "real"
        tracks = (r.get("video") or {}).get("tracks") or []
        per = ", ".join(f"{_f(t['score'])} ({t['frames']})" for t in tracks) or "-"
        drivers = Counter(str(f.get("driver")) for f in r.get("faces", []))
        top = drivers.most_common(1)[0][0] if drivers else "-"
        rows.append(f"| {name} | {truth} | {per} | {_f(r.get('score'))} | {r['verdict']} | {top} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    from unmask.errors import UnmaskError
    from unmask.modelfile import read_saved_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the folder train_default.sh wrote (OUT)")
    ap.add_argument("--model", default="fused", help="the bench name of the fused model")
    ap.add_argument(
        "--known",
        type=Path,
        default=Path(__file__).with_name("default_known_failures.md"),
        help="the known-failures section (Markdown, written by hand from the tables)",
    )
    args = ap.parse_args(argv)
    out = args.out
    try:
        saved = read_saved_model(out / "fused")
        none = json.loads((out / "bench-none" / "bench.json").read_text())
        jpeg = json.loads((out / "bench-jpeg90" / "bench.json").read_text())
    except (OSError, ValueError, UnmaskError) as exc:
        print(f"default_card: {exc}", file=sys.stderr)
        return 1
    models = [m for m in none["table"]]
    fusion = saved.fusion
    rule_file = out / "fusion_rule.json"
    criterion = "plain"
    if rule_file.is_file():
        criterion = json.loads(rule_file.read_text()).get("criterion", "plain")
    crit_text = "size-matched AUC (see below)" if criterion == "matched" else "AUC"
    matched = matched_table(none, models)
    members = ", ".join(m.name for m in fusion.members)
    card = [
        f"# unmask default model: `{saved.id or 'unmask-fused'}`",
        "",
        "**What it does.** Scores every face in an image or video as real or fake (`gan` and "
        "`edited` both count as fake) with P(fake), and says which member drove the score "
        f"(`driver`). Members: {members}. P(fake) >= **{saved.threshold:.3f}** is reported "
        f"as fake. Threshold rule: {saved.threshold_rule}. "
        "A first look, not a verdict: read the known failures.",
        "",
        "**Members.** `gan`: ImageNet EfficientNet-Lite0 fine-tuned on whole face crops "
        "resized to 224 px, real vs every fully synthesised source, JPEG/blur/resize drawn "
        "alike for both classes, classes balanced within face-size bins "
        "(`configs/gan-lite0.yaml`). `blend`: EfficientNet-Lite0 trained on real faces and "
        "their self-blends only (`configs/blend-lite0.yaml`). Candidates that did not earn a "
        "place are measured below too: `frozen` (the same network frozen, a logistic "
        "regression on its ImageNet features: `experiments/frozen_probe.py`) and `artifact` "
        "(native-pixel tiles, `configs/artifact.yaml`).",
        "",
        f"**Fusion.** Members and rule (`{fusion.rule}`) are the candidate with the "
        f"highest mean {crit_text} on val sources that its members never trained on "
        "(`experiments/fusion_rule.py`, table below); each member's P(fake) is "
        "Platt-calibrated on the val split. Regenerate with "
        "`bash experiments/train_default.sh`; this card with "
        "`python experiments/default_card.py work/default`.",
        "",
        "**Compared with.** `current`: the fused artifact + blend model that shipped before "
        "(`unmask-default-fused-v1`).",
        "",
        *choice_table(rule_file),
        "## Leave-one-source-out, test split (clean)",
        "",
        "Every fake source is scored by a model that never trained on it: the gan and frozen "
        "members are retrained without each fully synthesised source, the blend member "
        "never sees a fake, and the edited sources are fakes for none of them; the fusion "
        "and its threshold are refitted on the val rows of the other sources. Exception: the "
        "artifact member is the one that shipped before, trained on celeba_gan, "
        "generated_photos and sdfd, so only its ffhq_stylegan figure is held out. Sources "
        "with reals only report the false-positive rate at the model's threshold. AUC with "
        "a bootstrap 95% CI.",
        "",
        *source_table(none, models),
        "",
        *(
            [
                "## Size-matched AUC, test split (clean)",
                "",
                "The fully synthesised sources have no reals of their own, so above their "
                "fakes meet every real of the split, and those are mostly smaller faces: a "
                "model that flags large faces scores well there without seeing any trace. "
                "Here the reals are weighted so that their face sizes (crop-box side, bins a "
                "factor sqrt(2) wide) follow the fakes' sizes; in brackets the share of fakes "
                "whose size bin holds reals.",
                "",
                *matched,
                "",
            ]
            if matched
            else []
        ),
        "## The same, every test image re-encoded as JPEG q90 (as on the web)",
        "",
        *source_table(jpeg, models),
        "",
        f"## Rates at the threshold ({args.model}, clean)",
        "",
        *rate_table(none, args.model),
        "",
        f"## Robustness ({args.model}; AUC, or FPR for real-only sources)",
        "",
        *robustness_table(out, args.model),
        "",
        "## Videos (FaceForensics++, `unmask detect videos/`)",
        "",
        "Rule: a face track's score is the mean P(fake) over its sampled frames; a video is "
        "fake when any track's mean reaches the threshold.",
        "",
        *video_table(out / "videos.json"),
        "",
        "## Protocol",
        "",
        none["protocol"],
        "",
    ]
    if args.known.exists():  # the one section written by hand, from the tables above
        card += ["## Known failures", "", args.known.read_text().strip(), ""]
    dest = out / "fused" / "card.md"
    dest.write_text("\n".join(card))
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
