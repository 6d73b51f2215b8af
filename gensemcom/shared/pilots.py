"""Where the known pilot symbols sit in a frame's symbol stream, and what they are.

A frame is one stream of complex symbols: its segments in order. The PILOT
segment at the front is the preamble (a Zadoff-Chu sequence of its length);
it gives the first channel and noise estimate. A channel that changes within
the frame (short coherence, Doppler, carrier-frequency offset) needs pilots
further on as well, so after the preamble every ``spacing`` symbols of the
stream begin with a burst of ``length`` pilots (a Zadoff-Chu sequence of
length ``length``), whatever segment they fall into. The receiver knows the
pattern from the header and takes the bursts out before decoding.

The pattern is defined on the stream, not per segment, so the pilot density
is uniform over the frame and the spacing is what a radio engineer sets it to
(e.g. below the coherence time, or a divisor of the OFDM size to get
comb pilots across subcarriers).
"""

from dataclasses import dataclass

import numpy as np

from gensemcom.shared.modem import pilot_sequence


@dataclass(frozen=True)
class PilotPattern:
    """``preamble`` pilots first, then ``length`` pilots at the start of every ``spacing`` symbols."""

    preamble: int
    spacing: int = 0
    length: int = 0

    def __post_init__(self) -> None:
        for name in ("preamble", "spacing", "length"):
            value = getattr(self, name)
            if int(value) != value or value < 0:
                raise ValueError(f"pilot {name} must be an integer >= 0, got {value}")
        if self.preamble < 2:
            raise ValueError(f"the preamble needs at least 2 pilots (noise estimate), got {self.preamble}")
        if (self.spacing == 0) != (self.length == 0):
            raise ValueError(f"pilot spacing and length must both be 0 or both > 0, got {self.spacing}, {self.length}")
        if self.spacing and self.length >= self.spacing:
            raise ValueError(f"pilot length {self.length} must be below the spacing {self.spacing} (no room for data)")

    @property
    def overhead(self) -> float:
        """Share of the symbols after the preamble that are pilots."""
        return self.length / self.spacing if self.spacing else 0.0

    def is_pilot(self, index: np.ndarray) -> np.ndarray:
        """Boolean array: which stream positions carry pilots."""
        index = np.asarray(index, dtype=np.int64)
        pilot = index < self.preamble
        if self.spacing:
            pilot |= (index >= self.preamble) & ((index - self.preamble) % self.spacing < self.length)
        return pilot

    def values(self, index: np.ndarray) -> np.ndarray:
        """The known symbol at each of the given pilot positions (complex64)."""
        index = np.asarray(index, dtype=np.int64)
        if not np.all(self.is_pilot(index)):
            raise ValueError("values() asked for positions that carry data, not pilots")
        out = np.empty(index.shape, np.complex64)
        head = index < self.preamble
        out[head] = pilot_sequence(self.preamble)[index[head]]
        if self.spacing:
            out[~head] = pilot_sequence(self.length)[(index[~head] - self.preamble) % self.spacing]
        return out

    def span(self, start: int, n_data: int) -> int:
        """Stream symbols a segment starting at ``start`` needs to carry ``n_data`` data symbols."""
        if start < self.preamble:
            raise ValueError(f"data segments start after the {self.preamble}-symbol preamble, not at {start}")
        if n_data == 0 or not self.spacing:
            return n_data
        per_period = self.spacing - self.length
        offset = (start - self.preamble) % self.spacing
        # Count from the start of the period that ``start`` falls in: data already "used" there is skipped.
        used = max(0, offset - self.length)
        periods, rest = divmod(n_data + used, per_period)
        if rest == 0:
            periods, rest = periods - 1, per_period
        end_in_period = periods * self.spacing + self.length + rest  # from the period start
        return end_in_period - offset

    def insert(self, data: np.ndarray, start: int) -> np.ndarray:
        """A segment's symbols: ``data`` with the pilots of positions ``start, start+1, ...`` put in place."""
        data = np.asarray(data, np.complex64).reshape(-1)
        n = self.span(start, data.size)
        index = np.arange(start, start + n)
        pilot = self.is_pilot(index)
        out = np.empty(n, np.complex64)
        out[~pilot] = data
        out[pilot] = self.values(index[pilot])
        return out

    def data_positions(self, start: int, n: int) -> np.ndarray:
        """Boolean mask over a segment's ``n`` symbols starting at ``start``: True where data sits."""
        return ~self.is_pilot(np.arange(start, start + n))
