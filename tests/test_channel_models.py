"""Channel model tests: noise and fading statistics against theory, seeding, validation."""

import numpy as np
import pytest
from scipy.stats import chi2, kstest

from gensemcom.channel.models import (
    AWGN,
    CHANNEL_MODELS,
    BlockRayleigh,
    ChannelState,
    make_channel,
    snr_db_to_no,
)


def unit_symbols(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.exp(2j * np.pi * rng.random(n)).astype(np.complex64)


def test_snr_conversion():
    assert snr_db_to_no(0.0) == 1.0
    assert snr_db_to_no(10.0) == pytest.approx(0.1)
    assert snr_db_to_no(-3.0) == pytest.approx(1.9952623)


@pytest.mark.parametrize("snr_db", [-5.0, 10.0, 30.0])
def test_awgn_noise_is_zero_mean_circular_with_variance_no(snr_db):
    rng = np.random.default_rng(1)
    n = 200_000
    no = snr_db_to_no(snr_db)
    x = unit_symbols(n, rng)
    noise = (AWGN()(x, no, rng) - x).astype(np.complex128)
    # 2·Σ|n|²/no is chi-square with 2n degrees of freedom.
    low, high = chi2.interval(0.999, 2 * n)
    assert low <= 2 * np.sum(np.abs(noise) ** 2) / no <= high
    # Each component has variance no/2; the mean is within 4.5 standard errors of 0.
    stderr = np.sqrt(no / 2 / n)
    assert abs(noise.real.mean()) < 4.5 * stderr and abs(noise.imag.mean()) < 4.5 * stderr
    assert np.var(noise.real) == pytest.approx(no / 2, rel=0.02)
    assert np.var(noise.imag) == pytest.approx(no / 2, rel=0.02)
    assert abs(np.mean(noise.real * noise.imag)) < 4.5 * no / 2 / np.sqrt(n)  # uncorrelated


def test_rayleigh_gain_power_is_exponential_and_phase_uniform():
    rng = np.random.default_rng(2)
    x = np.ones(20_000, np.complex64)
    _, state = BlockRayleigh(coherence=1)(x, 1e-3, rng)
    assert state.gains.shape == (20_000,)
    assert kstest(np.abs(state.gains) ** 2, "expon").pvalue > 1e-3
    assert kstest(np.angle(state.gains), "uniform", args=(-np.pi, 2 * np.pi)).pvalue > 1e-3


def test_rayleigh_blocks_hold_the_gain_constant():
    rng = np.random.default_rng(3)
    x = unit_symbols(95, rng)
    y, state = BlockRayleigh(coherence=10)(x, snr_db_to_no(60.0), rng)
    assert state.gains.shape == (10,) and state.coherence == 10
    per_symbol = state.per_symbol(95)
    np.testing.assert_array_equal(per_symbol, np.concatenate([np.full(10, g) for g in state.gains])[:95])
    # At 60 dB, y/x reveals the gain: constant inside each block, including the short last one.
    ratio = y / x
    for block in range(10):
        segment = ratio[10 * block : 10 * block + 10]
        np.testing.assert_allclose(segment, state.gains[block], atol=0.01)


def test_quasi_static_rayleigh_uses_one_gain():
    rng = np.random.default_rng(4)
    x = unit_symbols(1000, rng)
    y, state = make_channel("rayleigh", 60.0)(x, rng)
    assert state.gains.shape == (1,) and state.coherence == 0
    np.testing.assert_allclose(y / x, state.gains[0], atol=0.01)
    np.testing.assert_array_equal(state.per_symbol(4), np.full(4, state.gains[0]))


def test_channel_state_rejects_mismatched_length():
    state = ChannelState(gains=np.ones(3, np.complex64), coherence=10, no=0.1)
    with pytest.raises(ValueError, match="do not cover"):
        state.per_symbol(31)


@pytest.mark.parametrize("model,coherence", [("awgn", 0), ("rayleigh", 0), ("rayleigh", 7)])
def test_seeded_runs_are_bit_for_bit_repeatable(model, coherence):
    x = unit_symbols(1001, np.random.default_rng(5))
    channel = make_channel(model, 5.0, coherence)
    y1, s1 = channel(x, np.random.default_rng(42))
    y2, s2 = channel(x, np.random.default_rng(42))
    y3, _ = channel(x, np.random.default_rng(43))
    assert y1.dtype == np.complex64
    assert y1.tobytes() == y2.tobytes() and s1.gains.tobytes() == s2.gains.tobytes()
    assert y1.tobytes() != y3.tobytes()


def test_awgn_model_reports_unit_gain_and_its_noise():
    rng = np.random.default_rng(6)
    x = unit_symbols(10, rng)
    _, state = make_channel("awgn", 20.0)(x, rng)
    np.testing.assert_array_equal(state.gains, [1 + 0j])
    assert state.coherence == 0 and state.no == pytest.approx(0.01)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"model": "rician", "snr_db": 10.0}, "unknown channel model"),
        ({"model": "awgn", "snr_db": 60.5}, r"\[-30, 60\]"),
        ({"model": "awgn", "snr_db": -31.0}, r"\[-30, 60\]"),
        ({"model": "rayleigh", "snr_db": float("nan")}, r"\[-30, 60\]"),
        ({"model": "rayleigh", "snr_db": 10.0, "coherence": -1}, "coherence"),
    ],
)
def test_make_channel_rejects_invalid_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_channel(**kwargs)


def test_every_listed_model_can_be_built():
    rng = np.random.default_rng(7)
    for name in CHANNEL_MODELS:
        assert make_channel(name, 0.0)(unit_symbols(4, rng), rng)[0].shape == (4,)


def test_channels_reject_non_symbol_input():
    rng = np.random.default_rng(8)
    with pytest.raises(ValueError, match="complex"):
        AWGN()(np.ones(4, np.float32), 0.1, rng)
    with pytest.raises(ValueError, match="1-D"):
        make_channel("rayleigh", 10.0)(np.ones((2, 2), np.complex64), rng)
    with pytest.raises(ValueError, match="noise variance"):
        AWGN()(np.ones(4, np.complex64), -0.1, rng)
