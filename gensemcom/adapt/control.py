"""Rate control: from what is known about the link to a frame's plan (key ratio, MCS, design SNR).

Three modes, selectable per request (``ImageRequest.rate_mode``) or per
transmitter (``--rate-mode``):

- ``fixed``: the transmitter's configured ratio, MCS and design SNR;
- ``adaptive``: the SNR estimate (from the request, else from the stream's
  feedback) picks the smallest key ratio the rate table predicts reaches the
  target quality, the most efficient MCS with ``mcs_margin_db`` to spare for
  prompt and mask (plus ``mcs_spread_factor`` times the feedback's rms
  frame-to-frame SNR change, the report being a frame old, though never
  below the MCS the fallback SNR gets), and conditions the DeepJSCC encoder on that SNR;
- ``importance``: as adaptive, and the key region's blocks are ranked (faces,
  else saliency): under a symbol budget the least important give way first
  (the other modes trim centre-first, blind to content), and with
  ``boost_db`` > 0 (experimental) the important blocks are sent that much
  above the rest in power, the ratio then chosen for the boosted SNR
  (docs/adapt.md has what was measured).

Without a usable estimate (none yet, or stale) the plan assumes
``fallback_snr_db``: a pessimistic SNR, hence a safe (large) ratio and a
robust MCS, until feedback arrives.
"""

from dataclasses import dataclass

from gensemcom.adapt.importance import ImportanceRanker
from gensemcom.adapt.table import RateTable
from gensemcom.shared.phy.mcs import choose_mcs

MODES = ("fixed", "adaptive", "importance")
SNR_SOURCES = ("request", "feedback", "stale", "none")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown rate mode {mode!r}; choose one of {', '.join(MODES)}")
    return mode


@dataclass(frozen=True)
class LinkState:
    """What the transmitter knows about the link for one frame: an SNR (or None) and where it came from."""

    snr_db: float | None
    source: str = "none"
    spread_db: float = 0.0  # how much the SNR moves between frames (rms dB), from the feedback

    def __post_init__(self) -> None:
        if self.source not in SNR_SOURCES:
            raise ValueError(f"unknown SNR source {self.source!r}; one of {', '.join(SNR_SOURCES)}")


@dataclass(frozen=True)
class FramePlan:
    mode: str
    snr_db: float  # the SNR planned for
    snr_source: str
    ratio: float  # key bandwidth ratio
    boost_db: float  # power of the important blocks over the rest (0 unless importance mode)
    mcs: int  # for prompt and mask
    predicted: float  # the table's quality at (ratio, snr_db)


@dataclass
class RateControl:
    table: RateTable
    target: float  # key-region quality to reach, in the table's metric
    mode: str = "adaptive"  # for requests that do not name one
    fallback_snr_db: float = 0.0
    mcs_margin_db: float = 1.0
    mcs_spread_factor: float = 1.3  # extra MCS margin per dB of the link's frame-to-frame spread
    boost_db: float = 0.0
    importance: ImportanceRanker | None = None

    def __post_init__(self) -> None:
        check_mode(self.mode)
        if not 0 <= self.mcs_spread_factor <= 5:
            raise ValueError(f"mcs_spread_factor must be in [0, 5], got {self.mcs_spread_factor}")
        if not 0 <= self.boost_db <= 12:
            raise ValueError(f"boost_db must be in [0, 12] dB, got {self.boost_db}")

    def plan(self, mode: str, link: LinkState) -> FramePlan:
        """The plan for one frame in ``mode`` ("adaptive" or "importance") given ``link``."""
        if check_mode(mode) == "fixed":
            raise ValueError("a fixed-rate frame has no adaptive plan")
        if link.snr_db is None:
            snr, source = self.fallback_snr_db, "stale" if link.source == "stale" else "none"
        else:
            snr, source = float(link.snr_db), link.source
        boost = self.boost_db if mode == "importance" else 0.0
        choice = self.table.choose(snr + boost, self.target)
        return FramePlan(mode, snr, source, choice.ratio, boost, self._mcs(snr, link.spread_db), choice.predicted)

    def _mcs(self, snr_db: float, spread_db: float) -> int:
        """The MCS for ``snr_db``, backed off by ``mcs_spread_factor`` dB per dB of spread, but never by the
        spread below the MCS the fallback SNR gets: a report too noisy to trust is no worse than none."""
        aggressive = choose_mcs(snr_db, self.mcs_margin_db).index
        cautious = choose_mcs(snr_db, self.mcs_margin_db + self.mcs_spread_factor * spread_db).index
        floor = choose_mcs(self.fallback_snr_db, self.mcs_margin_db).index
        return max(cautious, min(floor, aggressive))
