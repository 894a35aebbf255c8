"""FrameAnnotator: the picture it draws (masks, boxes, ``#id label``) and the buffer it draws into."""

import numpy as np
import pytest
import supervision as sv

from promptrack.pipeline.annotate import FrameAnnotator

PALETTE = np.array([c.as_bgr() for c in sv.ColorPalette.DEFAULT.colors], dtype=float)


def detections(masks, ids, names=None):
    names = names if names is not None else ["obj"] * len(ids)
    return sv.Detections(xyxy=sv.mask_to_xyxy(masks).astype(np.float32), mask=masks, tracker_id=np.array(ids),
                         data={"class_name": np.array(names, dtype=object)})


def painted_reference(frame_rgb, masks, ids, opacity=0.45):
    """Masks only, pixel by pixel: each pixel takes the colour of the smallest mask covering it (the
    later one among equal areas), blended as (1 - opacity) * pixel + opacity * colour."""
    image = frame_rgb[..., ::-1].astype(float)
    areas = masks.reshape(len(masks), -1).sum(1)
    for k in np.argsort(-areas, kind="stable"):  # largest first, so the smallest ends on top
        colour = PALETTE[ids[k] % len(PALETTE)]
        image[masks[k]] = (1 - opacity) * frame_rgb[..., ::-1][masks[k]] + opacity * colour
    return np.rint(image).astype(np.uint8)


def masks_only(annotator, frame, d):
    """Masks alone, without boxes and labels."""
    image = frame[..., ::-1].copy()
    annotator.paint_masks(image, d.mask, d.xyxy, d.tracker_id, d.mask.reshape(len(d), -1).sum(1))
    return image


def overlapping_scene(seed=0, h=90, w=120):
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    masks = np.zeros((6, h, w), bool)
    masks[0, 5:85, 5:115] = True  # a large one ...
    masks[1, 20:50, 30:70] = True  # ... a smaller one on it ...
    masks[2, 30:40, 40:60] = True  # ... and a smaller one on that
    masks[3, 40:89, 60:119] = rng.random((49, 59)) > 0.4  # ragged, partly over 0 and 1, to the frame's edge
    masks[4, 0:10, 0:10] = True  # two equal areas overlapping: the later one shows
    masks[5, 5:15, 5:15] = True
    return frame, masks


def test_overlapping_masks_match_the_reference_smaller_on_top():
    frame, masks = overlapping_scene()
    ids = [1, 2, 3, 4, 5, 6]
    ours = masks_only(FrameAnnotator(0.45), frame, detections(masks, ids))
    ref = painted_reference(frame, masks, ids)
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1
    # who shows where: the smallest, and the later of two equal areas
    for (y, x), k in (((35, 50), 2), ((25, 35), 1), ((70, 20), 0), ((7, 7), 5), ((2, 2), 4)):
        expected = np.rint(0.55 * frame[y, x, ::-1] + 0.45 * PALETTE[ids[k]])
        assert np.abs(ours[y, x].astype(int) - expected).max() <= 1, (y, x, k)
    untouched = ~masks.any(0)
    assert (ours[untouched] == frame[..., ::-1][untouched]).all()


def test_the_whole_picture_matches_supervisions_annotators():
    frame, masks = overlapping_scene(seed=1)
    d = detections(masks, [4, 9, 1, 30, 7, 12], ["a", "b", "c", "d", "e", "f"])
    lookup = sv.ColorLookup.TRACK
    labels = [f"#{i} {n}" for i, n in zip(d.tracker_id, d.data["class_name"])]
    ref = np.ascontiguousarray(frame[..., ::-1])
    ref = sv.MaskAnnotator(color_lookup=lookup, opacity=0.45).annotate(ref, d)
    ref = sv.BoxAnnotator(color_lookup=lookup, thickness=2).annotate(ref, d)
    ref = supervision_labels(ref, d, labels)
    ours = FrameAnnotator(0.45).annotate(frame, d)
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1


def tag_height(label, scale=0.5, pad=4):
    """Height of supervision's tag for `label`: its lines (an empty one as tall as "Tg") and padding."""
    import cv2

    lines = label.splitlines() or [""]
    heights = [cv2.getTextSize(line or "Tg", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][1] for line in lines]
    return sum(heights) + (len(lines) + 1) * pad


def supervision_labels(image, d, labels):
    """supervision's ``LabelAnnotator`` (``TOP_LEFT``) tag by tag, in order; a tag with no room
    above its box (ours then hangs below the box's top edge) moved down by its height (``text_offset``)."""
    for k, label in enumerate(labels):
        top, height = int(d.xyxy[k, 1]), tag_height(label)
        offset = (0, 0) if top >= height else (0, height)
        image = sv.LabelAnnotator(color_lookup=sv.ColorLookup.TRACK, text_scale=0.5, text_padding=4,
                                  text_offset=offset).annotate(image, d[k:k + 1], labels=[label])
    return image


def test_boxes_and_labels_are_supervisions_pixel_for_pixel():
    """Without masks nothing is blended: the boxes and tags must equal supervision's exactly, for
    long ids, a two-line name, an empty name, a box past the frame's edge, and a box too near the
    top for its tag, whose tag hangs below the box's top edge (supervision's tag moved down by
    ``text_offset``)."""
    rng = np.random.default_rng(5)
    frame = rng.integers(0, 255, (120, 200, 3), dtype=np.uint8)
    xyxy = np.array([[10.7, 40.2, 80.9, 100.5], [60, 2, 150, 50], [120, 70, 260, 130], [30, 60, 31, 61]], np.float32)
    names = ["car", "two\nlines", "", "tiny"]
    d = sv.Detections(xyxy=xyxy, tracker_id=np.array([7, 123456, 20, 41]), data={"class_name": np.array(names, object)})
    labels = [f"#{i} {n}".strip() for i, n in zip(d.tracker_id, names)]
    lookup = sv.ColorLookup.TRACK
    ref = np.ascontiguousarray(frame[..., ::-1])
    ref = sv.BoxAnnotator(color_lookup=lookup, thickness=2).annotate(ref, d)
    ref = supervision_labels(ref, d, labels)
    ours = FrameAnnotator(0.45).annotate(frame, d)
    assert (ours == ref).all()
    assert (ours != frame[..., ::-1]).any(2).sum() > 500  # something was drawn


def test_a_tag_of_a_box_at_the_top_edge_is_drawn_inside_the_frame():
    frame = np.zeros((60, 120, 3), np.uint8)
    for top in (0, 3, -10):  # at the edge, just below it (no room for the tag), starting above the frame
        d = sv.Detections(xyxy=np.array([[10, top, 100, 50]], np.float32), tracker_id=np.array([3]),
                          data={"class_name": np.array(["car"], object)})
        image = FrameAnnotator().annotate(frame, d)
        height = tag_height("#3 car")
        row0 = max(top, 0)
        tag = image[row0 + 1:row0 + height - 1, 12:40]
        colour = PALETTE[3].astype(np.uint8)
        assert (tag == colour).all(2).mean() > 0.5, top  # the tag's fill, in id 3's colour ...
        assert (tag.min(2) > 200).any(), top  # ... with the white text on it
        assert not (image[row0 + height + 2:47, 12:40] == colour).all(2).any(), top  # inside the box: nothing


def test_scratch_kept_between_frames_of_other_sizes_and_content_changes_nothing():
    annotator = FrameAnnotator(0.45)
    for seed, (h, w) in enumerate(((90, 120), (300, 400), (90, 120))):
        frame, masks = overlapping_scene(seed, h, w)
        masks = np.roll(masks, 7 * seed, axis=2)  # the masks move
        d = detections(masks, [1, 2, 3, 4, 5, 6])
        assert (annotator.annotate(frame, d) == FrameAnnotator(0.45).annotate(frame, d)).all()


def test_nothing_to_draw_gives_the_frame_in_bgr():
    frame, masks = overlapping_scene()
    d = detections(masks, [1, 2, 3, 4, 5, 6])[:0]
    assert (FrameAnnotator().annotate(frame, d) == frame[..., ::-1]).all()
    empty = np.zeros((2, 90, 120), bool)  # objects whose masks are empty: their boxes and labels only
    d = sv.Detections(xyxy=np.array([[10, 30, 40, 60], [50, 40, 80, 80]], np.float32), mask=empty,
                      tracker_id=np.array([1, 2]))
    image = FrameAnnotator().annotate(frame, d)
    assert (image[45, 25] == frame[45, 25, ::-1]).all()  # inside a box, not painted
    assert (image[45, 10] == PALETTE[1]).all()  # the box's edge in id 1's colour


def test_ids_beyond_the_palette_wrap_around_and_every_object_is_painted():
    h, w, n = 40, 400, 300  # more objects than a uint8 label map could number
    frame = np.zeros((h, w, 3), np.uint8)
    masks = np.zeros((n, h, w), bool)
    for k in range(n):
        masks[k, (k // 100) * 12:(k // 100) * 12 + 3, (k % 100) * 4:(k % 100) * 4 + 3] = True
    ids = np.arange(1000, 1000 + n)
    image = masks_only(FrameAnnotator(0.45), frame, detections(masks, ids))
    for k in (0, 21, 150, 299):
        y, x = (k // 100) * 12 + 1, (k % 100) * 4 + 1
        assert np.abs(image[y, x].astype(int) - np.rint(0.45 * PALETTE[ids[k] % len(PALETTE)])).max() <= 1
    assert image[masks.any(0)].any(1).all()  # no object left out (the palette has no black)
    same_colour = masks_only(FrameAnnotator(0.45), frame, detections(masks[:1], [ids[0] % len(PALETTE)]))
    assert (same_colour[1, 1] == image[1, 1]).all()  # id 1000 looks like id 1000 % 21
