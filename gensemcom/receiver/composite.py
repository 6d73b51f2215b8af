"""Paste the decoded key region onto the regenerated background: colour matching, then a feathered edge.

Two kinds of seam can show where the two sources meet.

A colour seam. A diffusion inpainter renders the whole frame, key region included,
through its autoencoder, and its colours drift from the ones that were sent (a
global cast, a brightness or contrast shift). Pasting the exact key region onto
that frame leaves a step all along the border. ``match_px`` removes it: in a ring
``match_px`` wide just inside the mask, the background image holds the generator's
own rendition of the key region, and the key image holds the sent pixels of the
*same* content, so any difference there is the generator's drift. Per channel, the
affine map that gives the rendition the key's mean and standard deviation is
applied to the whole background. The alternatives were rejected:

- matching a ring *outside* the mask to the ring inside assumes that object and
  background share colour statistics; they do not (a red coat on green grass),
  and the match would repaint the background in the object's colours;
- Poisson blending (``cv2.seamlessClone``) re-solves every pixel inside the mask,
  so the sent key pixels would not be delivered unchanged, and it fails on masks
  that touch the frame border;
- correcting only near the border would leave a halo where the correction stops:
  the drift is frame-wide, so the correction is too.

An inpainter that keeps the key region exactly (the classical one) has no drift:
the map is the identity and matching changes nothing.

A hard edge. Feathering blends a thin band just inside the mask edge, and only there:

- outside the mask the output is exactly the (colour-matched) background: the key
  image holds no valid content there, and letting it bleed outward would draw halos;
- deeper than ``feather_px`` inside the mask it is exactly ``key``: the pixels that
  were sent are delivered unchanged, so key-region metrics measure the key codec
  and not the compositor.
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_RING_PIXELS = 32
"""Fewer ring pixels than this give means and spreads too noisy to correct a whole frame with."""
MIN_SPREAD = 2.0
"""A rendition flatter than this (grey levels, std) carries no contrast to match: only the mean is corrected."""
GAIN_RANGE = (0.5, 2.0)
"""Contrast changes beyond a factor of two are a different picture, not drift: the gain is clipped to this range."""


def _check(background: np.ndarray, key: np.ndarray, mask: np.ndarray) -> None:
    for name, image in (("background", background), ("key", key)):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"{name} must be a uint8 H×W×3 array, got {image.dtype} {image.shape}")
    if key.shape != background.shape or mask.shape != background.shape[:2] or mask.dtype != np.bool_:
        raise ValueError(f"key {key.shape}, background {background.shape} and bool mask {mask.shape} "
                         f"must have the same size")


def _depth(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance of each mask pixel to the nearest non-mask pixel (the frame border is no edge)."""
    return cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def match_colours(background: np.ndarray, key: np.ndarray, mask: np.ndarray, ring_px: int) -> np.ndarray:
    """``background`` mapped per channel so that, in the ring ``ring_px`` wide inside ``mask``, it has ``key``'s
    mean and standard deviation; unchanged when the ring has too few pixels to measure.
    """
    _check(background, key, mask)
    if ring_px < 1:
        raise ValueError(f"ring_px must be >= 1, got {ring_px}")
    ring = mask & (_depth(mask) <= ring_px)
    if np.count_nonzero(ring) < MIN_RING_PIXELS:
        return background
    rendered = background[ring].astype(np.float64)
    sent = key[ring].astype(np.float64)
    spread = rendered.std(axis=0)
    gain = np.where(spread >= MIN_SPREAD, np.clip(sent.std(axis=0) / np.maximum(spread, MIN_SPREAD), *GAIN_RANGE),
                    1.0)
    offset = sent.mean(axis=0) - gain * rendered.mean(axis=0)
    return np.clip(np.round(background * gain + offset), 0, 255).astype(np.uint8)


def composite(background: np.ndarray, key: np.ndarray, mask: np.ndarray, feather_px: int = 3,
              match_px: int = 0) -> np.ndarray:
    """Blend ``key`` over ``background`` where ``mask`` is True; uint8 H×W×3 out, the input's size.

    ``match_px`` > 0 first colour-matches the background to the key in a ring that
    wide inside the mask (see the module docstring); 0 pastes onto the background
    as it is. The blend weight is the mask blurred with a Gaussian of support
    ``feather_px``, kept only inside the mask, and forced to exactly 1 where the
    distance to the nearest non-mask pixel exceeds ``feather_px``. ``feather_px=0``
    is a hard paste.
    """
    _check(background, key, mask)
    if feather_px < 0:
        raise ValueError(f"feather_px must be >= 0, got {feather_px}")
    if match_px < 0:
        raise ValueError(f"match_px must be >= 0, got {match_px}")
    if match_px > 0:
        background = match_colours(background, key, mask, match_px)
    if feather_px == 0 or not mask.any():
        return np.where(mask[..., None], key, background)
    size = 2 * feather_px + 1
    blurred = cv2.GaussianBlur(mask.astype(np.float32), (size, size), sigmaX=feather_px / 2,
                               borderType=cv2.BORDER_REPLICATE)
    weight = np.where(mask, blurred, 0.0)[..., None]
    blended = np.round(weight * key + (1.0 - weight) * background).astype(np.uint8)
    return np.where((_depth(mask) > feather_px)[..., None], key, blended)
