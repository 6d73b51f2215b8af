"""The separate-coding baseline: the image as an HEVC still (the codec behind BPG) over the 5G LDPC link.

Given the symbol budget a semantic scheme spent, the transmitter sends one frame:
the preamble, then one transport block (CRC, LDPC, scrambling, QAM:
:mod:`gensemcom.shared.phy.link`) with the pilot bursts of its
:class:`~gensemcom.shared.pilots.PilotPattern` laid in, exactly as the project's
transmitter lays them into its segments. The block carries the HEVC file at the
highest quality that fits, zero-padded to the largest payload the budget holds
at the chosen MCS, so the frame fills the budget. The frame goes through
:func:`~gensemcom.channel.link.apply_channel`, the channel every scheme goes
through, and the receiver estimates the channel from the pilots as
:class:`~gensemcom.receiver.pipeline.Receiver` does, equalises (zero forcing,
what the QAM demapper needs) and decodes. If the CRC passes, the file arrived
bit-exact and is decoded; otherwise the image is lost and the receiver shows
its mean colour (three bytes of side information, not counted), the usual
convention for the cliff effect of separate coding.

The transmitter knows the channel's model and average SNR, not the fade:

- AWGN: the most efficient MCS whose threshold plus ``margin_db`` is below the
  SNR (:func:`~gensemcom.shared.phy.mcs.choose_mcs`).
- Faded channels: the MCS, among those up to the AWGN choice, that maximises
  the expected PSNR, P(arrive)·PSNR(file) + (1 − P(arrive))·PSNR(mean colour),
  with P(arrive) the chance that the fade leaves the SNR above the MCS's
  threshold (:func:`arrival_probability`). This is the rule of
  :func:`gensemcom.shared.jscc.digital.rayleigh_mcs`, generalised to Rician.

Encoding an image with HEVC takes 0.3 to 1.7 s (768×512, one thread), and a
sweep sends the same image under many conditions, so the HEVC files of the
last few images are kept (:func:`_codings_of`).
"""

import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from scipy.stats import ncx2

from gensemcom.channel.link import ChannelParams, apply_channel
from gensemcom.channel.state import ChannelState
from gensemcom.receiver.equalise import equalise
from gensemcom.receiver.estimate import ESTIMATORS, ChannelEstimate, ChannelPrior, estimate_channel, perfect_csi
from gensemcom.receiver.estimate import pilot_group
from gensemcom.shared.jscc.digital import HevcSearch, hevc_decode, max_payload_bytes, mean_colour
from gensemcom.shared.metrics import psnr
from gensemcom.eval.registry import PSNR_CAP_DB  # an exact copy's PSNR, finite so expected PSNRs compare
from gensemcom.shared.modem import pilot_sequence
from gensemcom.shared.phy.link import decode_payload, encode_payload, symbols_for_payload
from gensemcom.shared.phy.mcs import MCS_TABLE, Mcs, choose_mcs
from gensemcom.shared.pilots import PilotPattern

#: Images whose HEVC files are kept between calls (a sweep works through one image at a time).
_CACHED_IMAGES = 4


@dataclass
class BpgResult:
    """What the receiver shows, the symbols the frame took (pilots included) and what happened."""

    image: np.ndarray  # uint8 H×W×3
    symbols: int
    status: str  # "ok" or "lost"
    detail: dict[str, object] = field(default_factory=dict)  # JSON-safe


@dataclass(frozen=True)
class QualityMatch:
    """The fewest symbols that deliver a file reaching a target, and that file's quality, score and MCS."""

    symbols: int
    value: float
    quality: int
    mcs: int


@dataclass(frozen=True)
class _Plan:
    """What the transmitter sends for a budget: MCS, padded payload size and HEVC quality (None: nothing fits)."""

    mcs: Mcs
    payload_bytes: int
    quality: int | None
    arrival: float | None = None  # faded channels: the chance the file arrives, as the MCS choice assumed it


class _Codings:
    """One image's HEVC files (encoded on demand) with the PSNR of each, and that of the mean colour."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self.search = HevcSearch(image)
        self.lost_psnr = min(psnr(mean_colour(image), image), PSNR_CAP_DB)
        self._psnr: dict[int, float] = {}

    def best_fit(self, payload_bytes: int) -> int | None:
        """The highest quality whose file fits ``payload_bytes`` (None if not even quality 0 fits).

        Low qualities encode fastest (0.3 s against 1.7 s at 768×512) and the
        budgets of semantic schemes fit low qualities, so the search climbs from
        quality 0 through 8, 16, 32, 64 until a file does not fit, and only then
        bisects (:meth:`HevcSearch.best_fit` starts from the files already made).
        """
        if len(self.search.encode(0)) > payload_bytes:
            return None
        probe = 8
        while probe < 100 and len(self.search.encode(probe)) <= payload_bytes:
            probe *= 2
        return self.search.best_fit(payload_bytes)

    def decoded(self, quality: int) -> np.ndarray:
        return hevc_decode(self.search.encode(quality))

    def psnr(self, quality: int) -> float:
        if quality not in self._psnr:
            self._psnr[quality] = min(psnr(self.decoded(quality), self.image), PSNR_CAP_DB)
        return self._psnr[quality]


_CODINGS: OrderedDict[bytes, _Codings] = OrderedDict()


def _codings_of(image: np.ndarray) -> _Codings:
    """The kept codings of ``image`` (by content), or new ones; the least recently used image is dropped."""
    key = hashlib.blake2b(repr(image.shape).encode() + image.tobytes(), digest_size=16).digest()
    if key in _CODINGS:
        _CODINGS.move_to_end(key)
    else:
        own = image.copy()  # the caller may change its array later
        own.setflags(write=False)
        _CODINGS[key] = _Codings(own)
        if len(_CODINGS) > _CACHED_IMAGES:
            _CODINGS.popitem(last=False)
    return _CODINGS[key]


# --- frame layout ------------------------------------------------------------


def data_capacity(pilots: PilotPattern, budget_symbols: int) -> int:
    """Data symbols a frame of at most ``budget_symbols`` carries after its preamble and pilot bursts.

    After the preamble, every ``spacing`` symbols start with ``length`` pilots; a
    frame may end anywhere, but ending inside a burst adds nothing.
    """
    after = budget_symbols - pilots.preamble
    if after <= 0:
        return 0
    if not pilots.spacing:
        return after
    periods, rest = divmod(after, pilots.spacing)
    return periods * (pilots.spacing - pilots.length) + max(0, rest - pilots.length)


def frame_symbols(pilots: PilotPattern, n_data: int) -> int:
    """Symbols of a frame carrying ``n_data`` data symbols: preamble, data and the bursts among them."""
    return pilots.preamble + pilots.span(pilots.preamble, n_data)


# --- MCS choice --------------------------------------------------------------


def mean_snr_db(channel: ChannelParams) -> float:
    """The average SNR at the receiver: the channel's SNR refers to transmit power, path loss comes off it."""
    return channel.snr_db - channel.path_loss_db


def rician_k(channel: ChannelParams) -> float | None:
    """The K factor the MCS choice assumes for a faded channel; None for AWGN.

    Rayleigh is K = 0. TDL is frequency-selective; it is treated as Rayleigh
    (its first taps are Rayleigh in profiles A to C), an approximation.
    """
    if channel.model == "awgn":
        return None
    return channel.k_factor if channel.model == "rician" else 0.0


def arrival_probability(mcs: Mcs, mean_snr_db: float, k_factor: float, margin_db: float = 0.0) -> float:
    """P(|h|²·SNR ≥ threshold + margin) for a unit-power Rician gain h of factor K (K = 0: Rayleigh).

    2(K + 1)|h|² is non-central χ² with 2 degrees of freedom and non-centrality
    2K (|h|² is exponential for K = 0). One gain per frame is assumed: exact for
    block fading with one block per frame, an approximation when the frame sees
    several fades (coherence > 0, Doppler), where the code blocks also see them.
    """
    if not (math.isfinite(k_factor) and k_factor >= 0):
        raise ValueError(f"K factor must be finite and >= 0, got {k_factor}")
    needed = 10.0 ** ((mcs.snr_threshold_db + margin_db - mean_snr_db) / 10.0)  # |h|² the MCS needs
    return float(ncx2.sf(2.0 * (k_factor + 1.0) * needed, df=2, nc=2.0 * k_factor))


def candidate_mcs(channel: ChannelParams, margin_db: float) -> tuple[Mcs, ...]:
    """The MCSs the transmitter weighs: the AWGN choice alone on AWGN, it and every more robust one otherwise.

    On a faded channel an MCS whose threshold lies above the average SNR arrives
    with probability below about 1/e (Rayleigh), and a lost image costs far more
    than one MCS step gains, so the less robust ones are not weighed.
    """
    top = choose_mcs(mean_snr_db(channel), margin_db)
    return (top,) if channel.model == "awgn" else MCS_TABLE[: top.index + 1]


# --- the scheme --------------------------------------------------------------


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image must be a uint8 array of shape (H, W, 3), got a {got}")
    if image.size == 0:
        raise ValueError(f"image is empty: shape {image.shape}")


def _check_channel(channel: ChannelParams) -> None:
    if not isinstance(channel, ChannelParams):
        raise ValueError(f"channel must be ChannelParams, got {type(channel).__name__}")
    channel.spec()  # ValueError naming the invalid parameter


@dataclass(frozen=True)
class BpgLdpc:
    """HEVC + 5G LDPC + QAM in a symbol budget: ``BpgLdpc()(image, budget_symbols, channel, frame_id)``.

    ``pilots``, ``estimator`` and ``prior`` are the receiver's pilot layout,
    channel estimator and channel prior (as in the project's transmitter and
    receiver settings); ``margin_db`` is added to every MCS threshold.
    """

    pilots: PilotPattern = PilotPattern(64, 128, 4)
    estimator: str = "lmmse"
    margin_db: float = 0.0
    prior: ChannelPrior = ChannelPrior()
    name: ClassVar[str] = "bpg-ldpc"

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {self.estimator!r}; choose one of {', '.join(ESTIMATORS)}")
        if not (math.isfinite(self.margin_db) and self.margin_db >= 0):
            raise ValueError(f"margin must be finite and >= 0 dB, got {self.margin_db}")

    def __call__(self, image: np.ndarray, budget_symbols: int, channel: ChannelParams, frame_id: str = "") -> BpgResult:
        """Send ``image`` in at most ``budget_symbols`` symbols (pilots included) through ``channel``.

        When not even HEVC quality 0 fits, nothing is sent: the result is
        "lost" with 0 symbols, as the transmitter knows before sending that no
        file fits, and the receiver shows the mean colour.
        """
        _check_image(image)
        if isinstance(budget_symbols, bool) or not isinstance(budget_symbols, int | np.integer) or budget_symbols <= 0:
            raise ValueError(f"symbol budget must be a positive integer, got {budget_symbols!r}")
        _check_channel(channel)
        codings = _codings_of(image)
        plan = self._plan(codings, data_capacity(self.pilots, int(budget_symbols)), channel)
        detail: dict[str, object] = {"mcs": plan.mcs.index, "hevc_quality": plan.quality,
                                     "payload_bytes": plan.payload_bytes}
        if plan.arrival is not None:
            detail["p_arrive"] = round(plan.arrival, 6)
        if plan.quality is None:
            detail.update(file_bytes=None, reason=(
                f"budget too small: {budget_symbols} symbols carry {plan.payload_bytes} bytes at MCS "
                f"{plan.mcs.index}, HEVC quality 0 needs {len(codings.search.encode(0))}"))
            return BpgResult(mean_colour(image), 0, "lost", detail)

        file = codings.search.encode(plan.quality)
        data, n_bits, link = encode_payload(file + bytes(plan.payload_bytes - len(file)), plan.mcs)
        frame = np.concatenate([pilot_sequence(self.pilots.preamble), self.pilots.insert(data, self.pilots.preamble)])
        received, report = apply_channel(frame, channel, frame_id)
        estimate = self._estimate(received, report.state)
        data_at = ~self.pilots.is_pilot(np.arange(received.size))
        x_hat, no_eff = equalise(received[data_at], estimate.gain[data_at],
                                 estimate.no + estimate.error[data_at], method="zf")
        payload, crc_ok = decode_payload(x_hat, no_eff, n_bits, plan.mcs)
        detail.update(file_bytes=len(file), code_blocks=link.n_blocks, pilots=int(frame.size - data.size),
                      rx_snr_db=round(estimate.snr_db, 2))
        if not crc_ok:
            detail["reason"] = (f"CRC failed: the {link.n_blocks}-code-block transport block at MCS {plan.mcs.index} "
                                f"(threshold {plan.mcs.snr_threshold_db} dB) did not decode; the pilots put the "
                                f"SNR at {estimate.snr_db:.1f} dB")
            return BpgResult(mean_colour(image), int(frame.size), "lost", detail)
        return BpgResult(hevc_decode(payload), int(frame.size), "ok", detail)

    def _plan(self, codings: _Codings, n_data: int, channel: ChannelParams) -> _Plan:
        """The MCS and HEVC quality for ``n_data`` data symbols: the candidate with the highest expected PSNR.

        On AWGN there is one candidate; if no candidate fits quality 0, the plan
        names the most efficient one with no quality.
        """
        candidates = candidate_mcs(channel, self.margin_db)
        k_factor = rician_k(channel)
        best, best_value = None, -math.inf
        for mcs in candidates:
            payload = max_payload_bytes(n_data, mcs) if n_data > 0 else 0
            quality = codings.best_fit(payload)
            if quality is None:
                continue
            if k_factor is None:
                return _Plan(mcs, payload, quality)
            arrival = arrival_probability(mcs, mean_snr_db(channel), k_factor, self.margin_db)
            value = arrival * codings.psnr(quality) + (1.0 - arrival) * codings.lost_psnr
            if value > best_value:
                best, best_value = _Plan(mcs, payload, quality, arrival), value
        if best is None:
            top = candidates[-1]
            return _Plan(top, max_payload_bytes(n_data, top) if n_data > 0 else 0, None)
        return best

    def _estimate(self, received: np.ndarray, state: ChannelState) -> ChannelEstimate:
        """The channel at every symbol, from the pilots as the receiver estimates it (or the truth, ablation)."""
        if self.estimator == "perfect":
            return perfect_csi(state.per_symbol(received.size), state.no)
        index = np.flatnonzero(self.pilots.is_pilot(np.arange(received.size)))
        return estimate_channel(received, index, self.pilots.values(index), method=self.estimator,
                                prior=self.prior, group=pilot_group(self.prior))


# --- symbols at equal quality --------------------------------------------------


def _lowest_quality(value: Callable[[int], float], meets: Callable[[float], bool]) -> int | None:
    """The lowest HEVC quality whose file reaches the target, or None if not even 100 does.

    Assuming the score improves with quality: climb through 0, 8, 16, 32, 64
    and 100 to the first quality that reaches the target (low qualities are the
    cheap ones to encode, and the usual answers), then bisect below it. The
    answer was measured to reach the target and the quality below it to miss
    (or the answer is 0); qualities further down are not checked.
    """
    misses = -1
    for hits in (0, 8, 16, 32, 64, 100):
        if meets(value(hits)):
            break
        misses = hits
    else:
        return None
    while hits - misses > 1:
        middle = (misses + hits) // 2
        if meets(value(middle)):
            hits = middle
        else:
            misses = middle
    return hits


def symbols_at_quality(
    image: np.ndarray,
    snr_db: float,
    channel_model: str,
    score: Callable[[np.ndarray], float],
    target: float,
    higher_is_better: bool,
    *,
    k_factor: float = 0.0,
    scheme: BpgLdpc = BpgLdpc(),
) -> QualityMatch | None:
    """The fewest symbols (pilots included) ``scheme`` needs to deliver a file whose ``score`` reaches ``target``.

    ``score`` maps the HEVC-decoded image to a number (e.g. LPIPS against the
    original). The match is the budget that, given to ``scheme`` on this channel,
    makes it send a file that reaches the target when it arrives (whether it
    arrives is the channel's business): ``symbols`` is what that frame takes,
    ``quality`` and ``mcs`` what the scheme picks for it, ``value`` the file's
    score. None when not even HEVC quality 100 reaches the target.

    On AWGN the MCS is fixed by the SNR and the answer is the frame for the
    lowest quality that reaches the target (assuming the score improves with
    quality and files grow with it). On a faded channel the MCS choice depends
    on the budget, so the budgets tried are those that fit that lowest quality
    exactly at one of the candidate MCSs, and the smallest that works is
    returned (the largest always works): not always the very fewest symbols,
    as the choice might also work between them.
    """
    _check_image(image)
    channel = ChannelParams(model=channel_model, snr_db=snr_db, k_factor=k_factor)
    _check_channel(channel)
    if not math.isfinite(target):
        raise ValueError(f"target must be finite, got {target}")
    codings = _codings_of(image)
    values: dict[int, float] = {}

    def value(quality: int) -> float:
        if quality not in values:
            values[quality] = float(score(codings.decoded(quality)))
        return values[quality]

    def meets(score_value: float) -> bool:
        return score_value >= target if higher_is_better else score_value <= target

    lowest = _lowest_quality(value, meets)
    if lowest is None:
        return None
    file_bits = 8 * len(codings.search.encode(lowest))
    budgets = sorted({frame_symbols(scheme.pilots, symbols_for_payload(file_bits, mcs))
                      for mcs in candidate_mcs(channel, scheme.margin_db)})
    *smaller, largest = budgets
    for budget in smaller:
        plan = scheme._plan(codings, data_capacity(scheme.pilots, budget), channel)
        if plan.quality is not None and meets(value(plan.quality)):
            return _match(scheme.pilots, plan, value(plan.quality))
    # The largest budget fits the file at the most robust candidate, so every candidate carries at least that
    # quality, and whichever the plan picks reaches the target.
    plan = scheme._plan(codings, data_capacity(scheme.pilots, largest), channel)
    return _match(scheme.pilots, plan, value(plan.quality))


def _match(pilots: PilotPattern, plan: _Plan, value: float) -> QualityMatch:
    """The frame ``plan`` sends (its payload padded as :class:`BpgLdpc` pads it) and the file's score."""
    sent = frame_symbols(pilots, symbols_for_payload(8 * plan.payload_bytes, plan.mcs))
    return QualityMatch(sent, value, plan.quality, plan.mcs.index)
