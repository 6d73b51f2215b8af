"""Additive white Gaussian noise and the fast kernel every flat channel ends in.

SNR is Es/N0 per complex symbol for unit-power input, so the complex noise
variance is ``no = 10**(-snr_db/10)`` and each real component has ``no/2``.

Speed matters here: the noise draw is the whole cost of a flat channel (two
float32 standard normals per symbol, about 100 M normals/s on one core with
NumPy's ziggurat). The noise therefore comes from its own SFC64 stream,
seeded by one draw from the caller's generator (:func:`noise_stream`):
SFC64 feeds the ziggurat 10-15 % faster than PCG64 (the bit generator
behind ``np.random.default_rng``), and a seeded run stays bit-for-bit
repeatable. Everything else is done in place, chunk by chunk, so that
temporaries stay in cache and no frame-sized array is allocated besides the
output.
"""

import numpy as np

from gensemcom.shared.modem import as_symbol_array

# Symbols per chunk in :func:`add_faded_noise`: 64 Ki complex64 = 512 KiB per
# temporary, about one core's L2 cache; measured fastest among 4 Ki to 1 Mi.
_CHUNK = 1 << 16


def snr_db_to_no(snr_db: float) -> float:
    """Complex noise variance for an Es/N0 of ``snr_db`` with unit symbol energy."""
    if not np.isfinite(snr_db):
        raise ValueError(f"SNR must be finite, got {snr_db}")
    return float(10.0 ** (-snr_db / 10.0))


def check_no(no: float) -> float:
    """``no`` as a float, or ValueError if it is not a valid noise variance."""
    if not np.isfinite(no) or no < 0:
        raise ValueError(f"noise variance must be finite and >= 0, got {no}")
    return float(no)


def complex_normal(rng: np.random.Generator, n: int, variance: float) -> np.ndarray:
    """n draws of CN(0, variance) as complex64 (2n float32 standard normals, re/im interleaved)."""
    z = rng.standard_normal(2 * n, dtype=np.float32).view(np.complex64)
    z *= np.float32(np.sqrt(variance / 2))
    return z


def noise_stream(rng: np.random.Generator) -> np.random.Generator:
    """A fast generator for noise, seeded by one draw from ``rng``.

    Channels take it *first*, before any fading draw, so that the same seed
    gives the same noise under every model: comparisons between models then
    differ only by the fading (common random numbers).
    """
    return np.random.Generator(np.random.SFC64(int(rng.integers(2**63))))


def add_faded_noise(
    x: np.ndarray, gains: np.ndarray, coherence: int, no: float, noise_rng: np.random.Generator
) -> np.ndarray:
    """y = g·x + n with n ~ CN(0, no), gains held for ``coherence`` symbols (0: one gain for all).

    ``gains`` has one entry per block; ``coherence=1`` means one per symbol.
    The noise normals (re/im interleaved) are written chunk by chunk straight
    into ``y``, then scaled and the faded signal added in place.
    """
    y = np.empty(x.size, dtype=np.complex64)
    y_real = y.view(np.float32)
    scale = np.float32(np.sqrt(no / 2))
    unit_gain = coherence == 0 and gains[0] == 1
    for start in range(0, x.size, _CHUNK):
        stop = min(start + _CHUNK, x.size)
        chunk = y[start:stop]
        noise_rng.standard_normal(dtype=np.float32, out=y_real[2 * start : 2 * stop])
        chunk *= scale
        if unit_gain:
            chunk += x[start:stop]
        else:
            chunk += _gains_for(gains, coherence, start, stop) * x[start:stop]
    return y


def _gains_for(gains: np.ndarray, coherence: int, start: int, stop: int) -> np.ndarray:
    """The gains of symbols ``start:stop`` (one scalar when a single gain covers the frame)."""
    if coherence == 0:
        return gains[0]
    if coherence == 1:
        return gains[start:stop]
    first, last = start // coherence, (stop - 1) // coherence
    offset = start - first * coherence
    return np.repeat(gains[first : last + 1], coherence)[offset : offset + stop - start]


class AWGN:
    """y = x + n with n ~ CN(0, no)."""

    def __call__(self, x: np.ndarray, no: float, rng: np.random.Generator) -> np.ndarray:
        x = as_symbol_array(x, "x")
        return add_faded_noise(x, np.ones(1, np.complex64), 0, check_no(no), noise_stream(rng))
