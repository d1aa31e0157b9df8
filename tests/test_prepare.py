"""`unmask prepare` / `unmask.data.prepare.prepare`: end to end, bad inputs, resumability."""

from __future__ import annotations

import csv
import hashlib
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unmask.cli import main
from unmask.data.manifest import COLUMNS, read_manifest
from unmask.data.prepare import prepare
from unmask.data.spec import PreprocessSpec
from unmask.errors import UnmaskError


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _png_header_only(w: int, h: int) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _tiny(path: Path, value: int = 90, size=(24, 20)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


# ------------------------------------------------------------------ end to end, shared data


@pytest.fixture(scope="module")
def face_tree(tmp_path_factory, shared_data) -> Path:
    """<root>/mixed/<label>/...: real faces, a WEBP named .jpg, a video, and bad files."""
    import cv2

    root = tmp_path_factory.mktemp("inputs") / "in"
    faces = shared_data / "faces"
    first = {d: sorted((faces / d).iterdir())[0] for d in ("yonsei/real", "generated_photos/gan")}
    src = root / "mixed"
    for d in ("real", "gan", "edited", "other"):
        (src / d).mkdir(parents=True)
    shutil.copy(first["yonsei/real"], src / "real" / "yonsei.jpg")
    shutil.copy(faces / "web_photos/real/img47.jpg", src / "real" / "img47.jpg")  # WEBP
    shutil.copy(faces / "celeba_gan/gan/0.jpg", src / "gan" / "0.jpg")
    shutil.copy(first["generated_photos/gan"], src / "gan" / "gen.jpg")
    # a short video of a face moving, written with cv2
    face = np.asarray(Image.open(first["generated_photos/gan"]).convert("RGB").resize((160, 160)))
    writer = cv2.VideoWriter(
        str(src / "edited" / "101_202.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (200, 200)
    )
    for i in range(10):
        frame = np.full((200, 200, 3), 60, np.uint8)
        frame[20 + i : 180 + i, 20:180] = face[..., ::-1]
        writer.write(frame)
    writer.release()
    # bad inputs
    (src / "real" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)
    (src / "real" / "zero.png").write_bytes(b"")
    (src / "real" / "bomb.png").write_bytes(_png_header_only(50_000, 50_000))
    (src / "gan" / "notes.txt").write_text("not an image")
    _tiny(src / "gan" / "blank.png")  # no face
    (src / "edited" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 300)
    shutil.copy(faces / "celeba_gan/gan/1.jpg", src / "other" / "1.jpg")  # unknown label
    buf = (src / "real" / "yonsei.jpg").read_bytes()
    (src / "real" / "truncated.jpg").write_bytes(buf[: len(buf) // 3])
    return root


@pytest.mark.shared_data
@pytest.mark.slow
def test_cli_end_to_end_and_resume(face_tree, tmp_path, capsys):
    before = _tree_digest(face_tree)
    out = tmp_path / "prepared"
    argv = [
        "prepare",
        str(face_tree),
        "-o",
        str(out),
        "--frames",
        "4",
        "--size",
        "96",
        "--txt",
        "--group-regex",
        r"^(\d+)",
        "--no-progress",
        "--workers",
        "2",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "13 inputs = 5 accepted + 8 rejected" in printed
    assert "TOTAL" in printed

    df = read_manifest(out)
    assert list(df.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert len(df) == 4 + 4  # 4 still images + 4 video frames
    assert set(df.label) == {"real", "gan", "edited"}
    assert set(df.source) == {"mixed"}
    video = df[df.frame >= 0]
    assert sorted(video.frame) == [0, 3, 6, 9]
    assert set(video.group) == {"mixed:101"} and video.split.nunique() == 1
    webp = df[df.original.str.endswith("img47.jpg")]
    assert webp.orig_format.tolist() == ["WEBP"]
    for _, r in df.iterrows():
        assert r.path.startswith("crops/mixed/" + r.label + "/") and r.path.endswith(".png")
        with Image.open(r.abs_path) as im:
            assert im.size == (96, 96) and im.format == "PNG"
        if r.landmarks:
            lm = np.load(r.abs_landmarks, allow_pickle=False)
            assert lm.shape == (468, 3) and lm.dtype == np.float32
    assert (df.landmarks != "").sum() >= 6

    rejected = _read_csv(out / "rejected.csv")
    by_file = {Path(r["file"]).name: r["reason"] for r in rejected if r["frame"] == "-1"}
    assert by_file == {
        "corrupt.jpg": "corrupt",
        "zero.png": "empty",
        "bomb.png": "too_large",
        "notes.txt": "not_an_image",
        "blank.png": "no_face",
        "broken.mp4": "video_unreadable",
        "1.jpg": "unknown_label",
        "truncated.jpg": "truncated",
    }
    meta = (out / "prepare.json").read_text()
    assert '"crop_size": 96' in meta and '"group_regex": "^(\\\\d+)"' in meta
    txt = (out / "train.txt").read_text().splitlines() + (out / "val.txt").read_text().splitlines()
    txt += (out / "test.txt").read_text().splitlines()
    assert len(txt) == len(df)
    assert {line.rsplit(" ", 1)[1] for line in txt} == {"0", "1", "2"}

    # resume: identical manifest, nothing recomputed
    manifest_bytes = (out / "manifest.csv").read_bytes()
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "crops").rglob("*")}
    assert main(argv) == 0
    assert "reused from an earlier run" in capsys.readouterr().out
    assert (out / "manifest.csv").read_bytes() == manifest_bytes
    assert {p: p.stat().st_mtime_ns for p in (out / "crops").rglob("*")} == mtimes
    res = prepare(
        face_tree,
        out,
        PreprocessSpec(crop_size=96),
        frames=4,
        group_regex=r"^(\d+)",
        workers=1,
        progress=False,
    )
    assert res.n_reused == 12  # every input but the unknown-label one has a record
    assert (res.n_inputs, res.n_accepted, res.n_rejected, res.n_faces) == (13, 5, 8, 8)
    assert (out / "manifest.csv").read_bytes() == manifest_bytes
    # a different spec redoes the work
    res2 = prepare(
        face_tree,
        tmp_path / "p2",
        PreprocessSpec(crop_size=64, keep_whole=True),
        frames=2,
        workers=1,
        progress=False,
    )
    assert res2.n_reused == 0 and res2.n_accepted == 6  # blank.png kept whole
    assert _tree_digest(face_tree) == before  # inputs never modified


# ------------------------------------------------------------------ no shared data needed


def test_csv_input_missing_paths_unknown_labels_groups(tmp_path):
    data = tmp_path / "data"
    _tiny(data / "a.png", 10)
    _tiny(data / "sub" / "b.png", 200)
    _tiny(data / "c.png", 30)
    (data / "labels.csv").write_text(
        "path,label,source,group,method\n"
        "a.png,real,s1,g1,camera\n"
        "sub/b.png,gan,s1,g1,stylegan\n"
        "c.png,forged,s1,,\n"
        "nothere.png,real,s1,,\n"
        f"{data / 'c.png'},edited,s2,,splice\n"
    )
    res = prepare(
        data / "labels.csv",
        tmp_path / "out",
        PreprocessSpec(crop_size=32, keep_whole=True),
        workers=1,
        progress=False,
    )
    assert (res.n_inputs, res.n_accepted, res.n_rejected) == (5, 3, 2)
    rows = _read_csv(res.manifest_path)
    assert [r["label"] for r in rows] == ["real", "gan", "edited"]
    assert rows[0]["group"] == rows[1]["group"] == "g1" and rows[0]["split"] == rows[1]["split"]
    assert rows[1]["method"] == "stylegan" and rows[0]["det_score"] == ""
    assert rows[2]["source"] == "s2" and rows[2]["path"].startswith("crops/s2/edited/")
    reasons = {Path(r["file"]).name: r["reason"] for r in _read_csv(res.rejected_path)}
    assert reasons == {"c.png": "unknown_label", "nothere.png": "missing"}


def test_unlabeled_assign_split_and_binary_txt(tmp_path):
    folder = tmp_path / "anything"
    for i in range(3):
        _tiny(folder / f"x{i}.png", 40 * i)
    res = prepare(
        folder,
        tmp_path / "o",
        PreprocessSpec(crop_size=16, keep_whole=True),
        unlabeled=True,
        assign_split="test",
        workers=1,
        progress=False,
    )
    rows = _read_csv(res.manifest_path)
    assert len(rows) == 3 and {r["split"] for r in rows} == {"test"}
    assert {r["label"] for r in rows} == {""} and {r["source"] for r in rows} == {"anything"}

    labelled = tmp_path / "ds"
    for label in ("real", "gan", "edited"):
        for i in range(3):
            _tiny(labelled / label / f"{label}{i}.png", 50 + i)
    res = prepare(
        labelled,
        tmp_path / "b",
        PreprocessSpec(crop_size=16, keep_whole=True),
        txt=True,
        binary=True,
        workers=1,
        progress=False,
    )
    lines = []
    for split in ("train", "val", "test"):
        lines += (tmp_path / "b" / f"{split}.txt").read_text().splitlines()
    ids = {line.split(" ")[0].split("/")[2]: line.split(" ")[1] for line in lines}
    assert ids == {"real": "0", "gan": "1", "edited": "1"}
    assert {r["source"] for r in _read_csv(res.manifest_path)} == {"ds"}


def test_fake_of_unknown_kind_in_other_projects_layouts(tmp_path):
    """`real/` + `fake/` (and CNNDetection's `<generator>/0_real`, `<generator>/1_fake`):
    the fakes are labelled `fake`, count as fakes in binary lists, and stay out of 3-class
    ones."""
    from unmask.labels import label_to_index

    data = tmp_path / "third_party"
    for folder, n in (("real", 2), ("Fake", 2), ("stylegan/0_real", 1), ("stylegan/1_fake", 1)):
        for i in range(n):
            _tiny(data / folder / f"{i}.png", 20 + 30 * i)
    for binary in (True, False):
        out = tmp_path / f"out{binary}"
        res = prepare(
            data, out, PreprocessSpec(crop_size=16, keep_whole=True), txt=True, binary=binary,
            assign_split="test", workers=1, progress=False,
        )  # fmt: skip
        assert res.n_rejected == 0
        rows = _read_csv(res.manifest_path)
        got = sorted((r["source"], r["label"]) for r in rows)
        assert got == sorted(
            [("third_party", "real")] * 2 + [("third_party", "fake")] * 2
            + [("stylegan", "real"), ("stylegan", "fake")]
        )  # fmt: skip
        ids = [line.rsplit(" ", 1)[1] for line in (out / "test.txt").read_text().splitlines()]
        assert sorted(ids) == (["0"] * 3 + ["1"] * 3 if binary else ["0"] * 3)
    assert label_to_index("fake", 2) == 1
    with pytest.raises(UnmaskError, match="3-class"):
        label_to_index("fake", 3)


def test_fatal_errors_are_one_line_exit_2(tmp_path, capsys):
    folder = tmp_path / "in"
    _tiny(folder / "real" / "a.png")
    cases = [
        ["prepare", str(tmp_path / "nope"), "-o", str(tmp_path / "o1")],
        ["prepare", str(folder), "-o", str(folder / "out")],
    ]
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("file,kind\na.png,real\n")
    cases.append(["prepare", str(bad_csv), "-o", str(tmp_path / "o2")])
    cases.append(["prepare", str(folder), "-o", str(tmp_path / "o3"), "--group-regex", "(["])
    cases.append(["prepare", str(folder), "-o", str(tmp_path / "o4"), "--margin", "0.5"])
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("unmask prepare: error:") and "\n" not in err
        assert "Traceback" not in err
    assert not (folder / "out").exists()
    with pytest.raises(SystemExit):
        main(["prepare", str(folder), "-o", str(tmp_path / "o5"), "--splits", "0.5,0.5"])
    with pytest.raises(UnmaskError, match="inside"):
        prepare(folder / "real" / "a.png", folder, workers=1, progress=False)


@pytest.mark.slow
def test_sigkill_of_prepare_leaves_no_worker_behind(tmp_path):
    """SIGKILL of `unmask prepare` left its workers and the resource tracker running under
    PID 1 (issue 24): each worker now dies with its parent."""
    import os
    import signal
    import subprocess
    import sys
    import time

    for i in range(400):
        _tiny(tmp_path / "in" / "src" / "real" / f"{i}.png", value=i % 200 + 20, size=(320, 320))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "unmask.cli",
            "prepare",
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "out"),
            "--workers",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def children(pid: int) -> set[int]:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        return {int(x) for x in out.split()}

    kids: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        kids = children(proc.pid)
        if len(kids) >= 2:  # the two workers (and the resource tracker) started
            time.sleep(1.0)
            kids = children(proc.pid)
            break
        time.sleep(0.1)
    if proc.poll() is not None or len(kids) < 2:
        pytest.skip("prepare finished before its workers could be caught running")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    alive = kids
    while alive and time.monotonic() < deadline:
        alive = {k for k in alive if os.path.exists(f"/proc/{k}") and _not_zombie(k)}
        time.sleep(0.2)
    assert not alive, f"orphaned after SIGKILL: {sorted(alive)}"


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
