"""Pictures of detection results: annotated images and video score timelines (PNG)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

FAKE_RGB = (220, 40, 40)
REAL_RGB = (40, 170, 60)


def output_name(file: str, suffix: str, ext: str = ".png") -> str:
    """A unique, readable output name for an input path (same stem in two folders differ)."""
    p = Path(file)
    tag = hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:6]
    return f"{p.stem}-{tag}{suffix}{ext}"


def draw_faces(image: np.ndarray, faces, threshold: float) -> np.ndarray:
    """Copy of `image` (RGB uint8) with each face's box and P(fake) drawn on it."""
    import cv2

    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    thick = max(2, round(max(h, w) / 400))
    scale = max(0.5, max(h, w) / 1200)
    for f in faces:
        colour = FAKE_RGB if f.p_fake >= threshold else REAL_RGB
        x0, y0, x1, y1 = (int(v) for v in f.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, thick)
        label = f"{'FAKE' if f.p_fake >= threshold else 'real'} {f.p_fake:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = max(th + base, y0)
        cv2.rectangle(out, (max(0, x0), ty - th - base), (max(0, x0) + tw, ty), colour, -1)
        cv2.putText(
            out,
            label,
            (max(0, x0), ty - base),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            thick,
            cv2.LINE_AA,
        )
    return out


def annotate_file(res, threshold: float, out_dir: Path) -> Path | None:
    """Write the input image with boxes and scores (videos: the sampled frame with the
    highest P(fake))."""
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    if res.kind == "image":
        from unmask.data.imageio import load_image

        image = load_image(res.file)
        faces = res.faces
    elif res.kind == "video" and res.faces:
        from unmask.data.video import read_frame

        worst = max(res.faces, key=lambda f: f.p_fake)
        image = read_frame(res.file, worst.frame)
        faces = [f for f in res.faces if f.frame == worst.frame]
    else:
        return None
    path = out_dir / output_name(res.file, "-annotated")
    Image.fromarray(draw_faces(image, faces, threshold)).save(path)
    return path


def plot_timeline(res, threshold: float, out_dir: Path) -> Path:
    """P(fake) per sampled frame, one line per tracked face, with the threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=110)
    tracks = sorted({f.track for f in res.faces})
    for t in tracks:
        pts = sorted((f.frame, f.p_fake) for f in res.faces if f.track == t)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=f"face {t}")
    ax.axhline(threshold, color="grey", ls="--", lw=1, label=f"threshold {threshold:.2f}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("frame")
    ax.set_ylabel("P(fake)")
    ax.set_title(f"{Path(res.file).name}: {res.verdict} (score {res.score:.2f})")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    path = out_dir / output_name(res.file, "-timeline")
    fig.savefig(path)
    plt.close(fig)
    return path
