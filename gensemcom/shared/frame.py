"""In-process frame: what the transmitter builds and the receiver parses.

Signal processing works on these plain dataclasses and numpy arrays; only
``gensemcom.shared.wire`` knows the protobuf form. The enum values mirror
``proto/semcom/v1/semcom.proto`` one to one (a test checks it), so conversion
is a cast.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np

WIRE_VERSION = 1

PARTS = ("mask", "prompt", "key")
"""What a frame can carry besides its pilots, in frame order (a transmitter may send a subset)."""


def check_parts(parts: Sequence[str]) -> tuple[str, ...]:
    """``parts`` as a tuple in frame order; ValueError for an unknown, repeated or empty choice."""
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts or len(set(parts)) != len(parts):
        raise ValueError(f"parts must be distinct names from {', '.join(PARTS)} (at least one), got {list(parts)}")
    return tuple(p for p in PARTS if p in parts)


class SegmentKind(IntEnum):
    """What a segment of symbols carries."""

    PILOT = 1
    MASK = 2
    PROMPT = 3
    KEY_JSCC = 4
    CONTEXT_REF = 5


class Modulation(IntEnum):
    ANALOG = 1
    BPSK = 2
    QPSK = 3
    QAM16 = 4
    QAM64 = 5
    QAM256 = 6


class ChannelCode(IntEnum):
    NONE = 1
    REPETITION = 2
    LDPC = 3


@dataclass(frozen=True)
class Codec:
    """Identity of a source codec; receivers refuse ids or versions they lack."""

    id: str
    version: str


@dataclass(frozen=True)
class KeyRegion:
    """Bounding box of the key region plus the key codec's side information."""

    x: int
    y: int
    width: int
    height: int
    bandwidth_ratio: float
    params: tuple[float, ...] = ()
    side: bytes = b""
    block_power: bytes = b""  # importance mode: transmit power x 32 of each sent block (b"" = all 1.0)

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.width, self.height)


@dataclass(frozen=True)
class RatePlan:
    """How an adaptive transmitter chose a frame's rate (informational: decoding needs only the segments and
    the key region, with its block map and block powers)."""

    mode: str  # "fixed", "adaptive" or "importance"
    snr_db: float  # the SNR the plan assumed
    snr_source: str  # "request", "feedback", "stale" or "none"
    metric: str = "psnr"
    target: float = 0.0
    predicted: float = 0.0
    budget: int = 0  # frame symbol budget respected (0 = none)
    important_blocks: int = 0  # blocks sent at boosted power
    importance: str = ""  # what ordered the blocks under a budget: "faces", "saliency", "centre" or ""


@dataclass(frozen=True)
class Header:
    """Side information a real system sends on a robust control channel (declared error-free)."""

    frame_id: str
    stream_id: str
    seq: int
    height: int
    width: int
    key_codec: Codec
    mask_codec: Codec
    prompt_codec: Codec
    key_region: KeyRegion | None
    alpha: float
    tx_power: float = 1.0
    segmenter: str = ""
    describer: str = ""
    pilot_spacing: int = 0
    pilot_length: int = 0
    rate_plan: RatePlan | None = None
    wire_version: int = WIRE_VERSION


@dataclass
class Segment:
    """A run of complex baseband symbols of one kind."""

    kind: SegmentKind
    modulation: Modulation
    code: ChannelCode
    iq: np.ndarray  # complex64, 1-D
    repetition: int = 1
    code_rate: float = 1.0
    n_payload_bits: int = 0
    mcs: int | None = None  # LDPC segments: index into gensemcom.shared.phy.mcs.MCS_TABLE

    def __post_init__(self) -> None:
        self.iq = np.ascontiguousarray(self.iq, dtype=np.complex64).reshape(-1)

    @property
    def n_symbols(self) -> int:
        return int(self.iq.size)


@dataclass(frozen=True)
class Timing:
    hop: str
    stage: str
    ms: float


@dataclass(frozen=True)
class ChannelTruth:
    """What the channel did, y[i] = gains[i]·x[i] + n[i]: for perfect-CSI ablations, never sent over the air."""

    gains: np.ndarray  # complex64, one per symbol of the frame
    no: float


@dataclass
class Frame:
    header: Header
    segments: list[Segment]
    timings: list[Timing] = field(default_factory=list)
    truth: ChannelTruth | None = None

    def segment(self, kind: SegmentKind) -> Segment | None:
        """The first segment of ``kind``, or None."""
        return next((s for s in self.segments if s.kind == kind), None)

    @property
    def n_symbols(self) -> int:
        return sum(s.n_symbols for s in self.segments)

    def iq(self) -> np.ndarray:
        """All segments' symbols in transmission order (what the channel sees)."""
        if not self.segments:
            return np.zeros(0, np.complex64)
        return np.concatenate([s.iq for s in self.segments])

    def with_iq(self, iq: np.ndarray) -> "Frame":
        """A copy whose segments carry ``iq`` (same layout), e.g. after the channel."""
        if iq.size != self.n_symbols:
            raise ValueError(f"got {iq.size} symbols for a frame of {self.n_symbols}")
        bounds = np.cumsum([0] + [s.n_symbols for s in self.segments])
        segments = [
            replace(s, iq=iq[a:b]) for s, a, b in zip(self.segments, bounds[:-1], bounds[1:])
        ]
        return Frame(self.header, segments, list(self.timings), self.truth)
