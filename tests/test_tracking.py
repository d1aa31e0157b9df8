from unmask.inference.tracking import aggregate_video, assign_tracks, iou


def test_iou_known_values():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    # half overlap: inter 50, union 150
    assert abs(iou((0, 0, 10, 10), (5, 0, 15, 10)) - 50 / 150) < 1e-12
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_two_faces_keep_their_tracks_across_frames():
    # two faces drifting right, detections listed in varying order per frame
    frames = [0, 0, 5, 5, 10, 10]
    boxes = [
        (0, 0, 10, 10),
        (50, 0, 60, 10),
        (52, 0, 62, 10),
        (2, 0, 12, 10),
        (4, 0, 14, 10),
        (54, 0, 64, 10),
    ]
    t = assign_tracks(frames, boxes)
    assert t[0] == t[3] == t[4]
    assert t[1] == t[2] == t[5]
    assert t[0] != t[1]
    assert sorted(set(t)) == [0, 1]


def test_new_face_opens_new_track():
    t = assign_tracks([0, 1, 2], [(0, 0, 10, 10), (100, 100, 110, 110), (1, 0, 11, 10)])
    assert t == [0, 1, 0]


def test_aggregate_mean_and_short_tracks_dropped():
    out = aggregate_video([0, 0, 0, 1], [0.2, 0.4, 0.6, 0.99], min_frames=2)
    assert set(out) == {0}
    assert abs(out[0] - 0.4) < 1e-12
    # when every track is short, keep them all
    assert set(aggregate_video([0, 1], [0.1, 0.9], min_frames=2)) == {0, 1}
