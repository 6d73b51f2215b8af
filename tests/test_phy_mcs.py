"""MCS table and choice: ordering, the Shannon bound, monotone choice, and a simulated check of thresholds."""

import numpy as np
import pytest

from gensemcom.shared.phy.link import decode_bits, encode_bits
from gensemcom.shared.phy.mcs import MCS_TABLE, choose_mcs, mcs_from_index


def shannon_db(spectral_efficiency: float) -> float:
    return 10 * np.log10(2**spectral_efficiency - 1)


def test_table_is_a_ladder():
    assert [m.index for m in MCS_TABLE] == list(range(len(MCS_TABLE)))
    efficiency = [m.spectral_efficiency for m in MCS_TABLE]
    thresholds = [m.snr_threshold_db for m in MCS_TABLE]
    assert np.all(np.diff(efficiency) > 0)
    assert np.all(np.diff(thresholds) > 0)
    assert {m.modulation for m in MCS_TABLE} == {"bpsk", "qpsk", "16qam", "64qam", "256qam"}
    assert all(0.2 <= m.code_rate <= 948 / 1024 for m in MCS_TABLE)


def test_thresholds_respect_the_shannon_limit():
    """No code beats capacity; a 1024-bit 5G LDPC block at BLER 10 % sits 1-4 dB above it."""
    for m in MCS_TABLE:
        gap = m.snr_threshold_db - shannon_db(m.spectral_efficiency)
        assert 1.0 < gap < 3.5, f"MCS {m.index}: {gap:.2f} dB from the Shannon limit"


def test_choice_is_monotone_in_snr_and_respects_the_margin():
    snrs = np.arange(-10, 35, 0.1)
    for margin in (0.0, 1.0, 3.0):
        chosen = [choose_mcs(s, margin).index for s in snrs]
        assert np.all(np.diff(chosen) >= 0)
        for s, i in zip(snrs, chosen):
            m = MCS_TABLE[i]
            assert i == 0 or m.snr_threshold_db + margin <= s  # usable ...
            if i + 1 < len(MCS_TABLE):
                assert MCS_TABLE[i + 1].snr_threshold_db + margin > s  # ... and the best usable
    assert choose_mcs(-30.0).index == 0
    assert choose_mcs(60.0).index == len(MCS_TABLE) - 1
    assert choose_mcs(12.0, margin_db=2.0) == choose_mcs(10.0, margin_db=0.0)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="finite"):
        choose_mcs(float("nan"))
    with pytest.raises(ValueError, match="margin"):
        choose_mcs(10.0, margin_db=-1.0)
    with pytest.raises(ValueError, match="MCS index"):
        mcs_from_index(len(MCS_TABLE))
    assert mcs_from_index(3) is MCS_TABLE[3]


@pytest.mark.parametrize("index", [4, 10])
def test_measured_threshold_separates_working_from_failing(index):
    """0.75 dB above its threshold an MCS delivers nearly every block; 0.75 dB below it loses most."""
    mcs = mcs_from_index(index)
    rng = np.random.default_rng(index)
    frames, n_bits = 30, 1024
    errors = {}
    for offset in (-0.75, 0.75):
        bits = rng.integers(0, 2, (frames, n_bits), dtype=np.uint8)
        symbols = encode_bits(bits, mcs)
        no = 10 ** (-(mcs.snr_threshold_db + offset) / 10)
        noise = rng.normal(size=(*symbols.shape, 2)) @ np.array([1, 1j]) * np.sqrt(no / 2)
        decoded, _ = decode_bits((symbols + noise).astype(np.complex64), no, n_bits, mcs)
        errors[offset] = np.count_nonzero(np.any(decoded != bits, axis=1))
    assert errors[0.75] <= 2, errors
    assert errors[-0.75] >= 10, errors
