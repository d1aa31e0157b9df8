"""`unmask detect`'s outputs (issue 22): every format is written and read back WITHOUT
`--json` beside it, a file is complete or absent (never `FILE.tmp` left), and an output that
cannot be written is one line and a non-zero exit.

The bug this pins: `--format parquet --table out.parquet` ended in a TypeError traceback
and left `out.parquet.tmp` (two different `TableWriter`s under one name; the only test
passed `--json`, which took the other branch)."""

from __future__ import annotations

import csv
import json
import sys
import types
from pathlib import Path

import pytest

from unmask.cli import main

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "examples" / "astronaut.jpg"
BASE = ["detect", "-q", "--workers", "1"]


@pytest.fixture(scope="module")
def reference() -> dict:
    """`--json` on stdout: what every other format must say."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*BASE, "--json", str(ASTRONAUT)]) == 0
    doc = json.loads(out.getvalue())
    assert len(doc["results"]) == 1 and len(doc["results"][0]["faces"]) == 1
    return doc


def _no_leftovers(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_console_table(reference, capsys):
    assert main([*BASE, str(ASTRONAUT)]) == 0
    out = capsys.readouterr().out
    face = reference["results"][0]["faces"][0]
    row = next(line for line in out.splitlines() if "astronaut.jpg" in line)
    assert ",".join(map(str, face["box"])) in row
    assert f"{face['p_fake']:.3f}" in row and face["verdict"] in row.lower()
    assert f"model {reference['model']['id']}" in out.splitlines()[-1]
    assert "1 file(s): 1 scored" in out


def test_csv_table(reference, tmp_path, capsys):
    path = tmp_path / "out.csv"
    assert main([*BASE, "--table", str(path), str(ASTRONAUT)]) == 0
    assert "P(fake)" in capsys.readouterr().out  # the console still gets its table
    with open(path, newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    face = reference["results"][0]["faces"][0]
    assert float(row["p_fake"]) == face["p_fake"]
    assert [int(row[k]) for k in ("x0", "y0", "x1", "y1")] == face["box"]
    assert row["verdict"] == face["verdict"] and row["status"] == "ok"
    _no_leftovers(tmp_path)


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_files(reference, tmp_path, capsys, fmt):
    path = tmp_path / f"out.{fmt}"
    assert main([*BASE, "--format", fmt, "--table", str(path), str(ASTRONAUT)]) == 0
    assert "P(fake)" in capsys.readouterr().out
    text = path.read_text()
    if fmt == "json":  # the document --json prints, byte for byte the same content
        assert json.loads(text) == reference
    else:
        assert [json.loads(line) for line in text.splitlines()] == reference["results"]
    _no_leftovers(tmp_path)


def _fake_pyarrow(monkeypatch) -> None:
    """Where pyarrow is not installed: a stand-in whose ParquetWriter writes each table's
    rows as JSON lines, enough to follow detect's Parquet path (temp file, rename)."""
    pa = types.ModuleType("pyarrow")
    pa.string = lambda: "string"
    pa.schema = lambda fields: [name for name, _ in fields]
    pa.table = lambda cols, schema: [
        dict(zip(cols, v, strict=True)) for v in zip(*cols.values(), strict=True)
    ]

    class ParquetWriter:
        def __init__(self, where, schema) -> None:
            self.fh = open(where, "w")  # noqa: SIM115

        def write_table(self, rows) -> None:
            self.fh.writelines(json.dumps(r) + "\n" for r in rows)

        def close(self) -> None:
            self.fh.close()

    pq = types.ModuleType("pyarrow.parquet")
    pq.ParquetWriter = ParquetWriter
    pa.parquet = pq
    monkeypatch.setitem(sys.modules, "pyarrow", pa)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", pq)


def test_parquet_table_without_json_is_written_not_a_traceback(reference, tmp_path, monkeypatch):
    path = tmp_path / "out.parquet"
    argv = [*BASE, "--format", "parquet", "--table", str(path), str(ASTRONAUT)]
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        _fake_pyarrow(monkeypatch)
        assert main(argv) == 0
        (row,) = [json.loads(line) for line in path.read_text().splitlines()]
    else:
        from unmask.data.tables import read_table

        assert main(argv) == 0
        (row,) = read_table(path).to_dict("records")
    face = reference["results"][0]["faces"][0]
    assert float(row["p_fake"]) == face["p_fake"] and row["verdict"] == face["verdict"]
    _no_leftovers(tmp_path)


def test_parquet_without_pyarrow_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    path = tmp_path / "out.parquet"
    argv = [*BASE, "--format", "parquet", "--table", str(path), str(ASTRONAUT)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no table printed: nothing ran
    assert captured.err.strip().count("\n") == 0 and "pyarrow" in captured.err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_an_interrupted_run_leaves_no_file(tmp_path, monkeypatch, capsys, fmt):
    import unmask.inference.render as render

    def interrupt(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(render, "annotate_file", interrupt)
    path = tmp_path / f"out.{fmt}"
    argv = [*BASE, "--format", fmt, "--table", str(path), "--annotate", str(tmp_path / "a")]
    assert main([*argv, str(ASTRONAUT)]) == 130
    assert not path.exists()
    _no_leftovers(tmp_path)


def test_an_output_that_cannot_be_written_is_one_line(tmp_path, capsys):
    path = tmp_path / "out.csv"
    (tmp_path / "out.csv.tmp").mkdir()  # in the way of the temporary file
    assert main([*BASE, "--table", str(path), str(ASTRONAUT)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"--table {path}: cannot write" in err
    assert captured.out == ""  # the file is opened before the console prints a row
    assert not path.exists()
