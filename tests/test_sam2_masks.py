"""Device post-processing of the engine's masks: low-res hole filling, boxes, areas, the one host copy."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv
import torch
import torch.nn.functional as F

from promptrack.trackers.masks import (boxes_and_areas, fill_small_holes, fill_small_holes_lowres, pack_bits,
                                       small_components)


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
    packed = pack_bits(masks).numpy()  # what crosses to the host: 8 pixels a byte, numpy's bit order
    assert packed.nbytes == -(-masks.numel() // 8)
    np.testing.assert_array_equal(np.unpackbits(packed, count=masks.numel()).reshape(masks.shape).view(bool),
                                  masks.numpy())
