"""Tables on disk as CSV or Parquet: the manifest, `rejected`, and detect's per-face results.

CSV opens anywhere; Parquet (`--format parquet`, needs pyarrow, which `unmask[cluster]`
brings) keeps a million-row manifest small and fast to read. Both hold the same cells: every
column is written as text, exactly what the CSV holds, and read back with the CSV reader's
type rules, so a verb sees the same DataFrame whichever format a folder holds.

    write_table(path, columns, rows)            # format from the suffix (.csv / .parquet)
    read_table(path, str_columns=("path",))     # -> pandas DataFrame, CSV-like dtypes
    with TableWriter(path, columns) as w:       # streamed, memory stays flat
        w.write_rows(rows)

Every file here is written under a temporary name and renamed when complete
(`staging_path`), so a run that fails never leaves a half table under the real name, and
an aborted one leaves no `.tmp` either.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from unmask.errors import UnmaskError

FORMATS: tuple[str, ...] = ("csv", "parquet")
SUFFIX = {"csv": ".csv", "parquet": ".parquet"}
_ROWS_PER_GROUP = 50_000  # Parquet row group: bounded memory while streaming


def table_format(path: str | Path) -> str:
    """`parquet` for *.parquet / *.pq and folders (Parquet shards), else `csv`."""
    p = Path(path)
    return "parquet" if p.suffix.lower() in (".parquet", ".pq") or p.is_dir() else "csv"


def require_pyarrow():
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet as pq
    except ImportError:
        raise UnmaskError(
            "Parquet needs pyarrow: pip install 'unmask[cluster]' (or pyarrow)"
        ) from None
    return pq


def _cell(v: Any) -> str:
    return "" if v is None else str(v)


def staging_path(path: Path) -> Path:
    """Where the file for `path` is written before it is complete: `path.tmp`, renamed to
    `path` at the end. A device or pipe (/dev/stdout, /dev/full, a FIFO) is written in place:
    renaming a regular file onto it would replace it."""
    if path.exists() and not path.is_file():
        return path
    return path.with_name(path.name + ".tmp")


def _promote(tmp: Path, path: Path) -> None:
    if tmp != path:
        tmp.replace(path)


def _discard(tmp: Path, path: Path) -> None:
    if tmp != path:
        tmp.unlink(missing_ok=True)


class AtomicTextFile:
    """A text file (`fh`) for `path`, written at its `staging_path`: `commit()` closes it and
    renames it to `path`, `discard()` closes and removes it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.tmp = staging_path(self.path)
        self.fh = open(self.tmp, "w", newline="", encoding="utf-8")  # noqa: SIM115

    def commit(self) -> Path:
        self.fh.close()
        _promote(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        try:
            with contextlib.suppress(OSError):  # already failing: a full disk fails again here
                self.fh.close()
        finally:
            _discard(self.tmp, self.path)


class TableWriter:
    """Rows (dicts) -> CSV or Parquet at `path`, written at its `staging_path` and renamed on
    close (a crash never leaves a half table under the real name; `abort` removes it)."""

    def __init__(self, path: str | Path, columns: Sequence[str], fmt: str | None = None):
        self.path = Path(path)
        self.columns = list(dict.fromkeys(columns))  # a name twice: one column (rows are dicts)
        self.fmt = fmt or table_format(self.path)
        if self.fmt not in FORMATS:
            raise UnmaskError(f"unknown table format {self.fmt!r} (csv or parquet)")
        self.tmp = staging_path(self.path)
        self.n_rows = 0
        self._buf: list[dict[str, Any]] = []
        if self.fmt == "parquet":
            pq = require_pyarrow()
            import pyarrow as pa

            self._schema = pa.schema([(c, pa.string()) for c in self.columns])
            self._pq = pq.ParquetWriter(self.tmp, self._schema)
        else:
            self._file = AtomicTextFile(self.path)
            self._csv = csv.DictWriter(
                self._file.fh, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n"
            )
            self._csv.writeheader()

    def write_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        for r in rows:
            self.n_rows += 1
            if self.fmt == "csv":
                self._csv.writerow({c: r.get(c, "") for c in self.columns})
            else:
                self._buf.append(r)
                if len(self._buf) >= _ROWS_PER_GROUP:
                    self._flush()

    writerows = write_rows  # csv.DictWriter's name, so either can be passed around

    def _flush(self) -> None:
        import pyarrow as pa

        cols = {c: [_cell(r.get(c, "")) for r in self._buf] for c in self.columns}
        self._pq.write_table(pa.table(cols, schema=self._schema))
        self._buf = []

    def close(self) -> Path:
        if self.fmt == "csv":
            return self._file.commit()
        if self._buf or self.n_rows == 0:
            self._flush()
        self._pq.close()
        _promote(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self.fmt == "csv":
            return self._file.discard()
        try:
            with contextlib.suppress(Exception):  # already failing; the file goes anyway
                self._pq.close()
        finally:
            _discard(self.tmp, self.path)

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, exc_type, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_table(
    path: str | Path, columns: Sequence[str], rows: Iterable[dict[str, Any]], fmt: str | None = None
) -> Path:
    with TableWriter(path, columns, fmt) as w:
        w.write_rows(rows)
    return w.path


def _like_csv(df, str_columns: Sequence[str]):
    """Give text columns the dtypes pandas' CSV reader (keep_default_na=False) would:
    a column whose every cell is a number becomes int64/float64, the rest stay text."""
    import pandas as pd

    for c in df.columns:
        if c in str_columns or len(df) == 0 or (df[c] == "").any():
            continue  # to_numeric would turn "" into NaN; the CSV reader keeps text
        with contextlib.suppress(ValueError, TypeError):
            df[c] = pd.to_numeric(df[c], errors="raise")
    return df


def read_table(path: str | Path, str_columns: Sequence[str] = ()):
    """A CSV or Parquet table (or a folder of Parquet shards) -> pandas DataFrame with
    CSV-like dtypes (missing cells "")."""
    import pandas as pd

    p = Path(path)
    if table_format(p) == "csv":
        return pd.read_csv(p, dtype={c: str for c in str_columns}, keep_default_na=False)
    pq = require_pyarrow()
    try:
        table = pq.read_table(p)
    except OSError as exc:  # pyarrow.ArrowInvalid is an OSError/ValueError subclass
        raise UnmaskError(f"{p}: not a readable Parquet file ({exc.__class__.__name__})") from None
    except ValueError as exc:
        raise UnmaskError(f"{p}: not a readable Parquet file ({exc.__class__.__name__})") from None
    df = table.to_pandas().astype(object).fillna("")
    for c in df.columns:
        df[c] = df[c].astype(str)
    return _like_csv(df, str_columns)
