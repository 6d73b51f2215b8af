"""Flat fading against theory: Rice and Rayleigh amplitudes, K → ∞, Clarke/Jakes autocorrelation."""

import numpy as np
import pytest
from scipy.special import j0
from scipy.stats import kstest, rayleigh, rice

from gensemcom.channel.doppler import DopplerFading, sinusoid_sum
from gensemcom.channel.fading import BlockRician
from gensemcom.channel.models import make_channel


def unit_symbols(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.exp(2j * np.pi * rng.random(n)).astype(np.complex64)


def rice_of(k_factor: float):
    """scipy's Rice law for |h| with E|h|² = 1: ν = √(K/(K+1)), σ² = 1/(2(K+1)) per component."""
    sigma = np.sqrt(1 / (2 * (k_factor + 1)))
    nu = np.sqrt(k_factor / (k_factor + 1))
    return rice(b=nu / sigma, scale=sigma)


@pytest.mark.parametrize("k_factor", [0.5, 3.0, 10.0])
def test_rician_amplitude_follows_the_rice_distribution(k_factor):
    gains = BlockRician(k_factor, coherence=1).gains(20_000, np.random.default_rng(1))
    amplitude = np.abs(gains).astype(np.float64)
    assert kstest(amplitude, rice_of(k_factor).cdf).pvalue > 1e-3
    assert np.mean(amplitude**2) == pytest.approx(1.0, abs=0.03)
    # The test can tell neighbouring K factors apart.
    assert kstest(amplitude, rice_of(2 * k_factor).cdf).pvalue < 1e-6


def test_rayleigh_channel_amplitude_follows_the_rayleigh_distribution():
    rng = np.random.default_rng(2)
    _, state = make_channel("rayleigh", 20.0, coherence=1)(unit_symbols(20_000, rng), rng)
    amplitude = np.abs(state.gains).astype(np.float64)
    assert kstest(amplitude, rayleigh(scale=np.sqrt(0.5)).cdf).pvalue > 1e-3
    assert kstest(amplitude, rice_of(1.0).cdf).pvalue < 1e-6


def test_rician_with_zero_k_is_rayleigh_bit_for_bit():
    x = unit_symbols(300, np.random.default_rng(3))
    y1, s1 = make_channel("rician", 10.0, 4, k_factor=0.0)(x, np.random.default_rng(4))
    y2, s2 = make_channel("rayleigh", 10.0, 4)(x, np.random.default_rng(4))
    assert y1.tobytes() == y2.tobytes() and s1.gains.tobytes() == s2.gains.tobytes()


def test_rician_converges_to_awgn_as_k_grows():
    """Same seed, same noise: y_rician − y_awgn = (h − 1)·x, whose power is (1 − ν)² + 1/(K + 1)."""
    x = unit_symbols(100_000, np.random.default_rng(5))
    y_awgn, _ = make_channel("awgn", 10.0)(x, np.random.default_rng(6))
    errors = []
    for k_factor in [1.0, 10.0, 100.0, 1e4]:
        y, _ = make_channel("rician", 10.0, coherence=1, k_factor=k_factor)(x, np.random.default_rng(6))
        error = np.mean(np.abs(y.astype(np.complex128) - y_awgn) ** 2)
        theory = (1 - np.sqrt(k_factor / (k_factor + 1))) ** 2 + 1 / (k_factor + 1)
        assert error == pytest.approx(theory, rel=0.03)
        errors.append(error)
    assert errors == sorted(errors, reverse=True)
    y, _ = make_channel("rician", 10.0, coherence=1, k_factor=1e8)(x, np.random.default_rng(6))
    assert np.max(np.abs(y - y_awgn)) < 1e-3


def test_rician_blocks_hold_the_gain_constant_around_the_line_of_sight():
    rng = np.random.default_rng(7)
    x = unit_symbols(95, rng)
    y, state = make_channel("rician", 60.0, 10, k_factor=5.0)(x, rng)
    assert state.gains.shape == (10,) and state.coherence == 10
    ratio = y / x
    for block in range(10):
        np.testing.assert_allclose(ratio[10 * block : 10 * block + 10], state.gains[block], atol=0.01)
    # Blocks differ only by scatter around the line of sight √(K/(K+1)) (phase 0).
    los = np.sqrt(5 / 6)
    many = BlockRician(5.0, coherence=1).gains(50_000, rng)
    assert np.mean(many) == pytest.approx(los, abs=0.01)
    assert np.var(many) == pytest.approx(1 / 6, rel=0.03)


def test_sinusoid_sum_matches_a_direct_sum_over_a_long_frame():
    rng = np.random.default_rng(8)
    freqs = rng.uniform(-0.5, 0.5, (2, 5))
    phases = rng.uniform(-np.pi, np.pi, (2, 5))
    amplitudes = rng.random((2, 5))
    n = 200_003
    t = np.arange(n)
    got = sinusoid_sum(freqs, phases, amplitudes, n)
    for p in range(2):
        direct = sum(a * np.exp(1j * (2 * np.pi * f * t + ph)) for f, ph, a in zip(freqs[p], phases[p], amplitudes[p]))
        np.testing.assert_allclose(got[p], direct, atol=5e-6)


def empirical_autocorrelation(gains: np.ndarray, max_lag: int) -> np.ndarray:
    """R(τ) = mean over realisations (rows) and time of h[t + τ]·conj(h[t])."""
    n = gains.shape[1]
    return np.array([np.mean(gains[:, lag:] * np.conj(gains[:, : n - lag])) for lag in range(max_lag)])


def test_jakes_autocorrelation_is_bessel_j0():
    doppler, max_lag = 0.02, 150
    rng = np.random.default_rng(9)
    block = DopplerFading(doppler)
    gains = np.stack([block.gains(1000, rng) for _ in range(300)]).astype(np.complex128)
    measured = empirical_autocorrelation(gains, max_lag)
    theory = j0(2 * np.pi * doppler * np.arange(max_lag))
    np.testing.assert_allclose(measured.real, theory, atol=0.05)
    np.testing.assert_allclose(measured.imag, 0.0, atol=0.05)


def test_rician_doppler_autocorrelation_adds_the_rotating_line_of_sight():
    doppler, k_factor, los_angle, max_lag = 0.02, 2.0, np.arccos(0.7), 150
    rng = np.random.default_rng(10)
    block = DopplerFading(doppler, k_factor, los_angle)
    gains = np.stack([block.gains(1000, rng) for _ in range(300)]).astype(np.complex128)
    lags = np.arange(max_lag)
    theory = (k_factor * np.exp(2j * np.pi * doppler * np.cos(los_angle) * lags) + j0(2 * np.pi * doppler * lags)) / (
        k_factor + 1
    )
    np.testing.assert_allclose(empirical_autocorrelation(gains, max_lag), theory, atol=0.05)


@pytest.mark.parametrize("k_factor", [0.0, 3.0])
def test_doppler_fading_amplitude_follows_rice(k_factor):
    """Across independent realisations, |h| at any instant is Rice (Rayleigh for K = 0)."""
    rng = np.random.default_rng(11)
    block = DopplerFading(0.05, k_factor)
    samples = np.concatenate([block.gains(400, rng)[::200] for _ in range(1500)])
    assert kstest(np.abs(samples).astype(np.float64), rice_of(k_factor).cdf).pvalue > 1e-3


def test_doppler_channel_reports_per_symbol_gains():
    rng = np.random.default_rng(12)
    x = unit_symbols(2000, rng)
    y, state = make_channel("rayleigh", 60.0, doppler=0.01)(x, rng)
    assert state.coherence == 1 and state.gains.shape == (2000,)
    np.testing.assert_array_equal(state.per_symbol(2000), state.gains)
    np.testing.assert_allclose(y / x, state.gains, atol=0.01)
    # Consecutive gains are close (slow fading), distant ones are not.
    assert np.mean(np.abs(np.diff(state.gains)) ** 2) < 0.01


@pytest.mark.parametrize("doppler", [0.5, 0.7, -1e-3, float("nan")])
def test_doppler_out_of_range_is_rejected(doppler):
    with pytest.raises(ValueError, match=r"\[0, 0.5\)"):
        DopplerFading(doppler)


def test_invalid_fading_parameters_are_rejected():
    with pytest.raises(ValueError, match="K factor"):
        BlockRician(-1.0)
    with pytest.raises(ValueError, match="coherence"):
        BlockRician(1.0, coherence=-2)
    with pytest.raises(ValueError, match="sinusoids"):
        DopplerFading(0.01, n_sinusoids=0)
