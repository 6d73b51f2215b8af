"""CRC, code-block segmentation and 5G LDPC: known values, round trips and coding gain."""

import numpy as np
import pytest

from gensemcom.shared.modem import hard_decision
from gensemcom.shared.phy.crc import crc_attach, crc_check
from gensemcom.shared.phy.ldpc import LdpcBlockCode, ldpc_block_code
from gensemcom.shared.phy.qam import QamDemapper, QamMapper
from gensemcom.shared.phy.transport import (
    MAX_CODE_BLOCK,
    decode_transport,
    encode_transport,
    plan_transport,
    select_base_graph,
)

# TS 38.212 §5.1 generator polynomials, highest power first (x^24 ... x^0).
POLYNOMIALS = {
    "CRC24A": [24, 23, 18, 17, 14, 11, 10, 7, 6, 5, 4, 3, 1, 0],
    "CRC24B": [24, 23, 6, 5, 1, 0],
}


def reference_crc(bits: np.ndarray, name: str) -> np.ndarray:
    """Long division of bits·x^24 by the generator, one bit at a time (an independent implementation)."""
    poly = np.zeros(25, np.uint8)
    poly[[24 - p for p in POLYNOMIALS[name]]] = 1
    register = np.concatenate([bits.astype(np.uint8), np.zeros(24, np.uint8)])
    for i in range(bits.size):
        if register[i]:
            register[i : i + 25] ^= poly
    return register[-24:]


def awgn_llr(coded: np.ndarray, modulation: str, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Map, add CN(0, no) noise (written here, independent of gensemcom.channel) and demap."""
    x = QamMapper(modulation)(coded.reshape(-1))
    no = 10 ** (-snr_db / 10)
    y = x + np.sqrt(no / 2) * (rng.normal(size=x.size) + 1j * rng.normal(size=x.size))
    return QamDemapper(modulation)(y.astype(np.complex64), no).reshape(coded.shape)


# --- CRC ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["CRC24A", "CRC24B"])
def test_crc_matches_long_division(name):
    rng = np.random.default_rng(1)
    for k in (1, 40, 333):
        bits = rng.integers(0, 2, k, dtype=np.uint8)
        coded = crc_attach(bits, name)
        np.testing.assert_array_equal(coded[:k], bits)
        np.testing.assert_array_equal(coded[k:], reference_crc(bits, name))


def test_crc_catches_every_single_bit_flip_and_random_bursts():
    rng = np.random.default_rng(2)
    coded = crc_attach(rng.integers(0, 2, 200, dtype=np.uint8))
    flips = np.tile(coded, (coded.size, 1))
    flips[np.arange(coded.size), np.arange(coded.size)] ^= 1
    assert not crc_check(flips)[1].any()
    bursts = np.tile(coded, (500, 1))
    for row in bursts:
        start = rng.integers(0, coded.size - 24)
        row[start : start + 24] ^= rng.integers(0, 2, 24, dtype=np.uint8) | np.eye(1, 24, 0, np.uint8)[0]
    assert not crc_check(bursts)[1].any()
    info, ok = crc_check(coded)
    assert ok and info.size == 200


def test_crc_rejects_short_input():
    with pytest.raises(ValueError, match="24 bits"):
        crc_check(np.zeros(10, np.uint8))


# --- segmentation and rate matching ------------------------------------------------------


def test_base_graph_follows_38212():
    assert select_base_graph(200, 0.9) == "bg2"  # A <= 292
    assert select_base_graph(3000, 0.6) == "bg2"  # A <= 3824 and R <= 0.67
    assert select_base_graph(3000, 0.7) == "bg1"
    assert select_base_graph(20000, 0.25) == "bg2"  # R <= 0.25
    assert select_base_graph(20000, 0.3) == "bg2"  # below 1/3: BG2 here (no repetition in Sionna)
    assert select_base_graph(20000, 0.5) == "bg1"


@pytest.mark.parametrize(
    ("n_bits", "rate", "qm"), [(0, 0.5, 2), (1024, 0.5, 2), (8424, 0.8, 6), (8425, 0.8, 6), (20000, 0.3, 1)]
)
def test_plan_segments_and_rate_matches_within_limits(n_bits, rate, qm):
    plan = plan_transport(n_bits, rate, qm)
    k_max = MAX_CODE_BLOCK[plan.base_graph]
    assert plan.k_block <= k_max
    crc_bits = 24 + (24 * plan.n_blocks if plan.n_blocks > 1 else 0)
    assert plan.n_blocks * plan.k_block == n_bits + crc_bits + plan.n_padding
    assert 0 <= plan.n_padding < plan.n_blocks
    assert plan.n_block % qm == 0 and plan.n_coded_bits == plan.n_symbols * qm
    assert plan.k_block / plan.n_block <= rate  # never above the target rate ...
    assert plan.k_block / (plan.n_block - qm) > rate  # ... and not one symbol more than needed
    assert (plan.n_blocks > 1) == (n_bits + 24 > k_max)


def test_plan_rejects_bad_parameters():
    with pytest.raises(ValueError, match="code rate"):
        plan_transport(100, 0.1, 2)
    with pytest.raises(ValueError, match="n_payload_bits"):
        plan_transport(-8, 0.5, 2)
    with pytest.raises(ValueError, match="bits_per_symbol"):
        plan_transport(100, 0.5, 3)


# --- coding ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_bits", "rate", "modulation"),
    [(0, 0.5, "qpsk"), (300, 0.37, "bpsk"), (2000, 0.75, "64qam"), (8600, 0.6, "16qam")],
)
def test_transport_round_trip_at_high_snr(n_bits, rate, modulation):
    rng = np.random.default_rng(n_bits)
    qm = {"bpsk": 1, "qpsk": 2, "16qam": 4, "64qam": 6}[modulation]
    plan = plan_transport(n_bits, rate, qm)
    bits = rng.integers(0, 2, (2, n_bits), dtype=np.uint8)
    coded = encode_transport(bits, plan)
    assert coded.shape == (2, plan.n_coded_bits) and coded.dtype == np.uint8
    decoded, ok = decode_transport(awgn_llr(coded, modulation, 6.0 * qm, rng), plan)
    assert ok.all()
    np.testing.assert_array_equal(decoded, bits)


def test_coded_bler_is_below_uncoded_at_the_same_snr():
    """QPSK rate 1/2 at 2.5 dB: uncoded, a 500-bit block almost never survives; coded, almost always."""
    rng = np.random.default_rng(5)
    n_bits, frames, snr_db = 500, 24, 2.5
    bits = rng.integers(0, 2, (frames, n_bits), dtype=np.uint8)
    uncoded = hard_decision(awgn_llr(bits, "qpsk", snr_db, rng).reshape(-1)).reshape(bits.shape)
    uncoded_errors = np.count_nonzero(np.any(uncoded != bits, axis=1))
    plan = plan_transport(n_bits, 0.5, 2)
    decoded, ok = decode_transport(awgn_llr(encode_transport(bits, plan), "qpsk", snr_db, rng), plan)
    coded_errors = np.count_nonzero(np.any(decoded != bits, axis=1))
    assert uncoded_errors == frames  # BER ~ 4 %: every block has errors
    assert coded_errors <= 3
    assert np.array_equal(ok, np.all(decoded == bits, axis=1))


def test_crc_reports_failure_at_low_snr_and_decoding_is_repeatable():
    rng = np.random.default_rng(6)
    plan = plan_transport(500, 0.5, 2)
    bits = rng.integers(0, 2, (3, 500), dtype=np.uint8)
    llr = awgn_llr(encode_transport(bits, plan), "qpsk", -3.0, rng)
    decoded, ok = decode_transport(llr, plan, num_iter=6)
    assert not ok.any() and np.any(decoded != bits, axis=1).all()
    again, ok_again = decode_transport(llr, plan, num_iter=6)
    np.testing.assert_array_equal(again, decoded)
    np.testing.assert_array_equal(ok_again, ok)


def test_early_stopping_gives_the_full_iteration_result():
    rng = np.random.default_rng(7)
    plan = plan_transport(500, 0.5, 2)
    code = ldpc_block_code(plan.k_block, plan.n_block, 2, plan.base_graph)
    info = crc_attach(rng.integers(0, 2, (4, plan.k_block - 24), dtype=np.uint8), "CRC24B")
    llr = awgn_llr(code.encode(info), "qpsk", 3.0, rng)
    full = code.decode(llr, 20)
    early = code.decode(llr, 20, is_valid=lambda hard: crc_check(hard, "CRC24B")[1])
    np.testing.assert_array_equal(early, full)
    np.testing.assert_array_equal(full, info)


def test_decoder_rejects_bad_shapes_and_iterations():
    code = LdpcBlockCode(k=100, n=200, bits_per_symbol=2, base_graph="bg2")
    with pytest.raises(ValueError, match="shape"):
        code.decode(np.zeros((1, 199), np.float32))
    with pytest.raises(ValueError, match="num_iter"):
        code.decode(np.zeros((1, 200), np.float32), num_iter=0)
    with pytest.raises(ValueError, match="shape"):
        encode_transport(np.zeros((1, 10), np.uint8), plan_transport(12, 0.5, 2))
