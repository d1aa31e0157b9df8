"""Detection results as rows: the model's summary, and one row per face (the CSV/Parquet
table, Ray's Parquet shards). The JSON record of a file is `FileResult.to_dict()`; where
results are written (console, JSON, CSV, Parquet) is `unmask.inference.sinks`."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def model_summary(predictor, model_dir: Path) -> dict[str, Any]:
    from unmask.inference.saved_model import detector_label
    from unmask.jsonio import json_clean

    meta = predictor.meta
    return json_clean(
        {
            "id": meta.get("id") or Path(model_dir).name,
            "detector": detector_label(meta),
            "version": meta.get("unmask_version"),
            "classes": list(predictor.classes),
            "threshold": float(predictor.threshold),
            "kind": meta.get("kind"),
            "members": [m["name"] for m in (meta.get("fusion") or {}).get("members", [])],
            "path": str(model_dir),
        }
    )


def face_csv_columns(classes) -> list[str]:
    return (
        [
            "file",
            "kind",
            "status",
            "frame",
            "face_index",
            "track",
            "x0",
            "y0",
            "x1",
            "y1",
            "det_score",
            "p_fake",
        ]
        # a binary model's second class is "fake": its column is p_fake already
        + [f"p_{c}" for c in classes[1:] if c != "fake"]
        + ["verdict", "driver", "file_verdict", "reason"]
        # what the file's Content Credentials / metadata say, beside (never in) the score
        + ["provenance"]
    )


FACE_CSV_COLUMNS = face_csv_columns


def face_rows(res, classes) -> list[dict[str, Any]]:
    """One CSV row per face; files with no face or an error get one row saying so."""
    base = {
        "file": res.file,
        "kind": res.kind,
        "status": res.status,
        "file_verdict": res.verdict,
        "reason": res.reason,
        "provenance": "" if res.provenance is None else res.provenance.summary(),
    }
    if not res.faces:
        return [base]
    rows = []
    for f in res.faces:
        row = dict(
            base,
            frame=f.frame,
            face_index=f.face_index,
            track=f.track,
            x0=f.box[0],
            y0=f.box[1],
            x1=f.box[2],
            y1=f.box[3],
            det_score=f.det_score,
            p_fake=f.p_fake,
            verdict=f.verdict,
            driver=f.driver,
        )
        for c in classes[1:]:
            if c != "fake":
                row[f"p_{c}"] = f.probs.get(c)
        rows.append(row)
    return rows
