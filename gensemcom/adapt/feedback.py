"""Channel-state feedback: a smoothed, per-stream SNR estimate that goes stale.

Each Delivery of a ``Transmitter.Send`` stream carries the receiver's SNR
estimate for that frame (``LinkEstimate.snr_db``, from the pilots). The
transmitter folds it into the stream's estimate and plans the next frames
with it. Smoothing is an exponential average of the *linear* SNR, so on a
fading channel the estimate tends to the average SNR (what a rate table
for that fading family is indexed by), not to the average of dB values,
which would sit 2.5 dB low on Rayleigh.

The tracker also keeps how much the SNR moves from one report to the next
(an exponential average of the squared dB change, ``spread_smoothing``):
a frame is planned from a report at least one frame old, so on a fast
fading channel the MCS needs a margin that grows with that spread
(:class:`~gensemcom.adapt.control.RateControl`'s ``mcs_spread_factor``).

An estimate older than ``stale_after_s`` is not used: the channel may have
changed since, and the caller falls back to a safe rate. Streams are kept
least-recently-updated first and the oldest dropped beyond ``max_streams``.
"""

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from gensemcom.adapt.control import LinkState


@dataclass(frozen=True)
class SnrEstimate:
    snr_db: float
    reports: int  # feedback reports folded in
    age_s: float  # time since the last report
    spread_db: float = 0.0  # rms change between consecutive reports (0 until there are two)


@dataclass(frozen=True)
class _Stream:
    linear: float  # smoothed linear SNR
    reports: int
    at: float  # clock time of the last report
    last_db: float  # the last report
    change_db2: float  # smoothed squared change between consecutive reports (dB²)


class SnrTracker:
    """Per-stream exponential average of reported SNRs, with an age limit."""

    def __init__(self, smoothing: float = 0.5, stale_after_s: float = 10.0, max_streams: int = 1024,
                 clock: Callable[[], float] = time.monotonic, spread_smoothing: float = 0.2) -> None:
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing (weight of the newest report) must be in (0, 1], got {smoothing}")
        if not 0.0 < spread_smoothing <= 1.0:
            raise ValueError(f"spread_smoothing must be in (0, 1], got {spread_smoothing}")
        if not stale_after_s > 0:
            raise ValueError(f"stale_after_s must be > 0, got {stale_after_s}")
        if max_streams < 1:
            raise ValueError(f"max_streams must be >= 1, got {max_streams}")
        self.smoothing, self.stale_after_s, self.max_streams = smoothing, stale_after_s, max_streams
        self.spread_smoothing = spread_smoothing
        self._clock = clock
        self._streams: OrderedDict[str, _Stream] = OrderedDict()
        self._lock = threading.Lock()

    def report(self, stream_id: str, snr_db: float) -> float | None:
        """Fold one receiver report into the stream's estimate; returns the new estimate in dB.

        A non-finite report (a frame lost before estimation) is ignored and None returned.
        """
        if not math.isfinite(snr_db):
            return None
        linear = 10.0 ** (snr_db / 10.0)
        now = self._clock()
        with self._lock:
            previous = self._streams.pop(stream_id, None)
            if previous is not None and now - previous.at <= self.stale_after_s:
                change = (snr_db - previous.last_db) ** 2
                weight = 1.0 if previous.reports == 1 else self.spread_smoothing  # the first change seeds it
                stream = _Stream((1 - self.smoothing) * previous.linear + self.smoothing * linear,
                                 previous.reports + 1, now, snr_db,
                                 (1 - weight) * previous.change_db2 + weight * change)
            else:
                stream = _Stream(linear, 1, now, snr_db, 0.0)  # a stale estimate says nothing about now: start over
            self._streams[stream_id] = stream
            while len(self._streams) > self.max_streams:
                self._streams.popitem(last=False)
        return 10.0 * math.log10(stream.linear)

    def estimate(self, stream_id: str) -> SnrEstimate | None:
        """The stream's estimate, or None when it has none."""
        with self._lock:
            entry = self._streams.get(stream_id)
        if entry is None:
            return None
        return SnrEstimate(10.0 * math.log10(entry.linear), entry.reports, self._clock() - entry.at,
                           math.sqrt(entry.change_db2))

    def is_fresh(self, estimate: SnrEstimate | None) -> bool:
        return estimate is not None and estimate.age_s <= self.stale_after_s

    def link(self, stream_id: str) -> LinkState:
        """What the stream's feedback says for the next frame: its fresh estimate, else no SNR ("stale" when
        there was one, "none" when there never was)."""
        estimate = self.estimate(stream_id)
        if estimate is None:
            return LinkState(None, "none")
        if not self.is_fresh(estimate):
            return LinkState(None, "stale")
        return LinkState(estimate.snr_db, "feedback", estimate.spread_db)
