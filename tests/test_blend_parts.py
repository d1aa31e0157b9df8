"""Part-level self-blends (unmask.synth.blend regions) and the SBI training pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from unmask.synth.blend import (
    FACE_PARTS,
    MAX_MASK_GROWTH,
    REGIONS,
    choose_region,
    dilate,
    region_mask,
    self_blend,
)

SIZE = 96
CENTRES = {
    "right_eye": (0.32, 0.35),
    "left_eye": (0.68, 0.35),
    "nose": (0.5, 0.55),
    "mouth": (0.5, 0.78),
}


def _face(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured image and 468 landmarks whose parts sit where a face's would."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    lm = np.zeros((468, 3))
    lm[:, :2] = rng.uniform(0.15, 0.85, (468, 2))  # the face outline and the rest
    for part, (cx, cy) in CENTRES.items():
        idx = list(FACE_PARTS[part])
        lm[idx, 0] = cx + rng.uniform(-0.08, 0.08, len(idx))
        lm[idx, 1] = cy + rng.uniform(-0.04, 0.04, len(idx))
    return img, lm


@pytest.mark.parametrize("region", list(REGIONS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_part_blend_stays_inside_region(region: str, seed: int) -> None:
    img, lm = _face(seed)
    before = img.copy()
    fake, mask, params = self_blend(img, lm, np.random.default_rng(seed), True, region=region)
    assert np.array_equal(img, before)  # input untouched
    assert params["region"] == region and params["transformed"] == "source"
    part, size = region_mask(lm[:, :2] * SIZE, (SIZE, SIZE), region)
    limit = dilate(part, int(np.ceil(MAX_MASK_GROWTH * size))) > 0
    assert mask.max() > 0 and not mask[~limit].any()
    assert np.array_equal(fake[~limit], img[~limit])  # every pixel outside: untouched
    assert not np.array_equal(fake[limit], img[limit])  # and inside something changed
    # The parts not in the region are left alone (their centres, away from the region).
    for other, (cx, cy) in CENTRES.items():
        if other not in REGIONS[region] and not limit[int(cy * SIZE), int(cx * SIZE)]:
            assert mask[int(cy * SIZE), int(cx * SIZE)] == 0


def test_mouth_blend_misses_the_eyes() -> None:
    img, lm = _face(3)
    _, mask = self_blend(img, lm, np.random.default_rng(3), region="mouth")
    ys, _ = np.nonzero(mask)
    assert ys.min() > 0.45 * SIZE  # eyes are at 0.35 of the height


def test_region_errors_and_choice() -> None:
    img, lm = _face()
    with pytest.raises(ValueError, match="unknown blend region"):
        self_blend(img, lm, np.random.default_rng(0), region="ears")
    with pytest.raises(ValueError, match="468"):
        self_blend(img, lm[:100], np.random.default_rng(0), region="mouth")
    rng = np.random.default_rng(0)
    assert {choose_region(rng, 0.0) for _ in range(50)} == {"face"}
    assert {choose_region(rng, 1.0) for _ in range(300)} == set(REGIONS)


def _rows(tmp_path, n: int = 3) -> pd.DataFrame:
    from PIL import Image

    rows = []
    for i in range(n):
        img, lm = _face(i)
        p, q = tmp_path / f"{i}.png", tmp_path / f"{i}.npy"
        Image.fromarray(img).save(p)
        np.save(q, lm.astype(np.float32))
        rows.append({"abs_path": str(p), "abs_landmarks": str(q), "label": "real"})
    return pd.DataFrame(rows)


def test_pairs_share_one_augmentation(tmp_path, monkeypatch) -> None:
    """A real and its blend get the same JPEG quality/flip/resize: with the blend replaced
    by the identity, the pair's two images come out identical."""
    from unmask.training.config import AugmentConfig
    from unmask.training.datamodule import FaceDataset, pair_collate

    aug = AugmentConfig(hflip=0.5, jpeg_prob=1.0, jpeg_quality=(30, 95), resize_prob=0.5)
    ds = FaceDataset(_rows(tmp_path), 2, 64, augment=aug, synth=("blend",), pairs=True)
    monkeypatch.setattr(FaceDataset, "_blend", lambda self, img, lm, rng: img.copy())
    torch.manual_seed(0)
    for i in range(len(ds)):
        x, lm, y = ds[i]
        assert x.shape == (2, 3, 64, 64) and y.tolist() == [0, 1]
        assert torch.equal(x[0], x[1])
    x, lm, y = pair_collate([ds[0], ds[1]])
    assert x.shape == (4, 3, 64, 64) and lm.shape == (4, 468, 3) and y.tolist() == [0, 1, 0, 1]


def test_validation_pairs_are_fixed(tmp_path) -> None:
    from unmask.training.datamodule import FaceDataset

    kw = dict(synth=("blend",), pairs=True, synth_parts=0.5, fixed_seed=0)
    a, b = FaceDataset(_rows(tmp_path), 2, 64, **kw), FaceDataset(_rows(tmp_path), 2, 64, **kw)
    for i in range(len(a)):
        xa, _, ya = a[i]
        xb, _, yb = b[i]
        assert torch.equal(xa, xb) and ya.tolist() == [0, 1]
        assert not torch.equal(xa[0], xa[1])  # the blend differs from its real


def test_freeze_backbone() -> None:
    from unmask.detectors import create_detector
    from unmask.training.freeze import set_backbone_frozen

    model = create_detector("timm:resnet10t").train()
    assert set_backbone_frozen(model, True)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    bns = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    set_backbone_frozen(model, False)
    assert all(p.requires_grad for p in model.backbone.parameters())
    assert not set_backbone_frozen(torch.nn.Linear(2, 2), True)
