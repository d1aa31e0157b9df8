"""unmask.synth: blends, auto-encoder, WGAN-GP and the synth manifest, on tiny generated data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from unmask.errors import UnmaskError
from unmask.synth.blend import MAX_MASK_GROWTH, dilate, hull_mask, pair_blend, self_blend


def fake_face(
    rng: np.random.Generator, size: int = 64, n: int = 120
) -> tuple[np.ndarray, np.ndarray]:
    """A textured image and synthetic landmarks (points filling an ellipse), normalised."""
    t = rng.uniform(0, 2 * np.pi, n)
    r = np.sqrt(rng.uniform(0, 1, n))
    cx, cy = 0.5 + rng.uniform(-0.04, 0.04), 0.5 + rng.uniform(-0.04, 0.04)
    lm = np.stack([cx + 0.25 * r * np.cos(t), cy + 0.33 * r * np.sin(t), np.zeros(n)], 1)
    yy, xx = np.mgrid[:size, :size]
    base = np.stack([xx * 3 + yy, yy * 2 + 40, (xx + yy) * 2], -1) % 256
    img = np.clip(base + rng.integers(0, 60, (size, size, 3)), 0, 255).astype(np.uint8)
    return img, lm.astype(np.float32)


def _lm_px(lm: np.ndarray, size: int) -> np.ndarray:
    return lm[:, :2].astype(np.float64) * size


@pytest.mark.parametrize("seed", range(6))
def test_self_blend_mask_inside_dilated_hull(seed: int) -> None:
    rng = np.random.default_rng(seed)
    img, lm = fake_face(rng, 96)
    fake, mask = self_blend(img, lm, np.random.default_rng(100 + seed))
    assert fake.shape == img.shape and fake.dtype == np.uint8
    assert mask.shape == img.shape[:2] and mask.dtype == np.float32
    assert mask.min() >= 0.0 and mask.max() <= 1.0 and mask.max() >= 0.25
    pts = _lm_px(lm, 96)
    size = (pts.max(0) - pts.min(0)).max()
    allowed = dilate(hull_mask(pts, (96, 96)), int(np.ceil(MAX_MASK_GROWTH * size)) + 1)
    assert (mask[allowed == 0] == 0).all()
    # outside the mask the image is (a possibly colour-jittered copy of) the original; the
    # blend changes pixels only where the mask is > 0 or where the target itself was jittered
    assert (mask > 0).mean() > 0.1


def test_self_blend_deterministic_and_changes_face() -> None:
    img, lm = fake_face(np.random.default_rng(1), 64)
    a, ma, pa = self_blend(img, lm, np.random.default_rng(7), return_params=True)
    b, mb, pb = self_blend(img, lm, np.random.default_rng(7), return_params=True)
    assert np.array_equal(a, b) and np.array_equal(ma, mb) and pa == pb
    json.dumps(pa)  # stored as the manifest's synth_params
    c, _ = self_blend(img, lm, np.random.default_rng(8))
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, img)


def test_self_blend_bad_input() -> None:
    img, lm = fake_face(np.random.default_rng(0), 32)
    with pytest.raises(ValueError):
        self_blend(img.astype(np.float32), lm, np.random.default_rng(0))
    with pytest.raises(ValueError):
        self_blend(img, lm[:2], np.random.default_rng(0))
    bad = lm.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        self_blend(img, bad, np.random.default_rng(0))


def test_pair_blend_mask_and_outside_unchanged() -> None:
    rng = np.random.default_rng(3)
    tgt, tlm = fake_face(rng, 96)
    donor, dlm = fake_face(rng, 96)
    fake, mask = pair_blend(tgt, tlm, donor, dlm, np.random.default_rng(0))
    assert fake.shape == tgt.shape and fake.dtype == np.uint8 and mask.dtype == np.float32
    hull = hull_mask(_lm_px(tlm, 96), (96, 96))
    assert mask.sum() > 50 and (mask[hull == 0] == 0).all()
    outside = dilate((mask > 0).astype(np.uint8), 2) == 0
    assert np.array_equal(fake[outside], tgt[outside])  # Poisson blending stays in the mask
    assert not np.array_equal(fake[mask > 0], tgt[mask > 0])


# ---------------------------------------------------------------- manifests and the pipeline


def make_manifest(root: Path, n: int = 16, size: int = 32, seed: int = 0, fakes: int = 2) -> Path:
    """A prepared-style folder: n real crops over 3 splits (+ `fakes` gan rows), landmarks,
    prepare.json. Row 1 has no landmarks (blend must skip it)."""
    rng = np.random.default_rng(seed)
    (root / "crops").mkdir(parents=True)
    rows = []
    splits = ["train"] * (n - 6) + ["val"] * 3 + ["test"] * 3
    for i in range(n):
        img, lm = fake_face(rng, size)
        Image.fromarray(img).save(root / "crops" / f"{i}.png")
        lm_path = ""
        if i != 1:
            lm_path = f"crops/{i}.npy"
            np.save(root / lm_path, lm)
        rows.append(
            dict(
                path=f"crops/{i}.png",
                label="real",
                source="cam",
                group=f"g{i}",
                split=splits[i],
                original=f"in/{i}.jpg",
                frame=-1,
                face_index=0,
                box_x0=0,
                box_y0=0,
                box_x1=size,
                box_y1=size,
                det_score=0.9,
                landmarks=lm_path,
                method="camera",
                parent="",
            )
        )
    for j in range(fakes):
        img, _ = fake_face(rng, size)
        Image.fromarray(img).save(root / "crops" / f"f{j}.png")
        rows.append(
            dict(
                path=f"crops/f{j}.png",
                label="gan",
                source="gansrc",
                group=f"f{j}",
                split="test",
                original=f"in/f{j}.jpg",
                frame=-1,
                face_index=0,
                box_x0=0,
                box_y0=0,
                box_x1=size,
                box_y1=size,
                det_score=0.9,
                landmarks="",
                method="gan",
                parent="",
            )
        )
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    (root / "prepare.json").write_text(json.dumps({"crop_size": size}))
    return root / "manifest.csv"


def _read(out: Path) -> pd.DataFrame:
    from unmask.data.manifest import read_manifest

    return read_manifest(out)


def _check_bookkeeping(df: pd.DataFrame, n_inputs: int) -> pd.DataFrame:
    inputs, synth = df.iloc[:n_inputs], df.iloc[n_inputs:]
    assert all(Path(p).is_file() for p in df["abs_path"]), "every path resolves from OUT_DIR"
    by_path = {
        str(Path(p).resolve()): r
        for p, r in zip(inputs["abs_path"], inputs.to_dict("records"), strict=True)
    }
    for r in synth.to_dict("records"):
        parents = r["parent"].split(";")
        root = Path(r["abs_path"]).resolve().parents[len(Path(r["path"]).parts) - 1]
        prow = by_path[str((root / parents[0]).resolve())]
        assert prow["label"] == "real"
        assert r["split"] == prow["split"] and r["group"] == prow["group"]
        for p in parents[1:]:  # pair donor: same split, another group
            drow = by_path[str((root / p).resolve())]
            assert drow["split"] == prow["split"] and drow["group"] != prow["group"]
        json.loads(r["synth_params"])
    return synth


def test_run_blend_manifest_and_skips(tmp_path: Path) -> None:
    from unmask.synth.pipeline import run_blend

    src = make_manifest(tmp_path / "prep")
    out = tmp_path / "out"
    info = run_blend(src, out, seed=1, progress=False)
    assert info["made"] == 15 and info["skipped"] == 1
    df = _read(out)
    assert len(df) == 18 + 15
    synth = _check_bookkeeping(df, 18)
    assert set(synth["label"]) == {"edited"} and set(synth["method"]) == {"synth:blend"}
    for m, p in zip(synth["mask"], synth["abs_path"], strict=True):
        mk = np.asarray(Image.open(out / m))
        im = np.asarray(Image.open(p))
        assert mk.dtype == np.uint8 and mk.shape == im.shape[:2] and im.shape == (32, 32, 3)
    assert (out / "prepare.json").is_file() and (out / "sheet-blend.png").is_file()
    sk = pd.read_csv(out / "skipped.csv")
    assert list(sk["reason"]) == ["no_landmarks"] and sk["path"][0] == "crops/1.png"
    # deterministic with --seed
    run_blend(src, tmp_path / "out2", seed=1, progress=False, sheet=False)
    a = np.asarray(Image.open(out / synth["path"].iloc[3]))
    b = np.asarray(Image.open(tmp_path / "out2" / synth["path"].iloc[3]))
    assert np.array_equal(a, b)
    # input is never modified, and the output may not be the input folder
    assert len(pd.read_csv(src)) == 18
    with pytest.raises(UnmaskError, match="input manifest's folder"):
        run_blend(src, src.parent, progress=False)


def test_run_blend_pair(tmp_path: Path) -> None:
    from unmask.synth.pipeline import run_blend

    src = make_manifest(tmp_path / "prep")
    out = tmp_path / "pair"
    info = run_blend(src, out, pair=True, keep="real", seed=0, progress=False)
    assert info["made"] == 15
    df = _read(out)
    assert len(df) == 16 + 15 and "gan" not in set(df["label"])
    synth = _check_bookkeeping(df, 16)
    assert all(len(p.split(";")) == 2 for p in synth["parent"])


def test_errors_no_reals_and_all_skipped(tmp_path: Path) -> None:
    from unmask.synth.pipeline import run_blend

    src = make_manifest(tmp_path / "prep")
    df = pd.read_csv(src, keep_default_na=False)
    only_fakes = tmp_path / "fakes"
    only_fakes.mkdir()
    df[df["label"] != "real"].assign(path=lambda d: "../prep/" + d["path"]).to_csv(
        only_fakes / "manifest.csv", index=False
    )
    with pytest.raises(UnmaskError, match="no real rows"):
        run_blend(only_fakes, tmp_path / "o1", progress=False)
    no_lm = tmp_path / "nolm"
    no_lm.mkdir()
    df.assign(path=lambda d: "../prep/" + d["path"], landmarks="").to_csv(
        no_lm / "manifest.csv", index=False
    )
    with pytest.raises(UnmaskError, match="no_landmarks: 16"):
        run_blend(no_lm, tmp_path / "o2", progress=False)


def test_autoencoder_upsamplers_shapes() -> None:
    import torch

    from unmask.synth.nets import AutoEncoder

    x = torch.zeros(2, 3, 32, 32)
    for kind in ("transposed", "nearest", "bilinear"):
        assert AutoEncoder(kind, width=8, depth=2)(x).shape == x.shape


def test_run_upsample_trains_and_reloads(tmp_path: Path) -> None:
    from unmask.synth.pipeline import run_upsample

    src = make_manifest(tmp_path / "prep")
    out = tmp_path / "up"
    info = run_upsample(
        src,
        out,
        upsampler="nearest",
        size=32,
        steps=3,
        batch_size=8,
        width=8,
        depth=2,
        seed=0,
        progress=False,
    )
    assert info["made"] == 16
    df = _read(out)
    synth = _check_bookkeeping(df, 18)
    assert set(synth["method"]) == {"synth:upsample-nearest"} and set(synth["label"]) == {"gan"}
    im = np.asarray(Image.open(synth["abs_path"].iloc[0]))
    assert im.shape == (32, 32, 3) and im.dtype == np.uint8
    model = out / "upsample-nearest" / "autoencoder.safetensors"
    assert model.is_file() and (out / "spectrum-upsample-nearest.png").is_file()
    # reuse the saved model: same reconstructions, no training
    again = run_upsample(
        src, tmp_path / "up2", model=model, seed=0, progress=False, sheet=False, size=32, depth=2
    )
    assert again["train_s"] == 0.0
    p = synth["path"].iloc[5]
    assert np.array_equal(
        np.asarray(Image.open(out / p)), np.asarray(Image.open(tmp_path / "up2" / p))
    )


def test_wgan_gp_steps_checkpoints_and_determinism(tmp_path: Path) -> None:
    import torch

    from unmask.synth.nets import Critic, Generator, gradient_penalty, load_nets
    from unmask.synth.pipeline import run_gan

    g, d = Generator(32, z_dim=16, width=8), Critic(32, width=8)
    assert g(torch.zeros(2, 16)).shape == (2, 3, 32, 32) and d(torch.zeros(2, 3, 32, 32)).shape == (
        2,
    )
    assert gradient_penalty(d, torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32)).item() >= 0

    src = make_manifest(tmp_path / "prep")
    kw = dict(
        n=6,
        size=32,
        steps=2,
        batch_size=4,
        n_critic=2,
        width=8,
        z_dim=16,
        ckpt_every=1,
        sample_every=1,
        seed=3,
        keep="real",
        progress=False,
    )
    info = run_gan(src, tmp_path / "gan", **kw)
    df = _read(tmp_path / "gan")
    synth = df.iloc[16:]
    assert len(synth) == 6 and set(synth["split"]) == {"train"} and set(synth["label"]) == {"gan"}
    assert synth["group"].nunique() == 6 and (synth["parent"] == "").all()
    im = np.asarray(Image.open(synth["abs_path"].iloc[0]))
    assert im.shape == (32, 32, 3)
    assert len(info["checkpoints"]) == 2 and len(info["grids"]) == 2
    nets, meta = load_nets(info["checkpoints"][-1])
    assert set(nets) == {"generator", "critic"} and meta["step"] == 2
    run_gan(src, tmp_path / "gan2", **kw)
    p = synth["path"].iloc[2]
    assert np.array_equal(
        np.asarray(Image.open(tmp_path / "gan" / p)), np.asarray(Image.open(tmp_path / "gan2" / p))
    )
    # sample-only from the saved generator, into val
    only = run_gan(
        src,
        tmp_path / "gan3",
        generator=tmp_path / "gan" / "gan" / "generator.safetensors",
        n=3,
        split="val",
        progress=False,
    )
    assert only["made"] == 3 and set(_read(tmp_path / "gan3").iloc[-3:]["split"]) == {"val"}


def test_command_parses_and_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from unmask.commands import synth

    p = argparse.ArgumentParser()
    synth.add_arguments(p)
    src = make_manifest(tmp_path / "prep")
    args = p.parse_args(
        [
            "blend",
            str(src.parent),
            "-o",
            str(tmp_path / "o"),
            "--per-real",
            "2",
            "--splits",
            "test",
            "-q",
            "--no-sheet",
        ]
    )
    assert synth.run(args) == 0
    assert "6 synthetic rows" in capsys.readouterr().out
    bad = p.parse_args(["gan", str(src), "-o", str(tmp_path / "g"), "--steps", "0"])
    with pytest.raises(UnmaskError, match="--steps"):
        synth.run(bad)
