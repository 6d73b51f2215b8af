"""TDL profiles and OFDM: tables vs Sionna's, tap powers, y[k] = H[k]·x[k] + n[k], the cyclic prefix."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import chi2

from gensemcom.channel.models import make_channel
from gensemcom.channel.ofdm import OFDMDemodulator, OFDMModulator
from gensemcom.channel.tdl import TDL_PROFILES, OFDMTDL, convolve_taps, max_delay, sample_spaced_pdp


def unit_symbols(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.exp(2j * np.pi * rng.random(n)).astype(np.complex64)


def sionna_tdl_table(name: str) -> dict:
    """Sionna's copy of a TR 38.901 (V19.2) TDL table, read from its package data without importing it (torch)."""
    root = Path(importlib.util.find_spec("sionna").submodule_search_locations[0])
    return json.loads((root / "phy" / "channel" / "tr38901" / "models" / "v19_2" / f"TDL-{name}.json").read_text())


@pytest.mark.parametrize("name", list(TDL_PROFILES))
def test_profiles_match_sionnas_tr38901_tables(name):
    table = sionna_tdl_table(name)
    profile = TDL_PROFILES[name]
    assert profile.delays == tuple(table["delays"])
    assert profile.powers_db == tuple(table["powers"])
    assert profile.los == bool(table["los"])


@pytest.mark.parametrize("name", list(TDL_PROFILES))
@pytest.mark.parametrize("delay_spread", [0.4, 1.0, 3.7])
def test_sample_spaced_pdp_rounds_each_path_to_a_tap_and_sums_to_one(name, delay_spread):
    profile = TDL_PROFILES[name]
    linear = [10 ** (p / 10) for p in profile.powers_db]
    expected = {}
    for index, (delay, power) in enumerate(zip(profile.delays, linear)):
        if profile.los and index == 0:
            continue  # the LOS component, reported apart
        tap = int(round(delay * delay_spread))
        expected[tap] = expected.get(tap, 0.0) + power / sum(linear)
    taps, los_power = sample_spaced_pdp(name, delay_spread)
    assert taps.size == max(expected) + 1 == max_delay(name, delay_spread) + 1
    np.testing.assert_allclose(taps, [expected.get(lag, 0.0) for lag in range(taps.size)], rtol=1e-12)
    assert los_power == pytest.approx(linear[0] / sum(linear) if profile.los else 0.0)
    assert taps.sum() + los_power == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("name,doppler", [("A", 0.0), ("D", 0.0), ("C", 0.01)])
def test_average_tap_powers_match_the_profile(name, doppler):
    """Σ E|h_l|² = 1 and E|h_l|² is the table's power, with the LOS power on tap 0."""
    kwargs = {"doppler": doppler} if doppler else {"coherence": 1}
    channel = OFDMTDL(name, delay_spread=2.0, n_subcarriers=32, **kwargs)
    taps = channel.taps(6000, np.random.default_rng(1))
    expected, los_power = sample_spaced_pdp(name, 2.0)
    expected = expected.copy()
    expected[0] += los_power
    measured = np.mean(np.abs(taps.astype(np.complex128)) ** 2, axis=0)
    np.testing.assert_allclose(measured, expected, rtol=0.1, atol=1e-4)
    assert measured.sum() == pytest.approx(1.0, abs=0.04)
    assert np.all(taps[:, expected == 0] == 0)


def test_ofdm_modem_round_trip_is_unitary():
    rng = np.random.default_rng(2)
    x = unit_symbols(100, rng)  # not a multiple of 16: the last OFDM symbol is padded
    samples = OFDMModulator(16, 4)(x)
    assert samples.size == 7 * 20 and samples.dtype == np.complex64
    useful = samples.reshape(7, 20)[:, 4:]
    np.testing.assert_allclose(samples.reshape(7, 20)[:, :4], useful[:, -4:])  # the prefix is the tail
    assert np.sum(np.abs(useful) ** 2) == pytest.approx(np.sum(np.abs(x) ** 2), rel=1e-5)  # Parseval
    np.testing.assert_allclose(OFDMDemodulator(16, 4)(samples, 100), x, atol=1e-6)


def test_convolve_taps_is_a_serial_convolution_with_per_block_taps():
    rng = np.random.default_rng(3)
    samples = unit_symbols(60, rng)
    taps = (rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))).astype(np.complex64)
    out = convolve_taps(samples, taps, 20)
    for t in range(60):
        block = t // 20
        direct = sum(taps[block, lag] * samples[t - lag] for lag in range(4) if t - lag >= 0)
        assert out[t] == pytest.approx(direct, abs=1e-5)
    # One block: numpy's convolution.
    np.testing.assert_allclose(convolve_taps(samples, taps[:1], 60), np.convolve(samples, taps[0])[:60], atol=1e-5)


@pytest.mark.parametrize("coherence,doppler", [(0, 0.0), (3, 0.0), (0, 0.002)])
def test_each_subcarrier_sees_the_dft_of_the_taps(coherence, doppler):
    """Without noise, y[k] = H[k]·x[k] exactly, H being the DFT of the taps of that OFDM symbol."""
    rng = np.random.default_rng(4)
    x = unit_symbols(1000, rng)  # 15.6 OFDM symbols of 64
    channel = OFDMTDL("A", delay_spread=3.0, n_subcarriers=64, coherence=coherence, doppler=doppler)
    y, state = channel(x, 0.0, rng)
    assert state.taps.shape == (16, max_delay("A", 3.0) + 1) and state.cp_length == max_delay("A", 3.0)
    h = np.array([np.fft.fft(row.astype(np.complex128), 64) for row in state.taps])
    np.testing.assert_allclose(state.freq_response, h, atol=1e-5)
    np.testing.assert_allclose(state.gains, h.ravel()[:1000], atol=1e-5)
    np.testing.assert_allclose(y, h.ravel()[:1000] * x, atol=1e-5)
    changes = np.any(state.taps[1:] != state.taps[:-1], axis=1)  # changes[r]: symbol r + 1 differs from r
    if doppler > 0:
        expected_changes = np.ones(15, bool)
    elif coherence > 0:
        expected_changes = np.arange(1, 16) % coherence == 0
    else:
        expected_changes = np.zeros(15, bool)
    np.testing.assert_array_equal(changes, expected_changes)


def test_a_cyclic_prefix_shorter_than_the_channel_breaks_the_flat_subcarriers():
    """The exactness above is the prefix's doing: cut it below the largest delay and ISI appears."""
    rng = np.random.default_rng(5)
    x = unit_symbols(640, rng)
    taps = np.tile(np.array([0.8, 0, 0, 0, 0, 0, 0.6j], np.complex64), (10, 1))  # largest delay: 6 samples
    h = np.fft.fft(taps[0], 64)
    for cp, exact in [(6, True), (3, False)]:
        received = convolve_taps(OFDMModulator(64, cp)(x), taps, 64 + cp)
        y = OFDMDemodulator(64, cp)(received, x.size)
        error = np.max(np.abs(y - np.tile(h, 10) * x))
        assert (error < 1e-5) == exact
    with pytest.raises(ValueError, match="shorter than the largest tap delay"):
        OFDMTDL("A", delay_spread=3.0, cp_length=max_delay("A", 3.0) - 1)


def test_noise_per_subcarrier_has_variance_no():
    """Unitary transforms: noise of variance no per time sample is CN(0, no) per subcarrier."""
    rng = np.random.default_rng(6)
    x = unit_symbols(64 * 400, rng)
    y, state = make_channel("tdl", 10.0, profile="B", delay_spread=2.0)(x, rng)
    residual = (y - state.gains * x).astype(np.complex128)
    low, high = chi2.interval(0.999, 2 * x.size)
    assert low <= 2 * np.sum(np.abs(residual) ** 2) / state.no <= high
    assert abs(np.mean(residual.real * residual.imag)) < 4.5 * state.no / 2 / np.sqrt(x.size)


def test_path_loss_scales_the_taps():
    x = unit_symbols(256, np.random.default_rng(7))
    _, plain = make_channel("tdl", 30.0, profile="E", delay_spread=1.5)(x, np.random.default_rng(8))
    _, lossy = make_channel("tdl", 30.0, profile="E", delay_spread=1.5, path_loss_db=20.0)(x, np.random.default_rng(8))
    np.testing.assert_allclose(lossy.taps, 0.1 * plain.taps, rtol=1e-6)
    np.testing.assert_allclose(lossy.gains, 0.1 * plain.gains, rtol=1e-5, atol=1e-7)


def test_invalid_tdl_parameters_are_rejected():
    with pytest.raises(ValueError, match="unknown TDL profile"):
        OFDMTDL("Z")
    with pytest.raises(ValueError, match="delay spread"):
        OFDMTDL("A", delay_spread=-1.0)
    with pytest.raises(ValueError, match="subcarriers"):
        OFDMTDL("A", n_subcarriers=70_000)
    with pytest.raises(ValueError, match="not both"):
        OFDMTDL("A", coherence=2, doppler=0.01)
    with pytest.raises(ValueError, match="OFDM symbols"):
        OFDMDemodulator(16, 4)(np.ones(30, np.complex64), 20)
