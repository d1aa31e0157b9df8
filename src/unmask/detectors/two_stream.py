"""Two-stream detector: an RGB CNN and a face-landmark stream, fused before the head.

`forward(x, landmarks)`: x (N, 3, H, W) ImageNet-normalised crops; landmarks (N, 468, 2|3)
mediapipe face-mesh points in crop coordinates normalised to [0, 1] (z may be omitted). A
face without landmarks is passed as all zeros: the stream sees a "missing" flag and no
points. The engine and `TorchPredictor` supply landmarks because `needs_landmarks = True`.

Landmark stream modes (`landmark_mode`):
* `mlp` (default): centred, scale-normalised coordinates -> MLP -> embedding. Geometry cues
  (implausible proportions, asymmetry) of GAN/edited faces.
* `heatmap`: points rendered as a Gaussian heatmap channel at the crop's resolution ->
  a small CNN -> embedding.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from unmask.detectors.cnn import _check_classes, last_feature_layer, timm_backbone
from unmask.detectors.registry import register_detector

NUM_LANDMARKS = 468


def landmarks_present(landmarks: torch.Tensor) -> torch.Tensor:
    """(N,) 1.0 where a face has landmarks (not all zeros)."""
    return (landmarks.abs().flatten(1).sum(1) > 0).float()


def render_heatmap(landmarks: torch.Tensor, size: tuple[int, int], sigma: float = 1.5):
    """(N, 1, H, W) max over Gaussian blobs at each (x, y) in [0, 1] crop coordinates;
    `sigma` in pixels. Missing faces (all-zero landmarks) give an empty map."""
    h, w = size
    xy = landmarks[..., :2].float()
    ys = torch.arange(h, device=xy.device, dtype=xy.dtype)
    xs = torch.arange(w, device=xy.device, dtype=xy.dtype)
    px = xy[..., 0] * (w - 1)  # (N, K)
    py = xy[..., 1] * (h - 1)
    gx = torch.exp(-((xs[None, None] - px[..., None]) ** 2) / (2 * sigma**2))  # (N, K, W)
    gy = torch.exp(-((ys[None, None] - py[..., None]) ** 2) / (2 * sigma**2))  # (N, K, H)
    # separable Gaussian sum, normalised to [0, 1]
    heat = torch.einsum("nkh,nkw->nhw", gy, gx)
    heat = heat / heat.flatten(1).amax(1).clamp_min(1e-6)[:, None, None]
    heat = heat * landmarks_present(landmarks)[:, None, None]
    return heat[:, None]


class TwoStream(nn.Module):
    needs_landmarks = True

    def __init__(
        self,
        num_classes: int = 2,
        pretrained: bool = False,
        backbone: str = "resnet18",
        landmark_mode: str = "mlp",
        landmark_dim: int = 128,
        drop_rate: float = 0.2,
        heatmap_sigma: float = 1.5,
        **timm_kw: Any,
    ) -> None:
        super().__init__()
        _check_classes(num_classes)
        if landmark_mode not in ("mlp", "heatmap"):
            raise ValueError(f"landmark_mode must be 'mlp' or 'heatmap', got {landmark_mode!r}")
        self.landmark_mode = landmark_mode
        self.heatmap_sigma = heatmap_sigma
        self.rgb_stream = timm_backbone(backbone, pretrained, in_chans=3, **timm_kw)
        d = int(self.rgb_stream.num_features)
        if landmark_mode == "mlp":
            self.landmark_stream = nn.Sequential(
                nn.Linear(NUM_LANDMARKS * 3 + 1, 256),
                nn.ReLU(),
                nn.Linear(256, landmark_dim),
                nn.ReLU(),
            )
        else:

            def block(cin: int, cout: int) -> list[nn.Module]:
                return [nn.Conv2d(cin, cout, 3, 2, 1), nn.BatchNorm2d(cout), nn.ReLU()]

            self.landmark_stream = nn.Sequential(
                *block(1, 16), *block(16, 32), *block(32, 64), *block(64, landmark_dim),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            )  # fmt: skip
        self.embed_dim = d + landmark_dim
        self.dropout = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.embed_dim, num_classes)

    def _landmark_features(self, landmarks: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        lm = landmarks.float()
        if lm.shape[-1] == 2:
            lm = torch.cat([lm, torch.zeros_like(lm[..., :1])], dim=-1)
        lm = lm[..., :3]
        present = landmarks_present(lm)
        if self.landmark_mode == "heatmap":
            return self.landmark_stream(render_heatmap(lm, hw, self.heatmap_sigma))
        # centre and scale-normalise x, y so the MLP sees shape, not position
        xy = lm[..., :2]
        centre = xy.mean(1, keepdim=True)
        scale = (xy - centre).norm(dim=-1).mean(1, keepdim=True)[..., None].clamp_min(1e-3)
        xy = (xy - centre) / scale
        z = (lm[..., 2:] - lm[..., 2:].mean(1, keepdim=True)) / scale
        coords = torch.cat([xy, z], dim=-1) * present[:, None, None]
        return self.landmark_stream(torch.cat([coords.flatten(1), present[:, None]], dim=1))

    def features(self, x: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        if landmarks is None:
            landmarks = torch.zeros(x.shape[0], NUM_LANDMARKS, 3, device=x.device)
        f_rgb = self.rgb_stream(x)
        f_lm = self._landmark_features(landmarks.to(x.device), tuple(x.shape[-2:]))
        return torch.cat([f_rgb, f_lm.to(f_rgb.dtype)], dim=1)

    def forward(self, x: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.dropout(self.features(x, landmarks)))

    def gradcam_layers(self) -> list[nn.Module]:
        return [last_feature_layer(self.rgb_stream)]


@register_detector("two-stream", family="cnn", input="rgb+landmarks", needs_landmarks=True)
def two_stream(num_classes: int = 2, pretrained: bool = False, **kw: Any) -> nn.Module:
    """RGB ResNet-18 + mediapipe landmark stream (MLP or heatmap), fused before the head."""
    return TwoStream(num_classes=num_classes, pretrained=pretrained, **kw)
