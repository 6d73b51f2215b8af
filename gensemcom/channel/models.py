"""Channel impairment models: complex symbols in, impaired symbols out.

Blocks in the style of Sionna (``AWGN()(x, no, rng)``) plus a uniform entry
point, :func:`make_channel`, that the channel service calls with a model name
and an SNR. SNR is Es/N0 per complex symbol for unit-power input, so the
complex noise variance is ``no = 10**(-snr_db/10)``.

Reproducibility: every draw comes from the caller's ``np.random.Generator``
in a fixed order (fading gains first, then noise, both as float32 standard
normals), so a seeded run is bit-for-bit repeatable. Noise is drawn directly
in float32 and combined in place, which keeps the models fast.
"""

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from gensemcom.shared.modem import as_symbol_array

CHANNEL_MODELS = ("awgn", "rayleigh")
SNR_DB_RANGE = (-30.0, 60.0)


def snr_db_to_no(snr_db: float) -> float:
    """Complex noise variance for an Es/N0 of ``snr_db`` with unit symbol energy."""
    if not np.isfinite(snr_db):
        raise ValueError(f"SNR must be finite, got {snr_db}")
    return float(10.0 ** (-snr_db / 10.0))


def _check_no(no: float) -> float:
    if not np.isfinite(no) or no < 0:
        raise ValueError(f"noise variance must be finite and >= 0, got {no}")
    return float(no)


def _check_coherence(coherence: int) -> int:
    if int(coherence) != coherence or coherence < 0:
        raise ValueError(f"coherence must be an integer >= 0 (0 = one block), got {coherence}")
    return int(coherence)


def _n_blocks(n: int, coherence: int) -> int:
    return 1 if coherence == 0 else -(-n // coherence)


def _complex_normal(rng: np.random.Generator, n: int, variance: float) -> np.ndarray:
    """n draws of CN(0, variance) as complex64 (2n float32 standard normals, re/im interleaved)."""
    z = rng.standard_normal(2 * n, dtype=np.float32).view(np.complex64)
    z *= np.float32(np.sqrt(variance / 2))
    return z


@dataclass(frozen=True)
class ChannelState:
    """What the channel did: the true fading per block and the noise variance.

    The receiver never sees this (it estimates from pilots); it travels for
    evaluation, e.g. to compare estimated with true CSI.
    """

    gains: np.ndarray  # complex64, one per fading block
    coherence: int  # symbols per block; 0 means one block spans the whole input
    no: float

    def per_symbol(self, n: int) -> np.ndarray:
        """The gain each of ``n`` symbols saw."""
        if _n_blocks(n, self.coherence) != self.gains.size:
            raise ValueError(
                f"{self.gains.size} gains with coherence {self.coherence} do not cover {n} symbols"
            )
        if self.coherence == 0:
            return np.full(n, self.gains[0], dtype=np.complex64)
        return np.repeat(self.gains, self.coherence)[:n]


class AWGN:
    """y = x + n with n ~ CN(0, no)."""

    def __call__(self, x: np.ndarray, no: float, rng: np.random.Generator) -> np.ndarray:
        x = as_symbol_array(x, "x")
        y = _complex_normal(rng, x.size, _check_no(no))
        y += x
        return y


class BlockRayleigh:
    """y = h·x + n, h ~ CN(0, 1) drawn once per block of ``coherence`` symbols.

    ``coherence=0`` gives one gain for the whole input (quasi-static fading),
    ``coherence=1`` gives independent fading per symbol. The last block may be
    shorter than ``coherence``.
    """

    def __init__(self, coherence: int = 0) -> None:
        self.coherence = _check_coherence(coherence)

    def __call__(
        self, x: np.ndarray, no: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, ChannelState]:
        x = as_symbol_array(x, "x")
        no = _check_no(no)
        gains = _complex_normal(rng, _n_blocks(x.size, self.coherence), 1.0)
        state = ChannelState(gains=gains, coherence=self.coherence, no=no)
        y = _complex_normal(rng, x.size, no)
        if self.coherence == 0:
            y += gains[0] * x
            return y, state
        # Full blocks as rows of a matrix (no per-symbol gain array), then the short tail.
        rows = x.size // self.coherence
        n_full = rows * self.coherence
        full_blocks = y[:n_full].reshape(rows, self.coherence)  # a view: += writes into y
        full_blocks += gains[:rows, None] * x[:n_full].reshape(rows, self.coherence)
        if n_full < x.size:
            y[n_full:] += gains[rows] * x[n_full:]
        return y, state


class ChannelModel(Protocol):
    """A configured channel, as the channel service uses it."""

    name: str
    snr_db: float

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ChannelState]: ...


@dataclass(frozen=True)
class AWGNChannel:
    """:class:`AWGN` at a fixed SNR; reports a unit gain so callers treat all models alike."""

    snr_db: float
    name: str = "awgn"

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ChannelState]:
        no = snr_db_to_no(self.snr_db)
        gains = np.ones(1, dtype=np.complex64)
        return AWGN()(x, no, rng), ChannelState(gains=gains, coherence=0, no=no)


@dataclass(frozen=True)
class RayleighChannel:
    """:class:`BlockRayleigh` at a fixed SNR (the average SNR: E|h|² = 1)."""

    snr_db: float
    coherence: int = 0
    name: str = "rayleigh"

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ChannelState]:
        return BlockRayleigh(self.coherence)(x, snr_db_to_no(self.snr_db), rng)


def make_channel(model: str, snr_db: float, coherence: int = 0) -> ChannelModel:
    """Build a channel from its name, SNR in dB and coherence (ignored by AWGN).

    Raises ValueError for an unknown model, an SNR outside [-30, 60] dB or a
    negative coherence, so that a bad request never reaches the signal path.
    """
    coherence = _check_coherence(coherence)
    low, high = SNR_DB_RANGE
    if not (np.isfinite(snr_db) and low <= snr_db <= high):
        raise ValueError(f"SNR must be within [{low:g}, {high:g}] dB, got {snr_db}")
    if model == "awgn":
        return AWGNChannel(float(snr_db))
    if model == "rayleigh":
        return RayleighChannel(float(snr_db), coherence)
    raise ValueError(f"unknown channel model {model!r}; choose one of {', '.join(CHANNEL_MODELS)}")
