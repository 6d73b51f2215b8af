"""Channel model tests: noise and fading statistics against theory, seeding, the spec, validation."""

import numpy as np
import pytest
from scipy.stats import chi2, kstest

from gensemcom.channel.models import (
    AWGN,
    CHANNEL_MODELS,
    BlockRayleigh,
    ChannelSpec,
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


SEEDED_CASES = [
    ("awgn", 0, {}),
    ("rayleigh", 0, {}),
    ("rayleigh", 7, {}),
    ("rician", 7, {"k_factor": 3.0}),
    ("rician", 0, {"k_factor": 1.0, "doppler": 0.01}),
    ("tdl", 2, {"profile": "C", "delay_spread": 2.0, "n_subcarriers": 32}),
    ("awgn", 0, {"cfo": 0.01, "phase_noise": 1e-3, "path_loss_db": 6.0}),
]


@pytest.mark.parametrize("model,coherence,params", SEEDED_CASES)
def test_seeded_runs_are_bit_for_bit_repeatable(model, coherence, params):
    x = unit_symbols(1001, np.random.default_rng(5))
    channel = make_channel(model, 5.0, coherence, **params)
    y1, s1 = channel(x, np.random.default_rng(42))
    y2, s2 = channel(x, np.random.default_rng(42))
    y3, _ = channel(x, np.random.default_rng(43))
    assert y1.dtype == np.complex64 and y1.shape == x.shape
    assert y1.tobytes() == y2.tobytes() and s1.gains.tobytes() == s2.gains.tobytes()
    assert y1.tobytes() != y3.tobytes()


@pytest.mark.parametrize("model,coherence,params", SEEDED_CASES)
def test_state_describes_the_output_exactly(model, coherence, params):
    """At 60 dB, y − g·x is the noise alone: its power is no (so g is what was applied)."""
    rng = np.random.default_rng(9)
    x = unit_symbols(4000, rng)
    y, state = make_channel(model, 60.0, coherence, **params)(x, rng)
    residual = (y - state.per_symbol(x.size) * x).astype(np.complex128)
    low, high = chi2.interval(0.999, 2 * x.size)
    assert low <= 2 * np.sum(np.abs(residual) ** 2) / state.no <= high


def test_awgn_model_reports_unit_gain_and_its_noise():
    rng = np.random.default_rng(6)
    x = unit_symbols(10, rng)
    _, state = make_channel("awgn", 20.0)(x, rng)
    np.testing.assert_array_equal(state.gains, [1 + 0j])
    assert state.coherence == 0 and state.no == pytest.approx(0.01)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"model": "nakagami", "snr_db": 10.0}, "unknown channel model"),
        ({"model": "awgn", "snr_db": 60.5}, r"\[-30, 60\]"),
        ({"model": "awgn", "snr_db": -31.0}, r"\[-30, 60\]"),
        ({"model": "rayleigh", "snr_db": float("nan")}, r"\[-30, 60\]"),
        ({"model": "rayleigh", "snr_db": 10.0, "coherence": -1}, "coherence"),
        ({"model": "rayleigh", "snr_db": 10.0, "coherence": 2.5}, "coherence"),
        ({"model": "rician", "snr_db": 10.0, "k_factor": -0.1}, "K factor"),
        ({"model": "rician", "snr_db": 10.0, "k_factor": float("inf")}, "K factor"),
        ({"model": "awgn", "snr_db": 10.0, "k_factor": -1.0}, "K factor"),  # checked even where unused
        ({"model": "rayleigh", "snr_db": 10.0, "doppler": 0.5}, r"\[0, 0.5\)"),
        ({"model": "rician", "snr_db": 10.0, "doppler": -0.01}, r"\[0, 0.5\)"),
        ({"model": "rayleigh", "snr_db": 10.0, "doppler": float("nan")}, r"\[0, 0.5\)"),
        ({"model": "rayleigh", "snr_db": 10.0, "coherence": 10, "doppler": 0.01}, "not both"),
        ({"model": "tdl", "snr_db": 10.0, "coherence": 10, "doppler": 0.01}, "not both"),
        ({"model": "tdl", "snr_db": 10.0, "profile": "F"}, "unknown TDL profile"),
        ({"model": "tdl", "snr_db": 10.0, "delay_spread": 0.0}, "delay spread"),
        ({"model": "tdl", "snr_db": 10.0, "delay_spread": 2.0, "cp_length": 3}, "shorter than the largest tap"),
        ({"model": "tdl", "snr_db": 10.0, "n_subcarriers": 0}, "subcarriers"),
        ({"model": "tdl", "snr_db": 10.0, "cp_length": 65}, "cyclic prefix"),
        ({"model": "tdl", "snr_db": 10.0, "cfo": 0.01}, "inter-carrier"),
        ({"model": "awgn", "snr_db": 10.0, "cfo": 0.5}, "frequency offset"),
        ({"model": "awgn", "snr_db": 10.0, "phase_noise": -1e-3}, "phase-noise"),
        ({"model": "awgn", "snr_db": 10.0, "path_loss_db": -3.0}, "path loss"),
        ({"model": "rician", "snr_db": 10.0, "los_angle": float("inf")}, "line-of-sight"),
        ({"model": "awgn", "snr_db": 10.0, "k_facter": 3.0}, "unknown channel parameter"),
    ],
)
def test_make_channel_rejects_invalid_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_channel(**kwargs)


def test_every_listed_model_can_be_built():
    rng = np.random.default_rng(7)
    assert CHANNEL_MODELS == ("awgn", "rayleigh", "rician", "tdl")
    for name in CHANNEL_MODELS:
        channel = make_channel(name, 0.0)
        assert channel.name == name and channel.snr_db == 0.0
        assert channel(unit_symbols(4, rng), rng)[0].shape == (4,)


def test_one_seed_gives_the_same_noise_under_every_flat_model():
    """The noise seed is drawn first, so models differ only by their gains (common random numbers)."""
    x = unit_symbols(500, np.random.default_rng(10))
    noises = []
    for model, params in [("awgn", {}), ("rayleigh", {"coherence": 5}), ("rician", {"k_factor": 2.0, "doppler": 0.05})]:
        y, state = make_channel(model, 10.0, **params)(x, np.random.default_rng(11))
        noises.append(y - state.per_symbol(x.size) * x)
    np.testing.assert_allclose(noises[1], noises[0], atol=2e-6)
    np.testing.assert_allclose(noises[2], noises[0], atol=2e-6)


def test_spec_builds_the_same_channel_as_make_channel():
    spec = ChannelSpec(model="rician", snr_db=7.0, coherence=3, k_factor=4.0, path_loss_db=2.0)
    assert spec.validate() is spec
    x = unit_symbols(100, np.random.default_rng(12))
    y1, _ = spec.build()(x, np.random.default_rng(13))
    y2, _ = make_channel("rician", 7.0, 3, k_factor=4.0, path_loss_db=2.0)(x, np.random.default_rng(13))
    assert y1.tobytes() == y2.tobytes()
    assert spec.build().spec == spec


def test_spec_override_replaces_only_given_values():
    spec = ChannelSpec(model="rician", snr_db=10.0, k_factor=3.0)
    changed = spec.override(snr_db=5.0, k_factor=None, doppler=0.01)
    assert (changed.model, changed.snr_db, changed.k_factor, changed.doppler) == ("rician", 5.0, 3.0, 0.01)
    with pytest.raises(ValueError, match="unknown channel parameter"):
        spec.override(snr=5.0)


def test_applied_lists_only_what_the_model_uses():
    spec = ChannelSpec(model="awgn", snr_db=10.0, k_factor=3.0, doppler=0.01, path_loss_db=3.0)
    assert spec.applied() == {"model": "awgn", "snr_db": 10.0, "cfo": 0.0, "phase_noise": 0.0, "path_loss_db": 3.0}
    rician = spec.override(model="rician").applied()
    assert rician["k_factor"] == 3.0 and rician["doppler"] == 0.01 and "profile" not in rician
    tdl = ChannelSpec(model="tdl", profile="A", delay_spread=2.0).applied()
    assert tdl["cp_length"] == 19  # round(9.6586 · 2): the largest TDL-A tap delay
    assert "k_factor" not in tdl and "cfo" not in tdl


def test_channels_reject_non_symbol_input():
    rng = np.random.default_rng(8)
    with pytest.raises(ValueError, match="complex"):
        AWGN()(np.ones(4, np.float32), 0.1, rng)
    with pytest.raises(ValueError, match="1-D"):
        make_channel("rayleigh", 10.0)(np.ones((2, 2), np.complex64), rng)
    with pytest.raises(ValueError, match="noise variance"):
        AWGN()(np.ones(4, np.complex64), -0.1, rng)
