"""Symbols saved at equal quality: where a scheme's point falls against a reference curve.

A reference scheme (fixed ratios; or a content-blind block order) gives a
curve of (symbols, quality) points. The symbols it needs for another
scheme's quality are where the curve first reaches that quality, going from
its cheapest point up, linearly in log-symbols between points (quality is
roughly linear in the log of the rate). The first crossing is the cheapest
setting of the reference that does as well, also when the curve has a
plateau (hit rates of 1.0) or dips (a larger ratio that does worse). The
saving is one minus the scheme's symbols over those. Below the cheapest
point or above the best there is no number: extrapolating a three-point
curve would invent one.
"""

from collections.abc import Sequence

import numpy as np


def symbols_at(curve: Sequence[tuple[float, float]], quality: float) -> float | None:
    """Symbols the reference ``curve`` of (symbols, quality) points first reaches ``quality`` at; None when
    its cheapest point is already better (how much cheaper it could go is unknown) or it never gets there."""
    points = sorted(curve)
    if not points or points[0][1] > quality:
        return None
    if points[0][1] == quality:
        return float(points[0][0])
    for (s0, q0), (s1, q1) in zip(points, points[1:]):
        if q0 < quality <= q1:
            return float(np.exp(np.log(s0) + (quality - q0) / (q1 - q0) * (np.log(s1) - np.log(s0))))
    return None


def saving(symbols: float, curve: Sequence[tuple[float, float]], quality: float) -> float | None:
    """Share of the reference's symbols a scheme spending ``symbols`` for ``quality`` saves (negative: costs)."""
    reference = symbols_at(curve, quality)
    return None if reference is None else 1.0 - symbols / reference
