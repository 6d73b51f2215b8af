"""Visual Saliency-induced Index (Zhang, Shen & Li, IEEE TIP 2014) via ``piq``.

VSI weights gradient and colour similarity by visual saliency, so errors where people look cost more;
it needs no learned weights, which makes it usable offline.
"""

import numpy as np
import piq
import torch


def vsi(a: np.ndarray, b: np.ndarray) -> float:
    """VSI of two uint8 RGB images: 1 = identical, lower = worse."""
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    if a.dtype != np.uint8 or b.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected uint8 HxWx3 images, got {a.dtype}/{b.dtype} {a.shape}")
    return float(piq.vsi(_as_batch(a), _as_batch(b), data_range=255.0))


def _as_batch(img: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> 1x3xHxW float64 in 0..255 (float64 keeps the result reproducible to ~1e-12)."""
    return torch.from_numpy(img).permute(2, 0, 1)[None].double()
