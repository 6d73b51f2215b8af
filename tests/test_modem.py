"""Modem tests against closed-form error rates, brute-force LLRs and round trips."""

import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import erfc, logsumexp
from scipy.stats import binom

from gensemcom.shared.modem import (
    QPSKDemapper,
    QPSKMapper,
    RepetitionCode,
    bits_to_bytes,
    bytes_to_bits,
    crc32_append,
    crc32_check,
    decode_payload,
    encode_payload,
    hard_decision,
    pilot_sequence,
    symbols_for_payload,
)


def q_function(x: float) -> float:
    return 0.5 * erfc(x / np.sqrt(2))


def awgn(x: np.ndarray, no: float, rng: np.random.Generator) -> np.ndarray:
    """Reference CN(0, no) noise, written independently of gensemcom.channel."""
    noise = rng.normal(scale=np.sqrt(no / 2), size=(x.size, 2)) @ np.array([1, 1j])
    return (x + noise).astype(np.complex64)


def assert_ber(errors: int, n_bits: int, theory: float) -> None:
    """The error count must fall inside the binomial 99.9 % interval around theory."""
    low, high = binom.interval(0.999, n_bits, theory)
    assert low <= errors <= high, f"{errors} errors in {n_bits} bits, theory {theory * n_bits:.0f}"


# --- CRC and bits ----------------------------------------------------------


def test_crc_round_trip_matches_zlib():
    payload = b"a person on a beach, blue sky"
    data = crc32_append(payload)
    assert data[-4:] == zlib.crc32(payload).to_bytes(4, "big")
    assert crc32_check(data) == (payload, True)


def test_crc_detects_every_single_bit_flip():
    data = bytearray(crc32_append(b"semantic payload"))
    for bit in range(8 * len(data)):
        corrupted = bytearray(data)
        corrupted[bit // 8] ^= 0x80 >> (bit % 8)
        assert crc32_check(bytes(corrupted))[1] is False


def test_crc_check_rejects_short_input():
    with pytest.raises(ValueError, match="CRC32"):
        crc32_check(b"abc")


@given(st.binary(max_size=64))
def test_bits_round_trip_msb_first(data):
    bits = bytes_to_bits(data)
    assert bits.dtype == np.uint8
    assert "".join(map(str, bits)) == "".join(f"{b:08b}" for b in data)
    assert bits_to_bytes(bits) == data


def test_bits_to_bytes_rejects_bad_input():
    with pytest.raises(ValueError, match="multiple of 8"):
        bits_to_bytes(np.ones(7, np.uint8))
    with pytest.raises(ValueError, match="0 or 1"):
        bits_to_bytes(np.full(8, 2, np.uint8))


# --- QPSK ------------------------------------------------------------------


def test_qpsk_constellation_is_gray_and_unit_power():
    points = QPSKMapper()(np.array([0, 0, 0, 1, 1, 1, 1, 0], np.uint8))
    np.testing.assert_allclose(points * np.sqrt(2), [1 + 1j, 1 - 1j, -1 - 1j, -1 + 1j], atol=1e-6)
    assert points.dtype == np.complex64
    np.testing.assert_allclose(np.abs(points) ** 2, 1, atol=1e-6)
    # Walking round the circle, neighbours differ in exactly one bit.
    labels = [(0, 0), (0, 1), (1, 1), (1, 0)]
    for a, b in zip(labels, labels[1:] + labels[:1]):
        assert sum(x != y for x, y in zip(a, b)) == 1


def test_qpsk_pads_odd_bit_count_with_zero():
    symbols = QPSKMapper()(np.array([1, 0, 1], np.uint8))
    assert symbols.size == 2
    llr = QPSKDemapper()(symbols, 0.01)
    np.testing.assert_array_equal(hard_decision(llr), [1, 0, 1, 0])


def test_demapper_matches_brute_force_llr_with_per_symbol_noise():
    rng = np.random.default_rng(3)
    y = (rng.normal(size=50) + 1j * rng.normal(size=50)).astype(np.complex64)
    no = rng.uniform(0.1, 2.0, size=50)
    points = QPSKMapper()(np.array([0, 0, 0, 1, 1, 0, 1, 1], np.uint8))
    labels = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    metric = -np.abs(y[:, None] - points[None, :]) ** 2 / no[:, None]  # log p(y | point) + const
    per_bit = [
        logsumexp(metric[:, labels[:, bit] == 0], axis=1) - logsumexp(metric[:, labels[:, bit] == 1], axis=1)
        for bit in range(2)
    ]
    expected = np.stack(per_bit, axis=1).reshape(-1)  # symbol-major: (b0, b1) of each symbol
    llr = QPSKDemapper()(y, no)
    assert llr.dtype == np.float32
    np.testing.assert_allclose(llr, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("snr_db", [0.0, 4.0, 7.0])
def test_uncoded_qpsk_ber_on_awgn_matches_theory(snr_db):
    rng = np.random.default_rng(int(snr_db * 10) + 1)
    n_bits = 200_000
    bits = rng.integers(0, 2, n_bits, dtype=np.uint8)
    no = 10 ** (-snr_db / 10)
    llr = QPSKDemapper()(awgn(QPSKMapper()(bits), no, rng), no)
    errors = int(np.count_nonzero(hard_decision(llr) != bits))
    assert_ber(errors, n_bits, q_function(np.sqrt(1 / no)))  # Q(√(2Eb/N0)), Eb = Es/2


@pytest.mark.parametrize("snr_db", [5.0, 15.0])
def test_uncoded_qpsk_ber_on_rayleigh_matches_theory(snr_db):
    rng = np.random.default_rng(int(snr_db * 10) + 2)
    n_bits = 200_000
    bits = rng.integers(0, 2, n_bits, dtype=np.uint8)
    no = 10 ** (-snr_db / 10)
    x = QPSKMapper()(bits)
    h = (rng.normal(size=x.size) + 1j * rng.normal(size=x.size)) / np.sqrt(2)
    y = awgn(h * x, no, rng)
    derotated = (np.conj(h) * y / np.abs(h)).astype(np.complex64)  # perfect CSI, coherent detection
    errors = int(np.count_nonzero(hard_decision(QPSKDemapper()(derotated, no)) != bits))
    gamma = 1 / no / 2  # Eb/N0
    assert_ber(errors, n_bits, 0.5 * (1 - np.sqrt(gamma / (1 + gamma))))


def test_repetition_soft_combining_gives_n_times_the_snr():
    rng = np.random.default_rng(7)
    n_bits, snr_db = 200_000, -2.0
    bits = rng.integers(0, 2, n_bits, dtype=np.uint8)
    code = RepetitionCode(3)
    no = 10 ** (-snr_db / 10)
    coded = code.encode(bits)
    np.testing.assert_array_equal(coded[:6], np.repeat(bits[:2], 3))  # bit-major
    llr = QPSKDemapper()(awgn(QPSKMapper()(coded), no, rng), no)
    errors = int(np.count_nonzero(hard_decision(code.decode(llr)) != bits))
    assert_ber(errors, n_bits, q_function(np.sqrt(3 / no)))


def test_repetition_rejects_bad_factor_and_length():
    with pytest.raises(ValueError, match="repetition factor"):
        RepetitionCode(0)
    with pytest.raises(ValueError, match="multiple"):
        RepetitionCode(3).decode(np.zeros(7, np.float32))


# --- pilots ----------------------------------------------------------------


@pytest.mark.parametrize("n", [63, 64, 1])
def test_pilots_are_unit_modulus_zadoff_chu_with_ideal_autocorrelation(n):
    p = pilot_sequence(n)
    assert p.dtype == np.complex64 and p.shape == (n,)
    np.testing.assert_allclose(np.abs(p), 1, atol=1e-6)
    np.testing.assert_array_equal(p, pilot_sequence(n))
    correlation = np.array([np.vdot(p, np.roll(p, shift)) for shift in range(1, n)])
    np.testing.assert_allclose(np.abs(correlation), 0, atol=1e-4 * n)


def test_pilot_length_must_be_positive():
    with pytest.raises(ValueError, match="pilot length"):
        pilot_sequence(0)


# --- payloads --------------------------------------------------------------


@pytest.mark.parametrize("repetition", [1, 3, 4])
def test_payload_round_trip_at_high_snr(repetition):
    rng = np.random.default_rng(repetition)
    payload = b'{"caption": "two people by a lake", "labels": ["person", "tree"]}'
    symbols, n_bits = encode_payload(payload, repetition)
    assert n_bits == 8 * len(payload)
    assert symbols.size == symbols_for_payload(n_bits, repetition)
    np.testing.assert_allclose(np.mean(np.abs(symbols) ** 2), 1, rtol=1e-6)
    no = 10 ** (-10 / 10)
    per_symbol_no = np.full(symbols.size, no)
    assert decode_payload(awgn(symbols, no, rng), per_symbol_no, n_bits, repetition) == (payload, True)


def test_empty_payload_still_carries_a_crc():
    symbols, n_bits = encode_payload(b"", 3)
    assert (n_bits, symbols.size) == (0, 48)
    assert decode_payload(symbols, 0.01, 0, 3) == (b"", True)


def test_crc_flags_failure_at_very_low_snr():
    rng = np.random.default_rng(11)
    payload = bytes(range(100))
    symbols, n_bits = encode_payload(payload, 3)
    no = 10 ** (10 / 10)  # -10 dB
    decoded, ok = decode_payload(awgn(symbols, no, rng), no, n_bits, 3)
    assert ok is False
    assert decoded != payload and len(decoded) == len(payload)


def test_decode_payload_rejects_wrong_symbol_count():
    symbols, n_bits = encode_payload(b"hello", 3)
    with pytest.raises(ValueError, match="symbols"):
        decode_payload(symbols[:-1], 0.1, n_bits, 3)
    with pytest.raises(ValueError, match="multiple of 8"):
        symbols_for_payload(13, 3)
