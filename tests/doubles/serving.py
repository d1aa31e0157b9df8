"""Helpers for testing and benchmarking the server: a stand-in model and a live server.

`BrightnessPredictor` follows the `Predictor` protocol without any weights: P(fake) is the
crop's mean brightness. It tests the service, not a model; `TinyCamPredictor` is an
untrained CNN of the same kind for Grad-CAM paths. `live_server(app)` runs uvicorn
on a free loopback port in a background thread and yields its base URL.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np

from unmask.data.spec import PreprocessSpec
from unmask.inference.predictor import CropPredictor, Scores, faces_from


def standin_meta(model_id: str, kind: str, detector: str, classes: Sequence[str]) -> dict:
    """The model.json fields the server reads, for a stand-in."""
    return {
        "id": model_id,
        "kind": kind,
        "detector": detector,
        "unmask_version": "test",
        "classes": list(classes),
    }


def tiny_cam_net(channels: int):
    """An untrained conv (3 -> `channels`, 3x3) + linear head with `gradcam_layers()`: the
    smallest network Grad-CAM runs on. Needs torch."""
    import torch
    from torch import nn

    class TinyCamNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, channels, 3, padding=1)
            self.head = nn.Linear(channels, 2)

        def forward(self, x):
            return self.head(torch.relu(self.conv(x)).mean((2, 3)))

        def gradcam_layers(self):
            return [self.conv]

    return TinyCamNet()


class BrightnessPredictor(CropPredictor):
    """P(fake) = mean pixel value / 255 of the crop; `delay_s` simulates a slow model."""

    def __init__(
        self, threshold: float = 0.5, delay_s: float = 0.0, spec: PreprocessSpec | None = None
    ) -> None:
        self.spec = spec or PreprocessSpec(crop_size=64)
        self.classes = ("real", "fake")
        self.threshold = threshold
        self.delay_s = delay_s
        self.calls = 0
        self.meta = standin_meta("brightness-standin", "standin", "brightness", self.classes)

    def predict_proba(self, crops: Sequence[np.ndarray], landmarks=None) -> np.ndarray:
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        p = np.array([float(np.asarray(c).mean()) / 255.0 for c in crops]).reshape(-1)
        return np.stack([1.0 - p, p], axis=1)

    def embed(self, crops: Sequence[np.ndarray], landmarks=None) -> np.ndarray:
        return np.array([[float(np.asarray(c).mean())] for c in crops]).reshape(-1, 1)


class TinyCamPredictor(CropPredictor):
    """A CNN-shaped stand-in (untrained 3x3 conv + linear head, fixed seed) so Grad-CAM
    paths run without a trained model: `model.gradcam_layers()` and `network_inputs(faces)`
    (the tensor it scores) are what `unmask.inference.explain.cams_for_faces` needs.
    Needs torch."""

    def __init__(self, crop_size: int = 64) -> None:
        import torch

        torch.manual_seed(0)
        self.model = tiny_cam_net(4).eval()
        self.spec = PreprocessSpec(crop_size=crop_size)
        self.classes = ("real", "fake")
        self.threshold = 0.5
        self.meta = standin_meta("tiny-cnn-standin", "torch", "tiny-cnn", self.classes)

    def preprocess(self, crops):
        import torch

        return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0

    def network_inputs(self, faces):
        from unmask.inference.network_inputs import whole_crops

        return whole_crops(self.preprocess([f.crop for f in faces]), len(faces))

    def predict(self, faces) -> Scores:
        import torch

        if not faces:
            return Scores(np.zeros((0, 2), np.float32), [])
        with torch.no_grad():
            proba = torch.softmax(self.model(self.network_inputs(faces).x), 1).numpy()
        return Scores(proba, [None] * len(faces))

    def predict_proba(self, crops: Sequence[np.ndarray], landmarks=None) -> np.ndarray:
        return self.predict(faces_from(crops, landmarks)).proba

    def embed(self, crops: Sequence[np.ndarray], landmarks=None) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.model.conv(self.preprocess(crops)).mean((2, 3)).numpy()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def live_server(
    app, port: int | None = None, timeout_s: float = 30.0, **uvicorn_options
) -> Iterator[str]:
    """uvicorn serving `app` on 127.0.0.1 in a daemon thread; yields `http://127.0.0.1:PORT`.
    `uvicorn_options` go to `uvicorn.Config` (e.g. `http=unmask.serving.guard.PROTOCOL`)."""
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        **uvicorn_options,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    t_end = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > t_end:
            raise RuntimeError(f"test server on port {port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
