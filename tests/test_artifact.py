"""The artifact detector: front ends, the forward/backward contract, tile training end to end
(tiny generated originals -> train -> save -> reload -> identical scores)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from unmask.detectors.artifact import FRONT_ENDS, ArtifactNet, BayarConv, npr_residual
from unmask.detectors.registry import create_detector, list_detectors


def test_npr_residual_zero_on_nearest_upsampled_nonzero_on_noise() -> None:
    g = torch.Generator().manual_seed(0)
    small = torch.rand(2, 3, 16, 16, generator=g)
    up = small.repeat_interleave(2, -2).repeat_interleave(2, -1)
    assert torch.count_nonzero(npr_residual(up)) == 0
    noise = torch.rand(2, 3, 32, 32, generator=g)
    r = npr_residual(noise)
    assert r.abs().mean() > 0.1
    assert torch.count_nonzero(r[..., ::2, ::2]) == 0  # the kept pixel of each 2x2 block


def test_bayar_filters_are_constrained() -> None:
    conv = BayarConv(3, 4)
    w = conv.constrained_weight()
    assert torch.allclose(w[..., 2, 2], torch.full((4, 3), -1.0))
    assert torch.allclose(w.sum(dim=(2, 3)), torch.zeros(4, 3), atol=1e-4)
    # a constant image has zero residual
    assert conv(torch.ones(1, 3, 16, 16))[..., 2:-2, 2:-2].abs().max() < 1e-4


@pytest.mark.parametrize("front", FRONT_ENDS)
def test_forward_backward_contract(front: str) -> None:
    torch.manual_seed(0)
    assert "artifact" in list_detectors("cnn")
    m = create_detector("artifact", num_classes=2, front=front, width=4)
    x = torch.randn(3, 3, 32, 32)
    logits = m(x)
    assert logits.shape == (3, 2)
    logits.sum().backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)
    assert m.features(x).shape == (3, m.embed_dim)
    assert len(m.gradcam_layers()) == 1 and not m.needs_landmarks


def test_face_logits_are_the_mean_of_tile_logits() -> None:
    torch.manual_seed(0)
    m = ArtifactNet(front="npr", width=4).eval()
    tiles = torch.randn(2, 5, 3, 32, 32)
    with torch.no_grad():
        faces = m(tiles)
        per_tile = m(tiles.flatten(0, 1)).view(2, 5, 2)
    torch.testing.assert_close(faces, per_tile.mean(1))


def test_bad_options_are_refused() -> None:
    from unmask.errors import ConfigError

    with pytest.raises(ValueError):
        ArtifactNet(front="wavelet")
    with pytest.raises(ConfigError):
        create_detector("artifact", pretrained=True)


# ---- tile training end to end -------------------------------------------------------


def _make_originals(root: Path, n: int = 6, size: int = 80, seed: int = 0) -> Path:
    """Originals (PNG) + manifest with `original` and face boxes. Reals: smooth noise with
    fine texture; fakes: the same kind of image nearest-upsampled 2x (an upsampling trace)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (root / "orig").mkdir(parents=True, exist_ok=True)
    rows = []
    for split, k in (("train", n), ("val", 4), ("test", 2)):
        for label in ("real", "gan"):
            for i in range(k):
                if label == "gan":
                    small = rng.integers(0, 256, (size // 2, size // 2, 3))
                    img = small.repeat(2, 0).repeat(2, 1)
                else:
                    img = rng.integers(0, 256, (size, size, 3))
                name = f"orig/{split}_{label}_{i}.png"
                Image.fromarray(img.astype(np.uint8)).save(root / name)
                box = (8, 8, size - 8, size - 8)
                src = "cam" if label == "real" else "gen"
                rows.append([name, label, src, f"{split}{label}{i}", split, name, -1, *box])
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["path", "label", "source", "group", "split", "original", "frame"]
            + ["box_x0", "box_y0", "box_x1", "box_y1"]
        )
        w.writerows(rows)
    return root / "manifest.csv"


def _cfg(manifest: Path, out: Path, **over):
    from unmask.config import load_config
    from unmask.training.config import TrainConfig

    sets = [
        f"data.manifest={manifest}",
        "data.tiles.size=32",
        "data.tiles.count=4",
        "data.tiles.pool=4",
        "data.tiles.epoch_size=64",
        "data.tiles.noise_prob=0.5",
        "data.synth=[upsample]",
        "data.batch_size=16",
        "data.class_weights=false",
        "detector.name=artifact",
        "detector.kwargs={front: npr, width: 4}",
        "augment.jpeg_prob=1.0",
        "augment.jpeg_quality=[85,95]",
        "augment.blur_prob=0.2",
        "augment.blur_sigma=[0.2,0.5]",
        "trainer.max_epochs=1",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "trainer.log_every_n_steps=1",
        f"output={out}",
    ] + [f"{k}={v}" for k, v in over.items()]
    return load_config(TrainConfig, None, overrides=sets)


def _score(model_dir: Path, manifest: Path) -> np.ndarray:
    """P(fake) of the test faces, reloaded from the saved folder alone: cut the model's
    TileSpec from each original, mean of tile logits, softmax."""
    from safetensors.torch import load_file

    from unmask.data.extract import decode_original, row_box
    from unmask.data.manifest import read_manifest
    from unmask.data.normalize import normalize_tiles
    from unmask.data.tiles import TileSpec, cut_tiles
    from unmask.training.tile_data import with_originals

    meta = json.loads((model_dir / "model.json").read_text())
    spec = TileSpec(**meta["input"]["tiles"])
    det = meta["detector"]
    m = create_detector(det["name"], num_classes=2, **det["kwargs"]).eval()
    m.load_state_dict(load_file(model_dir / "weights.safetensors"))
    df = with_originals(read_manifest(manifest, split="test"))
    x = np.stack([cut_tiles(decode_original(r), row_box(r), spec) for r in df.to_dict("records")])
    xt = torch.from_numpy(np.stack([normalize_tiles(t) for t in x]))
    with torch.no_grad():
        return 1 - torch.softmax(m(xt), 1)[:, 0].numpy()


@pytest.mark.slow
def test_tile_train_save_reload_identical_scores(tmp_path: Path) -> None:
    from unmask.training.run import train

    manifest = _make_originals(tmp_path / "data")
    out = train(_cfg(manifest, tmp_path / "m"))
    meta = json.loads((out / "model.json").read_text())
    assert meta["detector"]["name"] == "artifact"
    assert meta["input"]["tiles"] == {"size": 32, "count": 4, "region": "face", "align": 8}
    assert meta["input"]["size"] == 32
    assert 0.0 <= meta["threshold"] <= 1.0
    a, b = _score(out, manifest), _score(out, manifest)
    assert a.shape == (4,) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    # the exporter's val metrics come from the same weights: recompute them from the folder
    from unmask.training.tile_data import TileDataModule

    cfg = _cfg(manifest, tmp_path / "m")
    dm = TileDataModule(cfg, progress=False)
    dm.setup()
    m = create_detector("artifact", num_classes=2, front="npr", width=4).eval()
    from safetensors.torch import load_file

    m.load_state_dict(load_file(out / "weights.safetensors"))
    with torch.no_grad():
        p = torch.cat([torch.softmax(m(x), 1) for x, _, _ in dm.plain_loader("val")]).numpy()
    from unmask.training.engine import binary_metrics

    y = np.asarray(dm.dataset("val").targets)
    assert binary_metrics(p, y)["auc"] == pytest.approx(meta["metrics"]["val"]["auc"], abs=1e-9)


def test_tile_config_refuses_resize_augmentation(tmp_path: Path) -> None:
    from unmask.errors import ConfigError
    from unmask.training.tile_data import TileDataModule

    cfg = _cfg(tmp_path / "none.csv", tmp_path / "m", **{"augment.resize_prob": 0.5})
    with pytest.raises(ConfigError, match="resize"):
        TileDataModule(cfg)


def test_train_samples_are_balanced_and_deterministic(tmp_path: Path) -> None:
    from unmask.training.tile_data import TileDataModule

    manifest = _make_originals(tmp_path / "data", n=4)
    both = {"data.synth": "[upsample,upsample_trace]"}  # every simulator is drawn
    dm = TileDataModule(_cfg(manifest, tmp_path / "m", **both), progress=False)
    ds = dm.dataset("train")
    torch.manual_seed(3)
    xs = [ds[i] for i in range(64)]
    torch.manual_seed(3)
    again = ds[0]
    assert torch.equal(xs[0][0], again[0]) and xs[0][2] == again[2]
    assert xs[0][0].shape == (3, 32, 32) and xs[0][0].dtype == torch.float32
    ys = [y for _, _, y in xs]
    assert 16 < sum(ys) < 48  # about half fake
    val = dm.dataset("val")
    assert val[0][0].shape == (4, 3, 32, 32)
    assert len(val) >= 8  # 4 real + 4 gan val faces (+ simulated fakes)


def test_scale_balance_makes_fakes_half_of_every_face_size_bin() -> None:
    """balance: scale draws a face-size bin first, so P(fake | bin) = 1/2 even when the
    fakes are mostly large and the reals mostly small (the shared data's confound)."""
    from unmask.training.config import AugmentConfig
    from unmask.training.tile_data import TileTrainDataset

    # rows: pool value = row index, so a drawn tile names its row
    # two small real sources and one big; one small fake source and two big
    labels = ["real"] * 8 + ["gan"] * 4 + ["real"] * 2 + ["gan"] * 6
    sources = ["small_r1"] * 4 + ["small_r2"] * 4 + ["small_g"] * 4 + ["big_r"] * 2
    sources += ["big_g1"] * 3 + ["big_g2"] * 3
    sides = [100.0] * 12 + [500.0] * 8
    pools = np.stack([np.full((1, 4, 4, 3), i, np.uint8) for i in range(len(labels))])
    args = (pools, labels, sources, AugmentConfig(), 2, 100)
    scaled = TileTrainDataset(*args, sides=sides, scale_edges=(200,))
    plain = TileTrainDataset(*args)

    def fake_share_by_bin(ds: TileTrainDataset) -> dict[int, float]:
        rng = np.random.default_rng(0)
        seen: dict[int, list[int]] = {0: [], 1: []}
        for _ in range(4000):
            tile, y = ds.draw(rng)
            seen[int(sides[int(tile[0, 0, 0])] > 200)].append(y)
        return {k: float(np.mean(v)) for k, v in seen.items()}

    got = fake_share_by_bin(scaled)
    assert abs(got[0] - 0.5) < 0.04 and abs(got[1] - 0.5) < 0.04
    assert got == fake_share_by_bin(scaled)  # seeded: the same draws again
    # source balance alone: P(big | fake) = 2/3, P(big | real) = 1/3, so P(fake | big) = 2/3
    assert abs(fake_share_by_bin(plain)[1] - 2 / 3) < 0.04


def test_scale_edges_must_increase(tmp_path: Path) -> None:
    from unmask.errors import ConfigError
    from unmask.training.tile_data import TileDataModule

    cfg = _cfg(tmp_path / "none.csv", tmp_path / "m", **{"data.tiles.scale_edges": "[400,200]"})
    with pytest.raises(ConfigError, match="scale_edges"):
        TileDataModule(cfg)


def test_down_reals_add_smaller_reals_to_the_pools(tmp_path: Path) -> None:
    """data.tiles.down_reals: every real train row again, cut from its original shrunk by
    each factor (its face box scaled alike); the fakes are left as they are."""
    from unmask.errors import ConfigError
    from unmask.training.tile_data import TileDataModule, downscale

    img = np.arange(80 * 60 * 3, dtype=np.uint8).reshape(60, 80, 3)
    small, box = downscale(img, (8, 10, 48, 50), 0.5)
    assert small.shape == (30, 40, 3) and box == (4, 5, 24, 25)
    manifest = _make_originals(tmp_path / "data", n=4)
    plain = TileDataModule(_cfg(manifest, tmp_path / "a"), progress=False)
    plain.setup()
    more = TileDataModule(_cfg(manifest, tmp_path / "b", **{"data.tiles.down_reals": "[0.5]"}))
    more.progress = False
    more.setup()
    a, b = plain.dataset("train"), more.dataset("train")
    assert len(b.pools) == len(a.pools) + 4  # the 4 train reals, at half size
    assert b.targets.count(1) == a.targets.count(1)
    assert b.pools[: len(a.pools)].tobytes() == a.pools.tobytes()
    with pytest.raises(ConfigError, match="down_reals"):
        TileDataModule(_cfg(manifest, tmp_path / "c", **{"data.tiles.down_reals": "[1.5]"}))
