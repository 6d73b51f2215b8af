"""Multiplicative impairments of the radio front end: frequency offset, phase noise, path loss.

Each block multiplies the symbols by a known factor, so a channel can fold it
into the gains it reports (y = g·x + n stays exact). ``factor(n, rng)`` gives
that factor (one per symbol, or one for all); calling the block applies it.
The oscillator impairments are applied before the noise is added; rotating
circular Gaussian noise would not change its statistics, so this is no loss
of generality.
"""

import numpy as np

from gensemcom.channel.doppler import sinusoid_sum
from gensemcom.shared.modem import as_symbol_array

PATH_LOSS_DB_RANGE = (0.0, 200.0)


class CarrierFrequencyOffset:
    """x[i]·exp(j2π·cfo·i): a frequency offset of ``cfo`` cycles per symbol (Δf·Ts), |cfo| < 0.5.

    The phase starts at 0 on the first symbol; beyond ±0.5 the offset would
    alias to a smaller one, so it is refused.
    """

    def __init__(self, cfo: float) -> None:
        if not (np.isfinite(cfo) and -0.5 < cfo < 0.5):
            raise ValueError(f"carrier-frequency offset Δf·Ts must be within (-0.5, 0.5), got {cfo}")
        self.cfo = float(cfo)

    def factor(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """exp(j2π·cfo·i) for i = 0..n−1 (deterministic: ``rng`` is not drawn from)."""
        one = np.ones((1, 1))
        return sinusoid_sum(one * self.cfo, one * 0.0, one, n)[0]

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = as_symbol_array(x, "x")
        return x * self.factor(x.size, rng)


class PhaseNoise:
    """x[i]·exp(jφ[i]) with Wiener phase noise: φ[0] = 0, φ[i] − φ[i−1] ~ N(0, 2π·β).

    β = ``linewidth`` is the oscillator's 3-dB (Lorentzian) linewidth times
    the symbol period; the phase variance grows by 2π·β per symbol.
    Draws n − 1 float32 normals.
    """

    def __init__(self, linewidth: float) -> None:
        if not (np.isfinite(linewidth) and linewidth >= 0):
            raise ValueError(f"phase-noise linewidth·Ts must be finite and >= 0, got {linewidth}")
        self.linewidth = float(linewidth)

    def phase(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """φ[i] for i = 0..n−1, float64 (accumulated in double precision)."""
        steps = rng.standard_normal(max(n - 1, 0), dtype=np.float32)
        phase = np.zeros(n, dtype=np.float64)
        np.cumsum(steps, dtype=np.float64, out=phase[1:])
        phase *= np.sqrt(2 * np.pi * self.linewidth)
        return phase

    def factor(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """exp(jφ[i]) for i = 0..n−1, complex64."""
        phase = self.phase(n, rng)
        phase -= 2 * np.pi * np.rint(phase / (2 * np.pi))  # wrap to [−π, π] before float32 rounding
        phase = phase.astype(np.float32)
        out = np.empty(n, dtype=np.complex64)
        np.cos(phase, out=out.real)
        np.sin(phase, out=out.imag)
        return out

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = as_symbol_array(x, "x")
        return x * self.factor(x.size, rng)


class PathLoss:
    """x·10^(−dB/20): an attenuation of ``path_loss_db`` (0 to 200 dB) as an amplitude scale.

    With path loss, a channel's SNR refers to the *transmit* power: the
    received Es/N0 is the nominal SNR minus the path loss.
    """

    def __init__(self, path_loss_db: float) -> None:
        low, high = PATH_LOSS_DB_RANGE
        if not (np.isfinite(path_loss_db) and low <= path_loss_db <= high):
            raise ValueError(f"path loss must be within [{low:g}, {high:g}] dB, got {path_loss_db}")
        self.path_loss_db = float(path_loss_db)

    def factor(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """The amplitude scale, one for all symbols (a 0-d array; ``rng`` is not drawn from)."""
        return np.asarray(10.0 ** (-self.path_loss_db / 20.0), dtype=np.float32)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = as_symbol_array(x, "x")
        return x * self.factor(x.size, rng)
