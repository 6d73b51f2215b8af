"""Paste the decoded key region onto the regenerated background with a feathered edge.

A hard paste leaves a visible seam where the two sources meet. Feathering blends a
thin band just inside the mask edge, and only there:

- outside the mask the output is exactly ``background``: the key image holds no
  valid content there, and letting it bleed outward would draw halos;
- deeper than ``feather_px`` inside the mask it is exactly ``key``: the pixels that
  were sent are delivered unchanged, so key-region metrics measure the key codec
  and not the compositor.
"""

from __future__ import annotations

import cv2
import numpy as np


def composite(background: np.ndarray, key: np.ndarray, mask: np.ndarray, feather_px: int = 3) -> np.ndarray:
    """Blend ``key`` over ``background`` where ``mask`` is True; uint8 H×W×3 out.

    The blend weight is the mask blurred with a Gaussian of support ``feather_px``,
    kept only inside the mask, and forced to exactly 1 where the distance to the
    nearest non-mask pixel exceeds ``feather_px``. ``feather_px=0`` is a hard paste.
    """
    for name, image in (("background", background), ("key", key)):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"{name} must be a uint8 H×W×3 array, got {image.dtype} {image.shape}")
    if key.shape != background.shape or mask.shape != background.shape[:2] or mask.dtype != np.bool_:
        raise ValueError(f"key {key.shape}, background {background.shape} and bool mask {mask.shape} "
                         f"must have the same size")
    if feather_px < 0:
        raise ValueError(f"feather_px must be >= 0, got {feather_px}")
    if feather_px == 0 or not mask.any():
        return np.where(mask[..., None], key, background)
    size = 2 * feather_px + 1
    blurred = cv2.GaussianBlur(mask.astype(np.float32), (size, size), sigmaX=feather_px / 2,
                               borderType=cv2.BORDER_REPLICATE)
    depth = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    weight = np.where(mask, blurred, 0.0)[..., None]
    blended = np.round(weight * key + (1.0 - weight) * background).astype(np.uint8)
    return np.where((depth > feather_px)[..., None], key, blended)
