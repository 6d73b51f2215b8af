"""Channel estimation from pilots spread through a frame's symbol stream.

The receiver sees y[t] = h[t]·x[t] + n[t], n ~ CN(0, no), and knows x at the
pilot positions. It estimates h at *every* symbol, the noise variance no, and
how wrong its own estimate is expected to be, so that the equaliser and the
demapper can count the estimation error as extra noise
(:func:`effective_noise`).

Pilots are grouped first: each contiguous run of pilot positions (the
preamble, each later burst; cut at block edges under a block prior) is split
into groups of at most ``group`` symbols. A group gives a least-squares (LS) estimate ĥ_g = Σ p*·y / Σ|p|² at
its midpoint, with error variance σ²_g = no/Σ|p|², and its residual feeds the
noise estimate. What happens between groups depends on what the receiver
assumes about the channel, a :class:`ChannelPrior`:

- **block fading** (``doppler == 0``): h is constant within blocks of
  ``coherence`` symbols and independent between them. Each block pools all of
  its pilots; LMMSE shrinks that LS estimate towards the zero prior mean.
- **Clarke/Jakes fading** (``doppler > 0``): h is a stationary process with
  correlation power·J0(2π·fD·d). LMMSE is the Wiener interpolator over the
  ``window`` nearest groups; LS interpolates linearly between groups.

The ``error`` each estimate reports is its theoretical mean-square error
E|ĥ − h|² *under the prior*: exact when the prior matches the channel, a
model's claim otherwise. The perfect-CSI ablation (:func:`perfect_csi`)
passes the channel's true gains through with zero error.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import j0

from gensemcom.channel.doppler import check_doppler
from gensemcom.channel.state import check_coherence, n_blocks
from gensemcom.shared.modem import as_symbol_array

NOISE_FLOOR = 1e-12  # relative to |h|²: far below complex64 rounding of unit-power symbols
ESTIMATORS = ("lmmse", "ls", "perfect")
_FROM_PILOTS = ("lmmse", "ls")


@dataclass(frozen=True)
class ChannelPrior:
    """What the receiver assumes about the channel's statistics (not what the channel did).

    - ``coherence``: block fading, symbols per block, blocks aligned at stream
      index 0; 0 = one block for the whole stream.
    - ``doppler``: normalised maximum Doppler fD·Ts in [0, 0.5); > 0 replaces
      the blocks by a time-varying Clarke/Jakes process, so it excludes
      ``coherence`` > 0. A small value also lets the estimate follow a slow
      carrier-frequency offset or phase drift (a tone at f is inside the
      Jakes spectrum when |f| < fD).
    - ``power``: E|h|² of the zero-mean prior.
    """

    coherence: int = 0
    doppler: float = 0.0
    power: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "coherence", check_coherence(self.coherence))
        object.__setattr__(self, "doppler", check_doppler(self.doppler))
        if not (np.isfinite(self.power) and self.power > 0):
            raise ValueError(f"prior channel power must be finite and > 0, got {self.power}")
        object.__setattr__(self, "power", float(self.power))
        if self.doppler > 0 and self.coherence > 0:
            raise ValueError("set either coherence (block fading) or doppler (time-varying fading), not both")

    def correlation(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """E[h(i)·h*(j)] for (broadcast) symbol times ``i`` and ``j``, float64."""
        i, j = np.asarray(i, np.float64), np.asarray(j, np.float64)
        if self.doppler > 0:
            return self.power * j0(2 * np.pi * self.doppler * (i - j))
        if self.coherence == 0:
            return np.full(np.broadcast_shapes(i.shape, j.shape), self.power)
        same_block = np.floor(i / self.coherence) == np.floor(j / self.coherence)
        return np.where(same_block, self.power, 0.0)


@dataclass(frozen=True)
class ChannelEstimate:
    """The receiver's channel estimate for every symbol of a stream.

    ``error`` is the estimator's theoretical E|ĥ − h|² per symbol under the
    prior; ``pilot_gains`` are the LS estimates of the pilot groups, at
    stream times ``pilot_times`` (group midpoints), for reporting.
    """

    gain: np.ndarray  # complex64, one per symbol
    error: np.ndarray  # float32, one per symbol
    no: float
    pilot_gains: np.ndarray  # complex64, one per pilot group
    pilot_times: np.ndarray  # float64, one per pilot group
    method: str  # "lmmse", "ls" or "perfect"

    @property
    def snr_db(self) -> float:
        """10·log10(mean |ĥ|² / no): the SNR the frame arrived with, after fading."""
        with np.errstate(divide="ignore"):
            return float(10 * np.log10(np.mean(np.abs(self.gain.astype(np.complex128)) ** 2) / self.no))


def effective_noise(no: float, error: np.ndarray, symbol_power: float = 1.0) -> np.ndarray:
    """Noise the equaliser should assume with an imperfect estimate: no + E|x|²·error, float32.

    y = ĥ·x + (h − ĥ)·x + n, so the estimation error adds a term of variance
    E|x|²·E|h − ĥ|². For the LMMSE estimate h − ĥ is uncorrelated with ĥ and
    this is exact (to second order); for LS it is the usual approximation.
    """
    if not (np.isfinite(no) and no >= 0):
        raise ValueError(f"noise variance must be finite and >= 0, got {no}")
    if not (np.isfinite(symbol_power) and symbol_power > 0):
        raise ValueError(f"symbol power must be finite and > 0, got {symbol_power}")
    error = np.asarray(error, np.float64)
    if not np.all(np.isfinite(error)) or np.any(error < 0):
        raise ValueError("estimation error variances must be finite and >= 0")
    return (no + symbol_power * error).astype(np.float32)


def perfect_csi(gains: np.ndarray, no: float) -> ChannelEstimate:
    """The genie: the channel's true per-symbol gains, zero error (ablations only).

    ``no`` is floored as the pilot estimate is, so that a noiseless channel
    still gives a finite equaliser and demapper.
    """
    gains = as_symbol_array(gains, "gains")
    if not (np.isfinite(no) and no >= 0):
        raise ValueError(f"noise variance must be finite and >= 0, got {no}")
    mean_power = float(np.mean(np.abs(gains.astype(np.complex128)) ** 2)) if gains.size else 0.0
    return ChannelEstimate(
        gain=gains,
        error=np.zeros(gains.size, np.float32),
        no=_floored(float(no), mean_power),
        pilot_gains=np.zeros(0, np.complex64),
        pilot_times=np.zeros(0, np.float64),
        method="perfect",
    )


def estimate_channel(
    rx: np.ndarray,
    pilot_index: np.ndarray,
    tx_pilots: np.ndarray,
    method: str = "lmmse",
    prior: ChannelPrior = ChannelPrior(),
    group: int = 16,
    window: int = 8,
) -> ChannelEstimate:
    """Gain, error and noise estimate for every symbol of ``rx`` from the pilots in it.

    ``pilot_index`` holds the stream positions of the pilots (strictly
    increasing) and ``tx_pilots`` the symbols sent there. ``group`` bounds the
    pilots per LS group; ``window`` is how many groups the Wiener
    interpolator (Doppler prior) uses per symbol. With a Doppler prior, keep
    2π·fD·``group`` well below 1: each group is modelled as a sample at its
    midpoint, and the noise estimate assumes h constant within a group.
    """
    if method not in _FROM_PILOTS:
        if method == "perfect":
            raise ValueError("perfect CSI comes from the channel's truth: use perfect_csi(), not the pilots")
        raise ValueError(f"unknown estimator {method!r}; choose one of {', '.join(ESTIMATORS)}")
    rx = as_symbol_array(rx, "rx")
    index, pilots = _check_pilots(rx.size, pilot_index, tx_pilots)
    group, window = _positive_int(group, "group"), _positive_int(window, "window")

    groups = _PilotGroups.of(index, rx[index], pilots, group, prior.coherence)
    no = _floored(groups.noise_variance(), float(np.mean(np.abs(groups.ls) ** 2)))
    if prior.doppler == 0:
        gain, error = _blocks(index, rx[index], pilots, no, rx.size, method, prior)
    elif method == "lmmse":
        gain, error = _wiener(groups, no, rx.size, prior, window)
    else:
        gain, error = _linear(groups, no, rx.size)
    return ChannelEstimate(
        gain=gain.astype(np.complex64),
        error=error.astype(np.float32),
        no=no,
        pilot_gains=groups.ls.astype(np.complex64),
        pilot_times=groups.twice_centre / 2.0,
        method=method,
    )


# --- input checks ----------------------------------------------------------


def _positive_int(value: int, name: str) -> int:
    if not (np.isfinite(value) and int(value) == value and value >= 1):
        raise ValueError(f"{name} must be an integer >= 1, got {value}")
    return int(value)


def _check_pilots(n: int, pilot_index: np.ndarray, tx_pilots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pilot positions as int64 and pilot symbols as complex128, or ValueError."""
    index = np.asarray(pilot_index)
    if index.ndim != 1 or index.dtype.kind not in "iu":
        raise ValueError(f"pilot_index must be a 1-D integer array, got shape {index.shape} dtype {index.dtype}")
    pilots = as_symbol_array(tx_pilots, "tx_pilots")
    if pilots.size != index.size:
        raise ValueError(f"{pilots.size} pilot symbols for {index.size} pilot positions")
    if index.size == 0:
        raise ValueError("need pilots to estimate the channel")
    index = index.astype(np.int64)
    if index[0] < 0 or index[-1] >= n or np.any(np.diff(index) <= 0):
        raise ValueError(f"pilot positions must be strictly increasing and within [0, {n}) of the stream")
    return index, pilots.astype(np.complex128)


def _floored(no: float, gain_power: float) -> float:
    """Noise variance floored relative to the gain: noiseless input (complex64 rounding only) stays finite."""
    return max(no, NOISE_FLOOR * max(gain_power, NOISE_FLOOR))


# --- pilot groups ----------------------------------------------------------


@dataclass(frozen=True)
class _PilotGroups:
    """LS estimates of pilot groups: contiguous pilots, at most ``group`` each, never across a fading block."""

    ls: np.ndarray  # complex128 LS gain per group
    energy: np.ndarray  # Σ|p|² per group
    twice_centre: np.ndarray  # int64: first + last position (twice the midpoint, an integer)
    residual: np.ndarray  # Σ|y − ĥ_g·p|² per group
    size: np.ndarray  # pilots per group

    @classmethod
    def of(cls, index: np.ndarray, y: np.ndarray, p: np.ndarray, group: int, coherence: int) -> "_PilotGroups":
        run_starts = np.flatnonzero(np.diff(index) != 1) + 1
        if coherence:
            run_starts = np.union1d(run_starts, np.flatnonzero(np.diff(index // coherence)) + 1)
        starts = _split_runs(np.concatenate([[0], run_starts]), index.size, group)
        size = np.diff(np.append(starts, index.size))
        energy = np.add.reduceat(np.abs(p) ** 2, starts)
        if np.any(energy <= 0):
            raise ValueError("a pilot group has zero energy: pilots must not all be zero")
        ls = np.add.reduceat(np.conj(p) * y, starts) / energy
        misfit = y - np.repeat(ls, size) * p
        residual = np.add.reduceat(np.abs(misfit) ** 2, starts)
        twice_centre = index[starts] + index[starts + size - 1]
        return cls(ls, energy, twice_centre, residual, size)

    def noise_variance(self) -> float:
        """Pooled residual Σ|y − ĥ_g·p|² / Σ(n_g − 1) over groups of two or more pilots.

        Fitting ĥ_g uses one complex degree of freedom per group, hence
        n_g − 1: unbiased when h is constant within each group (a channel
        that varies inside a group inflates it).
        """
        usable = self.size >= 2
        if not np.any(usable):
            raise ValueError("estimating the noise needs a pilot group of at least two contiguous pilots")
        return float(np.sum(self.residual[usable]) / np.sum(self.size[usable] - 1))


def _split_runs(run_starts: np.ndarray, n: int, group: int) -> np.ndarray:
    """Start of every group when each run is cut into ceil(len/group) groups of near-equal size.

    Equal sizes (17 pilots → 8 + 9, not 16 + 1) give every group a similar
    error and keep two pilots per group for the noise estimate.
    """
    lengths = np.diff(np.append(run_starts, n))
    counts = -(-lengths // group)
    run = np.repeat(np.arange(run_starts.size), counts)
    k = np.arange(run.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return run_starts[run] + (k * lengths[run]) // counts[run]


# --- block prior -----------------------------------------------------------


def _blocks(
    index: np.ndarray, y: np.ndarray, p: np.ndarray, no: float, n: int, method: str, prior: ChannelPrior
) -> tuple[np.ndarray, np.ndarray]:
    """One estimate per fading block from all of its pilots, spread over its symbols.

    LS: ĥ_b = Σ p*·y / Σ|p|², error σ²_b = no/Σ_b|p|². LMMSE with h ~ CN(0, P):
    ĥ_b·P/(P + σ²_b), error P·σ²_b/(P + σ²_b).

    A block without pilots borrows the estimate of the nearest block that has
    some (the earlier one on a tie). Under the prior the blocks are
    independent, so that estimate says nothing about its own gain and its
    error is E|h − ĥ'|² = P + E|ĥ'|² > P: the equaliser learns that these
    symbols are barely usable.
    """
    power = prior.power
    blocks = n_blocks(n, prior.coherence)
    block = index // prior.coherence if prior.coherence else np.zeros(index.size, np.int64)
    correlation = np.conj(p) * y
    numerator = np.bincount(block, correlation.real, blocks) + 1j * np.bincount(block, correlation.imag, blocks)
    energy = np.bincount(block, np.abs(p) ** 2, blocks)
    has_pilots = np.flatnonzero(energy > 0)
    ls = numerator[has_pilots] / energy[has_pilots]
    variance = no / energy[has_pilots]
    if method == "lmmse":
        shrink = power / (power + variance)
        gain, error, second_moment = shrink * ls, shrink * variance, shrink * power
    else:
        gain, error, second_moment = ls, variance, power + variance
    source = _nearest(np.arange(blocks), has_pilots)
    own = has_pilots[source] == np.arange(blocks)
    block_gain = gain[source]
    block_error = np.where(own, error[source], power + second_moment[source])
    if prior.coherence == 0:
        return np.full(n, block_gain[0]), np.full(n, block_error[0])
    return np.repeat(block_gain, prior.coherence)[:n], np.repeat(block_error, prior.coherence)[:n]


def _neighbours(targets: np.ndarray, sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices (left, right) of the values bracketing each target; both the end one outside the range."""
    position = np.searchsorted(sorted_values, targets)
    last = sorted_values.size - 1
    return np.clip(position - 1, 0, last), np.clip(position, 0, last)


def _nearest(targets: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """Index into ``sorted_values`` of the value nearest each target (the lower one on a tie)."""
    left, right = _neighbours(targets, sorted_values)
    take_left = targets - sorted_values[left] <= sorted_values[right] - targets
    return np.where(take_left, left, right)


# --- Doppler prior ---------------------------------------------------------


def _linear(groups: _PilotGroups, no: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """LS: linear interpolation between group estimates (nearest beyond the first and last group).

    The error counts the noise only, (1 − a)²·σ²_g + a²·σ²_{g+1}; it ignores
    how much the channel varies between pilots (LS has no model for that).
    """
    t2 = 2 * np.arange(n, dtype=np.int64)
    centre2 = groups.twice_centre
    left, right = _neighbours(t2, centre2)
    span = centre2[right] - centre2[left]
    a = np.where(span > 0, (t2 - centre2[left]) / np.maximum(span, 1), 0.0)
    variance = no / groups.energy
    gain = (1 - a) * groups.ls[left] + a * groups.ls[right]
    error = (1 - a) ** 2 * variance[left] + a**2 * variance[right]
    return gain, error


def _wiener(
    groups: _PilotGroups, no: float, n: int, prior: ChannelPrior, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """LMMSE (Wiener) interpolation of h(t) from the ``window`` nearest group estimates.

    With R the prior correlation between group midpoints, Σ = diag(σ²_g) and
    r_t the correlation between h(t) and the midpoints:
    ĥ(t) = r_tᵀ(R + Σ)⁻¹ĥ_g and error(t) = P − r_tᵀ(R + Σ)⁻¹r_t.

    Speed: consecutive symbols share their nearest groups, so the stream
    falls into runs with one small system each (:func:`_pieces`). With the
    Cholesky factor R + Σ = LLᵀ and z_t = L⁻¹r_t, every symbol costs one
    small product: ĥ(t) = z_t·(L⁻¹ĥ_g) and error(t) = P − |z_t|²; the
    triangular form also keeps the error accurate when R is nearly singular
    (slow fading). Group midpoints and symbols sit on a half-symbol grid, so
    every correlation is read from one table of the prior at half-symbol lags.
    """
    k = min(window, groups.ls.size)
    centre2 = groups.twice_centre
    first, times, valid = _pieces(centre2, k, n)
    windows = np.arange(centre2.size - k + 1)[:, None] + np.arange(k)  # the groups of each window
    lag_to_groups = np.abs(2 * times[:, :, None] - centre2[windows[first]][:, None, :])
    widest = np.max(centre2[windows[:, -1]] - centre2[windows[:, 0]])
    table = prior.correlation(np.arange(max(lag_to_groups.max(), widest) + 1) / 2.0, 0.0)

    whiten, system = _whiteners(centre2, no / groups.energy, windows, table)
    weights = np.einsum("wij,wj->wi", whiten[system], groups.ls[windows])  # L⁻¹ĥ_g per window
    z = table[lag_to_groups] @ np.swapaxes(whiten[system[first]], 1, 2)  # (pieces, length, k)
    weight_pairs = np.stack([weights.real, weights.imag], axis=-1)[first]  # real matmul: faster than complex
    gain = (z @ weight_pairs).view(np.complex128)[..., 0]
    error = np.maximum(prior.power - np.einsum("pli,pli->pl", z, z), 0.0)  # ≥ 0 despite rounding
    return gain[valid], error[valid]


def _pieces(centre2: np.ndarray, k: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut symbols 0..n−1 into pieces of equal length whose symbols share their ``k`` nearest groups.

    The k nearest of the sorted group midpoints are groups [s, s+k); s moves
    on to s+1 once t passes the midpoint between groups s and s+k (a tie
    keeps s). Each run of equal s is cut into pieces of the average run
    length, which at most doubles the work through padding however uneven
    the runs are. Returns each piece's window s, its times (pieces, length)
    and which of those lie inside its run.
    """
    quad_midpoint = centre2[: centre2.size - k] + centre2[k:]  # 4·midpoint, an integer
    run_start = np.concatenate([[0], np.clip(quad_midpoint // 4 + 1, 0, n)])
    run_stop = np.append(run_start[1:], n)
    length = -(-n // run_start.size)
    count = -(-(run_stop - run_start) // length)
    window = np.repeat(np.arange(run_start.size), count)
    k_in_run = np.arange(window.size) - np.repeat(np.cumsum(count) - count, count)
    times = (run_start[window] + length * k_in_run)[:, None] + np.arange(length)
    return window, times, times < run_stop[window][:, None]


def _whiteners(
    centre2: np.ndarray, variance: np.ndarray, windows: np.ndarray, table: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """L⁻¹ of each distinct system R + Σ, and which of them each window uses.

    A window's system depends only on its groups' relative midpoints and
    error variances, so along evenly spaced, equal pilot bursts consecutive
    windows share it: only the distinct ones are factored.
    """
    offsets = centre2[windows] - centre2[windows[:, :1]]
    window_variance = variance[windows]
    changed = np.any((offsets[1:] != offsets[:-1]) | (window_variance[1:] != window_variance[:-1]), axis=1)
    new = np.concatenate([[True], changed])
    distinct = np.flatnonzero(new)
    matrix = table[np.abs(offsets[distinct][:, :, None] - offsets[distinct][:, None, :])]
    diagonal = np.arange(windows.shape[1])
    matrix[:, diagonal, diagonal] += window_variance[distinct]
    return np.linalg.inv(np.linalg.cholesky(matrix)), np.cumsum(new) - 1


def pilot_group(prior: ChannelPrior) -> int:
    """Pilots pooled into one LS estimate: up to 16, fewer when the assumed Doppler makes the channel move.

    Within a group the channel must stay put (2π·fD·group well below 1), or its change is counted as noise.
    """
    if prior.doppler == 0:
        return 16
    return int(np.clip(round(0.25 / (2 * np.pi * prior.doppler)), 2, 16))
