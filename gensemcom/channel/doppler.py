"""Time-varying fading with a Clarke/Jakes Doppler spectrum, from a normalised Doppler fD·Ts.

Each scattered path is the sum-of-sinusoids process of Xiao, Zheng and
Beaulieu (IEEE Trans. Wireless Commun. 5(12), 2006), the one Sionna's TDL
model uses:

    h(t) = 1/√M · Σ_m exp(j(2π·fD·t·cos α_m + φ_m)),  α_m = 2πm/M + θ_m,

with θ_m uniform on [−π/M, π/M) and φ_m uniform on [−π, π). The angles cover
the circle uniformly, so the ensemble autocorrelation is exactly
E[h(t)·h*(t+τ)] = J0(2π·fD·τ) for any M, and E|h|² = 1. A Rician path adds a
line-of-sight phasor √(K/(K+1))·exp(j2π·fD·cos(θ_los)·t) (phase 0 at t = 0,
as in :mod:`gensemcom.channel.fading`), θ_los being its angle of arrival
relative to the direction of motion; 3GPP TR 38.901 and Sionna place it at
arccos(0.7), θ_los = π/2 gives a line of sight without Doppler shift.

Speed: a sum of sinusoids costs M complex exponentials per symbol if done
directly. Writing t = C·r + c turns it into one complex matrix product,
h[r, c] = Σ_m A[r, m]·B[m, c] with A = exp(j(2π·f_m·C·r + φ_m)) and
B = exp(j2π·f_m·c), so only about 2·M·√n exponentials are evaluated and BLAS
does the rest (> 100 M samples/s on one core). The product is repeatable on
one machine; another CPU may round the last bit differently.
"""

import math

import numpy as np

from gensemcom.channel.fading import FlatFading, check_k_factor, rician_powers

LOS_ANGLE_38901 = float(np.arccos(0.7))  # LOS Doppler at 0.7·fD: TR 38.901 TDL-D/E, as in Sionna
N_SINUSOIDS = 32


def check_doppler(doppler: float) -> float:
    """``doppler`` (fD·Ts, cycles per symbol) as a float, or ValueError outside [0, 0.5)."""
    if not (np.isfinite(doppler) and 0.0 <= doppler < 0.5):
        raise ValueError(f"normalised Doppler fD·Ts must be within [0, 0.5), got {doppler}")
    return float(doppler)


def sinusoid_sum(freqs: np.ndarray, phases: np.ndarray, amplitudes: np.ndarray, n: int) -> np.ndarray:
    """Σ_s a[p,s]·exp(j(2π·f[p,s]·t + φ[p,s])) for t = 0..n−1, per path p: shape (P, n), complex64.

    ``freqs`` are in cycles per sample; all three inputs have shape (P, S).
    """
    cols = max(1, math.isqrt(max(n - 1, 0)) + 1)
    rows = -(-n // cols)
    coarse = np.arange(rows, dtype=np.float64) * cols
    fine = np.arange(cols, dtype=np.float64)
    # Phases reduced modulo one cycle in float64 before the exponential, so a long frame loses no precision.
    coarse_phase = np.mod(freqs[:, None, :] * coarse[None, :, None], 1.0) * (2 * np.pi) + phases[:, None, :]
    a = (amplitudes[:, None, :] * np.exp(1j * coarse_phase)).astype(np.complex64)  # (P, rows, S)
    b = np.exp(2j * np.pi * freqs[:, :, None] * fine[None, None, :]).astype(np.complex64)  # (P, S, cols)
    return np.matmul(a, b).reshape(freqs.shape[0], rows * cols)[:, :n]


def jakes_gains(
    rng: np.random.Generator,
    n: int,
    doppler: float,
    scattered_powers: np.ndarray,
    los_power: float = 0.0,
    los_angle: float = LOS_ANGLE_38901,
    n_sinusoids: int = N_SINUSOIDS,
) -> np.ndarray:
    """Gains of P independent Clarke/Jakes paths at t = 0..n−1, shape (P, n), complex64.

    ``doppler`` is fD in cycles per time step. Path p has scattered power
    ``scattered_powers[p]``; path 0 also carries the line-of-sight phasor of
    power ``los_power``. Draws θ (P×M uniforms), then φ (P×M uniforms).
    """
    powers = np.asarray(scattered_powers, dtype=np.float64)
    m = n_sinusoids
    theta = rng.uniform(-np.pi / m, np.pi / m, size=(powers.size, m))
    phi = rng.uniform(-np.pi, np.pi, size=(powers.size, m))
    alpha = 2 * np.pi * np.arange(1, m + 1) / m + theta
    freqs = doppler * np.cos(alpha)
    amplitudes = np.repeat(np.sqrt(powers / m)[:, None], m, axis=1)
    if los_power > 0:
        # The line of sight rides along as one more sinusoid of path 0 (zero amplitude elsewhere).
        los_freq = np.zeros((powers.size, 1))
        los_freq[0] = doppler * np.cos(los_angle)
        los_amplitude = np.zeros((powers.size, 1))
        los_amplitude[0] = np.sqrt(los_power)
        freqs = np.hstack([freqs, los_freq])
        phi = np.hstack([phi, np.zeros((powers.size, 1))])
        amplitudes = np.hstack([amplitudes, los_amplitude])
    return sinusoid_sum(freqs, phi, amplitudes, n)


class DopplerFading(FlatFading):
    """y[i] = h[i]·x[i] + n[i] with h a unit-power Rayleigh (K = 0) or Rician Clarke/Jakes process.

    ``doppler`` is the normalised maximum Doppler shift fD·Ts in [0, 0.5)
    (cycles per symbol); the gain's correlation J0(2π·fD·τ) first falls to
    0.5 after τ ≈ 0.24/fD symbols. Reports one gain per symbol (``coherence=1``).
    Draw order: the noise seed, then the sinusoids' angles and phases.
    """

    coherence = 1  # gains change every symbol

    def __init__(
        self,
        doppler: float,
        k_factor: float = 0.0,
        los_angle: float = LOS_ANGLE_38901,
        n_sinusoids: int = N_SINUSOIDS,
    ) -> None:
        self.doppler = check_doppler(doppler)
        self.k_factor = check_k_factor(k_factor)
        if not np.isfinite(los_angle):
            raise ValueError(f"line-of-sight angle must be finite, got {los_angle}")
        if not (np.isfinite(n_sinusoids) and int(n_sinusoids) == n_sinusoids and n_sinusoids >= 1):
            raise ValueError(f"number of sinusoids must be an integer >= 1, got {n_sinusoids}")
        self.los_angle = float(los_angle)
        self.n_sinusoids = int(n_sinusoids)

    def gains(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """The gain of each of ``n`` symbols."""
        los_power, scattered_power = rician_powers(self.k_factor)
        return jakes_gains(
            rng, n, self.doppler, np.array([scattered_power]), los_power, self.los_angle, self.n_sinusoids
        )[0]

