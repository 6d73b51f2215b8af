"""α control: make the key region cover a requested share α of the pixels.

The paper keeps an α-share of the image as key region (S_α in its eq. 1) and plots
quality against the non-key ratio 1 − α (its Fig. 4). A backend's mask has whatever
size the scene gives it, so sweeping α needs a rule that resizes the key region.
The rule prefers the means that keep the most meaning, and moves on only while the
share is still off by more than ``tolerance`` (absolute, default 0.02):

1. **backend** — the backend's own mask, if it already lies within tolerance;
2. **instances** — whole objects in falling score order: of the unions of the
   k best-scored instances (k ≥ 1), the one whose share is closest to α;
3. **threshold** — the cut on the backend's probability map (MediaPipe's person
   probability, the saliency map), found by count: a higher cut keeps only
   the pixels the model is surest of, a lower one lets in the next most likely;
4. **dilate / erode** — Euclidean dilation or erosion of the closest mask so far
   by a disc. The radius is read off the distance transform, so the one step lands
   as close to α as the pixel grid allows. Dilation, which adds background, is
   bounded by ``max_dilation_frac`` of the image's short side (default 0.25);
   erosion, which only drops key pixels, is not.

The first step within tolerance wins. When none is, the closest non-empty mask is
returned with a ``note`` saying why (no key region to grow, or the dilation bound),
and ``method`` names the steps that built it, e.g. "threshold+erode". The achieved
share is always measured on the returned mask (``Segmentation.alpha``); nothing is
estimated. An empty mask is never chosen while a non-empty one exists, since an
empty key region leaves the whole image to the prompt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from gensemcom.transmitter.segment import Proposal, Proposer, Segmentation, clean_mask

THRESHOLD_STEPS = 4
"""Cuts of the probability map tried at most: the first is exact up to the clean-up, each next corrects for it."""


def check_alpha_target(target: float) -> float:
    """``target`` as a float in (0, 1), else ValueError: 0 would send nothing, 1 the whole image as key region."""
    try:
        value = float(target)
    except (TypeError, ValueError):
        raise ValueError(f"alpha target must be a number in (0, 1), got {target!r}") from None
    if not math.isfinite(value) or not 0.0 < value < 1.0:
        raise ValueError(f"alpha target must lie strictly between 0 and 1, got {target!r}")
    return value


@dataclass
class _Best:
    """The non-empty candidate closest to the target so far."""

    count: int
    mask: np.ndarray | None = None
    method: str = ""

    def offer(self, mask: np.ndarray, method: str) -> None:
        if not mask.any():
            return
        if self.mask is None or abs(int(mask.sum()) - self.count) < abs(int(self.mask.sum()) - self.count):
            self.mask, self.method = mask, method


def control_alpha(proposal: Proposal, target: float | None, tolerance: float = 0.02,
                  max_dilation_frac: float = 0.25) -> Segmentation:
    """The key region for share ``target`` by the rule in the module docstring; None keeps the backend's mask."""
    if target is None:
        return proposal.segmentation()
    target = check_alpha_target(target)
    _check_settings(tolerance, max_dilation_frac)
    pixels = proposal.mask.size
    best = _Best(count=round(target * pixels))

    def done() -> bool:
        return best.mask is not None and abs(best.mask.sum() / pixels - target) <= tolerance

    best.offer(proposal.mask, "backend")
    if not done():
        _by_instances(proposal, best)
    if not done() and proposal.probability is not None:
        _by_threshold(proposal.probability, tolerance, best)
    if done():
        return proposal.segmentation(best.mask, alpha_target=target, method=best.method)
    note = _by_morphology(best, round(max_dilation_frac * min(proposal.mask.shape)))
    if best.mask is None:
        return proposal.segmentation(alpha_target=target, method="backend", note=note)
    return proposal.segmentation(best.mask, alpha_target=target, method=best.method, note="" if done() else note)


def _by_instances(proposal: Proposal, best: _Best) -> None:
    union = np.zeros_like(proposal.mask)
    for instance in proposal.instances:
        union = union | instance.mask
        best.offer(union, "instances")


def _by_threshold(probability: np.ndarray, tolerance: float, best: _Best) -> None:
    """Cut the map so that the cleaned mask holds ``best.count`` pixels, correcting for the clean-up.

    The cut keeping the k most probable pixels is exact up to ties; clean_mask then
    adds (filled holes) or removes (specks) some pixels, so the cut is redone with k
    corrected by the difference, a few times at most. A map with a plateau (many
    pixels of one value, e.g. a probability saturated at 1) cannot be cut inside
    it: once a correction selects the same pixels again the search stops, and
    morphology goes on from the closest cut.
    """
    keep, selected = best.count, -1
    for _ in range(THRESHOLD_STEPS):
        raw = _top(probability, keep)
        if int(raw.sum()) == selected:
            return
        selected = int(raw.sum())
        mask = clean_mask(raw)
        best.offer(mask, "threshold")
        error = best.count - int(mask.sum())
        if abs(error) <= tolerance * mask.size:
            return
        keep += error


def _top(values: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` largest entries of ``values`` (-inf never), taking whole groups of equal values.

    Ties cannot be split without an arbitrary order, so the selection either takes
    the whole group at the boundary or none of it, whichever lands closer to
    ``count``; when "none" would select nothing, the group is taken.
    """
    available = int(np.isfinite(values).sum())
    if available == 0:
        return np.zeros(values.shape, dtype=bool)
    count = min(max(count, 1), available)
    flat = values.ravel()
    level = np.partition(flat, flat.size - count)[flat.size - count]
    above, at_or_above = values > level, values >= level
    n_above, n_at_or_above = int(above.sum()), int(at_or_above.sum())
    if n_above > 0 and abs(n_above - count) < abs(n_at_or_above - count):
        return above
    return at_or_above


def _by_morphology(best: _Best, max_dilation: int) -> str:
    """Dilate or erode ``best.mask`` toward ``best.count`` pixels; returns why the target stays out of reach.

    A disc of radius r dilates a mask by the outside pixels within distance r of
    it, and erodes it to the inside pixels farther than r from the background, so
    both are a cut on the Euclidean distance transform, chosen by count like the
    probability cut. Dilation adds background the backend did not call key, so its
    radius is bounded by ``max_dilation``; erosion only drops pixels the backend
    did call key (keeping the region's thickest core, e.g. a torso rather than a
    face), so it is not bounded.
    """
    if best.mask is None:
        return "the backend found no key region and has no probability map to threshold: nothing to grow"
    mask, have = best.mask, int(best.mask.sum())
    grow = have < best.count
    side = ~mask if grow else mask
    distance = cv2.distanceTransform(side.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    if grow:
        reachable = side & (distance <= max_dilation)
        best.mask = mask | _top(np.where(reachable, -distance, -np.inf), best.count - have)
        best.method += "+dilate"
        if int(reachable.sum()) < best.count - have:
            return f"dilation stops at its bound of {max_dilation} px"
    else:
        best.mask = _top(np.where(mask, distance, -np.inf), best.count)
        best.method += "+erode"
    return "the nearest ring of the distance transform misses the target by more than the tolerance"


def _check_settings(tolerance: float, max_dilation_frac: float) -> None:
    if not 0.0 <= tolerance < 1.0 or not 0.0 <= max_dilation_frac <= 1.0:
        raise ValueError(f"tolerance must lie in [0, 1) and max_dilation_frac in [0, 1], "
                         f"got {tolerance} and {max_dilation_frac}")


class AlphaControl:
    """A segmenter whose key region covers ``target`` of the pixels (see the module docstring for the rule)."""

    def __init__(self, segmenter: Proposer, target: float | None, tolerance: float = 0.02,
                 max_dilation_frac: float = 0.25) -> None:
        _check_settings(tolerance, max_dilation_frac)
        self.segmenter = segmenter
        self.target = None if target is None else check_alpha_target(target)
        self.tolerance = tolerance
        self.max_dilation_frac = max_dilation_frac
        self.name = segmenter.name

    def __call__(self, image: np.ndarray) -> Segmentation:
        return control_alpha(self.segmenter.propose(image), self.target, self.tolerance, self.max_dilation_frac)
