"""`/v1/explain` must not leak: 200 Grad-CAM requests in-process, server memory levels off.

The model is `TinyCamPredictor` at a large crop size so that one request's autograd graph
is megabytes: the reference cycle this guards against kept every graph alive (about
1.2 MiB per request with the shipped model, 1,495 -> 3,373 MiB over 1,000 requests).
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("torch")

from fastapi.testclient import TestClient  # noqa: E402

from doubles.serving import TinyCamPredictor  # noqa: E402
from unmask.serving.app import create_app  # noqa: E402

ASTRONAUT = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"
CROP = 128  # graph per request: over 1 MiB
N_REQUESTS = 200
MAX_GROWTH_MIB = 40.0  # the leak grew over 1 MiB per request at this size


class WholeImageCropper:
    """Stands in for MediaPipe (which is not what leaked, and is slow): the whole image,
    resized, is the one face."""

    def __init__(self, size: int) -> None:
        self.size = size

    def crop(self, image):
        import cv2

        from unmask.data.faces import FaceCrop

        h, w = image.shape[:2]
        img = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return [FaceCrop(img, (0, 0, w, h), 0.9, None, (0.0, 0.0, float(w), float(h)))]


def rss_mib() -> float:
    """Resident set size of this process, from /proc (Linux) or psutil."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        psutil = pytest.importorskip("psutil")
        return psutil.Process().memory_info().rss / 2**20


@pytest.fixture()
def one_torch_thread():
    """Six times less CPU per request here: intra-op threads only spin on tiny tensors."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def test_explain_memory_levels_off(one_torch_thread):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.open(ASTRONAUT).convert("RGB").resize((CROP, CROP)).save(buf, format="PNG")
    face = buf.getvalue()
    app = create_app(TinyCamPredictor(crop_size=CROP), max_pixels=4_000_000)
    app.state.engine._cropper = lambda: WholeImageCropper(CROP)
    with TestClient(app, raise_server_exceptions=False) as c:

        def explain():
            r = c.post("/v1/explain?face=0", files={"file": ("a.png", face, "image/png")})
            assert r.status_code == 200, r.text

        for _ in range(20):  # warm-up: allocator pools, MediaPipe graphs, thread-locals
            explain()
        gc.collect()
        start = rss_mib()
        marks = []
        for i in range(N_REQUESTS):
            explain()
            if (i + 1) % 50 == 0:
                gc.collect()
                marks.append(round(rss_mib() - start, 1))
    growth = marks[-1]
    assert growth < MAX_GROWTH_MIB, f"RSS grew {growth:.0f} MiB over {N_REQUESTS} requests: {marks}"
