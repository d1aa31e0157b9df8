"""Why did the model say so? Grad-CAM overlays for CNNs, spectra for classical models."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def cams_for_crops(predictor, crops, landmarks=None, method: str = "gradcam") -> np.ndarray:
    """(N, C, H, W) class activation maps in [0, 1] for every crop and every class."""
    import torch

    from unmask.inference.gradcam import class_activation_map

    model = predictor.model
    x = predictor.preprocess(crops).to(next(model.parameters()).device)
    forward = None
    if predictor.needs.landmarks:
        lm = predictor.landmarks_tensor(landmarks, len(crops)).to(x.device)

        def forward(inp):
            return model(inp, lm.expand(inp.shape[0], *lm.shape[1:]) if lm.shape[0] == 1 else lm)

        if method == "scorecam":
            raise ValueError("scorecam is not supported for landmark models; use gradcam")
    out = []
    for c in range(len(predictor.classes)):
        out.append(class_activation_map(model, x, c, method=method, forward=forward))
    return torch.stack(out, dim=1).numpy()


def _spectrum_figure(crop: np.ndarray, predictor, path: Path, title: str) -> None:
    """Classical models: the face's azimuthal log-spectrum against the class means the
    model stored at training time (when present)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unmask.features.frequency import image_features

    size = int(predictor.meta.get("profile_size") or crop.shape[0])
    profile = image_features(crop, "spectrum", size)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    for name, mean in (predictor.meta.get("class_profiles") or {}).items():
        mean = np.asarray(mean, dtype=float)
        ax.plot(np.linspace(0, 1, len(mean)), mean, lw=1.5, alpha=0.8, label=f"mean {name}")
    ax.plot(np.linspace(0, 1, len(profile)), profile, color="black", lw=2, label="this face")
    ax.set_xlabel("spatial frequency (0 = DC, 1 = highest)")
    ax.set_ylabel("log power")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def explain_result(res, predictor, out_dir: Path, method: str = "gradcam") -> list[Path]:
    """Write one PNG per face of a detection result: the crop and a heatmap per class
    (CNN), or the face's spectrum against the class means (classical)."""
    from PIL import Image

    from unmask.inference.gradcam import overlay
    from unmask.inference.render import output_name

    out_dir.mkdir(parents=True, exist_ok=True)
    faces = [f for f in res.faces if f.crop is not None]
    if not faces:
        return []
    written = []
    is_cnn = predictor.meta.get("kind") == "torch"
    if is_cnn:
        cams = cams_for_crops(
            predictor, [f.crop for f in faces], [f.landmarks for f in faces], method
        )
    for i, f in enumerate(faces):
        suffix = f"-f{f.frame}" if f.frame >= 0 else ""
        suffix += f"-face{f.face_index}-{method if is_cnn else 'spectrum'}"
        path = out_dir / output_name(res.file, suffix)
        if is_cnn:
            tiles = [f.crop] + [overlay(f.crop, cams[i, c]) for c in range(cams.shape[1])]
            Image.fromarray(np.concatenate(tiles, axis=1)).save(path)
        else:
            _spectrum_figure(
                f.crop, predictor, path, f"{Path(res.file).name}: P(fake) {f.p_fake:.2f}"
            )
        written.append(path)
    return written


def explain_all(res, predictor, out_dir: Path, method: str = "gradcam") -> list[Path]:
    """`explain_result` for any model: a composite member by member, into out_dir/<member>/
    (each CNN member's Grad-CAM on the face, each classical member's spectrum)."""
    if predictor.meta.get("kind") != "composite":
        return explain_result(res, predictor, out_dir, method)
    written: list[Path] = []
    for name, member in predictor.members.items():
        written += explain_result(res, member, out_dir / name, method)
    return written
