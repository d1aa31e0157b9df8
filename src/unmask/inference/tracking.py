"""Follow faces across video frames by box overlap (pure functions, no I/O).

Sampled frames are far apart (16 per video by default), so motion models buy little; greedy
IoU matching against each track's last box is what FaceForensics-style pipelines use too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix0, iy0 = max(a[0], b[0]), max(a[1], b[1])
    ix1, iy1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, ix1 - ix0) * max(0.0, iy1 - iy0)
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def assign_tracks(
    frames: Sequence[int], boxes: Sequence[Sequence[float]], min_iou: float = 0.3
) -> list[int]:
    """Track id for each detection, given its frame index and box.

    Detections are processed frame by frame; each is matched greedily (highest IoU first)
    to the track whose most recent box overlaps it most, at most one detection per track
    per frame; unmatched detections open new tracks. Ids are 0, 1, ... in order of
    first appearance.
    """
    track_of = [-1] * len(frames)
    last_box: list[Sequence[float]] = []
    order = sorted(range(len(frames)), key=lambda i: frames[i])
    start = 0
    while start < len(order):
        f = frames[order[start]]
        end = start
        while end < len(order) and frames[order[end]] == f:
            end += 1
        dets = order[start:end]
        pairs = sorted(
            ((iou(boxes[d], last_box[t]), d, t) for d in dets for t in range(len(last_box))),
            reverse=True,
        )
        used_d: set[int] = set()
        used_t: set[int] = set()
        for score, d, t in pairs:
            if score < min_iou or d in used_d or t in used_t:
                continue
            track_of[d] = t
            used_d.add(d)
            used_t.add(t)
        for d in dets:
            if track_of[d] < 0:
                track_of[d] = len(last_box)
                last_box.append(boxes[d])
            else:
                last_box[track_of[d]] = boxes[d]
        start = end
    return track_of


def aggregate_video(
    tracks: Sequence[int], scores: Sequence[float], min_frames: int = 1
) -> dict[int, float]:
    """Mean P(fake) per track (tracks seen in fewer than `min_frames` frames are dropped,
    unless every track is that short)."""
    tracks_a = np.asarray(tracks)
    scores_a = np.asarray(scores, dtype=float)
    out = {int(t): float(scores_a[tracks_a == t].mean()) for t in np.unique(tracks_a)}
    long = {t: s for t, s in out.items() if (tracks_a == t).sum() >= min_frames}
    return long or out
