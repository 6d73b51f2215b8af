"""Front-end impairments: exact CFO rotation, Wiener phase-noise statistics, path loss, composition."""

import numpy as np
import pytest
from scipy.stats import chi2

from gensemcom.channel.fading import BlockRician
from gensemcom.channel.impairments import CarrierFrequencyOffset, PathLoss, PhaseNoise
from gensemcom.channel.models import make_channel


def unit_symbols(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.exp(2j * np.pi * rng.random(n)).astype(np.complex64)


@pytest.mark.parametrize("cfo", [0.013, -0.25, 0.4999])
def test_cfo_rotates_by_exactly_two_pi_cfo_per_symbol(cfo):
    rng = np.random.default_rng(1)
    x = unit_symbols(1_000_000, rng)
    y = CarrierFrequencyOffset(cfo)(x, rng)
    rotation = (y / x).astype(np.complex128)
    step = np.angle(rotation[1:] * np.conj(rotation[:-1]))
    np.testing.assert_allclose(step, 2 * np.pi * cfo, atol=2e-5)
    # No drift over a long frame: the phase at symbol i is 2π·cfo·i (reference in double precision).
    i = np.arange(x.size)
    np.testing.assert_allclose(rotation, np.exp(2j * np.pi * ((cfo * i) % 1.0)), atol=2e-5)


@pytest.mark.parametrize("linewidth", [1e-5, 1e-3])
def test_phase_noise_increments_are_white_with_variance_two_pi_linewidth(linewidth):
    n = 200_000
    phase = PhaseNoise(linewidth).phase(n, np.random.default_rng(2))
    assert phase[0] == 0.0
    steps = np.diff(phase)
    variance = 2 * np.pi * linewidth
    low, high = chi2.interval(0.999, n - 1)
    assert low <= np.sum(steps**2) / variance <= high
    assert abs(np.mean(steps)) < 4.5 * np.sqrt(variance / n)
    assert abs(np.corrcoef(steps[1:], steps[:-1])[0, 1]) < 4.5 / np.sqrt(n)


def test_phase_noise_factor_is_the_phasor_of_its_phase():
    block = PhaseNoise(1e-2)
    phase = block.phase(100_000, np.random.default_rng(3))
    factor = block.factor(100_000, np.random.default_rng(3))
    np.testing.assert_allclose(factor, np.exp(1j * phase), atol=2e-6)


def test_path_loss_scales_the_amplitude_and_snr_refers_to_transmit_power():
    rng = np.random.default_rng(4)
    x = unit_symbols(200_000, rng)
    np.testing.assert_allclose(PathLoss(20.0)(x, rng), 0.1 * x, atol=1e-7)
    y, state = make_channel("awgn", 10.0, path_loss_db=20.0)(x, rng)
    np.testing.assert_allclose(state.gains, [0.1], rtol=1e-6)
    assert state.no == pytest.approx(0.1)  # the nominal SNR, not the received one
    noise = (y - 0.1 * x).astype(np.complex128)
    assert np.mean(np.abs(noise) ** 2) == pytest.approx(0.1, rel=0.02)
    received_snr_db = 10 * np.log10(np.mean(np.abs(0.1 * x) ** 2) / state.no)
    assert received_snr_db == pytest.approx(10.0 - 20.0, abs=1e-3)


def test_impairments_compose_into_the_reported_gains_in_the_documented_order():
    """g = path loss · Rician block gain · CFO phasor · phase-noise phasor.

    Replays the documented draw order: the noise seed, the fading, then the phase noise.
    """
    n, k_factor, coherence, cfo, linewidth, loss_db = 3000, 2.0, 7, 0.01, 1e-3, 3.0
    x = unit_symbols(n, np.random.default_rng(5))
    channel = make_channel(
        "rician", 60.0, coherence, k_factor=k_factor, cfo=cfo, phase_noise=linewidth, path_loss_db=loss_db
    )
    y, state = channel(x, np.random.default_rng(6))

    replay = np.random.default_rng(6)
    replay.integers(2**63)  # the noise seed
    fading = np.repeat(BlockRician(k_factor, coherence).gains(n, replay), coherence)[:n]
    phase = 2 * np.pi * cfo * np.arange(n) + PhaseNoise(linewidth).phase(n, replay)
    expected = 10 ** (-loss_db / 20) * fading * np.exp(1j * phase)

    assert state.coherence == 1
    np.testing.assert_allclose(state.gains, expected, atol=1e-5)
    np.testing.assert_allclose(y, expected * x, atol=5e-3)  # 60 dB: the noise is 1e-3


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: CarrierFrequencyOffset(0.5), "frequency offset"),
        (lambda: CarrierFrequencyOffset(-0.5), "frequency offset"),
        (lambda: CarrierFrequencyOffset(float("nan")), "frequency offset"),
        (lambda: PhaseNoise(-1e-4), "phase-noise"),
        (lambda: PhaseNoise(float("inf")), "phase-noise"),
        (lambda: PathLoss(-1.0), "path loss"),
        (lambda: PathLoss(201.0), "path loss"),
    ],
)
def test_invalid_impairments_are_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()
