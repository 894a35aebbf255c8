"""Device post-processing of the engine's masks: low-res hole filling, boxes, areas, the one host copy."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv
import torch
import torch.nn.functional as F

from promptrack.trackers.base import detections_from_masks, unpack_masks
from promptrack.trackers.device_frame import DeviceMasks
from promptrack.trackers.mask_frame import HostMasks
from promptrack.trackers.masks import (boxes_and_areas, fill_small_holes, fill_small_holes_lowres, pack_bits,
                                       pairwise_overlap, small_components, unpack_bits)


def _blobs(count: int, size: int, seed: int) -> torch.Tensor:
    """Random blobby logits (count, 1, size, size): holes, specks and snakes of many sizes."""
    noise = torch.randn(count, 1, size, size, generator=torch.Generator().manual_seed(seed))
    return F.avg_pool2d(noise, 3, stride=1, padding=1) + 0.05


@pytest.mark.parametrize("max_area", [1, 3, 8, 25])
def test_low_res_hole_filling_equals_connected_components(max_area):
    logits = _blobs(6, 40, seed=max_area)
    ours = (fill_small_holes_lowres(logits, max_area)[:, 0] > 0).numpy()
    for k, mask in enumerate((logits[:, 0] > 0).numpy()):
        np.testing.assert_array_equal(ours[k], fill_small_holes(mask, max_area), err_msg=str(k))
    assert not np.array_equal(ours, (logits[:, 0] > 0).numpy())  # it did change something


def test_large_components_are_never_taken_for_small_ones():
    # a one-pixel-wide snake of 29 pixels: after few rounds its labels differ along it, yet it stays
    snake = torch.zeros(1, 20, 20, dtype=torch.bool)
    snake[0, 5, 0:15] = True
    snake[0, 5:21, 14] = True
    assert int(snake.sum()) == 29
    assert not small_components(snake, 5).any()
    assert not small_components(snake, 28).any()
    assert small_components(snake, 29)[snake].all() and not small_components(snake, 29)[~snake].any()


def test_a_mask_of_only_specks_is_kept():
    logits = -torch.ones(1, 1, 16, 16)
    logits[0, 0, 3, 3] = 1.0
    assert (fill_small_holes_lowres(logits, 4) > 0).sum() == 1


def test_boxes_areas_and_the_packed_host_copy():
    masks = fill_small_holes_lowres(_blobs(5, 37, seed=9), 4)[:, 0] > 0.5
    masks[2] = False  # an empty mask: box of zeros, area 0
    boxes, areas = boxes_and_areas(masks)
    np.testing.assert_array_equal(boxes.numpy(), sv.mask_to_xyxy(masks.numpy()))
    assert boxes.dtype == areas.dtype == torch.int64  # integers: no float cast on the device
    np.testing.assert_array_equal(areas.numpy(), masks.flatten(1).sum(1).numpy())
    packed = pack_bits(masks)  # what crosses to the host: 8 pixels a byte, numpy's bit order, a row a mask
    assert packed.shape == (5, -(-37 * 37 // 8))  # 1369 pixels: each row padded to whole bytes
    dets = unpack_masks(detections_from_masks(range(5), xyxy=boxes.numpy(), areas=areas.numpy(),
                                              packed=packed.numpy()), (37, 37))
    np.testing.assert_array_equal(dets.mask, masks.numpy())
    np.testing.assert_array_equal(unpack_bits(packed, (37, 37)), masks)  # and back on the device


def test_the_associators_questions_answered_on_the_device_equal_the_host_answers():
    """Areas, boxes, pair overlaps and box coverage of packed device masks (what a GPU tracker gives the
    associator instead of its masks) equal those counted on the host masks, boxes touching every edge."""
    masks = fill_small_holes_lowres(_blobs(6, 45, seed=4), 2)[:, 0] > 0
    masks = torch.cat([masks, masks[:1] | masks[1:2], torch.zeros_like(masks[:1])])  # an overlap, an empty
    masks = F.interpolate(masks[:, None].float(), size=(45, 61))[:, 0] > 0  # not square, 2745 px: padded rows
    boxes, areas = boxes_and_areas(masks)
    ids = [3, 1, 4, 15, 9, 2, 6, 5]
    device = DeviceMasks(ids, areas.numpy(), boxes.numpy(), pairwise_overlap(masks).numpy(), pack_bits(masks),
                         (45, 61))
    host = HostMasks(dict(zip(ids, masks.numpy())))
    assert device.ids == host.ids and device.shape == host.shape == (45, 61)
    for i in ids:
        assert device.area(i) == host.area(i)
        np.testing.assert_array_equal(device.box(i), host.box(i))
        for j in ids:
            assert device.overlap(i, j) == host.overlap(i, j), (i, j)
    assert host.overlap(3, 6) > 0 and host.area(5) == 0
    rng = np.random.default_rng(0)
    corners = rng.uniform(-10, 70, size=(12, 2, 2))
    dets = np.concatenate([corners.min(1), corners.max(1)], 1)
    dets = np.concatenate([dets, [[0, 0, 61, 45], [30.4, 20.6, 30.4, 40], [-5, -5, 100, 100]]])
    for chosen in (ids, [6, 3], [5]):
        inside, covered = device.box_cover(dets, chosen)
        expected_inside, expected_covered = host.box_cover(dets, chosen)
        np.testing.assert_array_equal(inside, expected_inside)
        np.testing.assert_array_equal(covered, expected_covered)
    assert expected_inside.shape == (1, 15) and not expected_covered.any()  # the empty mask covers nothing
