"""QAM mapping and demapping against closed-form error rates, brute-force LLRs and the QPSK modem."""

import itertools

import numpy as np
import pytest
from scipy.special import erfc, logsumexp
from scipy.stats import binom

from gensemcom.shared.modem import QPSKDemapper, QPSKMapper, hard_decision
from gensemcom.shared.phy.mcs import MODULATIONS, bits_per_symbol
from gensemcom.shared.phy.qam import QamDemapper, QamMapper, constellation_points


def q_function(x: np.ndarray) -> np.ndarray:
    return 0.5 * erfc(np.asarray(x) / np.sqrt(2))


def rayleigh_q(c: float, gamma: float) -> float:
    """E[Q(c·sqrt(g))] over g ~ Exp(mean gamma): the textbook Rayleigh average."""
    return 0.5 * (1 - np.sqrt(c * c * gamma / (2 + c * c * gamma)))


# Closed forms, written out per modulation (Proakis; Simon & Alouini), in Es/N0 = gamma.
# Each is a list of (weight, c) with BER = sum weight·Q(c·sqrt(gamma)).
CLOSED_FORM_TERMS = {
    "bpsk": [(1.0, np.sqrt(2))],
    "qpsk": [(1.0, 1.0)],
    # Gray 16-QAM: 3/4 Q(sqrt(g/5)) + 1/2 Q(3 sqrt(g/5)) - 1/4 Q(5 sqrt(g/5))
    "16qam": [(0.75, np.sqrt(1 / 5)), (0.5, 3 * np.sqrt(1 / 5)), (-0.25, 5 * np.sqrt(1 / 5))],
}


def closed_form_ber(modulation: str, channel: str, snr_db: float) -> float:
    gamma = 10 ** (snr_db / 10)
    terms = CLOSED_FORM_TERMS[modulation]
    if channel == "awgn":
        return float(sum(w * q_function(c * np.sqrt(gamma)) for w, c in terms))
    return float(sum(w * rayleigh_q(c, gamma) for w, c in terms))


def noisy(x: np.ndarray, no: np.ndarray | float, rng: np.random.Generator) -> np.ndarray:
    """Reference CN(0, no) noise, written independently of gensemcom.channel."""
    scale = np.sqrt(np.asarray(no) / 2)
    return (x + scale * (rng.normal(size=x.size) + 1j * rng.normal(size=x.size))).astype(np.complex64)


def assert_ber(errors: int, n_bits: int, theory: float) -> None:
    """The error count must fall inside the binomial 99.9 % interval around theory."""
    low, high = binom.interval(0.999, n_bits, theory)
    assert low <= errors <= high, f"{errors} errors in {n_bits} bits, theory {theory * n_bits:.0f}"


def all_labels(modulation: str) -> np.ndarray:
    """Every bit label of the constellation, MSB first, as one flat bit array."""
    m = bits_per_symbol(modulation)
    return np.array(list(itertools.product([0, 1], repeat=m)), np.uint8).reshape(-1)


# --- constellations ------------------------------------------------------------


@pytest.mark.parametrize("modulation", list(MODULATIONS))
def test_constellation_has_unit_average_power_and_distinct_points(modulation):
    points = QamMapper(modulation)(all_labels(modulation))
    assert points.dtype == np.complex64 and points.size == 2 ** bits_per_symbol(modulation)
    np.testing.assert_allclose(np.mean(np.abs(points) ** 2), 1, rtol=1e-5)
    assert np.unique(np.round(points, 5)).size == points.size
    np.testing.assert_allclose(points, constellation_points(modulation), atol=1e-7)


@pytest.mark.parametrize("modulation", list(MODULATIONS))
def test_random_bits_give_unit_power_and_zero_mean(modulation):
    rng = np.random.default_rng(5)
    symbols = QamMapper(modulation)(rng.integers(0, 2, 80_000 * bits_per_symbol(modulation), dtype=np.uint8))
    np.testing.assert_allclose(np.mean(np.abs(symbols) ** 2), 1, atol=0.02)
    assert abs(np.mean(symbols)) < 0.02


@pytest.mark.parametrize("modulation", list(MODULATIONS))
def test_nearest_neighbours_differ_in_one_bit(modulation):
    """Gray labelling: the points at minimum distance from any point differ from it in exactly one bit."""
    m = bits_per_symbol(modulation)
    points = QamMapper(modulation)(all_labels(modulation))
    distance = np.abs(points[:, None] - points[None, :])
    d_min = np.min(distance[distance > 1e-6])
    for i, j in zip(*np.nonzero(np.abs(distance - d_min) < 1e-4)):
        assert bin(i ^ j).count("1") == 1, f"{modulation}: labels {i:0{m}b} and {j:0{m}b} are neighbours"


def test_bpsk_is_real_plus_minus_one_and_qpsk_is_the_modem_qpsk():
    np.testing.assert_array_equal(QamMapper("bpsk")(np.array([0, 1, 1], np.uint8)), [1, -1, -1])
    bits = np.random.default_rng(2).integers(0, 2, 1000, dtype=np.uint8)
    np.testing.assert_allclose(QamMapper("qpsk")(bits), QPSKMapper()(bits), atol=1e-7)


@pytest.mark.parametrize("modulation", list(MODULATIONS))
def test_round_trip_without_noise(modulation):
    rng = np.random.default_rng(bits_per_symbol(modulation))
    bits = rng.integers(0, 2, 999, dtype=np.uint8)  # not a multiple of 6 or 8: padding
    symbols = QamMapper(modulation)(bits)
    assert symbols.size == -(-bits.size // bits_per_symbol(modulation))
    llr = QamDemapper(modulation)(symbols, 1e-3)
    assert llr.dtype == np.float32 and llr.size == symbols.size * bits_per_symbol(modulation)
    np.testing.assert_array_equal(hard_decision(llr)[: bits.size], bits)
    np.testing.assert_array_equal(hard_decision(llr)[bits.size :], 0)  # the pad bits are zeros


# --- LLRs ----------------------------------------------------------------------------


@pytest.mark.parametrize("modulation", list(MODULATIONS))
def test_llr_sign_convention_positive_means_zero(modulation):
    m = bits_per_symbol(modulation)
    for bit in (0, 1):
        llr = QamDemapper(modulation)(QamMapper(modulation)(np.full(m, bit, np.uint8)), 0.01)
        assert np.all(llr > 0) if bit == 0 else np.all(llr < 0)


def test_bpsk_llr_is_4_re_y_over_no():
    y = np.array([0.3 + 2j, -1.1 - 0.5j, 0.0 + 1j], np.complex64)
    no = np.array([0.5, 2.0, 1.0])
    np.testing.assert_allclose(QamDemapper("bpsk")(y, no), 4 * y.real / no, rtol=1e-5, atol=1e-6)


def test_qpsk_llrs_equal_the_modem_demapper():
    rng = np.random.default_rng(4)
    y = (rng.normal(size=300) + 1j * rng.normal(size=300)).astype(np.complex64)
    no = rng.uniform(0.1, 2.0, 300)
    np.testing.assert_allclose(QamDemapper("qpsk")(y, no), QPSKDemapper()(y, no), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("modulation", ["16qam", "64qam"])
def test_llrs_match_brute_force_with_per_symbol_noise(modulation):
    rng = np.random.default_rng(3)
    m = bits_per_symbol(modulation)
    y = (rng.normal(size=60) + 1j * rng.normal(size=60)).astype(np.complex64)
    no = rng.uniform(0.05, 1.0, 60)
    points = QamMapper(modulation)(all_labels(modulation))
    labels = all_labels(modulation).reshape(-1, m)
    metric = -np.abs(y[:, None] - points[None, :]) ** 2 / no[:, None]
    expected = np.stack(
        [logsumexp(metric[:, labels[:, b] == 0], axis=1) - logsumexp(metric[:, labels[:, b] == 1], axis=1)
         for b in range(m)],
        axis=1,
    ).reshape(-1)
    np.testing.assert_allclose(QamDemapper(modulation)(y, no), expected, rtol=1e-3, atol=1e-3)


def test_demapping_in_chunks_matches_one_pass():
    """256-QAM input larger than one chunk: per-symbol noise must stay aligned across chunks."""
    rng = np.random.default_rng(8)
    n = 40_000  # > 16 384 symbols per chunk at 256 points
    y = (rng.normal(size=n) + 1j * rng.normal(size=n)).astype(np.complex64)
    no = rng.uniform(0.01, 0.1, n)
    llr = QamDemapper("256qam")(y, no)
    tail = QamDemapper("256qam")(y[-100:], no[-100:])
    np.testing.assert_allclose(llr[-800:], tail, rtol=1e-5)


# --- bit error rates against closed forms ---------------------------------------------


@pytest.mark.parametrize(
    ("modulation", "snr_db"),
    [("bpsk", 0.0), ("bpsk", 6.0), ("qpsk", 3.0), ("qpsk", 8.0), ("16qam", 8.0), ("16qam", 14.0)],
)
def test_uncoded_ber_on_awgn_matches_closed_form(modulation, snr_db):
    rng = np.random.default_rng(int(snr_db * 10) + bits_per_symbol(modulation))
    n_bits = 240_000
    bits = rng.integers(0, 2, n_bits, dtype=np.uint8)
    no = 10 ** (-snr_db / 10)
    llr = QamDemapper(modulation)(noisy(QamMapper(modulation)(bits), no, rng), no)
    errors = int(np.count_nonzero(hard_decision(llr) != bits))
    assert_ber(errors, n_bits, closed_form_ber(modulation, "awgn", snr_db))


@pytest.mark.parametrize(
    ("modulation", "snr_db"),
    [("bpsk", 5.0), ("bpsk", 20.0), ("qpsk", 10.0), ("qpsk", 25.0), ("16qam", 12.0), ("16qam", 25.0)],
)
def test_uncoded_ber_on_rayleigh_matches_closed_form(modulation, snr_db):
    rng = np.random.default_rng(int(snr_db * 10) + 100 + bits_per_symbol(modulation))
    n_bits = 240_000
    bits = rng.integers(0, 2, n_bits, dtype=np.uint8)
    no = 10 ** (-snr_db / 10)
    x = QamMapper(modulation)(bits)
    h = (rng.normal(size=x.size) + 1j * rng.normal(size=x.size)) / np.sqrt(2)
    y = noisy(h * x, no, rng)
    equalised = (y / h).astype(np.complex64)  # perfect CSI: zero-forcing per symbol
    llr = QamDemapper(modulation)(equalised, no / np.abs(h) ** 2)
    errors = int(np.count_nonzero(hard_decision(llr) != bits))
    assert_ber(errors, n_bits, closed_form_ber(modulation, "rayleigh", snr_db))


# --- bad input ------------------------------------------------------------------------------


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="unknown modulation"):
        QamMapper("8psk")
    with pytest.raises(ValueError, match="0 or 1"):
        QamMapper("qpsk")(np.array([0, 2, 1, 0]))
    with pytest.raises(ValueError, match="complex"):
        QamDemapper("qpsk")(np.ones(4), 0.1)
    with pytest.raises(ValueError, match="> 0"):
        QamDemapper("16qam")(np.ones(4, np.complex64), 0.0)
    with pytest.raises(ValueError, match="shape"):
        QamDemapper("16qam")(np.ones(4, np.complex64), np.ones(3))
    with pytest.raises(ValueError, match="method"):
        QamDemapper("16qam", method="exact")
