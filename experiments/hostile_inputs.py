"""Drive the CLI verbs with hostile and awkward inputs; count tracebacks, hangs and wrong answers.

    python experiments/hostile_inputs.py [-o work/hostile] [--timeout 60] [--only NAME ...]

Each case is one `unmask <verb> ...` command line run in-process by a child runner (stdout
and stderr captured with the encodings a UTF-8 terminal has). A case is
- `traceback`  when an exception escaped `unmask.cli.main` or stderr holds a traceback,
- `hang`       when it did not finish within --timeout (the runner is killed and restarted),
- `wrong`      when it finished cleanly but its `expect` check failed (wrong reason, wrong count,
               a bad input accepted silently),
- `ok`         otherwise.
Writes `<out>/results.jsonl` and prints a table and the totals. Inputs are generated in a
temporary folder (nothing from ../shared/data). Running as root, permission cases
(chmod 000) cannot fail to read and are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

TRACEBACK = "Traceback (most recent call last)"


# ---------------------------------------------------------------- fixtures


def _png(path: Path, value: int = 90, size: int = 64) -> Path:
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)
    return path


def build_fixtures(root: Path) -> dict[str, str]:
    """Everything the cases point at, under `root`. Returns named paths."""
    import shutil

    import numpy as np
    from PIL import Image

    repo = Path(__file__).resolve().parents[1]
    face = repo / "examples" / "astronaut.jpg"
    f: dict[str, Path] = {}
    root.mkdir(parents=True, exist_ok=True)
    bad = root / "bad"
    bad.mkdir(exist_ok=True)
    f["face"] = face
    f["tiny"] = _png(bad / "tiny.png")
    (bad / "zero.jpg").write_bytes(b"")
    f["zero"] = bad / "zero.jpg"
    (bad / "random.jpg").write_bytes(np.random.default_rng(0).bytes(4000))
    f["random"] = bad / "random.jpg"
    buf = face.read_bytes()
    (bad / "truncated.jpg").write_bytes(buf[: len(buf) // 3])
    f["truncated"] = bad / "truncated.jpg"
    (bad / "text.png").write_text("not an image\n")
    f["text"] = bad / "text.png"
    (bad / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 300)
    f["broken_mp4"] = bad / "broken.mp4"

    # a folder with a FIFO beside a good image
    fifo_dir = root / "fifo" / "real"
    fifo_dir.mkdir(parents=True, exist_ok=True)
    _png(fifo_dir / "ok.png")
    if not (fifo_dir / "pipe.jpg").exists():
        os.mkfifo(fifo_dir / "pipe.jpg")
    f["fifo_dir"] = root / "fifo"
    f["fifo"] = fifo_dir / "pipe.jpg"
    # a folder with device symlinks
    dev_dir = root / "devices" / "real"
    dev_dir.mkdir(parents=True, exist_ok=True)
    _png(dev_dir / "ok.png")
    for name, target in (("zero.jpg", "/dev/zero"), ("null.png", "/dev/null")):
        if not (dev_dir / name).is_symlink():
            os.symlink(target, dev_dir / name)
    f["dev_dir"] = root / "devices"
    # a file name that is not UTF-8
    raw_dir = root / "rawname" / "real"
    raw_dir.mkdir(parents=True, exist_ok=True)
    _png(raw_dir / "ok.png")
    raw = os.fsencode(raw_dir) + b"/caf\xe9.png"
    if not os.path.exists(raw):
        shutil.copy(raw_dir / "ok.png", raw)
    f["raw_dir"] = root / "rawname"

    # CSVs
    csvs = root / "csv"
    csvs.mkdir(exist_ok=True)
    img = _png(csvs / "imgs" / "a.png")
    (csvs / "fifo.csv").write_text(f"path,label\n{img},real\n{f['fifo']},real\n")
    f["csv_fifo"] = csvs / "fifo.csv"
    (csvs / "same3.csv").write_text(
        f"path,label,source\nimgs/a.png,real,s\n./imgs/a.png,real,s\n{img.resolve()},real,s\n"
    )
    f["csv_same3"] = csvs / "same3.csv"
    (csvs / "garbage.csv").write_bytes(b"path,label\n\x00\x00\xff\xfe" + bytes(range(256)))
    f["csv_garbage"] = csvs / "garbage.csv"
    (csvs / "nul.csv").write_bytes(b"path,label\nimgs/a.png\x00,real\n")
    f["csv_nul"] = csvs / "nul.csv"

    # a prepared-style manifest of synthetic crops (for eval/train/index)
    man = root / "manifest"
    (man / "crops").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    rows = ["path,label,source,group,split,original,frame"]
    for split, n in (("train", 12), ("val", 6), ("test", 6)):
        for label in ("real", "gan"):
            for i in range(n):
                rel = f"crops/{label}_{split}_{i}.png"
                arr = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
                if label == "gan":
                    arr[::2, ::2] = 255
                Image.fromarray(arr).save(man / rel)
                rows.append(f"{rel},{label},s,{label}{split}{i},{split},{rel},-1")
    (man / "manifest.csv").write_text("\n".join(rows) + "\n")
    f["manifest"] = man / "manifest.csv"
    banana = root / "banana"
    shutil.copytree(man, banana, dirs_exist_ok=True)
    lines = (banana / "manifest.csv").read_text().splitlines()
    test_rows = [x for x in lines if ",test," in x]
    lines[-1] = lines[-1].replace(",gan,", ",banana,")
    lines += test_rows[:3]  # duplicated rows
    (banana / "manifest.csv").write_text("\n".join(lines) + "\n")
    f["banana"] = banana / "manifest.csv"
    holes = root / "holes"
    shutil.copytree(man, holes, dirs_exist_ok=True)
    for p in sorted((holes / "crops").glob("*_test_0.png")) + sorted(
        (holes / "crops").glob("*_train_0.png")
    ):
        p.unlink()
    f["holes"] = holes / "manifest.csv"

    f["out_file"] = root / "an_existing_file"
    f["out_file"].write_text("x")
    f["missing_dir_csv"] = root / "no" / "such" / "folder" / "out.csv"
    f["root"] = root
    return {k: str(v) for k, v in f.items()}


# ---------------------------------------------------------------- cases


def cases(f: dict[str, str], work: str) -> list[dict]:
    """name, argv, expect: a Python expression over rc, out, err, work (True = right answer)."""
    o = work
    model = f"{work}/classical_model"
    c = [
        # detect: one odd file each
        ("detect zero-byte", ["detect", f["zero"], "--json"], '\'"reason": "empty"\' in out'),
        ("detect random bytes", ["detect", f["random"], "-q"], "'not_an_image' in err"),
        ("detect truncated", ["detect", f["truncated"], "-q"], "'truncated' in err"),
        ("detect text", ["detect", f["text"], "-q"], "'not_an_image' in err"),
        ("detect broken mp4", ["detect", f["broken_mp4"], "-q"], "'video_unreadable' in err"),
        ("detect fifo folder", ["detect", f["fifo_dir"], "-q"], "rc == 0 and 'pipe.jpg' in err"),
        ("detect fifo file", ["detect", f["fifo"], "-q"], "rc == 1 and 'pipe.jpg' in err"),
        ("detect device links", ["detect", f["dev_dir"], "-q"], "rc == 0 and 'zero.jpg' in err"),
        ("detect non-utf8 name", ["detect", f["raw_dir"], "-q"], "rc == 0"),
        (
            "detect non-utf8 name --csv",
            ["detect", f["raw_dir"], "-q", "--csv", f"{o}/d.csv"],
            "rc == 0",
        ),
        ("detect --csv /dev/full", ["detect", f["tiny"], "-q", "--csv", "/dev/full"], "rc == 2"),
        (
            "detect --csv missing folder",
            ["detect", f["tiny"], "-q", "--csv", f["missing_dir_csv"]],
            "rc == 2 and len(err.strip().splitlines()) == 1",
        ),
        ("detect --device cuda", ["detect", f["tiny"], "-q", "--device", "cuda"], "rc == 2"),
        ("detect --batch-size -5", ["detect", f["tiny"], "-q", "--batch-size", "-5"], "rc == 2"),
        (
            "detect --annotate is a file",
            ["detect", f["face"], "-q", "--annotate", f["out_file"]],
            "rc == 2",
        ),
        (
            "detect --explain is a file",
            ["detect", f["face"], "-q", "--explain", f["out_file"]],
            "rc == 2",
        ),
        ("detect --workers -1", ["detect", f["tiny"], "-q", "--workers", "-1"], "rc == 2"),
        # prepare
        (
            "prepare non-utf8 name",
            ["prepare", f["raw_dir"], "-o", f"{o}/p_raw", "--workers", "1", "--no-progress"],
            "rc == 0 and os.path.isfile(work + '/p_raw/manifest.csv')",
        ),
        (
            "prepare fifo folder",
            ["prepare", f["fifo_dir"], "-o", f"{o}/p_fifo", "--workers", "1", "--no-progress"],
            "rc == 0 and 'not_a_regular_file' in open(work + '/p_fifo/rejected.csv').read()",
        ),
        (
            "prepare fifo csv",
            ["prepare", f["csv_fifo"], "-o", f"{o}/p_fifo_csv", "--workers", "1", "--no-progress"],
            "rc == 0",
        ),
        (
            "prepare device links",
            ["prepare", f["dev_dir"], "-o", f"{o}/p_dev", "--workers", "1", "--no-progress"],
            "rc == 0 and 'zero.jpg' in open(work + '/p_dev/rejected.csv').read()",
        ),
        (
            "prepare same file 3 ways",
            [
                "prepare",
                f["csv_same3"],
                "-o",
                f"{o}/p_same",
                "--workers",
                "1",
                "--no-progress",
                "--keep-whole",
            ],
            "rc == 0 and len(open(work + '/p_same/manifest.csv').read().splitlines()) == 2",
        ),
        (
            "prepare garbage csv",
            ["prepare", f["csv_garbage"], "-o", f"{o}/p_garbage", "--no-progress"],
            "rc == 2",
        ),
        (
            "prepare NUL csv",
            ["prepare", f["csv_nul"], "-o", f"{o}/p_nul", "--no-progress", "--workers", "1"],
            "rc in (0, 2)",
        ),
        ("prepare -o is a file", ["prepare", f["tiny"], "-o", f["out_file"]], "rc == 2"),
        ("prepare -o unwritable", ["prepare", f["tiny"], "-o", "/proc/unmask-out"], "rc == 2"),
        # train / eval / index on a manifest
        (
            "train classical",
            [
                "train",
                "configs/spectrum-logreg.yaml",
                "-o",
                model,
                "--set",
                f"data.manifest={f['manifest']}",
                "--set",
                "classical.grid={}",
                "--set",
                "classical.feature_size=64",
            ],
            "rc == 0",
        ),
        (
            "train classical, crops missing",
            [
                "train",
                "configs/spectrum-logreg.yaml",
                "-o",
                f"{o}/m_holes",
                "--set",
                f"data.manifest={f['holes']}",
                "--set",
                "classical.grid={}",
                "--set",
                "classical.feature_size=64",
            ],
            "rc == 2",
        ),
        (
            "eval banana label + duplicates",
            ["eval", "--model", model, f["banana"], "-o", f"{o}/e_banana", "--quiet"],
            "'banana' in err and 'duplicate' in err",
        ),
        (
            "eval classical, crops missing",
            ["eval", "--model", model, f["holes"], "-o", f"{o}/e_holes", "--quiet"],
            "rc == 2",
        ),
        (
            "eval no --model",
            ["eval", f["manifest"], "-o", f"{o}/e_default", "--quiet", "--bootstrap", "0"],
            "rc == 0",
        ),
        (
            "eval -o is a file",
            ["eval", "--model", model, f["manifest"], "-o", f["out_file"], "--quiet"],
            "rc == 2",
        ),
        (
            "eval --batch-size -5",
            ["eval", "--model", model, f["manifest"], "-o", f"{o}/e_bs", "--batch-size", "-5"],
            "rc == 2",
        ),
        (
            "eval --device cuda",
            ["eval", "--model", model, f["manifest"], "-o", f"{o}/e_cuda", "--device", "cuda"],
            "rc == 2",
        ),
        (
            "eval writes no cache into the dataset",
            ["eval", "--model", model, f["manifest"], "-o", f"{o}/e_cache", "--quiet"],
            "rc == 0 and not os.path.exists(os.path.dirname(manifest) + '/.cache')",
        ),
        # explain / index / serve
        ("explain fifo folder", ["explain", f["fifo_dir"], "-o", f"{o}/x_fifo"], "rc in (0, 1)"),
        ("explain -o is a file", ["explain", f["face"], "-o", f["out_file"]], "rc == 2"),
        ("explain zero-byte", ["explain", f["zero"], "-o", f"{o}/x_zero"], "rc == 1"),
        (
            "explain --device cuda",
            ["explain", f["face"], "-o", f"{o}/x_c", "--device", "cuda"],
            "rc == 2",
        ),
        ("index crops missing", ["index", f["holes"], "-o", f"{o}/i_holes"], "rc == 2"),
        ("index -o is a file", ["index", f["manifest"], "-o", f["out_file"]], "rc == 2"),
        ("serve missing model", ["serve", "--model", f"{o}/nope"], "rc == 2"),
        ("serve --port 70000", ["serve", "--port", "70000"], "rc == 2"),
    ]
    return [{"name": n, "argv": a, "expect": e} for n, a, e in c]


# ---------------------------------------------------------------- runner (child process)


def run_case(case: dict, fixtures: dict[str, str], work: str) -> dict:
    import contextlib
    import io
    import traceback

    from unmask.cli import main

    out_b, err_b = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_b, encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(err_b, encoding="utf-8", errors="backslashreplace", write_through=True)
    escaped = False
    t0 = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(case["argv"])
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 2
        except BaseException:  # what Python would print at the top level
            escaped = True
            rc = 1
            err.write(traceback.format_exc())
    with contextlib.suppress(Exception):
        out.flush()
        err.flush()
    so = out_b.getvalue().decode("utf-8", "replace")
    se = err_b.getvalue().decode("utf-8", "replace")
    tb = escaped or TRACEBACK in se
    try:
        right = bool(
            eval(  # noqa: S307 - expressions written above, in this file
                case["expect"],
                {"os": os},
                {"rc": rc, "out": so, "err": se, "work": work, "manifest": fixtures["manifest"]},
            )
        )
    except Exception as exc:  # the check itself failed (e.g. no rejected.csv written)
        right = False
        se += f"\n[check failed: {exc!r}]"
    status = "traceback" if tb else ("ok" if right else "wrong")
    last = [ln for ln in se.strip().splitlines() if ln.strip()][-1:] or [""]
    return {
        "name": case["name"],
        "status": status,
        "rc": rc,
        "seconds": round(time.monotonic() - t0, 1),
        "last_err": last[0][:200],
    }


def child(args) -> None:
    """Run the cases from index `args.start`, one JSON line each to `args.results`."""
    # heavy imports first, so that a case's time limit measures the case
    import cv2  # noqa: F401
    import mediapipe  # noqa: F401
    import torch  # noqa: F401

    import unmask.inference.detect  # noqa: F401

    fixtures = json.loads(Path(args.fixtures).read_text())
    # warm-up (not a case): model load and MediaPipe graphs, so a slow machine is no "hang"
    run_case(
        {"name": "warm-up", "argv": ["detect", fixtures["face"], "-q"], "expect": "True"},
        fixtures,
        args.work,
    )
    all_cases = cases(fixtures, args.work)
    for i in range(args.start, len(all_cases)):
        case = all_cases[i]
        if args.only and case["name"] not in args.only:
            continue
        with open(args.results, "a") as fh:
            fh.write(json.dumps({"index": i, "started": case["name"]}) + "\n")
        res = run_case(case, fixtures, args.work)
        res["index"] = i
        with open(args.results, "a") as fh:
            fh.write(json.dumps(res) + "\n")


# ---------------------------------------------------------------- parent


def parent(args) -> int:
    import shutil

    out = Path(args.out).resolve()
    work = out / "work"
    for d in (work, out / "inputs"):  # generated: start clean, no state from a last run
        shutil.rmtree(d, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    fixtures = build_fixtures(out / "inputs")
    fx = out / "fixtures.json"
    fx.write_text(json.dumps(fixtures))
    results = out / "results.jsonl"
    results.write_text("")
    n_cases = len(cases(fixtures, str(work)))
    start = 0
    while start < n_cases:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--fixtures",
            str(fx),
            "--work",
            str(work),
            "--results",
            str(results),
            "--start",
            str(start),
            *(["--only", *args.only] if args.only else []),
        ]
        proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[1])
        last_seen, last_change = None, time.monotonic()
        while proc.poll() is None:
            time.sleep(0.5)
            lines = [json.loads(x) for x in results.read_text().splitlines() if x.strip()]
            state = lines[-1] if lines else None
            if state != last_seen:
                last_seen, last_change = state, time.monotonic()
            elif state and "started" in state and time.monotonic() - last_change > args.timeout:
                proc.kill()
                proc.wait()
                with open(results, "a") as fh:
                    rec = {"index": state["index"], "name": state["started"], "status": "hang"}
                    rec.update(rc=None, seconds=args.timeout, last_err="")
                    fh.write(json.dumps(rec) + "\n")
                break
        lines = [json.loads(x) for x in results.read_text().splitlines() if x.strip()]
        if proc.returncode == 0 or not lines:
            break
        last = lines[-1]
        if "started" in last:  # died inside a case without a hang: a crash
            with open(results, "a") as fh:
                rec = {"index": last["index"], "name": last["started"], "status": "crash"}
                rec.update(rc=proc.returncode, seconds=0.0, last_err="runner died")
                fh.write(json.dumps(rec) + "\n")
        start = last["index"] + 1
    done = [json.loads(x) for x in results.read_text().splitlines() if '"status"' in x]
    counts: dict[str, int] = {}
    for r in done:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
        print(
            f"{r['status']:9s} rc={r['rc']!s:4s} {r['seconds']:6.1f}s  {r['name']:38s} {r['last_err'][:90]}"
        )
    print("\n" + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + f" (of {len(done)})")
    (out / "summary.json").write_text(json.dumps(counts, indent=2) + "\n")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", default="work/hostile")
    ap.add_argument("--timeout", type=float, default=150.0, help="seconds before a case is a hang")
    ap.add_argument("--only", nargs="*", default=None, help="case names to run")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--fixtures", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--results", help=argparse.SUPPRESS)
    ap.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
