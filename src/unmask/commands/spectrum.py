"""`unmask spectrum`: mean DCT spectra and 1-D power spectra per label and per source."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "mean frequency spectra per label and source (PNG figures + CSV numbers)"
DESCRIPTION = """\
Average frequency spectra of face crops, per label and per source/label, as in Durall et al.
2020 (1-D azimuthal average of the log power spectrum, mean ± std) and Frank et al. 2020
(2-D log |DCT-II| heatmaps). Crops are converted to grayscale and resized to --size.

INPUT is a manifest (manifest.csv or its folder; --split, default train) or a folder of
images laid out <source>/<label>/ or <label>/ (whole images, no face cropping).

Writes OUT/profile_by_{label,source}.png, dct_by_{label,source}.png,
dct_diff_by_{label,source}.png (fake minus real), profiles.csv and dct_mean/*.csv.

example:
  unmask spectrum work/prepared -o work/spectrum
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="manifest.csv, its folder, or a folder <source>/<label>/*")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--split", default="train", help="manifest split ('all' for every row)")
    p.add_argument("--size", type=int, default=256, help="feature size in pixels (default 256)")
    p.add_argument(
        "--max-per-group",
        type=int,
        default=0,
        help="use at most N crops per source/label (seeded sample; 0: all)",
    )
    p.add_argument("--jobs", type=int, default=2, help="feature extraction processes")
    p.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    from unmask.data.manifest import MANIFEST_NAME, manifest_path, read_manifest
    from unmask.errors import UnmaskError
    from unmask.features.spectra import compute_spectra, rows_from_folder, write_spectra

    src = Path(args.input)
    if not src.exists():
        raise UnmaskError(f"input not found: {src}")
    if not 16 <= args.size <= 2048:
        raise UnmaskError(f"--size must be in [16, 2048], got {args.size}")
    if src.suffix.lower() == ".csv" or (src / MANIFEST_NAME).is_file():
        df = read_manifest(src, split=None if args.split == "all" else args.split)
        if args.max_per_group > 0:
            df = df.groupby(["source", "label"], group_keys=False).apply(
                lambda g: g.sample(min(len(g), args.max_per_group), random_state=0)
            )
        rows = df[["abs_path", "label", "source"]].to_dict("records")
        cache = manifest_path(src).parent / ".cache" / "features"
    else:
        rows = rows_from_folder(src)
        cache = None
    if not rows:
        raise UnmaskError(f"{src}: no labelled images (split {args.split!r})")
    stats = compute_spectra(rows, args.size, cache, args.jobs, progress=not args.quiet)
    out = Path(args.out)
    written = write_spectra(stats, out, args.size)
    for (kind, key), st in sorted(stats.items()):
        if kind == "label":
            hi = st.prof_mean[len(st.prof_mean) * 3 // 4 :].mean()
            print(f"{key:>8}: n={st.n:5d}  mean log power, top quarter of frequencies: {hi:.3f}")
    print(f"wrote {len(written)} files to {out}")
    return 0
