"""Channel estimation tests against estimation theory, Monte-Carlo and a second implementation."""

import time

import numpy as np
import pytest
from scipy.stats import chi2

from gensemcom.channel.models import make_channel
from gensemcom.receiver.equalise import equalise
from gensemcom.receiver.estimate import (
    ChannelPrior,
    effective_noise,
    estimate_channel,
    perfect_csi,
)
from gensemcom.shared.modem import QPSKDemapper, QPSKMapper, hard_decision, pilot_sequence
from gensemcom.shared.pilots import PilotPattern


def complex_normal(rng: np.random.Generator, n: int, variance: float) -> np.ndarray:
    """CN(0, variance) draws, independent of gensemcom.channel."""
    return rng.normal(scale=np.sqrt(variance / 2), size=(n, 2)) @ np.array([1, 1j])


def qpsk(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    bits = rng.integers(0, 2, 2 * n, dtype=np.uint8)
    return bits, QPSKMapper()(bits).astype(np.complex128)


def block_pilots(n_blocks: int, coherence: int, per_block: int, every: int = 1) -> np.ndarray:
    """The first ``per_block`` symbols of every ``every``-th block of ``coherence`` symbols."""
    starts = np.arange(0, n_blocks, every) * coherence
    return (starts[:, None] + np.arange(per_block)).ravel()


def block_stream(rng, n_blocks, coherence, index, no):
    """QPSK with ZC pilots at ``index`` through block Rayleigh fading h_b ~ CN(0, 1) and AWGN."""
    n = n_blocks * coherence
    _, x = qpsk(rng, n)
    x[index] = np.tile(pilot_sequence(4), index.size // 4)
    h = complex_normal(rng, n_blocks, 1.0)
    y = np.repeat(h, coherence) * x + complex_normal(rng, n, no)
    return y.astype(np.complex64), x, h


# --- the prior --------------------------------------------------------------


def bessel_j0(x: np.ndarray) -> np.ndarray:
    """J0(x) = (1/π)∫₀^π cos(x·sin θ) dθ by the midpoint rule (spectrally accurate here)."""
    theta = (np.arange(2000) + 0.5) * np.pi / 2000
    return np.mean(np.cos(np.multiply.outer(x, np.sin(theta))), axis=-1)


def test_prior_correlation_is_block_indicator_or_clarke():
    i, j = np.arange(10)[:, None], np.arange(10)[None, :]
    blocks = ChannelPrior(coherence=4, power=2.0).correlation(i, j)
    np.testing.assert_array_equal(blocks, 2.0 * (i // 4 == j // 4))
    np.testing.assert_array_equal(ChannelPrior(power=0.5).correlation(i, j), np.full((10, 10), 0.5))
    lags = np.array([0.0, 0.5, 3.0, 17.5, 60.0])
    clarke = ChannelPrior(doppler=0.02, power=3.0).correlation(lags, 0.0)
    np.testing.assert_allclose(clarke, 3.0 * bessel_j0(2 * np.pi * 0.02 * lags), atol=1e-10)
    np.testing.assert_allclose(ChannelPrior(doppler=0.02).correlation(0.0, lags), clarke / 3.0)


# --- grouping and LS per group ---------------------------------------------


def test_groups_split_runs_evenly_and_never_span_a_block():
    rng = np.random.default_rng(0)
    index = np.concatenate([np.arange(64), np.arange(80, 97), [120]])  # preamble, a 17-run, a lone pilot
    p = complex_normal(rng, index.size, 1.0)
    rx = complex_normal(rng, 130, 1.0).astype(np.complex64)
    estimate = estimate_channel(rx, index, p, method="ls", group=16)
    # 64 → 4 × 16; 17 → 8 + 9 (not 16 + 1); the lone pilot is a group of its own.
    edges = [(0, 15), (16, 31), (32, 47), (48, 63), (80, 87), (88, 96), (120, 120)]
    np.testing.assert_array_equal(estimate.pilot_times, [(a + b) / 2 for a, b in edges])
    for (a, b), gain in zip(edges, estimate.pilot_gains):
        sel = (index >= a) & (index <= b)
        np.testing.assert_allclose(gain, np.vdot(p[sel], rx[index[sel]]) / np.vdot(p[sel], p[sel]).real, rtol=1e-5)
    # A block prior of 50 symbols cuts the preamble at 50 first: 50 → 12+13+12+13, 14 → 14.
    blocked = estimate_channel(rx, index, p, method="ls", prior=ChannelPrior(coherence=50), group=16)
    np.testing.assert_array_equal(blocked.pilot_times[:5], [5.5, 18, 30.5, 43, 56.5])


# --- block fading: MSE against theory ---------------------------------------


@pytest.mark.parametrize("snr_db", [0.0, 10.0])
def test_block_ls_and_lmmse_errors_match_theory(snr_db):
    rng = np.random.default_rng(int(snr_db) + 10)
    n_blocks, coherence, no = 3000, 20, 10 ** (-snr_db / 10)
    index = block_pilots(n_blocks, coherence, 4)
    y, x, h = block_stream(rng, n_blocks, coherence, index, no)
    prior = ChannelPrior(coherence=coherence)
    ls = estimate_channel(y, index, x[index], method="ls", prior=prior)
    lmmse = estimate_channel(y, index, x[index], method="lmmse", prior=prior)
    starts = np.arange(n_blocks) * coherence
    variance = no / 4  # σ² = no / Σ|p|²
    # LS error ~ CN(0, σ²): 2·Σ|e|²/σ² is chi-square with 2·blocks degrees of freedom.
    statistic = 2 * np.sum(np.abs(ls.gain[starts] - h) ** 2) / variance
    assert chi2.interval(0.999, 2 * n_blocks)[0] <= statistic <= chi2.interval(0.999, 2 * n_blocks)[1]
    # LMMSE error ~ CN(0, σ²/(1 + σ²)) exactly when the shrink uses the true no.
    lmmse_mse = np.mean(np.abs(lmmse.gain[starts] - h) ** 2)
    theory = variance / (1 + variance)
    assert abs(lmmse_mse - theory) < 4 * theory / np.sqrt(n_blocks)
    # The reported errors are those formulas, evaluated with the estimated noise.
    assert ls.no == pytest.approx(no, rel=0.05)
    np.testing.assert_allclose(ls.error, ls.no / 4, rtol=1e-6)
    estimated = lmmse.no / 4
    np.testing.assert_allclose(lmmse.error, estimated / (1 + estimated), rtol=1e-6)
    if snr_db == 0:  # shrinking pays where the noise is comparable to the channel
        assert lmmse_mse < np.mean(np.abs(ls.gain[starts] - h) ** 2) - 0.03


@pytest.mark.parametrize("method", ["ls", "lmmse"])
def test_block_without_pilots_reports_the_error_it_makes(method):
    """Borrowing the neighbour's estimate: error P + E|ĥ'|², confirmed by Monte-Carlo."""
    rng = np.random.default_rng(20)
    n_blocks, coherence, no = 4000, 10, 0.5
    index = block_pilots(n_blocks, coherence, 4, every=2)
    y, x, h = block_stream(rng, n_blocks, coherence, index, no)
    estimate = estimate_channel(y, index, x[index], method=method, prior=ChannelPrior(coherence=coherence))
    empty = np.arange(1, n_blocks, 2) * coherence
    variance = no / 4
    expected = 2 + variance if method == "ls" else 1 + 1 / (1 + variance)
    assert estimate.error[empty] == pytest.approx(np.full(empty.size, expected), rel=0.05)
    np.testing.assert_array_equal(estimate.gain[empty], estimate.gain[empty - coherence])  # the earlier neighbour
    mse = np.mean(np.abs(estimate.gain[empty] - h[1::2]) ** 2)
    assert abs(mse - expected) < 4 * expected / np.sqrt(empty.size)


def test_estimate_of_the_channel_models_block_rayleigh():
    """Blocks of gensemcom.channel and of the prior line up at stream index 0."""
    rng = np.random.default_rng(21)
    n_blocks, coherence = 2000, 32
    n = n_blocks * coherence
    index = block_pilots(n_blocks, coherence, 4)
    _, x = qpsk(rng, n)
    y, state = make_channel("rayleigh", 5.0, coherence=coherence)(x.astype(np.complex64), rng)
    estimate = estimate_channel(y, index, x[index], prior=ChannelPrior(coherence=coherence))
    squared = np.abs(estimate.gain - state.per_symbol(n)) ** 2
    per_block = squared[:: coherence]
    assert abs(per_block.mean() - estimate.error.mean()) < 4 * estimate.error.mean() / np.sqrt(n_blocks)


def test_effective_noise_is_the_residual_power_after_lmmse():
    rng = np.random.default_rng(22)
    n_blocks, coherence, no = 3000, 20, 0.3
    index = block_pilots(n_blocks, coherence, 4)
    y, x, _ = block_stream(rng, n_blocks, coherence, index, no)
    estimate = estimate_channel(y, index, x[index], prior=ChannelPrior(coherence=coherence))
    data = np.setdiff1d(np.arange(y.size), index)
    residual = np.mean(np.abs(y[data] - estimate.gain[data] * x[data]) ** 2)
    reported = effective_noise(estimate.no, estimate.error[data])
    assert residual == pytest.approx(float(np.mean(reported)), rel=0.03)
    np.testing.assert_allclose(effective_noise(0.1, np.array([0.0, 0.2]), symbol_power=2.0), [0.1, 0.5], rtol=1e-6)


# --- noise and SNR -----------------------------------------------------------


def test_noise_estimate_is_unbiased():
    rng = np.random.default_rng(30)
    index = np.concatenate([np.arange(64), np.arange(80, 97), [120, 125]])  # groups 4×16, 8, 9, 1, 1
    p = pilot_sequence(index.size).astype(np.complex128)
    no, h, trials = 0.2, 0.7 - 0.4j, 1000
    dof = 4 * 15 + 8 + 7  # the lone pilots give no residual
    estimates = []
    for _ in range(trials):
        rx = np.zeros(130, np.complex64)
        rx[index] = h * p + complex_normal(rng, index.size, no)
        estimates.append(estimate_channel(rx, index, p).no)
    stderr = no / np.sqrt(trials * dof)
    assert abs(np.mean(estimates) - no) < 4 * stderr
    assert no * (1 - dof / (dof + 6)) > 10 * stderr  # dividing by n_g instead of n_g − 1 would be caught


@pytest.mark.parametrize("method", ["ls", "lmmse"])
def test_snr_estimate_for_a_known_gain(method):
    rng = np.random.default_rng(31)
    n, h, no = 20_000, 0.5 - 0.5j, 0.05  # true SNR |h|²/no = 10 dB
    pattern = PilotPattern(64, 16, 2)
    index = np.flatnonzero(pattern.is_pilot(np.arange(n)))
    _, x = qpsk(rng, n)
    x[index] = pattern.values(index)
    y = (h * x + complex_normal(rng, n, no)).astype(np.complex64)
    estimate = estimate_channel(y, index, x[index], method=method)
    assert estimate.snr_db == pytest.approx(10.0, abs=0.15)
    assert estimate.method == method


def test_noiseless_pilots_give_a_finite_floored_noise():
    index = np.arange(8)
    p = pilot_sequence(8)
    estimate = estimate_channel(np.concatenate([0.5 * p, np.ones(4, np.complex64)]), index, p)
    assert 0 < estimate.no < 1e-10 and np.isfinite(estimate.snr_db)


def test_noise_needs_two_contiguous_pilots():
    with pytest.raises(ValueError, match="two contiguous pilots"):
        estimate_channel(np.ones(20, np.complex64), np.array([0, 5, 10]), np.ones(3, np.complex64))


# --- Doppler and CFO: Wiener interpolation -----------------------------------


def wiener_by_brute_force(estimate, energies, prior, window, n):
    """Per symbol: the `window` nearest groups (earlier on ties), a dense solve of (R + Σ)w = r."""
    times, gains = estimate.pilot_times, estimate.pilot_gains.astype(np.complex128)
    gain, error = np.empty(n, np.complex128), np.empty(n)
    for t in range(n):
        near = np.sort(np.argsort(np.abs(times - t), kind="stable")[:window])
        system = prior.correlation(times[near][:, None], times[near][None, :]) + np.diag(estimate.no / energies[near])
        r = prior.correlation(t, times[near])
        w = np.linalg.solve(system, r)
        gain[t], error[t] = w @ gains[near], prior.power - w @ r
    return gain, error


@pytest.mark.parametrize("window", [1, 3, 8, 40])
def test_wiener_matches_a_dense_solve_per_symbol(window):
    rng = np.random.default_rng(40 + window)
    # Irregular pilots: a preamble, bursts of 1 to 3, a long gap and a long tail without pilots.
    index = np.concatenate([np.arange(20), [30, 31, 45, 58, 59, 60, 70, 71], [200, 201], [215, 216]])
    n = 400
    p = complex_normal(rng, index.size, 1.0)
    rx = complex_normal(rng, n, 1.0).astype(np.complex64)
    prior = ChannelPrior(doppler=0.015, power=1.3)
    estimate = estimate_channel(rx, index, p, prior=prior, group=8, window=window)
    groups = [(0, 6), (6, 13), (13, 20), (20, 22), (22, 23), (23, 26), (26, 28), (28, 30), (30, 32)]  # 20 → 6+7+7
    energies = np.array([np.sum(np.abs(p[a:b]) ** 2) for a, b in groups])
    gain, error = wiener_by_brute_force(estimate, energies, prior, min(window, len(groups)), n)
    np.testing.assert_allclose(estimate.gain, gain, atol=2e-6)
    np.testing.assert_allclose(estimate.error, error, atol=1e-6)


def test_ls_with_doppler_prior_interpolates_linearly():
    rng = np.random.default_rng(41)
    index = np.array([10, 11, 40, 41, 42, 43, 90, 91])
    p = complex_normal(rng, index.size, 1.0)
    rx = complex_normal(rng, 120, 1.0).astype(np.complex64)
    estimate = estimate_channel(rx, index, p, method="ls", prior=ChannelPrior(doppler=0.01))
    times, gains = estimate.pilot_times, estimate.pilot_gains
    t = np.arange(120)
    expected = np.interp(t, times, gains.real) + 1j * np.interp(t, times, gains.imag)
    np.testing.assert_allclose(estimate.gain, expected, atol=1e-6)
    energies = np.array([np.sum(np.abs(p[a:b]) ** 2) for a, b in [(0, 2), (2, 6), (6, 8)]])
    a = (65 - times[1]) / (times[2] - times[1])  # symbol 65 lies between groups 1 and 2
    noise_only = (1 - a) ** 2 * estimate.no / energies[1] + a**2 * estimate.no / energies[2]
    assert estimate.error[65] == pytest.approx(noise_only, rel=1e-5)
    assert estimate.error[0] == pytest.approx(estimate.no / energies[0], rel=1e-5)


def doppler_frame(rng, n, pattern, channel):
    bits, x = qpsk(rng, n)
    index = np.flatnonzero(pattern.is_pilot(np.arange(n)))
    x[index] = pattern.values(index)
    y, state = channel(x.astype(np.complex64), rng)
    return y, x, bits, index, state


def test_wiener_tracks_clarke_fading_and_its_error_is_honest():
    rng = np.random.default_rng(42)
    n, frames, no = 4000, 20, 0.1
    pattern = PilotPattern(64, 16, 2)
    channel = make_channel("rayleigh", 10.0, doppler=0.01)
    prior = ChannelPrior(doppler=0.01)
    wiener_mse, reported, single_mse = [], [], []
    bits_wrong = {"wiener": 0, "single": 0}
    n_bits = 0
    for _ in range(frames):
        y, x, bits, index, state = doppler_frame(rng, n, pattern, channel)
        h = state.per_symbol(n)
        data = np.setdiff1d(np.arange(n), index)
        estimates = {"wiener": estimate_channel(y, index, x[index], prior=prior),
                     "single": estimate_channel(y, index, x[index])}
        wiener_mse.append(np.mean(np.abs(estimates["wiener"].gain - h) ** 2))
        reported.append(np.mean(estimates["wiener"].error))
        single_mse.append(np.mean(np.abs(estimates["single"].gain - h) ** 2))
        for name, estimate in estimates.items():
            x_hat, no_eff = equalise(y[data], estimate.gain[data],
                                     effective_noise(estimate.no, estimate.error[data]), "mmse")
            decided = hard_decision(QPSKDemapper()(x_hat, no_eff))
            bits_wrong[name] += int(np.sum(decided != bits.reshape(-1, 2)[data].ravel()))
        n_bits += 2 * data.size
    mse, error = np.mean(wiener_mse), np.mean(reported)
    assert mse == pytest.approx(error, rel=0.15)
    assert np.mean(single_mse) > 20 * mse
    ber = {name: wrong / n_bits for name, wrong in bits_wrong.items()}
    # Rayleigh QPSK with an LMMSE estimate: ĥ ~ CN(0, 1 − e), noise no + e: per-bit SNR (1 − e)/(2(no + e)).
    gamma = (1 - error) / (2 * (no + error))
    assert ber["wiener"] == pytest.approx(0.5 * (1 - np.sqrt(gamma / (1 + gamma))), rel=0.15)
    assert ber["single"] > 0.3 and ber["wiener"] < ber["single"] / 5


def test_small_doppler_prior_tracks_a_frequency_offset():
    rng = np.random.default_rng(43)
    n = 20_000
    pattern = PilotPattern(64, 16, 2)
    y, x, _, index, state = doppler_frame(rng, n, pattern, make_channel("awgn", 10.0, cfo=1e-3))
    h = state.per_symbol(n)
    tracked = estimate_channel(y, index, x[index], prior=ChannelPrior(doppler=2e-3))
    single = estimate_channel(y, index, x[index])
    mse = np.mean(np.abs(tracked.gain - h) ** 2)
    assert mse < 0.02
    assert mse == pytest.approx(float(np.mean(tracked.error)), rel=0.3)
    assert np.mean(np.abs(single.gain - h) ** 2) > 0.5  # one gain cannot follow 20 turns of phase


def test_wiener_is_fast_on_a_long_stream():
    rng = np.random.default_rng(44)
    n = 100_000
    pattern = PilotPattern(64, 32, 2)
    index = np.flatnonzero(pattern.is_pilot(np.arange(n)))
    rx = complex_normal(rng, n, 1.0).astype(np.complex64)
    prior, pilots = ChannelPrior(doppler=0.01), pattern.values(index)
    seconds = []
    for _ in range(5):
        start = time.perf_counter()
        estimate_channel(rx, index, pilots, prior=prior)
        seconds.append(time.perf_counter() - start)
    assert min(seconds) < 0.1


# --- perfect CSI and bad input ------------------------------------------------


def test_perfect_csi_passes_the_true_gains_through():
    gains = (np.array([1 + 1j, 0.5, -0.2j])).astype(np.complex64)
    estimate = perfect_csi(gains, 0.02)
    np.testing.assert_array_equal(estimate.gain, gains)
    np.testing.assert_array_equal(estimate.error, np.zeros(3, np.float32))
    assert estimate.no == 0.02 and estimate.method == "perfect"
    assert estimate.snr_db == pytest.approx(10 * np.log10(np.mean(np.abs(gains) ** 2) / 0.02))
    assert perfect_csi(gains, 0.0).no > 0  # floored, like the pilot estimate


RX = np.ones(50, np.complex64)
INDEX = np.arange(4)
PILOTS = np.ones(4, np.complex64)


@pytest.mark.parametrize(
    "call",
    [
        lambda: estimate_channel(RX, INDEX, PILOTS[:3]),
        lambda: estimate_channel(RX, np.array([-1, 0, 1, 2]), PILOTS),
        lambda: estimate_channel(RX, np.array([47, 48, 49, 50]), PILOTS),
        lambda: estimate_channel(RX, np.array([0, 1, 1, 2]), PILOTS),
        lambda: estimate_channel(RX, np.array([3, 2, 1, 0]), PILOTS),
        lambda: estimate_channel(RX, INDEX.astype(float), PILOTS),
        lambda: estimate_channel(RX, INDEX[:0], PILOTS[:0]),
        lambda: estimate_channel(RX.reshape(5, 10), INDEX, PILOTS),
        lambda: estimate_channel(RX, INDEX, np.zeros(4, np.complex64)),
        lambda: estimate_channel(RX, INDEX, PILOTS, method="mmse"),
        lambda: estimate_channel(RX, INDEX, PILOTS, method="perfect"),
        lambda: estimate_channel(RX, INDEX, PILOTS, group=0),
        lambda: estimate_channel(RX, INDEX, PILOTS, window=0),
        lambda: ChannelPrior(doppler=-0.01),
        lambda: ChannelPrior(doppler=0.5),
        lambda: ChannelPrior(coherence=-1),
        lambda: ChannelPrior(coherence=8, doppler=0.01),
        lambda: ChannelPrior(power=0.0),
        lambda: perfect_csi(RX, -1.0),
        lambda: perfect_csi(RX.real, 0.1),
        lambda: effective_noise(0.1, np.array([-0.1])),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()
