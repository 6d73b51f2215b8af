"""What a channel did to a frame: the true gains and the noise variance.

The receiver never sees this (it estimates from pilots); it travels for
evaluation, e.g. to compare estimated with true CSI, and for a perfect-CSI
ablation. Every model reports its effect in the same form, y[i] = g[i]·x[i] +
n[i] with n ~ CN(0, no), so one equaliser serves them all:

- block fading reports one gain per block of ``coherence`` symbols;
- anything that changes from symbol to symbol (Doppler, carrier-frequency
  offset, phase noise, OFDM subcarriers) reports one gain per symbol with
  ``coherence=1``.
"""

from dataclasses import dataclass

import numpy as np


def n_blocks(n: int, coherence: int) -> int:
    """Number of fading blocks that cover ``n`` symbols (the last may be short)."""
    return 1 if coherence == 0 else -(-n // coherence)


def frequency_response(taps: np.ndarray, n_subcarriers: int) -> np.ndarray:
    """H[k] = Σ_l h_l·exp(−j2πkl/N) for each row of ``taps``: shape (rows, N), complex64."""
    return np.fft.fft(taps, n=n_subcarriers, axis=1).astype(np.complex64, copy=False)


def check_coherence(coherence: int) -> int:
    """``coherence`` as an int, or ValueError if it is not a block length."""
    if not (np.isfinite(coherence) and int(coherence) == coherence and coherence >= 0):
        raise ValueError(f"coherence must be an integer >= 0 (0 = one block), got {coherence}")
    return int(coherence)


@dataclass(frozen=True)
class ChannelState:
    """The true gain per block (or per symbol when ``coherence == 1``) and the noise variance."""

    gains: np.ndarray  # complex64, one per fading block
    coherence: int  # symbols per block; 0 means one block spans the whole input
    no: float

    def per_symbol(self, n: int) -> np.ndarray:
        """The gain each of ``n`` symbols saw."""
        if n_blocks(n, self.coherence) != self.gains.size:
            raise ValueError(
                f"{self.gains.size} gains with coherence {self.coherence} do not cover {n} symbols"
            )
        if self.coherence == 0:
            return np.full(n, self.gains[0], dtype=np.complex64)
        return np.repeat(self.gains, self.coherence)[:n]


@dataclass(frozen=True)
class OFDMState(ChannelState):
    """An OFDM channel's state: per-subcarrier gains plus the time-domain taps behind them.

    ``gains`` holds H[k] for every data symbol (``coherence=1``), so the
    receiver treats OFDM like any other channel. ``taps`` has one row per
    OFDM symbol: the sample-spaced impulse response that OFDM symbol saw.
    """

    taps: np.ndarray  # complex64, (OFDM symbols, taps)
    n_subcarriers: int
    cp_length: int

    @property
    def freq_response(self) -> np.ndarray:
        """H[k] per OFDM symbol, shape (OFDM symbols, n_subcarriers): the DFT of that symbol's taps."""
        return frequency_response(self.taps, self.n_subcarriers)
