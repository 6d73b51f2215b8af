"""The digital link API the pipelines call: round trips at every MCS, sizes, scrambling, CRC, bad input."""

import numpy as np
import pytest

from gensemcom.shared.phy.link import (
    DigitalDecoder,
    DigitalEncoder,
    decode_payload,
    encode_payload,
    symbols_for_payload,
)
from gensemcom.shared.phy.mcs import MCS_TABLE, mcs_from_index

PROMPT = b'{"caption": "two people on a beach at sunset", "labels": ["person", "person", "sea"]}'


def awgn(x: np.ndarray, no: float | np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Reference CN(0, no) noise, written independently of gensemcom.channel."""
    noise = rng.normal(size=(x.size, 2)) @ np.array([1, 1j]) * np.sqrt(np.asarray(no) / 2)
    return (x + noise).astype(np.complex64)


@pytest.mark.parametrize("mcs", MCS_TABLE, ids=lambda m: f"mcs{m.index}")
def test_round_trip_at_every_mcs_above_its_threshold(mcs):
    rng = np.random.default_rng(mcs.index)
    symbols, n_bits, plan = encode_payload(PROMPT, mcs)
    assert n_bits == 8 * len(PROMPT)
    assert symbols.dtype == np.complex64
    assert symbols.size == plan.n_symbols == symbols_for_payload(n_bits, mcs)
    assert plan.effective_rate <= mcs.code_rate
    no = 10 ** (-(mcs.snr_threshold_db + 3) / 10)
    assert decode_payload(awgn(symbols, no, rng), no, n_bits, mcs) == (PROMPT, True)


def test_fading_per_symbol_noise_and_a_segmented_payload():
    """A 1.2 kB mask at 64-QAM is two code blocks; each symbol carries its own noise variance."""
    rng = np.random.default_rng(11)
    mcs = mcs_from_index(9)
    payload = rng.integers(0, 256, 1200, dtype=np.uint8).tobytes()
    symbols, n_bits, plan = encode_payload(payload, mcs)
    assert plan.n_blocks == 2
    h = (rng.normal(size=symbols.size) + 1j * rng.normal(size=symbols.size)) / np.sqrt(2)
    no = 10 ** (-(mcs.snr_threshold_db + 10) / 10)  # mean SNR; deep fades still lose symbols
    equalised = (awgn(h * symbols, no, rng) / h).astype(np.complex64)
    assert decode_payload(equalised, no / np.abs(h) ** 2, n_bits, mcs) == (payload, True)


def test_empty_payload_is_a_crc_alone():
    mcs = mcs_from_index(4)
    symbols, n_bits, plan = encode_payload(b"", mcs)
    assert n_bits == 0 and plan.k_block == 24
    assert decode_payload(symbols, 0.01, 0, mcs) == (b"", True)


def test_scrambling_whitens_an_all_zero_payload():
    mcs = mcs_from_index(7)
    symbols, _, _ = encode_payload(bytes(1000), mcs)
    np.testing.assert_allclose(np.mean(np.abs(symbols) ** 2), 1, atol=0.05)
    assert abs(np.mean(symbols)) < 0.05
    assert np.unique(np.round(symbols, 4)).size == 16  # every 16-QAM point is used


def test_crc_catches_a_corrupted_payload():
    rng = np.random.default_rng(3)
    mcs = mcs_from_index(5)
    symbols, n_bits, _ = encode_payload(PROMPT, mcs)
    corrupted = symbols.copy()
    middle = slice(symbols.size // 4, 3 * symbols.size // 4)
    corrupted[middle] = -corrupted[middle]  # half the frame confidently wrong
    payload, ok = decode_payload(awgn(corrupted, 0.01, rng), 0.01, n_bits, mcs)
    assert ok is False
    assert payload != PROMPT and len(payload) == len(PROMPT)


def test_blocks_bind_the_mcs():
    mcs = mcs_from_index(6)
    symbols, n_bits, plan = DigitalEncoder(mcs)(PROMPT)
    expected, _, _ = encode_payload(PROMPT, mcs)
    np.testing.assert_array_equal(symbols, expected)
    assert DigitalDecoder(mcs, num_iter=10)(symbols, 1e-3, n_bits) == (PROMPT, True)


def test_bad_input_is_rejected():
    mcs = mcs_from_index(4)
    symbols, n_bits, _ = encode_payload(PROMPT, mcs)
    with pytest.raises(ValueError, match="symbols"):
        decode_payload(symbols[:-1], 0.1, n_bits, mcs)
    with pytest.raises(ValueError, match="multiple of 8"):
        decode_payload(symbols, 0.1, n_bits - 3, mcs)
    with pytest.raises(ValueError, match="shape"):
        decode_payload(symbols, np.ones(symbols.size - 1), n_bits, mcs)
    with pytest.raises(ValueError, match="> 0"):
        decode_payload(symbols, -1.0, n_bits, mcs)
    with pytest.raises(ValueError, match="complex"):
        decode_payload(symbols.real, 0.1, n_bits, mcs)
    with pytest.raises(ValueError, match="num_iter"):
        decode_payload(symbols, 0.1, n_bits, mcs, num_iter=0)


@pytest.mark.parametrize("n_bits", [1, 1023, 1025, 40_000])
def test_scrambling_sequence_is_sionnas_for_every_length(n_bits: int) -> None:
    """The cached sequence is sliced from a longer one; each length must still equal Sionna's own."""
    from sionna.phy.nr.utils import generate_prng_seq

    from gensemcom.shared.phy.link import _SCRAMBLING_INIT, _scrambling_sequence

    expected = generate_prng_seq(n_bits, _SCRAMBLING_INIT).astype(np.uint8)
    assert np.array_equal(_scrambling_sequence(n_bits), expected)
