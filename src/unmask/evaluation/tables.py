"""Evaluation reports as text: the per-source tables and the Markdown report.

print(perturbation_tables(report))          # terminal
markdown_report(report)                      # report.md
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

COLUMNS = ("n", "real", "fake", "AUC", "AUC 95% CI", "AP", "EER", "acc", "bal acc", "TPR", "TNR")


def _f(x: Any, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{nd}f}"


def table_row(name: str, r: dict[str, Any]) -> list[str]:
    two = r.get("two_classes", True)
    ci = r.get("auc_ci") or [math.nan, math.nan]
    return [
        name,
        str(r["n"]),
        str(r["n_real"]),
        str(r["n_fake"]),
        _f(r["auc"]) if two else "n/a",
        f"[{_f(ci[0])}, {_f(ci[1])}]" if two else "n/a",
        _f(r["ap"]) if two else "n/a",
        _f(r["eer"]) if two else "n/a",
        _f(r["accuracy"]),
        _f(r["balanced_accuracy"]) if two else "n/a",
        _f(r["recall"]),
        _f(r["tnr"]),
    ]


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], md: bool = False) -> str:
    if md:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(
        [fmt.format(*header), fmt.format(*["-" * w for w in widths])]
        + [fmt.format(*r) for r in rows]
    )


def perturbation_tables(report: dict[str, Any], md: bool = False) -> str:
    parts = []
    for name, e in report["perturbations"].items():
        rows = [table_row("pooled (frames)", e["pooled"])]
        rows += [table_row(src, r) for src, r in e["per_source"].items()]
        if "video" in e:
            v = e["video"]
            rows.append(table_row(f"pooled (videos, {v['n_groups']})", v["pooled"]))
            rows += [table_row(f"{src} (videos)", r) for src, r in v["per_source"].items()]
        title = f"perturbation: {name}"
        parts.append(
            (f"### {title}\n\n" if md else f"{title}\n")
            + format_table(("set",) + COLUMNS, rows, md)
        )
        lab = e["pooled"]["per_label"]
        lrows = [
            [lb, str(d["n"]), _f(d["flagged_fake"]), _f(d["mean_score"])] for lb, d in lab.items()
        ]
        parts.append(format_table(("label", "n", "flagged fake", "mean P(fake)"), lrows, md))
        if "multiclass" in e:
            m = e["multiclass"]
            mrows = [
                [
                    c,
                    _f(d["precision"]),
                    _f(d["recall"]),
                    _f(d["f1"]),
                    _f(d["auc_ovr"]),
                    str(d["support"]),
                ]
                for c, d in m["per_class"].items()
            ]
            parts.append(
                f"3-class: accuracy {_f(m['accuracy'])}, balanced accuracy "
                f"{_f(m['balanced_accuracy'])}, macro F1 {_f(m['macro_f1'])}\n"
                + format_table(("class", "precision", "recall", "F1", "AUC ovr", "n"), mrows, md)
            )
    if len(report["perturbations"]) > 1:
        rows = []
        for name, e in report["perturbations"].items():
            r = e["pooled"]
            rows.append(
                [name, _f(r["auc"]), _f(r["accuracy"]), _f(r["recall"]), _f(r["tnr"])]
                + [
                    _f(x["auc"]) if x["two_classes"] else _f(x["accuracy"])
                    for x in e["per_source"].values()
                ]
            )
        srcs = list(next(iter(report["perturbations"].values()))["per_source"])
        parts.append(
            (
                "### robustness summary\n\n"
                if md
                else "robustness summary "
                "(per source: AUC, or accuracy where a source has one class)\n"
            )
            + format_table(["perturbation", "AUC", "acc", "TPR", "TNR"] + srcs, rows, md)
        )
    return "\n\n".join(parts)


def markdown_report(report: dict[str, Any], title: str = "Evaluation") -> str:
    m = report["model"]
    head = [
        f"# {title}",
        "",
        f"- model: `{m['detector']}` ({', '.join(m['classes'])}), threshold "
        f"{m['threshold']:.4f} ({m['threshold_rule'] or 'as saved'})",
        f"- data: `{report.get('data', '')}` split `{report.get('split', '')}`, "
        f"{report['n_rows']} crops",
        f"- {report['label_mapping']}",
        "- per-source rows with one class: AUC/AP/EER n/a; acc = detection rate (fakes) or "
        "true-negative rate (reals)",
        "",
        "Counts (source: label -> crops): "
        + "; ".join(
            f"{s}: " + ", ".join(f"{k} {v}" for k, v in c.items() if v)
            for s, c in report["counts"].items()
        ),
        "",
        "![ROC](roc.png) ![confusion](confusion.png) ![scores](hist.png)",
        "",
    ]
    return "\n".join(head) + perturbation_tables(report, md=True) + "\n"
