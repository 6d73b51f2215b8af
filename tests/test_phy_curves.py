"""BER/BLER curves: theory against textbook closed forms and simulation, and the files the tool writes."""

import json

import numpy as np
import pytest
from scipy.special import erfc
from scipy.stats import binom

from gensemcom.channel.curves import ber_curves, ber_theory, main, shannon_limit_db, simulate_ber


def q(x):
    return 0.5 * erfc(np.asarray(x) / np.sqrt(2))


def rayleigh_q(c, gamma):
    return 0.5 * (1 - np.sqrt(c * c * gamma / (2 + c * c * gamma)))


# Textbook exact Gray-code BERs as (weight, c) with BER = sum weight·Q(c·sqrt(Es/N0)).
TEXTBOOK = {
    "bpsk": [(1.0, np.sqrt(2))],
    "qpsk": [(1.0, 1.0)],
    "16qam": [(3 / 4, np.sqrt(1 / 5)), (1 / 2, 3 * np.sqrt(1 / 5)), (-1 / 4, 5 * np.sqrt(1 / 5))],
}


@pytest.mark.parametrize("modulation", list(TEXTBOOK))
def test_theory_equals_textbook_closed_forms(modulation):
    snr_db = np.arange(-5, 31, 2.5)
    gamma = 10 ** (snr_db / 10)
    awgn = sum(w * q(c * np.sqrt(gamma)) for w, c in TEXTBOOK[modulation])
    rayleigh = sum(w * rayleigh_q(c, gamma) for w, c in TEXTBOOK[modulation])
    np.testing.assert_allclose(ber_theory(modulation, "awgn", snr_db), awgn, rtol=1e-9)
    np.testing.assert_allclose(ber_theory(modulation, "rayleigh", snr_db), rayleigh, rtol=1e-9)


@pytest.mark.parametrize(("modulation", "order"), [("64qam", 64), ("256qam", 256)])
def test_high_order_theory_tends_to_the_nearest_neighbour_approximation(modulation, order):
    """At high SNR only the nearest neighbours matter: 4/log2(M)·(1 - 1/√M)·Q(√(3γ/(M-1)))."""
    snr_db = np.array([30.0, 35.0])
    gamma = 10 ** (snr_db / 10)
    approx = 4 / np.log2(order) * (1 - 1 / np.sqrt(order)) * q(np.sqrt(3 * gamma / (order - 1)))
    np.testing.assert_allclose(ber_theory(modulation, "awgn", snr_db), approx, rtol=2e-3)
    # and at 0 dB every modulation is worse than BPSK, but no worse than guessing
    assert ber_theory("bpsk", "awgn", 0.0) < ber_theory(modulation, "awgn", 0.0) < 0.5


@pytest.mark.parametrize(
    ("modulation", "channel", "snr_db"),
    [("64qam", "awgn", 16.0), ("256qam", "awgn", 22.0), ("64qam", "rayleigh", 20.0), ("bpsk", "rayleigh", 10.0)],
)
def test_simulation_through_the_channel_models_matches_theory(modulation, channel, snr_db):
    n_bits = 120_000
    errors = simulate_ber(modulation, channel, snr_db, n_bits, np.random.default_rng(int(snr_db)))
    low, high = binom.interval(0.999, n_bits, float(ber_theory(modulation, channel, snr_db)))
    assert low <= errors <= high


def test_shannon_limit():
    assert shannon_limit_db(1.0) == pytest.approx(0.0)
    assert shannon_limit_db(2.0) == pytest.approx(10 * np.log10(3))


def test_curves_write_png_and_json_and_repeat_bit_for_bit(tmp_path):
    paths = ber_curves(tmp_path / "a", [0.0, 9.0, 18.0], 3000, 4, coded_mcs=[4], n_frames=3, n_payload_bits=200)
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths["png"].stat().st_size > 20_000
    results = json.loads(paths["json"].read_text())
    uncoded = results["uncoded"]
    assert {(p["channel"], p["modulation"]) for p in uncoded} == {
        (c, m) for c in ("awgn", "rayleigh") for m in ("bpsk", "qpsk", "16qam", "64qam", "256qam")
    }
    bpsk = [p for p in uncoded if p["channel"] == "awgn" and p["modulation"] == "bpsk"]
    assert [(p["snr_db"], p["errors"]) for p in bpsk][1] == (9.0, 0)
    assert len(bpsk) == 2  # a curve stops at its first error-free point
    assert all(p["ber"] == p["errors"] / p["bits"] for p in uncoded)
    assert results["coded"] and all(p["mcs"] == 4 and p["blocks"] == 3 for p in results["coded"])
    assert main(["--out-dir", str(tmp_path / "b"), "--snr-min", "0", "--snr-max", "18", "--snr-step", "9",
                 "--bits", "3000", "--seed", "4", "--mcs", "4", "--frames", "3", "--payload-bits", "200"]) == 0
    assert json.loads((tmp_path / "b" / "ber_curves.json").read_text()) == results


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="channel"):
        ber_theory("qpsk", "rician", 3.0)
    with pytest.raises(ValueError, match="snrs"):
        ber_curves(tmp_path, snrs=[])
    with pytest.raises(ValueError, match="modulation"):
        simulate_ber("8psk", "awgn", 3.0, 100, np.random.default_rng(0))
