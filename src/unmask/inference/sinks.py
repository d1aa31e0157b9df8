"""Where `unmask detect` sends its results: the console table, a JSON document, JSON Lines,
CSV or Parquet, each a sink behind one interface.

    sink.write(res)        # one FileResult at a time: nothing is kept per file
    sink.finish(counts)    # every result written: complete the output
    sink.abort()           # the run stopped early: leave nothing half-written

A file sink writes FILE.tmp and renames it to FILE in `finish` (`unmask.data.tables`'
staging rule); `abort` removes the .tmp. `Sinks` sends each result to all of them, aborts
all of them when the run fails, and turns a file that cannot be written into one line
that names it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO

from unmask.errors import UnmaskError
from unmask.jsonio import dumps

# what `--table FILE` can hold (`--format`); the console gets the table or, with --json, JSON
FILE_FORMATS: tuple[str, ...] = ("csv", "parquet", "json", "jsonl")


class Sink(Protocol):
    label: str | None  # the flag and file named when it cannot be written; None: a stream

    def write(self, res: Any) -> None: ...

    def finish(self, counts: dict[str, int]) -> None: ...

    def abort(self) -> None: ...


class ConsoleTable:
    """A fixed-width table printed row by row (no need to hold every result), then a line
    of totals."""

    label = None

    def __init__(
        self, classes, stream: TextIO, model_id: str, threshold: float, file_width: int = 40
    ) -> None:
        self.extra = list(classes[1:]) if len(classes) > 2 else []
        self.stream = stream
        self.fw = file_width
        self.model_id = model_id
        self.threshold = threshold
        cols = [f"{'file':<{self.fw}}", f"{'frame':>5}", f"{'face box':<21}", f"{'P(fake)':>7}"]
        cols += [f"{'P(' + c + ')':>9}" for c in self.extra]
        cols += ["verdict"]
        header = "  ".join(cols)
        print(header, file=self.stream)
        print("-" * len(header), file=self.stream)

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
            self._write_tracks(res)

    def _write_tracks(self, res) -> None:
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

    def finish(self, counts: dict[str, int]) -> None:
        print(
            f"\n{counts['files']} file(s): {counts['ok']} scored, {counts['fake']} fake, "
            f"{counts['errors']} unreadable (model {self.model_id}, threshold "
            f"{self.threshold:.3f})",
            file=self.stream,
        )

    def abort(self) -> None:
        pass  # rows already printed stay: they were right


class JsonDocument:
    """A JSON document written incrementally: {"schema", "model", "results": [...], "summary"}.
    Each result is `FileResult.to_dict()`, the record the HTTP server answers with."""

    label = None

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

    def finish(self, counts: dict[str, Any]) -> None:
        self.stream.write('\n],\n "summary": ' + dumps(counts) + "\n}\n")

    def abort(self) -> None:
        pass


class JsonLines:
    """One JSON record (`FileResult.to_dict()`) per line: appendable, and read line by line."""

    label = None

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, res) -> None:
        self.stream.write(dumps(res.to_dict()) + "\n")

    def finish(self, counts: dict[str, Any]) -> None:
        pass

    def abort(self) -> None:
        pass


class TextFileSink:
    """A stream sink (`JsonDocument`, `JsonLines`) writing into FILE: renamed into place when
    finished, removed when aborted."""

    def __init__(self, path: str | Path, make: Callable[[TextIO], Sink], label: str) -> None:
        from unmask.data.tables import AtomicTextFile

        self.label = label
        self.file = AtomicTextFile(path)
        try:
            self.inner = make(self.file.fh)
        except BaseException:
            self.file.discard()
            raise

    def write(self, res) -> None:
        self.inner.write(res)

    def finish(self, counts: dict[str, Any]) -> None:
        self.inner.finish(counts)
        self.file.commit()

    def abort(self) -> None:
        self.file.discard()


class RowTable:
    """One row per face (`report.face_rows`) into a CSV or Parquet file."""

    def __init__(self, path: str | Path, classes: Sequence[str], fmt: str, label: str) -> None:
        from unmask.data.tables import TableWriter
        from unmask.inference.report import face_csv_columns

        self.label = label
        self.classes = list(classes)
        self.table = TableWriter(path, face_csv_columns(self.classes), fmt)

    def write(self, res) -> None:
        from unmask.inference.report import face_rows

        self.table.write_rows(face_rows(res, self.classes))

    def finish(self, counts: dict[str, Any]) -> None:
        self.table.close()

    def abort(self) -> None:
        self.table.abort()


def file_sink(
    path: str | Path, fmt: str, classes: Sequence[str], model: dict[str, Any], label: str
) -> Sink:
    """The sink for a results file in format `fmt` (one of FILE_FORMATS)."""
    if fmt in ("csv", "parquet"):
        return RowTable(path, classes, fmt, label)
    if fmt == "json":
        from unmask.inference.detect import JSON_SCHEMA_VERSION

        return TextFileSink(path, lambda fh: JsonDocument(fh, JSON_SCHEMA_VERSION, model), label)
    if fmt == "jsonl":
        return TextFileSink(path, JsonLines, label)
    raise UnmaskError(f"unknown results format {fmt!r} ({', '.join(FILE_FORMATS)})")


@contextlib.contextmanager
def named_errors(label: str | None) -> Iterator[None]:
    """An output file that cannot be written (disk full, a folder in the way) -> one line
    naming the flag and the file. A stream's errors pass (a closed pipe ends quietly)."""
    try:
        yield
    except OSError as exc:
        if label is None or exc.errno is None:
            raise
        raise UnmaskError(f"{label}: cannot write: {exc.strerror or exc}") from None


class Sinks:
    """Every result to every sink; on an error all of them are aborted (context manager)."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)

    def write(self, res) -> None:
        for s in self.sinks:
            with named_errors(s.label):
                s.write(res)

    def finish(self, counts: dict[str, int]) -> None:
        for s in self.sinks:
            with named_errors(s.label):
                s.finish(counts)

    def abort(self) -> None:
        for s in self.sinks:
            with contextlib.suppress(Exception):  # the first error is the one to report
                s.abort()

    def __enter__(self) -> Sinks:
        return self

    def __exit__(self, exc_type, *_: object) -> None:
        if exc_type is not None:
            self.abort()
