"""One end-to-end run on a small subset of ../shared/data: prepare -> train (classical and
CNN) -> eval -> detect -> index/similar. Skips with a reason when the data is absent."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from unmask.cli import main

pytestmark = pytest.mark.shared_data

PER_GROUP = 10  # images per (source, label): small enough for CI, enough to train on


def _picked(prepared: Path) -> list[dict[str, str]]:
    """The rows the fixture picked (subset.csv beside the prepared folder): expected counts
    derive from these, so the tests follow ../shared/data as it grows."""
    with open(prepared.parent / "subset.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def prepared(shared_data, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("e2e")
    with open(shared_data / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    picked: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r["path"].startswith("faces/"):
            picked.setdefault((r["source"], r["label"]), [])
            if len(picked[(r["source"], r["label"])]) < PER_GROUP:
                picked[(r["source"], r["label"])].append(r)
    subset = tmp / "subset.csv"
    with open(subset, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "label", "source"])
        w.writeheader()
        for group in picked.values():
            for r in group:
                w.writerow(
                    {
                        "path": str(shared_data / r["path"]),
                        "label": r["label"],
                        "source": r["source"],
                    }
                )
        # a video pair sharing a target (grouped together by the regex)
        for v, label in (("videos/real/519.mp4", "real"), ("videos/edited/519_515.mp4", "edited")):
            w.writerow({"path": str(shared_data / v), "label": label, "source": "faceforensics"})
    out = tmp / "prepared"
    code = main(
        [
            "prepare",
            str(subset),
            "-o",
            str(out),
            "--frames",
            "3",
            "--group-regex",
            r"^(\d+)",
            "--splits",
            "0.6,0.2,0.2",
            "--workers",
            "2",
            "--no-progress",
        ]
    )
    assert code == 0
    return out


def test_prepare_accounts_for_every_input_and_keeps_videos_together(prepared):
    import pandas as pd

    df = pd.read_csv(prepared / "manifest.csv", keep_default_na=False)
    rejected = pd.read_csv(prepared / "rejected.csv", keep_default_na=False)
    picked = _picked(prepared)
    n_pairs = len({(r["source"], r["label"]) for r in picked if r["source"] != "faceforensics"})
    assert len(picked) == n_pairs * PER_GROUP + 2  # PER_GROUP per (source, label) + 2 videos
    assert df["original"].nunique() + rejected["file"].nunique() == len(picked)
    assert set(df["original"]) | set(rejected["file"]) == {r["path"] for r in picked}
    ff = df[df["source"] == "faceforensics"]
    assert ff["split"].nunique() == 1  # 519 and 519_515 share a group, hence a split
    assert set(df["split"]) == {"train", "val", "test"}


@pytest.mark.parametrize(
    "config, sets",
    [
        ("configs/spectrum-logreg.yaml", ["classical.grid={}"]),
        (
            "configs/default-model.yaml",
            ["trainer.max_epochs=1", "data.input_size=64", "data.batch_size=8"],
        ),
    ],
)
def test_train_eval_detect(prepared, tmp_path, config, sets, capsys):
    repo = Path(__file__).resolve().parents[1]
    model = tmp_path / "model"
    args = [
        "train",
        str(repo / config),
        "-o",
        str(model),
        "--set",
        f"data.manifest={prepared / 'manifest.csv'}",
    ]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    meta = json.loads((model / "model.json").read_text())
    assert 0.0 <= meta["threshold"] <= 1.0
    assert meta["preprocess"]["crop_size"] == 256  # the spec travelled with the model

    out = tmp_path / "eval"
    assert (
        main(
            [
                "eval",
                "--model",
                str(model),
                str(prepared),
                "-o",
                str(out),
                "--bootstrap",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    per_source = report["perturbations"]["none"]["per_source"]
    test_sources = set(_test_sources(prepared))
    assert test_sources and set(per_source) == test_sources
    assert (out / "roc.png").is_file()

    capsys.readouterr()
    face = next((prepared / "crops" / "yonsei" / "real").glob("*.png"))
    assert main(["detect", "--json", "-q", "--model", str(model), str(face)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["results"][0]["status"] == "ok"


def _test_sources(prepared: Path) -> list[str]:
    """Sources with rows in the test split: the ones eval must report."""
    import pandas as pd

    df = pd.read_csv(prepared / "manifest.csv", keep_default_na=False)
    picked = {r["source"] for r in _picked(prepared)}
    sources = sorted(set(df.loc[df["split"] == "test", "source"]))
    assert set(sources) <= picked
    return sources


def test_index_and_similar_return_the_query_first(prepared, tmp_path, capsys):
    idx = tmp_path / "index"
    assert main(["index", str(prepared), "-o", str(idx)]) == 0  # shipped model
    capsys.readouterr()
    import pandas as pd

    df = pd.read_csv(prepared / "manifest.csv", keep_default_na=False)
    row = df[df["source"] == "generated_photos"].iloc[0]
    # the original goes through the same face crop as when it was indexed: it finds itself
    assert main(["similar", str(idx), row["original"], "-k", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    first = next(line for line in out if line.strip().startswith("1 "))
    assert Path(row["path"]).name in first
    assert " 1.000 " in first
