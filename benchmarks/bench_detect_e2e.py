"""`unmask detect` end to end, old code against new, side by side in one run.

    python benchmarks/bench_detect_e2e.py                          # yonsei/real, 3 rounds
    python benchmarks/bench_detect_e2e.py --folder faces/yonsei/edited --rounds 5
    python benchmarks/bench_detect_e2e.py --memory 1000 10000      # RSS as files stream by
    python benchmarks/bench_detect_e2e.py --compare 30             # faces found, per source

Both variants run the real command, `python -m unmask.cli detect FOLDER --json -q`, in a
fresh process, on the same files with the same interpreter and libraries. "old" is the code
of a git commit (`--old`, default the commit before the speed-up), unpacked from
`git archive` into a temporary folder that goes first on PYTHONPATH; "new" is this working
tree (or `--new COMMIT`). Rounds alternate the order (old first, then new first) so that
load from other programs on a shared machine falls on both, and the table gives medians and
every round. Reported per variant:

    e2e img/s    N / wall time of the whole command (start-up included)
    start-up s   wall time of the same command on one image: imports, model, graphs
    CPU s        user + sys of the command and its children: less sensitive than wall time
                 to other programs on the machine (start-up: the same on one image)
    steady CPU   (CPU_N - CPU_1) / (N - 1) in ms per image, once started; on a busy machine
                 wall-time differences between two runs are mostly the load's, so the
                 steady rate is given in CPU time
    peak RSS     the largest sum of RSS over the command's process tree (sampled from /proc)

`--memory` streams a folder of N hard links (or copies) repeating the folder's files through the new code
and samples the process tree's RSS every 1 000 results: flat means it does not grow with N.
`--compare K` runs both variants on K files of every source in labels.csv (and the videos)
and compares every face: box, detector score and P(fake) (`detect`), and the crop pixels and
face-mesh landmarks that `unmask prepare` writes (FaceCropper with landmarks).
Linux only (/proc). Figures depend on the machine and its load: report them with both.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("UNMASK_SHARED_DATA", REPO.parent / "shared" / "data"))
OLD_DEFAULT = "d32d208"  # last commit before the stage-1 speed-up (issue 13)
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------- code trees


def unpack(ref: str, dest: Path) -> Path:
    """`git archive ref src` unpacked under dest; returns the folder to put on PYTHONPATH."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, "src"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "src"


def tree_env(src: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src) + os.pathsep + env.get("PYTHONPATH", "")
    code = "import unmask; print(unmask.__file__)"
    where = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    if not where.startswith(str(src)):
        sys.exit(f"PYTHONPATH={src} imports unmask from {where}; cannot compare")
    return env


# ---------------------------------------------------------------- measuring one command


def tree_rss(root: int) -> int:
    """Sum of RSS (bytes) over `root` and its descendants, from /proc."""
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    parent[int(d)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    pids, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in pids]
        pids.update(kids)
        frontier += kids
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            pass
    return total


def round_row(one: dict, full: dict, n: int) -> dict:
    """One round's figures from a one-image run (start-up) and a run over all n files."""
    return {
        "e2e": n / full["wall"],
        "startup": one["wall"],
        "steady_cpu_ms": 1000 * (full["cpu"] - one["cpu"]) / max(n - 1, 1),
        "wall": full["wall"],
        "cpu": full["cpu"],
        "cpu_startup": one["cpu"],
        "rss_mb": full["peak_rss"] / 2**20,
        "load": os.getloadavg()[0],
    }


def run_detect(env: dict, paths: list[str], extra: list[str] | None = None, marks=()) -> dict:
    """Run `unmask detect --json` and measure it; `marks`: result counts at which to sample
    the tree's RSS."""
    cmd = [sys.executable, "-m", "unmask.cli", "detect", *paths, "--json", "-q", *(extra or [])]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            peak[0] = max(peak[0], tree_rss(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    err: list[str] = []
    drain = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)
    drain.start()
    results, at = [], {}
    wanted = set(marks)
    for line in proc.stdout:
        if line.startswith('{"file"'):
            results.append(json.loads(line.rstrip().rstrip(",")))
            if len(results) in wanted:
                at[len(results)] = tree_rss(proc.pid)
    rc = proc.wait()
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    drain.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc not in (0, 1):
        sys.exit(f"{' '.join(cmd[:6])} ... failed ({rc}):\n{''.join(err)[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "peak_rss": peak[0], "results": results, "rss_at": at}


# ---------------------------------------------------------------- speed


def speed(trees: dict[str, dict], folder: Path, rounds: int, extra: list[str]) -> dict:
    files = sorted(str(p) for p in folder.iterdir() if p.is_file())
    n = len(files)
    rows: dict[str, list[dict]] = {name: [] for name in trees}
    print(f"{n} files in {folder}; {os.cpu_count()} CPUs; load {os.getloadavg()}", flush=True)
    for r in range(rounds):
        order = list(trees) if r % 2 == 0 else list(reversed(trees))
        for name in order:
            one = run_detect(trees[name], [files[0]], extra)
            full = run_detect(trees[name], [str(folder)], extra)
            if len(full["results"]) != n:
                sys.exit(f"{name}: {len(full['results'])} results for {n} files")
            row = round_row(one, full, n)
            rows[name].append(row)
            print(
                f"  round {r + 1} {name:4s}: {row['e2e']:6.1f} img/s e2e, start-up "
                f"{row['startup']:5.1f}s, CPU {row['cpu']:6.1f}s (start-up {row['cpu_startup']:4.1f}s, "
                f"steady {row['steady_cpu_ms']:5.1f} ms/img), peak RSS {row['rss_mb']:5.0f} MB, "
                f"load {row['load']:.1f}",
                flush=True,
            )
    med = {
        name: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for name, rs in rows.items()
    }
    print(f"\nmedians over {rounds} rounds ({n} files, {folder}):")
    print(
        f"  {'':4s} {'e2e img/s':>10s} {'start-up s':>11s} {'CPU s':>7s} "
        f"{'start-up CPU s':>15s} {'steady CPU ms/img':>18s} {'peak RSS MB':>12s}"
    )
    for name, m in med.items():
        print(
            f"  {name:4s} {m['e2e']:10.1f} {m['startup']:11.1f} {m['cpu']:7.1f} "
            f"{m['cpu_startup']:15.1f} {m['steady_cpu_ms']:18.1f} {m['rss_mb']:12.0f}"
        )
    if "old" in med and "new" in med:
        o, w = med["old"], med["new"]
        ratios = [b["e2e"] / a["e2e"] for a, b in zip(rows["old"], rows["new"], strict=True)]
        print(
            f"  new/old: e2e {w['e2e'] / o['e2e']:.2f}x (per round "
            + ", ".join(f"{x:.2f}" for x in ratios)
            + f"), CPU {o['cpu'] / w['cpu']:.2f}x less (start-up {o['cpu_startup'] / w['cpu_startup']:.2f}x,"
            f" steady {o['steady_cpu_ms'] / w['steady_cpu_ms']:.2f}x)"
        )
    return {"files": n, "folder": str(folder), "rounds": rows, "medians": med}


# ---------------------------------------------------------------- memory


def repeat(src: Path, dest: Path) -> None:
    """`dest`: the same bytes as `src` under another file: a hard link, else a copy. Not a
    symbolic link: `detect` scores a file listed twice (or through a link) only once, so a
    folder of links would measure that, not N images."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def memory(env: dict, folder: Path, counts: list[int], extra: list[str]) -> dict:
    src = sorted(p for p in folder.iterdir() if p.is_file())
    out = {}
    for count in counts:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(count):
                repeat(src[i % len(src)], Path(tmp) / f"{i:06d}{src[i % len(src)].suffix}")
            marks = sorted({min(count, m) for m in range(1000, count + 1, 1000)} | {100, count})
            res = run_detect(env, [tmp], extra, marks=marks)
        at = {k: round(v / 2**20) for k, v in res["rss_at"].items()}
        print(
            f"  {count:>6} images: {count / res['wall']:.1f} img/s, peak RSS (process tree) "
            f"{res['peak_rss'] / 2**20:.0f} MB; RSS after k results: "
            + ", ".join(f"{k}: {v} MB" for k, v in sorted(at.items())),
            flush=True,
        )
        out[count] = {"peak_rss_mb": res["peak_rss"] / 2**20, "rss_at_mb": at, "wall": res["wall"]}
    return out


# ---------------------------------------------------------------- same faces?

CROPS_CODE = r"""
import hashlib, json, sys
from unmask.data.faces import FaceCropper
from unmask.data.imageio import load_image
from unmask.data.spec import PreprocessSpec
from unmask.errors import BadInputError
cropper = FaceCropper(PreprocessSpec())  # what `unmask prepare` runs: largest face, landmarks
for path in sys.stdin.read().splitlines():
    try:
        crops = cropper.crop(load_image(path))
    except BadInputError as exc:
        print(json.dumps({"file": path, "error": exc.reason})); continue
    print(json.dumps({"file": path, "faces": [{
        "box": list(c.box), "score": c.score, "detector": c.detector,
        "crop": hashlib.sha1(c.image.tobytes()).hexdigest(),
        "landmarks": None if c.landmarks is None else hashlib.sha1(c.landmarks.tobytes()).hexdigest(),
    } for c in crops]}), flush=True)
"""


def sample_files(k: int) -> dict[str, list[Path]]:
    by_source: dict[str, list[Path]] = {}
    with open(DATA / "labels.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            key = f"{row['source']}/{row['label']}"
            by_source.setdefault(key, []).append(DATA / row["path"])
    out = {}
    for key, files in sorted(by_source.items()):
        step = max(1, len(files) // k)
        out[key] = files[::step][:k]
    return out


def compare(trees: dict[str, dict], k: int) -> dict:
    groups = sample_files(k)
    files = [str(f) for fs in groups.values() for f in fs]
    print(f"{len(files)} files: up to {k} per source/label from {DATA / 'labels.csv'}", flush=True)
    det = {name: run_detect(env, files) for name, env in trees.items()}
    by = {name: {r["file"]: r for r in d["results"]} for name, d in det.items()}
    crops = {}
    for name, env in trees.items():
        out = subprocess.run(
            [sys.executable, "-c", CROPS_CODE],
            input="\n".join(f for f in files if not f.endswith(".mp4")),
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        crops[name] = {r["file"]: r for r in map(json.loads, out.splitlines())}
    report = {}
    print(
        f"  {'source/label':28s} {'files':>5s} {'faces old/new':>13s} {'boxes differ':>13s} "
        f"{'max |dscore|':>12s} {'max |dP(fake)|':>14s} {'prepare crops differ':>21s}"
    )
    for key, fs in groups.items():
        n_old = n_new = box_diff = crop_diff = 0
        d_score = d_p = 0.0
        for f in map(str, fs):
            a, b = by["old"][f], by["new"][f]
            fa, fb = a.get("faces", []), b.get("faces", [])
            n_old, n_new = n_old + len(fa), n_new + len(fb)
            if [x["box"] for x in fa] != [x["box"] for x in fb] or a["status"] != b["status"]:
                box_diff += 1
                continue
            for x, y in zip(fa, fb, strict=True):
                if x["det_score"] is not None:
                    d_score = max(d_score, abs(x["det_score"] - y["det_score"]))
                d_p = max(d_p, abs(x["p_fake"] - y["p_fake"]))
            if f in crops["old"] and crops["old"][f] != crops["new"][f]:
                crop_diff += 1
        report[key] = {
            "files": len(fs),
            "faces_old": n_old,
            "faces_new": n_new,
            "files_with_box_differences": box_diff,
            "max_abs_det_score_diff": d_score,
            "max_abs_p_fake_diff": d_p,
            "files_with_prepare_crop_differences": crop_diff,
        }
        print(
            f"  {key:28s} {len(fs):5d} {f'{n_old}/{n_new}':>13s} {box_diff:13d} {d_score:12.2e} "
            f"{d_p:14.2e} {crop_diff:21d}",
            flush=True,
        )
    return report


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", default="faces/yonsei/real", help="under the shared data")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--old", default=OLD_DEFAULT, help="git commit of the old code")
    ap.add_argument("--new", default=None, help="git commit of the new code (default: tree)")
    ap.add_argument("--memory", type=int, nargs="*", default=None, help="image counts")
    ap.add_argument("--compare", type=int, default=0, metavar="K", help="files per source")
    ap.add_argument("--detect-args", default="", help="extra `unmask detect` arguments")
    ap.add_argument("--json-out", default=None, help="also write the figures here")
    a = ap.parse_args()
    if not (DATA / "labels.csv").is_file():
        sys.exit(f"shared data not found at {DATA} (set UNMASK_SHARED_DATA)")
    folder = DATA / a.folder
    extra = a.detect_args.split()
    with tempfile.TemporaryDirectory(prefix="bench_e2e_") as tmp:
        trees = {"old": tree_env(unpack(a.old, Path(tmp) / "old"))}
        new_src = unpack(a.new, Path(tmp) / "new") if a.new else REPO / "src"
        trees["new"] = tree_env(new_src)
        print(f"old = {a.old}, new = {a.new or 'working tree'} ({new_src})", flush=True)
        out: dict = {"old": a.old, "new": a.new or "working tree", "cpus": os.cpu_count()}
        if a.compare:
            out["compare"] = compare(trees, a.compare)
        if a.memory:
            print("RSS of the new code over a folder of repeated files:")
            out["memory"] = memory(trees["new"], folder, a.memory, extra)
        if not a.compare and not a.memory:
            out["speed"] = speed(trees, folder, a.rounds, extra)
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
