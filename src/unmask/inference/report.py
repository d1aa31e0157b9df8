"""Turning detection results into tables, CSV rows and JSON, streamed one file at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from unmask.jsonio import dumps


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


class TableWriter:
    """A fixed-width table printed row by row (no need to hold every result)."""

    def __init__(self, classes, stream: TextIO, file_width: int = 40) -> None:
        self.extra = list(classes[1:]) if len(classes) > 2 else []
        self.stream = stream
        self.fw = file_width
        cols = [f"{'file':<{self.fw}}", f"{'frame':>5}", f"{'face box':<21}", f"{'P(fake)':>7}"]
        cols += [f"{'P(' + c + ')':>9}" for c in self.extra]
        cols += ["verdict"]
        self.header = "  ".join(cols)

    def start(self) -> None:
        print(self.header, file=self.stream)
        print("-" * len(self.header), file=self.stream)

    def _name(self, name: str) -> str:
        return name if len(name) <= self.fw else "..." + name[-(self.fw - 3) :]

    def write(self, res) -> None:
        self._write_scores(res)
        prov = getattr(res, "provenance", None)
        if prov is not None and prov.noteworthy:  # a line of its own: the columns stay intact
            print(f"{'':<{self.fw}}  provenance: {prov.summary()}", file=self.stream)

    def _write_scores(self, res) -> None:
        name = self._name(res.file)
        if res.status == "error":
            print(f"{name:<{self.fw}}  unreadable: {res.reason}", file=self.stream)
            return
        if not res.faces:
            print(f"{name:<{self.fw}}  {'':>5}  no face found", file=self.stream)
            return
        for f in res.faces:
            box = ",".join(str(v) for v in f.box)
            frame = "" if f.frame < 0 else str(f.frame)
            cols = [f"{name:<{self.fw}}", f"{frame:>5}", f"{box:<21}", f"{f.p_fake:>7.3f}"]
            cols += [f"{f.probs.get(c, float('nan')):>9.3f}" for c in self.extra]
            verdict = f.verdict.upper() if f.verdict == "fake" else f.verdict
            # composite models: which member drove the score
            cols += [f"{verdict} (driver: {f.driver})" if f.driver else verdict]
            print("  ".join(cols), file=self.stream)
        if res.kind == "video" and res.video and res.video.get("tracks"):
            for t in res.video["tracks"]:
                print(
                    f"{'':<{self.fw}}  video track {t['track']}: mean P(fake) {t['score']:.3f} "
                    f"over {t['frames']} frame(s) -> {t['verdict']}",
                    file=self.stream,
                )
            print(
                f"{'':<{self.fw}}  video verdict: {res.verdict} (score {res.score:.3f})",
                file=self.stream,
            )


class JsonWriter:
    """A JSON document written incrementally: {"schema", "model", "results": [...], "summary"}."""

    def __init__(self, stream: TextIO, schema: int, model: dict[str, Any]) -> None:
        self.stream = stream
        self.first = True
        head = {"schema": schema, "model": model}
        # Write the head as JSON minus its closing brace, then stream the results list.
        stream.write(dumps(head, indent=1)[:-2] + ',\n "results": [\n')

    def write(self, res) -> None:
        if not self.first:
            self.stream.write(",\n")
        self.first = False
        self.stream.write(dumps(res.to_dict()))

    def close(self, summary: dict[str, Any]) -> None:
        self.stream.write('\n],\n "summary": ' + dumps(summary) + "\n}\n")
