"""COCO run-length encoding of masks (pycocotools), as written in ``tracks.json``.

Example:
    >>> import numpy as np
    >>> m = np.zeros((4, 6), bool); m[1:3, 2:5] = True
    >>> rle = encode_mask(m); rle["size"]
    [4, 6]
    >>> bool((decode_mask(rle) == m).all())
    True
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils


def encode_mask(mask: np.ndarray) -> dict:
    """Boolean HxW mask -> ``{"size": [H, W], "counts": "<compressed RLE string>"}``."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(x) for x in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_mask(rle: dict) -> np.ndarray:
    """The inverse of :func:`encode_mask`: a boolean HxW mask."""
    counts = rle["counts"]
    coded = {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return mask_utils.decode(coded).astype(bool)
