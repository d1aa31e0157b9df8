"""Class activation maps for any detector exposing `gradcam_layers()`.

Written here rather than taken from pytorch-grad-cam so that it needs no extra dependency
(that package pulls in a second OpenCV distribution, which breaks mediapipe's). Methods:

- Grad-CAM (Selvaraju et al. 2017): channel weights = spatial mean of d(score)/d(activation).
- Grad-CAM++ (Chattopadhay et al. 2018): weights from second/third-order gradient terms,
  sharper when several regions support the class.
- Score-CAM (Wang et al. 2020): gradient-free; each channel's upsampled, normalised map masks
  the input and the class score of the masked input is the weight.

Maps are returned at input resolution, min-max normalised to [0, 1] per image (or raw).
"""

from __future__ import annotations

from collections.abc import Callable

METHODS = ("gradcam", "gradcam++", "scorecam")


def _normalise(cam):

    flat = cam.flatten(1)
    lo = flat.min(1, keepdim=True).values
    hi = flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(1e-8)).view_as(cam)


def class_activation_map(
    model,
    x,
    target: int,
    method: str = "gradcam",
    layer=None,
    forward: Callable | None = None,
    scorecam_batch: int = 32,
    normalise: bool = True,
):
    """(N, H, W) maps in [0, 1] for class `target` on inputs `x` (N, C, H, W).

    `forward(x) -> logits` defaults to `model(x)`; pass a closure for detectors that take
    extra inputs (e.g. landmarks). `normalise=False`: the raw (>= 0) maps, so that the
    rows of one face (a tile model's tiles) keep their relative strength.
    """
    import torch
    import torch.nn.functional as F

    if method not in METHODS:
        raise ValueError(f"unknown CAM method {method!r}; valid: {', '.join(METHODS)}")
    layer = layer if layer is not None else model.gradcam_layers()[-1]
    fwd = forward or model
    # The forward hook only records the layer's output; the gradient comes from
    # torch.autograd.grad below. No tensor hook, no closure over a store: a tensor hook
    # whose closure holds the activation forms a cycle through the autograd graph that the
    # garbage collector cannot see, and it leaked the whole graph on every call.
    acts: list = []
    handle = layer.register_forward_hook(lambda _m, _inp, out: acts.append(out))
    was_training = model.training
    model.eval()
    try:
        x = x.detach().clone().requires_grad_(method != "scorecam")
        with torch.set_grad_enabled(method != "scorecam"):
            logits = fwd(x)
        if not acts:
            raise ValueError("the Grad-CAM layer was not called in the forward pass")
        act_live = acts[-1]
        act = act_live.detach()
        if method == "scorecam":
            weights = _scorecam_weights(fwd, x.detach(), act, target, scorecam_batch)
        else:
            (grad,) = torch.autograd.grad(logits[:, target].sum(), act_live)
            grad = grad.detach()
            if method == "gradcam":
                weights = grad.mean(dim=(2, 3))
            else:  # gradcam++
                g2, g3 = grad.pow(2), grad.pow(3)
                denom = 2 * g2 + (act * g3).sum(dim=(2, 3), keepdim=True)
                alpha = g2 / torch.where(denom != 0, denom, torch.ones_like(denom))
                weights = (alpha * F.relu(grad)).sum(dim=(2, 3))
        del logits, act_live
        cam = F.relu((weights[:, :, None, None] * act).sum(1, keepdim=True))
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
        cam = _normalise(cam[:, 0]) if normalise else cam[:, 0]
        return cam.detach().cpu()
    finally:
        handle.remove()
        acts.clear()
        model.train(was_training)


def _scorecam_weights(fwd, x, act, target: int, batch: int):
    import torch
    import torch.nn.functional as F

    n, k = act.shape[:2]
    maps = F.interpolate(act, size=x.shape[-2:], mode="bilinear", align_corners=False)
    maps = _normalise(maps.flatten(0, 1)).view(n, k, *x.shape[-2:])
    weights = torch.zeros(n, k)
    with torch.no_grad():
        for i in range(n):
            for s in range(0, k, batch):
                m = maps[i, s : s + batch, None]  # (b, 1, H, W)
                scores = torch.softmax(fwd(x[i : i + 1] * m), dim=1)[:, target]
                weights[i, s : s + batch] = scores.cpu()
    return weights.to(act.device)


def overlay(image, cam, alpha: float = 0.45):
    """Blend a [0, 1] map (any size) over an RGB uint8 image with the jet colour map."""
    import cv2
    import numpy as np

    h, w = image.shape[:2]
    cam = cv2.resize(np.asarray(cam, dtype=np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    heat = cv2.applyColorMap(np.uint8(255 * np.clip(cam, 0, 1)), cv2.COLORMAP_JET)[:, :, ::-1]
    return np.uint8((1 - alpha) * image + alpha * heat)
