"""bench/gpucount: the GPU cost of code counted on the CPU (launches, syncs, transfers, casts, FLOPs)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from gpucount import count  # noqa: E402

from promptrack.trackers import transfer  # noqa: E402

DEVICE = torch.device("cpu")  # plays the GPU


def _line_of(marker: str) -> str:
    """'tests/test_gpu_counts.py:N' of the line of this file holding `marker`."""
    lines = Path(__file__).read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if marker in line and "_line_of" not in line)
    return f"tests/test_gpu_counts.py:{number}"


def test_views_are_not_launches():
    x = torch.ones(4, 6, device=DEVICE)
    with count() as counter, counter.section("views") as tally:
        y = x.view(6, 4).t().permute(1, 0).reshape(24)[2:10].unsqueeze(0).expand(3, -1).squeeze(1)
    assert tally.launches == 0 and tally.op_calls >= 6 and y.shape == (3, 8)
    with count() as counter, counter.section("math") as tally:
        (x.t() * 2 + 1).sum()
    assert tally.launches == 3  # mul, add, sum


def test_item_is_one_sync_at_its_line():
    x = torch.arange(5.0, device=DEVICE)
    with count() as counter, counter.section("item") as tally:
        total = (x * 2).sum().item()  # marker: item-sync
    assert total == 20.0
    assert [(s.kind, s.where) for s in tally.syncs] == [(".item()", _line_of("marker: item-sync"))]
    assert tally.d2h_bytes == 4


def test_reads_of_host_tensors_are_not_syncs():
    with count() as counter, counter.section("host") as tally:
        host = torch.from_numpy(np.arange(6, dtype=np.float32))
        value = (host * 2).sum().item()
        host.numpy()
    assert value == 30.0 and tally.syncs == [] and tally.launches == 0 and tally.host_ops == 2


def test_upload_of_host_data_blocks_but_transfer_upload_does_not():
    frame = np.zeros((4, 5, 3), dtype=np.uint8)
    with count(nonblocking_uploads=[transfer.upload]) as counter:
        with counter.section("to") as blocking:
            torch.from_numpy(frame).to(DEVICE)  # marker: blocking-to
            torch.tensor([1.0, 2.0], device=DEVICE)  # marker: blocking-tensor
        with counter.section("upload") as pinned:
            on_device = transfer.upload(frame, DEVICE)
            on_device.float().sum()  # now a device tensor: its ops are launches
    assert [(s.kind, s.where) for s in blocking.syncs] == [
        ("blocking upload", _line_of("marker: blocking-to")), ("blocking upload", _line_of("marker: blocking-tensor"))]
    assert blocking.h2d_bytes == 60 + 8
    assert pinned.syncs == [] and pinned.uploads == 1 and pinned.h2d_bytes == 60 and pinned.launches == 2


def test_download_is_a_sync_with_its_bytes():
    x = torch.ones(3, 4, device=DEVICE)
    with count() as counter, counter.section("download") as tally:
        transfer.download(x * 1)
        (x > 0).cpu()
    assert [s.kind for s in tally.syncs] == [".cpu()", ".cpu()"]
    assert tally.d2h_bytes == 48 + 12


def test_boolean_mask_indexing_and_nonzero_are_syncs():
    x = torch.arange(6.0, device=DEVICE)
    with count() as counter, counter.section("masks") as tally:
        picked = x[x > 2]  # marker: bool-index
        where = torch.nonzero(x)  # marker: nonzero
        x[torch.tensor([0, 1], device=DEVICE)]  # an integer index: no sync beyond its upload
    assert picked.tolist() == [3.0, 4.0, 5.0] and len(where) == 5
    assert [(s.kind, s.where) for s in tally.syncs] == [
        ("boolean mask", _line_of("marker: bool-index")), ("nonzero", _line_of("marker: nonzero")),
        ("blocking upload", _line_of("integer index"))]


def test_autocast_casts_a_linear_weight_once_per_context():
    layer = torch.nn.Linear(16, 8)
    x = torch.ones(4, 16, device=DEVICE)
    with count() as counter:
        with counter.section("one context") as one:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                first = layer(x)
                layer(x)
                layer(x)
        with counter.section("new context") as again:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                layer(x)
    assert first.dtype == torch.bfloat16  # emulated as on CUDA, even on the CPU
    # weight and bias cast once (cached), the input three times
    assert one.weight_casts == 2 and one.autocast_casts == 2 + 3
    assert one.autocast_cast_bytes == (16 * 8 + 8) * 6 + 3 * 4 * 16 * 6
    assert again.weight_casts == 2  # a new context casts the weights again
    assert one.launches == 5 + 3  # the casts and three addmm


def test_autocast_runs_fp32_ops_in_float32():
    x = torch.ones(2, 8, device=DEVICE, dtype=torch.bfloat16)
    with count() as counter, counter.section("softmax") as tally:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = x.softmax(-1)
            kept = x + 1  # not on a list: left alone
    assert out.dtype == torch.float32 and kept.dtype == torch.bfloat16 and tally.autocast_casts == 1


def test_sdpa_flops_are_counted():
    q = torch.ones(2, 4, 32, 16, device=DEVICE)
    kv = torch.ones(2, 4, 64, 16, device=DEVICE)
    with count() as counter, counter.section("attention") as tally:
        F.scaled_dot_product_attention(q, kv, kv)
    assert tally.flops == 4 * 2 * 4 * 32 * 64 * 16
    assert tally.launches == 1 and tally.attention[0]["masked"] is False
    with count() as counter, counter.section("matmul") as tally:
        torch.ones(8, 16, device=DEVICE) @ torch.ones(16, 4, device=DEVICE)
    assert tally.flops == 2 * 8 * 16 * 4


def test_dtype_casts_are_counted_with_bytes():
    x = torch.ones(10, 10, device=DEVICE)
    with count() as counter, counter.section("casts") as tally:
        half = x.to(torch.bfloat16)
        half.float()
        x.to(torch.float32)  # no change: no cast
    assert tally.casts == 2 and tally.cast_bytes == (400 + 200) * 2


def test_shapes_only_counts_what_the_real_run_counts():
    block = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.GELU(), torch.nn.Conv2d(8, 8, 1))
    image = torch.ones(1, 3, 96, 96, device=DEVICE)
    tallies = []
    for shapes_only in (False, True):
        with count(shapes_only=shapes_only) as counter, counter.section("conv") as tally:
            out = block(image)
        assert out.shape == (1, 8, 96, 96)
        tallies.append((tally.launches, tally.flops))
    assert tallies[0] == tallies[1] and tallies[0][1] == 2 * 96 * 96 * (8 * 27 + 8 * 8)


def test_other_threads_are_not_counted():
    import threading

    x = torch.ones(3, device=DEVICE)
    with count() as counter, counter.section("threads") as tally:
        worker = threading.Thread(target=lambda: (x * 2).sum().item())
        worker.start()
        worker.join()
    assert tally.launches == 0 and tally.syncs == []


def test_cost_model_recovers_its_constants():
    from gpucount.costmodel import CostModel

    c, p = 15e-6, 200e12
    anchors = [(launches, flops, 0, launches * c + flops / p) for launches, flops in
               ((1400, 1e12), (1500, 4e12), (1450, 12e12))]
    model = CostModel.fit(anchors, bandwidth=25e9)
    assert abs(model.launch_s - c) < 1e-9 and abs(model.flops_per_s / p - 1) < 1e-6
    assert max(abs(r) for r in model.residuals) < 1e-9


def test_e2e_numpy_counter_sees_functions_and_methods_by_site():
    import sys as _sys

    from gpu_counts_e2e import NumpyCalls, numpy_functions_seen

    class Frames:  # what numpy_functions_seen reads: the counted frame's recorder
        numpy_now = NumpyCalls(mask_pixels=64)

    packed = np.zeros(8, dtype=np.uint8)
    with numpy_functions_seen(Frames):
        _sys.setprofile(Frames.numpy_now.profile)
        try:
            masks = np.unpackbits(packed).reshape(1, 8, 8)  # marker: unpack
            small = np.zeros(4).astype(bool)  # marker: small
        finally:
            _sys.setprofile(None)
    assert masks.shape == (1, 8, 8) and small.shape == (4,)
    big = Frames.numpy_now.mask_sized
    assert big[f"np.unpackbits @ {_line_of('marker: unpack')}"] == 1
    assert big[f"ndarray.reshape @ {_line_of('marker: unpack')}"] == 1
    assert not any(_line_of("marker: small") in site for site in big)
    assert Frames.numpy_now.calls[f"ndarray.astype @ {_line_of('marker: small')}"] == 1
