"""Fitting the key region into a symbol budget, and sharing its power by importance.

The key region is coded in 16×16-pixel blocks (one DeepJSCC latent position
each). Two decisions are made per frame:

- **Budget** (:func:`fit_budget`): if the planned ratio does not fit the
  symbols the frame has left, the whole key region steps down the codec's
  ratio ladder; at the lowest ratio, blocks are dropped, least important
  first (they are then inpainted like the background). So the frame never
  exceeds its budget. In ``importance`` mode what survives is what the ranker
  says matters most; the other modes keep the blocks nearest the key
  region's centre (:func:`centre_first`), a content-blind order that
  the evaluation compares importance against.
- **Importance** (:func:`importance_power`): important blocks are sent at a
  higher power, the rest lower, keeping the average at 1. The receiver
  knows the powers from the header and decodes each group at its own SNR.
  Unequal *rate* per block was measured first and rejected: a block group
  coded on its own loses the context of its neighbours (docs/adapt.md).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gensemcom.shared.pilots import PilotPattern


@dataclass(frozen=True)
class KeyAllocation:
    rate: int  # latent reals per sent block (0 = nothing fits)
    sent: np.ndarray  # (rows, cols) bool: blocks sent

    @property
    def n_symbols(self) -> int:
        return int(self.sent.sum()) * self.rate // 2


def fit_budget(sent: np.ndarray, importance: np.ndarray, rate: int, rates: Sequence[int],
               budget: int | None) -> KeyAllocation:
    """The planned ``rate`` for the ``sent`` blocks if it fits ``budget`` complex symbols; else the highest
    lower rate that fits; else the lowest rate on the most important blocks that fit (ordered by
    ``importance``, highest first)."""
    sent = np.asarray(sent, bool)
    importance = np.asarray(importance, np.float64)
    if sent.shape != importance.shape:
        raise ValueError(f"block grids differ in shape: {sent.shape} and {importance.shape}")
    ladder = sorted(int(r) for r in rates)
    if rate not in ladder:
        raise ValueError(f"rate {rate} is not one of the codec's rates {ladder}")
    if budget is not None and budget < 0:
        raise ValueError(f"budget must be >= 0 symbols, got {budget}")
    n_sent = int(sent.sum())
    if budget is None:
        return KeyAllocation(rate, sent.copy())
    for candidate in reversed([r for r in ladder if r <= rate]):
        if n_sent * candidate // 2 <= budget:
            return KeyAllocation(candidate, sent.copy())
    lowest = ladder[0]
    keep = budget // (lowest // 2)
    order = np.argsort(-np.where(sent, importance, -np.inf).ravel(), kind="stable")[:keep]
    kept = np.zeros(sent.size, bool)
    kept[order] = True
    kept = kept.reshape(sent.shape) & sent
    return KeyAllocation(lowest if kept.any() else 0, kept)


def centre_first(sent: np.ndarray) -> np.ndarray:
    """Content-blind block scores: higher the nearer a block lies to the centroid of the ``sent`` blocks
    (objects are usually framed around their middle), so a budget trims the region from its rim inwards."""
    sent = np.asarray(sent, bool)
    if not sent.any():
        return np.zeros(sent.shape)
    rows, cols = np.indices(sent.shape)
    centre_row, centre_col = rows[sent].mean(), cols[sent].mean()
    return -np.hypot(rows - centre_row, cols - centre_col)


def importance_power(sent: np.ndarray, important: np.ndarray, boost_db: float,
                     floor: float = 0.25) -> np.ndarray:
    """Transmit power per block: important blocks ``boost_db`` above the rest, mean 1 over the sent blocks.

    With important share f and boost b (linear), p_lo = 1 / (1 + f (b - 1)) and p_hi = b·p_lo. When the
    rest would fall below ``floor``, the boost is lowered until it does not.
    """
    sent, important = np.asarray(sent, bool), np.asarray(important, bool) & np.asarray(sent, bool)
    if boost_db < 0 or not np.isfinite(boost_db):
        raise ValueError(f"boost must be a finite number of dB >= 0, got {boost_db}")
    if not 0 < floor <= 1:
        raise ValueError(f"floor must be in (0, 1], got {floor}")
    n_sent = int(sent.sum())
    share = important.sum() / n_sent if n_sent else 0.0
    boost = 10 ** (boost_db / 10)
    if share >= 1 or share == 0:
        boost = 1.0
    low = 1.0 / (1.0 + share * (boost - 1.0))
    if low < floor:  # keep the rest audible: p_lo = floor, p_hi from the mean
        low = floor
        boost = (1.0 - (1.0 - share) * floor) / share / floor
    power = np.where(important, boost * low, low)
    return np.where(sent, power, 0.0)


def key_budget(pattern: PilotPattern, start: int, frame_budget: int) -> int:
    """The most key-region data symbols that fit when the key segment starts at stream position ``start``
    and the whole frame (pilots included) may have ``frame_budget`` symbols."""
    room = frame_budget - start
    if room <= 0:
        return 0
    low, high = 0, room  # span(start, n) >= n, so at most ``room`` data symbols fit
    while low < high:
        mid = (low + high + 1) // 2
        if pattern.span(start, mid) <= room:
            low = mid
        else:
            high = mid - 1
    return low
