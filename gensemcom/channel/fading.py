"""Flat block fading: Rayleigh and Rician, one gain per block of ``coherence`` symbols.

The Rician gain is h = √(K/(K+1)) + √(1/(K+1))·w with w ~ CN(0, 1), so E|h|² = 1
and the average SNR is the nominal one. K is *linear* (power of the line-of-
sight path over the power of the scattered paths), because K = 0 is then
exactly Rayleigh, with no −∞ dB. The line-of-sight path has phase 0: it is the
same path in every block of a frame (only the scatter changes between blocks),
as in MATLAB's ``comm.RicianChannel``, and K → ∞ is exactly AWGN.

|h| then follows the Rice distribution with ν = √(K/(K+1)) and
σ² = 1/(2(K+1)) per real component.
"""

from abc import ABC, abstractmethod

import numpy as np

from gensemcom.channel.noise import add_faded_noise, check_no, complex_normal, noise_stream
from gensemcom.channel.state import ChannelState, check_coherence, n_blocks
from gensemcom.shared.modem import as_symbol_array


def check_k_factor(k_factor: float) -> float:
    """``k_factor`` as a float, or ValueError if it is not a valid linear K factor."""
    if not np.isfinite(k_factor) or k_factor < 0:
        raise ValueError(f"K factor must be finite and >= 0 (linear; 0 = Rayleigh), got {k_factor}")
    return float(k_factor)


def rician_powers(k_factor: float) -> tuple[float, float]:
    """(line-of-sight power, scattered power) of a unit-power Rician gain with factor K."""
    return k_factor / (k_factor + 1.0), 1.0 / (k_factor + 1.0)


def draw_block_gains(
    rng: np.random.Generator, blocks: int, scattered_powers: np.ndarray, los_power: float
) -> np.ndarray:
    """Gains of ``blocks`` independent blocks for each of P paths, shape (blocks, P), complex64.

    Path p is CN(0, scattered_powers[p]); path 0 also carries the line-of-sight
    component √los_power (phase 0). Draws 2·blocks·P float32 normals.
    """
    powers = np.asarray(scattered_powers, dtype=np.float32)
    gains = complex_normal(rng, blocks * powers.size, 1.0).reshape(blocks, powers.size)
    gains *= np.sqrt(powers)
    if los_power > 0:
        gains[:, 0] += np.float32(np.sqrt(los_power))
    return gains


class FlatFading(ABC):
    """y = g·x + n with gains from ``self.gains``, one per block of ``self.coherence`` symbols.

    Subclasses say how the gains are drawn; applying them (noise seed first,
    then the gains) is shared, so every flat model reports its state alike.
    """

    coherence: int

    @abstractmethod
    def gains(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """The complex gains for ``n`` symbols (one per block)."""

    def __call__(
        self, x: np.ndarray, no: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, ChannelState]:
        x = as_symbol_array(x, "x")
        no = check_no(no)
        noise = noise_stream(rng)
        gains = self.gains(x.size, rng)
        y = add_faded_noise(x, gains, self.coherence, no, noise)
        return y, ChannelState(gains=gains, coherence=self.coherence, no=no)


class BlockRician(FlatFading):
    """y = h·x + n with a Rician h (linear factor ``k_factor``) drawn once per block of ``coherence`` symbols.

    ``coherence=0`` gives one gain for the whole input (quasi-static fading),
    ``coherence=1`` independent fading per symbol. The last block may be
    shorter than ``coherence``. Draw order: the noise seed, then the gains.
    """

    def __init__(self, k_factor: float = 0.0, coherence: int = 0) -> None:
        self.k_factor = check_k_factor(k_factor)
        self.coherence = check_coherence(coherence)

    def gains(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """One gain per block covering ``n`` symbols."""
        los_power, scattered_power = rician_powers(self.k_factor)
        return draw_block_gains(rng, n_blocks(n, self.coherence), np.array([scattered_power]), los_power).ravel()



class BlockRayleigh(BlockRician):
    """y = h·x + n, h ~ CN(0, 1) drawn once per block of ``coherence`` symbols (Rician with K = 0)."""

    def __init__(self, coherence: int = 0) -> None:
        super().__init__(0.0, coherence)
