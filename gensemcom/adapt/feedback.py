"""Channel-state feedback: a smoothed, per-stream SNR estimate that goes stale.

Each Delivery of a ``Transmitter.Send`` stream carries the receiver's SNR
estimate for that frame (``LinkEstimate.snr_db``, from the pilots). The
transmitter folds it into the stream's estimate and plans the next frames
with it. Smoothing is an exponential average of the *linear* SNR, so on a
fading channel the estimate tends to the average SNR (what a rate table
for that fading family is indexed by), not to the average of dB values,
which would sit 2.5 dB low on Rayleigh.

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


class SnrTracker:
    """Per-stream exponential average of reported SNRs, with an age limit."""

    def __init__(self, smoothing: float = 0.5, stale_after_s: float = 10.0, max_streams: int = 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing (weight of the newest report) must be in (0, 1], got {smoothing}")
        if not stale_after_s > 0:
            raise ValueError(f"stale_after_s must be > 0, got {stale_after_s}")
        if max_streams < 1:
            raise ValueError(f"max_streams must be >= 1, got {max_streams}")
        self.smoothing, self.stale_after_s, self.max_streams = smoothing, stale_after_s, max_streams
        self._clock = clock
        self._streams: OrderedDict[str, tuple[float, int, float]] = OrderedDict()  # linear SNR, reports, time
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
            if previous is not None and now - previous[2] <= self.stale_after_s:
                linear = (1 - self.smoothing) * previous[0] + self.smoothing * linear
                reports = previous[1] + 1
            else:
                reports = 1  # a stale estimate says nothing about now: start over
            self._streams[stream_id] = (linear, reports, now)
            while len(self._streams) > self.max_streams:
                self._streams.popitem(last=False)
        return 10.0 * math.log10(linear)

    def estimate(self, stream_id: str) -> SnrEstimate | None:
        """The stream's estimate, or None when it has none."""
        with self._lock:
            entry = self._streams.get(stream_id)
        if entry is None:
            return None
        linear, reports, at = entry
        return SnrEstimate(10.0 * math.log10(linear), reports, self._clock() - at)

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
        return LinkState(estimate.snr_db, "feedback")
