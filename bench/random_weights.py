"""Random-weight SAM 2.1 checkpoints for the benchmarks, in the real file layout (no download).

The size names the config and the file name as the project's own table does
(``promptrack.pipeline.models.sam2_spec``), so a checkpoint written here loads by path exactly as a
downloaded one: ``tracker.sam2=<path>`` infers the size from the name.

Example:
    >>> path = random_sam2_checkpoint(Path(tmp), "tiny")      # doctest: +SKIP
    >>> path.name                                              # doctest: +SKIP
    'sam2.1_hiera_tiny.pt'
"""

from __future__ import annotations

from pathlib import Path


def random_sam2_checkpoint(folder: Path, size: str = "tiny", seed: int = 0) -> Path:
    """SAM 2.1 of `size` with seeded random weights, saved in `folder` under the hub's file name."""
    import torch
    from sam2.build_sam import build_sam2

    from promptrack.pipeline.models import sam2_spec

    spec = sam2_spec(size)
    torch.manual_seed(seed)
    model = build_sam2(spec.config, None, device="cpu")
    path = Path(folder) / spec.filename
    torch.save({"model": model.state_dict()}, path)
    return path
