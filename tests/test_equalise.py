"""Estimation and equalisation tests against estimation theory and Monte-Carlo."""

import numpy as np
import pytest

from gensemcom.receiver.equalise import equalise
from gensemcom.shared.modem import QPSKDemapper, QPSKMapper, pilot_sequence


def received(tx: np.ndarray, h: complex, no: float, rng: np.random.Generator) -> np.ndarray:
    """Reference y = h·x + CN(0, no), independent of gensemcom.channel."""
    noise = rng.normal(scale=np.sqrt(no / 2), size=(tx.size, 2)) @ np.array([1, 1j])
    return (h * tx + noise).astype(np.complex64)


def qpsk(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    bits = rng.integers(0, 2, 2 * n, dtype=np.uint8)
    return bits, QPSKMapper()(bits)


def test_zero_forcing_recovers_x_exactly_without_noise():
    rng = np.random.default_rng(3)
    _, x = qpsk(500, rng)
    h = np.complex64(0.05 + 0.7j)
    x_hat, no_eff = equalise(h * x, h, 0.0, method="zf")
    np.testing.assert_allclose(x_hat, x, atol=1e-6)
    np.testing.assert_array_equal(no_eff, np.zeros(500, np.float32))


def test_mmse_output_and_its_reported_noise_match_monte_carlo():
    rng = np.random.default_rng(4)
    n, no, h = 200_000, 0.5, 0.6 + 0.4j
    _, x = qpsk(n, rng)
    y = received(x, h, no, rng)
    x_hat, no_eff = equalise(y, h, no, method="mmse")
    np.testing.assert_allclose(x_hat, np.conj(h) * y / (abs(h) ** 2 + no), rtol=1e-5, atol=1e-6)
    # Reported effective noise is the MMSE: E|x̂ - x|² = no/(|h|² + no).
    np.testing.assert_allclose(no_eff, no / (abs(h) ** 2 + no), rtol=1e-6)
    assert np.mean(np.abs(x_hat - x) ** 2) == pytest.approx(no_eff[0], rel=0.02)


def test_mmse_llrs_equal_zero_forcing_llrs_for_qpsk():
    """The MMSE noise figure makes the demapper exact: same LLRs as the unbiased ZF form."""
    rng = np.random.default_rng(5)
    _, x = qpsk(1000, rng)
    h, no = 0.3 - 0.9j, 0.8
    y = received(x, h, no, rng)
    llr_mmse = QPSKDemapper()(*equalise(y, h, no, "mmse"))
    llr_zf = QPSKDemapper()(*equalise(y, h, no, "zf"))
    np.testing.assert_allclose(llr_mmse, llr_zf, rtol=1e-4, atol=1e-4)


def test_per_symbol_gains_and_noise_for_block_fading():
    rng = np.random.default_rng(6)
    _, x = qpsk(6, rng)
    h = np.repeat([1 + 1j, -0.5j, 2.0], 2)
    no = np.repeat([0.1, 0.2, 0.3], 2)
    x_hat, no_eff = equalise(h * x, h, no, "zf")
    np.testing.assert_allclose(x_hat, x, atol=1e-6)
    np.testing.assert_allclose(no_eff, no / np.abs(h) ** 2, rtol=1e-6)


def test_invalid_inputs_are_rejected():
    pilots = pilot_sequence(8)
    with pytest.raises(ValueError, match="unknown equaliser"):
        equalise(pilots, 1.0, 0.1, method="ml")
    with pytest.raises(ValueError, match="non-zero"):
        equalise(pilots, 0.0, 0.1, method="zf")
    with pytest.raises(ValueError, match="one value per symbol"):
        equalise(pilots, np.ones(3), 0.1)
