"""Why did the model say so? Grad-CAM overlays for CNNs, spectra for classical models."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def cams_for_faces(predictor, faces, method: str = "gradcam") -> np.ndarray:
    """(N, C, H, W) class activation maps in [0, 1] for every face and every class, computed
    on exactly the rows the predictor scores for the faces (`predictor.network_inputs`):
    a crop model's map at its input size; a tile model's per-tile maps pasted back into
    the crop where each tile was (`paste_tile_maps`), H, W = the crop's size."""
    import torch

    from unmask.inference.gradcam import class_activation_map

    model = predictor.model
    inp = predictor.network_inputs(faces)
    # the rows as scored (NumPy when a member scores on its cached ONNX graph)
    x = torch.as_tensor(inp.x).to(next(model.parameters()).device)
    forward = None
    if inp.landmarks is not None:
        if method == "scorecam":
            raise ValueError("scorecam is not supported for landmark models; use gradcam")
        lm = inp.landmarks.to(x.device)

        def forward(t):
            return model(t, lm.expand(t.shape[0], *lm.shape[1:]) if lm.shape[0] == 1 else lm)

    tiles = inp.where is not None  # raw maps: a face's tiles keep their relative strength
    cams = torch.stack(
        [
            class_activation_map(model, x, c, method=method, forward=forward, normalise=not tiles)
            for c in range(len(predictor.classes))
        ],
        dim=1,
    ).numpy()
    return paste_tile_maps(cams, inp, faces) if tiles else cams


def paste_tile_maps(cams: np.ndarray, inp, faces) -> np.ndarray:
    """(N, C, H, W): each face's tile maps (`cams` (B, C, s, s), row b of face
    `inp.face_of[b]`) resized onto the crop box the tile came from (`inp.where[b]`, crop
    pixels, clipped to the crop), the larger value where tiles overlap and 0 where no tile
    was; then divided by each face's and class's peak, so the map spans [0, 1]."""
    import torch
    import torch.nn.functional as F

    from unmask.errors import UnmaskError

    h, w = np.asarray(faces[0].crop).shape[:2]
    out = np.zeros((len(faces), cams.shape[1], h, w), np.float32)
    for b, (n, box) in enumerate(zip(inp.face_of, inp.where, strict=True)):
        if not np.isfinite(box).all():
            raise UnmaskError(
                "cannot place this model's tiles on the face: its crop box or image size is unknown"
            )
        x0, y0, x1, y1 = (int(v) for v in np.rint(box))
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if cx1 <= cx0 or cy1 <= cy0:  # a tile wholly outside the crop (region "image")
            continue
        tile = F.interpolate(
            torch.from_numpy(cams[b : b + 1]), (y1 - y0, x1 - x0), mode="bilinear"
        )[0].numpy()
        region = out[n, :, cy0:cy1, cx0:cx1]
        np.maximum(region, tile[:, cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0], out=region)
    return out / np.maximum(out.max(axis=(2, 3), keepdims=True), 1e-8)


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


def scored_face(f):
    """A detection result's face as the predictor scored it (crop, landmarks, tiles, box,
    image size), for `cams_for_faces`: the record it kept (`f.face`) when it has one."""
    from unmask.data.extract import Face

    kept = getattr(f, "face", None)
    if kept is not None:
        return kept
    box = getattr(f, "box", None)
    return Face(
        f.crop,
        f.landmarks,
        getattr(f, "tiles", None) or {},
        None if box is None else tuple(int(v) for v in box),
        getattr(f, "image_size", None),
    )


def explain_result(res, predictor, out_dir: Path, method: str = "gradcam") -> list[Path]:
    """Write one PNG per face of a detection result: the crop and a heatmap per class
    (CNN), or the face's spectrum against the class means (classical)."""
    from PIL import Image

    from unmask.inference.gradcam import overlay
    from unmask.inference.loader import predictor_kind
    from unmask.inference.render import output_name

    out_dir.mkdir(parents=True, exist_ok=True)
    faces = [f for f in res.faces if f.crop is not None]
    if not faces:
        return []
    written = []
    is_cnn = predictor_kind(predictor).network
    if is_cnn:
        cams = cams_for_faces(predictor, [scored_face(f) for f in faces], method)
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
    from unmask.inference.loader import predictor_kind

    if not predictor_kind(predictor).has_members:
        return explain_result(res, predictor, out_dir, method)
    written: list[Path] = []
    for name, member in predictor.members.items():
        written += explain_result(res, member, out_dir / name, method)
    return written
