"""Drawing a finished frame: masks, boxes and ``#id label``, one colour per track id.

One :class:`FrameAnnotator` serves every picture the pipeline makes: the annotated video file,
the live segments and the MJPEG live view. It looks like supervision's ``MaskAnnotator`` +
``BoxAnnotator`` + ``LabelAnnotator`` with ``ColorLookup.TRACK`` (same default palette, same
opacity blend, smaller masks on top, same box and tag layout), but paints the masks in one pass
over each object's box instead of over the whole frame per mask, and draws boxes and tags with cv2
directly: 1080p with 16 objects costs 3.3-4.3 ms on one CPU core instead of 100-130 ms
(``python bench/e2e.py --annotation``; numbers in ``bench/RESULTS.md``).

Example:
    >>> import numpy as np, supervision as sv
    >>> masks = np.zeros((1, 48, 64), bool); masks[0, 10:30, 10:40] = True
    >>> dets = sv.Detections(xyxy=sv.mask_to_xyxy(masks).astype(np.float32), mask=masks, tracker_id=np.array([3]),
    ...                      data={"class_name": np.array(["car"])})
    >>> image = FrameAnnotator(mask_opacity=0.5).annotate(np.zeros((48, 64, 3), np.uint8), dets)  # BGR
    >>> image.shape, bool(image[20, 25].any()), bool(image[40, 60].any())
    ((48, 64, 3), True, False)
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import supervision as sv

from ..trackers.base import mask_areas


FONT = cv2.FONT_HERSHEY_SIMPLEX  # supervision's label font
WHITE = (255, 255, 255)


def _labels(detections: sv.Detections) -> list[str]:
    names = detections.data.get("class_name") if detections.data else None
    return [str(n) for n in names] if names is not None else [""] * len(detections)


@lru_cache(maxsize=4096)  # a frame's tags repeat from frame to frame; bounded, as a live run's ids grow
def _text_size(line: str, scale: float, thickness: int) -> tuple[int, int]:
    """Width and height of one line of text; an empty line is as tall as "Tg", as supervision counts it."""
    width, height = cv2.getTextSize(line, FONT, scale, thickness)[0]
    if not line:
        height = cv2.getTextSize("Tg", FONT, scale, thickness)[0][1]
    return width, height


def tag_top(box_top: int, tag_height: int) -> int:
    """The top row of a box's tag: above the box where it fits, else from the box's top edge down
    (from row 0 for a box that starts above the frame), so the tag always shows.

    >>> tag_top(50, 21), tag_top(5, 21), tag_top(-8, 21)
    (29, 5, 0)
    """
    return box_top - tag_height if box_top >= tag_height else max(box_top, 0)


class FrameAnnotator:
    """RGB frame + finished Detections -> BGR image with masks, boxes and ``#id label`` drawn.

    Args:
        mask_opacity: weight of the mask colour in the blend (supervision's ``opacity``).
        palette: colours; an object's colour is ``palette.by_idx(track_id)``, fixed for its life.
    """

    def __init__(self, mask_opacity: float = 0.45, palette: sv.ColorPalette = sv.ColorPalette.DEFAULT,
                 thickness: int = 2, text_scale: float = 0.5, text_padding: int = 4) -> None:
        self.mask_opacity = float(mask_opacity)
        self.palette = palette
        self.thickness, self.text_scale, self.text_padding = int(thickness), float(text_scale), int(text_padding)
        # BGR colour of every palette entry, indexed by track_id % len(palette)
        self._bgr = np.array([c.as_bgr() for c in palette.colors], dtype=np.uint8)
        self._bgr_tuples = [tuple(int(v) for v in c) for c in self._bgr]  # as cv2's drawing calls take them

    def annotate(self, frame: np.ndarray, detections: sv.Detections) -> np.ndarray:
        """The frame (RGB, HxWx3 uint8) with `detections` drawn, as a new BGR image."""
        image = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        if not len(detections):
            return image
        ids = detections.tracker_id if detections.tracker_id is not None else np.arange(len(detections))
        if detections.mask is not None:
            self.paint_masks(image, detections.mask, detections.xyxy, ids, mask_areas(detections))
        labels = [f"#{i} {name}".strip() for i, name in zip(ids, _labels(detections))]
        self.draw_boxes_and_labels(image, detections.xyxy, ids, labels)
        return image

    def draw_boxes_and_labels(self, image: np.ndarray, xyxy: np.ndarray, ids: np.ndarray, labels: list[str]) -> None:
        """Each box, then each label on a filled tag above the box's top-left corner, in its id's colour.

        The layout of supervision's ``BoxAnnotator`` + ``LabelAnnotator`` (``TOP_LEFT``, white text,
        lines stacked `text_padding` apart inside `text_padding` of tag), drawn straight with cv2:
        supervision resolves colours and measures text per object per call, which costs twice the
        drawing itself. A tag with no room above its box (a box at the frame's top edge) hangs
        below the box's top edge instead, inside the frame: supervision's ``TOP_LEFT`` tag moved
        down by ``text_offset``.
        """
        corners = np.asarray(xyxy).astype(int).tolist()  # truncated, as supervision does
        colours = [self._bgr_tuples[i % len(self._bgr_tuples)] for i in np.asarray(ids, dtype=np.int64).tolist()]
        for (x1, y1, x2, y2), colour in zip(corners, colours):
            cv2.rectangle(image, (x1, y1), (x2, y2), colour, self.thickness)
        pad = self.text_padding
        for (x, y, _, _), colour, label in zip(corners, colours, labels):
            lines = label.splitlines() or [""]
            sizes = [_text_size(line, self.text_scale, 1) for line in lines]
            width = max(w for w, _ in sizes) + 2 * pad
            height = sum(h for _, h in sizes) + (len(lines) + 1) * pad
            top = tag_top(y, height)
            cv2.rectangle(image, (x, top), (x + width, top + height), colour, -1)
            top += pad
            for line, (_, h) in zip(lines, sizes):
                if line:
                    cv2.putText(image, line, (x + pad, top + h), FONT, self.text_scale, WHITE, 1, cv2.LINE_AA)
                top += h + pad

    def paint_masks(self, image: np.ndarray, masks: np.ndarray, xyxy: np.ndarray, ids: np.ndarray,
                    areas: np.ndarray) -> None:
        """Blend each mask's colour into `image` (BGR, in place); smaller masks end up on top.

        Work is bounded by the objects' boxes, never the whole frame per mask. Objects are visited
        top first (smallest mask first, as if supervision painted the largest first): a map of the
        pixels already taken says where each one shows (its mask minus the taken pixels, one
        saturating subtract), then its box is blended once and copied where it shows.
        """
        h, w = image.shape[:2]
        boxes = np.asarray(xyxy, dtype=float).reshape(-1, 4)
        # pixel bounds of each box, inside the frame (np.minimum/maximum: np.clip costs more than the rest here)
        lo = np.maximum(np.floor(boxes[:, :2]), 0)
        hi = np.minimum(np.ceil(boxes[:, 2:]) + 1, (w, h))
        x1, y1 = lo.astype(int).T.tolist()
        x2, y2 = hi.astype(int).T.tolist()
        areas = np.asarray(areas)
        # top first: the reverse of "largest first, ties in index order", so among equal areas the later one shows
        order = [k for k in np.argsort(-areas, kind="stable")[::-1].tolist()
                 if x2[k] > x1[k] and y2[k] > y1[k] and areas[k] > 0]
        if not order:
            return
        masks = np.asarray(masks, dtype=bool)  # no copy when bool already; viewed as 0/1 bytes below
        ox, oy = min(x1[k] for k in order), min(y1[k] for k in order)
        taken = np.zeros((max(y2[k] for k in order) - oy, max(x2[k] for k in order) - ox), dtype=np.uint8)
        # pixel -> (1 - a) * pixel + a * colour: one affine map per object
        a = self.mask_opacity
        blends = np.zeros((len(boxes), 3, 4))
        blends[:, :, :3] = (1 - a) * np.eye(3)
        blends[:, :, 3] = a * self._bgr[np.asarray(ids, dtype=np.int64) % len(self._bgr)]
        for k in order:
            mask = masks[k, y1[k]:y2[k], x1[k]:x2[k]].view(np.uint8)  # bool as 0/1, no copy
            seen = taken[y1[k] - oy:y2[k] - oy, x1[k] - ox:x2[k] - ox]
            shows = cv2.subtract(mask, seen)  # mask and not taken: where this object shows
            cv2.max(seen, mask, dst=seen)
            region = image[y1[k]:y2[k], x1[k]:x2[k]]
            tinted = cv2.transform(region, blends[k])
            cv2.copyTo(tinted, shows, region)
