"""Files that are not files, names that are not text, bytes that are not images: each gives a
recorded reason, never a traceback or a hang. The readers are fuzzed with Hypothesis."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from unmask.data.imageio import (
    file_problem,
    load_image,
    load_image_bytes,
    printable,
    sniff_bytes,
    sniff_kind,
)
from unmask.errors import BadInputError, UnmaskError

HANG_TIMEOUT_S = 300  # generous on a loaded 2-core machine; a hang never ends


def _png(path: Path, value: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(path)
    return path


def _reason(fn, *args) -> str:
    with pytest.raises(BadInputError) as ei:
        fn(*args)
    return ei.value.reason


# ---------------------------------------------------------------- not regular files


def test_fifo_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    assert file_problem(fifo) == ("not_a_regular_file", "a FIFO (named pipe)")
    # no writer on the other end: opening it for reading would block forever
    assert _reason(sniff_kind, fifo) == "not_a_regular_file"
    assert _reason(load_image, fifo) == "not_a_regular_file"
    from unmask.data.video import video_info

    assert _reason(video_info, fifo) == "not_a_regular_file"


def test_device_symlinks_and_broken_links(tmp_path):
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "nothing-here.jpg")
    assert file_problem(tmp_path / "zero.jpg") == ("not_a_regular_file", "a character device")
    assert _reason(load_image, tmp_path / "zero.jpg") == "not_a_regular_file"
    assert file_problem(tmp_path / "gone.jpg") == ("missing", "broken symbolic link")


def test_unreadable_is_unreadable_not_not_an_image(tmp_path):
    p = _png(tmp_path / "secret.png")
    with mock.patch("unmask.data.imageio.os.open", side_effect=PermissionError(13, "denied")):
        assert _reason(sniff_kind, p) == "unreadable"
        assert _reason(load_image, p) == "unreadable"
    if os.geteuid() != 0:  # root reads anything: the mock above covers it
        p.chmod(0)
        try:
            assert _reason(sniff_kind, p) == "unreadable"
        finally:
            p.chmod(0o644)


def test_zero_bytes_is_empty_everywhere(tmp_path):
    z = tmp_path / "zero.jpg"
    z.write_bytes(b"")
    assert _reason(sniff_kind, z) == "empty"
    assert _reason(load_image, z) == "empty"


def test_non_utf8_name(tmp_path):
    raw = os.fsencode(tmp_path) + b"/caf\xe9.png"
    _png(tmp_path / "ok.png")
    os.link(tmp_path / "ok.png", raw)
    name = os.fsdecode(raw)
    assert printable(name).endswith("caf\\xe9.png")
    printable(name).encode("utf-8")  # writable to any UTF-8 file
    with pytest.raises(BadInputError) as ei:
        load_image(name)
    assert ei.value.reason == "bad_file_name"
    str(ei.value).encode("utf-8")


# ---------------------------------------------------------------- batch verbs under a timeout


def _run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`unmask ...` in a child process with a time limit: a hang fails the test, never
    the suite."""
    code = textwrap.dedent(
        """
        import sys
        from unmask.cli import main
        sys.exit(main(sys.argv[1:]))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=HANG_TIMEOUT_S,
        env={**os.environ, "UNMASK_NO_PROGRESS": "1"},
    )


@pytest.fixture(scope="module")
def hostile_tree(tmp_path_factory) -> Path:
    """<root>/src/real/: a good image, a FIFO, a device link, a zero-byte file, a name
    that is not UTF-8, an unlistable subfolder stand-in; plus a CSV listing the FIFO and one
    image three ways."""
    root = tmp_path_factory.mktemp("hostile")
    real = root / "in" / "src" / "real"
    good = _png(real / "good.png")
    os.mkfifo(real / "pipe.jpg")
    (real / "zero.jpg").symlink_to("/dev/zero")
    (real / "empty.png").write_bytes(b"")
    os.link(good, os.fsencode(real) + b"/caf\xe9.png")
    csv_dir = root / "csv"
    img = _png(csv_dir / "imgs" / "a.png")
    (csv_dir / "list.csv").write_text(
        "path,label,source\n"
        f"imgs/a.png,real,s\n./imgs/a.png,real,s\n{img.resolve()},real,s\n"
        f"{real / 'pipe.jpg'},real,s\n"
    )
    return root


def _rejected(out: Path) -> dict[str, str]:
    import csv

    with open(out / "rejected.csv", newline="", encoding="utf-8") as fh:
        return {Path(r["file"]).name: r["reason"] for r in csv.DictReader(fh) if r["frame"] == "-1"}


def test_prepare_folder_with_fifo_device_and_bad_name(hostile_tree, tmp_path):
    out = tmp_path / "p"
    r = _run_cli(
        ["prepare", str(hostile_tree / "in"), "-o", str(out), "--workers", "1", "--no-progress"],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert _rejected(out) == {
        "good.png": "no_face",
        "pipe.jpg": "not_a_regular_file",
        "zero.jpg": "not_a_regular_file",
        "empty.png": "empty",
        "caf\\xe9.png": "bad_file_name",
    }
    assert "5 inputs = 0 accepted + 5 rejected" in r.stdout


def test_prepare_csv_same_file_three_ways_and_fifo(hostile_tree, tmp_path):
    out = tmp_path / "p"
    r = _run_cli(
        [
            "prepare",
            str(hostile_tree / "csv" / "list.csv"),
            "-o",
            str(out),
            "--workers",
            "1",
            "--no-progress",
            "--keep-whole",
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    import pandas as pd

    df = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert len(df) == 1 and df["group"].nunique() == 1  # one file, one group, one split
    reasons = pd.read_csv(out / "rejected.csv", keep_default_na=False)["reason"].tolist()
    assert sorted(reasons) == ["duplicate", "duplicate", "not_a_regular_file"]
    assert "duplicate:2" in r.stdout  # said in the summary


def test_detect_folder_with_fifo_device_and_bad_name(hostile_tree, tmp_path):
    table = tmp_path / "faces.csv"
    r = _run_cli(
        ["detect", str(hostile_tree / "in"), "-q", "--workers", "1", "--csv", str(table)],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    for name, reason in (
        ("pipe.jpg", "not_a_regular_file"),
        ("zero.jpg", "not_a_regular_file"),
        ("empty.png", "empty"),
        ("caf\\xe9.png", "bad_file_name"),
    ):
        assert f"{name}: {reason}" in r.stderr
    assert "caf\\xe9.png" in table.read_text(encoding="utf-8")
    assert "5 file(s): 1 scored" in r.stdout


def test_detect_unlistable_folder_is_reported(tmp_path, capsys, monkeypatch):
    from unmask.inference.detect import expand_inputs

    root = tmp_path / "in"
    _png(root / "a.png")
    (root / "locked").mkdir()
    _png(root / "locked" / "b.png")
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    files = list(expand_inputs([root]))
    assert root / "locked" in files  # reported as an input, not skipped silently
    assert file_problem(root / "locked")[0] == "unreadable"


# ---------------------------------------------------------------- fuzz


FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
MAGIC = [
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"RIFF\x00\x00\x00\x00WEBP",
    b"RIFF\x00\x00\x00\x00AVI ",
    b"BM",
    b"II*\x00",
    b"GIF89a",
    b"\x00\x00\x00\x18ftypmp42",
    b"\x00\x00\x00\x18ftypavif",
    b"\x1a\x45\xdf\xa3",
    b"",
]
hostile_bytes = st.one_of(
    st.binary(max_size=2048),
    st.builds(lambda m, rest: m + rest, st.sampled_from(MAGIC), st.binary(max_size=2048)),
)


@FUZZ
@given(data=hostile_bytes)
def test_fuzz_bytes_decode(data):
    assert sniff_bytes(data[:64]) in (None, "image", "video")
    try:
        img = load_image_bytes(data, "fuzz", max_pixels=1_000_000)
    except BadInputError as exc:
        assert exc.reason in {"empty", "not_an_image", "too_large", "truncated", "corrupt"}
    else:
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


@FUZZ
@given(data=hostile_bytes)
def test_fuzz_files_sniff_load_and_open_video(data, tmp_path):
    from unmask.data.video import video_info

    p = tmp_path / "fuzz.bin"
    p.write_bytes(data)
    try:
        kind = sniff_kind(p)
    except BadInputError as exc:
        assert exc.reason == "empty" and not data
        return
    assert kind in (None, "image", "video")
    try:
        load_image(p, max_pixels=1_000_000)
    except BadInputError as exc:
        assert exc.reason in {"empty", "not_an_image", "too_large", "truncated", "corrupt"}
    if kind == "video":
        try:
            info = video_info(p)
        except BadInputError as exc:
            assert exc.reason in {"video_unreadable", "empty"}
        else:
            assert info.frame_count >= 0


csv_text = st.one_of(
    st.text(max_size=400),
    st.lists(st.lists(st.text(max_size=12), min_size=1, max_size=5).map(",".join), max_size=8).map(
        lambda rows: "path,label,source\n" + "\n".join(rows)
    ),
)


@FUZZ
@given(text=csv_text, raw=st.binary(max_size=300))
def test_fuzz_csv_reader(text, raw, tmp_path):
    from unmask.data.inputs import collect_inputs

    for payload in (text.encode("utf-8", "surrogatepass"), raw):
        p = tmp_path / "list.csv"
        p.write_bytes(payload)
        try:
            items, _ = collect_inputs(p)
        except UnmaskError as exc:
            assert str(exc) and "\n" not in str(exc)
            continue
        for it in items:  # every row accounted for: usable, or a reason
            assert it.problem is None or it.problem[0]
            printable(it.path).encode("utf-8")
