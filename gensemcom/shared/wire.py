"""Frame codec: in-process ``Frame`` <-> protobuf ``semcom.v1.Frame``, with validation.

Everything a peer sends is checked here before any signal processing sees it:
enum values must be known, ``iq`` must hold exactly ``n_symbols`` complex64
samples, sizes must be sane. Failures raise ``FrameError`` (a ``ValueError``),
which the gRPC adapters answer with INVALID_ARGUMENT.
"""

from dataclasses import fields

import numpy as np

from gensemcom.shared.frame import (
    WIRE_VERSION,
    ChannelCode,
    ChannelTruth,
    Codec,
    Frame,
    Header,
    KeyRegion,
    Modulation,
    RatePlan,
    Segment,
    SegmentKind,
    Timing,
)
from gensemcom.shared.pb import semcom_pb2 as pb
from gensemcom.shared.phy.mcs import MCS_TABLE

IQ_DTYPE = np.dtype("<c8")  # little-endian complex64: interleaved float32 re, im
MAX_SIDE = 16384  # largest image side a frame may declare
MAX_SEGMENTS = 64
N_MCS = len(MCS_TABLE)
MAX_REPORTED_GAINS = 4096  # gains listed in a report; per-symbol fading would otherwise bloat every Delivery


class FrameError(ValueError):
    """A frame that violates the wire contract."""


def iq_to_bytes(iq: np.ndarray) -> bytes:
    return np.ascontiguousarray(iq, dtype=IQ_DTYPE).tobytes()


def iq_view(data: bytes, n_symbols: int) -> np.ndarray:
    """``n_symbols`` complex64 samples read in place from ``data`` (read-only, no copy); the byte count must match.

    The channel reads each frame through this: a copy per segment would cost
    as much as the copy that joins the segments.
    """
    if len(data) != n_symbols * IQ_DTYPE.itemsize:
        raise FrameError(
            f"iq holds {len(data)} bytes but n_symbols={n_symbols} needs {n_symbols * IQ_DTYPE.itemsize}"
        )
    iq = np.frombuffer(data, dtype=IQ_DTYPE)
    if not np.all(np.isfinite(iq.view(np.float32))):
        raise FrameError("iq contains NaN or infinite samples")
    return iq


def iq_from_bytes(data: bytes, n_symbols: int) -> np.ndarray:
    """Parse ``n_symbols`` complex64 samples into an array of their own; the byte count must match exactly."""
    return iq_view(data, n_symbols).astype(np.complex64)


def _enum(cls, value: int, what: str):
    try:
        return cls(value)
    except ValueError:
        raise FrameError(f"unknown {what} value {value}") from None


def _codec_from_pb(msg: pb.CodecInfo) -> Codec:
    return Codec(id=msg.id, version=msg.version)


def _key_region_to_pb(region: KeyRegion) -> pb.KeyRegion:
    return pb.KeyRegion(
        x=region.x,
        y=region.y,
        width=region.width,
        height=region.height,
        bandwidth_ratio=region.bandwidth_ratio,
        params=list(region.params),
        side=region.side,
        block_power=region.block_power,
    )


def rate_plan_to_pb(plan: RatePlan) -> pb.RatePlan:
    return pb.RatePlan(**{f.name: getattr(plan, f.name) for f in fields(RatePlan)})


def rate_plan_from_pb(msg: pb.RatePlan) -> RatePlan:
    return RatePlan(**{f.name: getattr(msg, f.name) for f in fields(RatePlan)})


def header_to_pb(h: Header) -> pb.FrameHeader:
    msg = pb.FrameHeader(
        wire_version=h.wire_version,
        frame_id=h.frame_id,
        stream_id=h.stream_id,
        seq=h.seq,
        height=h.height,
        width=h.width,
        key_codec=pb.CodecInfo(id=h.key_codec.id, version=h.key_codec.version),
        mask_codec=pb.CodecInfo(id=h.mask_codec.id, version=h.mask_codec.version),
        prompt_codec=pb.CodecInfo(id=h.prompt_codec.id, version=h.prompt_codec.version),
        alpha=h.alpha,
        tx_power=h.tx_power,
        segmenter=h.segmenter,
        describer=h.describer,
        pilot_spacing=h.pilot_spacing,
        pilot_length=h.pilot_length,
    )
    if h.key_region is not None:
        msg.key_region.CopyFrom(_key_region_to_pb(h.key_region))
    if h.rate_plan is not None:
        msg.rate_plan.CopyFrom(rate_plan_to_pb(h.rate_plan))
    return msg


def header_from_pb(msg: pb.FrameHeader) -> Header:
    if msg.wire_version != WIRE_VERSION:
        raise FrameError(f"wire_version {msg.wire_version} is not supported (this build speaks {WIRE_VERSION})")
    if not (0 < msg.height <= MAX_SIDE and 0 < msg.width <= MAX_SIDE):
        raise FrameError(f"image size {msg.width}x{msg.height} outside 1..{MAX_SIDE}")
    if not 0.0 <= msg.alpha <= 1.0:
        raise FrameError(f"alpha {msg.alpha} outside [0, 1]")
    region = None
    if msg.HasField("key_region"):
        r = msg.key_region
        if r.width == 0 or r.height == 0 or r.x + r.width > msg.width or r.y + r.height > msg.height:
            raise FrameError(
                f"key region {r.width}x{r.height}+{r.x}+{r.y} is empty or outside the {msg.width}x{msg.height} image"
            )
        region = KeyRegion(r.x, r.y, r.width, r.height, r.bandwidth_ratio, tuple(r.params), bytes(r.side),
                           bytes(r.block_power))
    if (msg.pilot_spacing == 0) != (msg.pilot_length == 0) or (
        msg.pilot_spacing and msg.pilot_length >= msg.pilot_spacing
    ):
        raise FrameError(
            f"pilot pattern length {msg.pilot_length} / spacing {msg.pilot_spacing} is invalid: both 0, "
            "or 0 < length < spacing"
        )
    return Header(
        frame_id=msg.frame_id,
        stream_id=msg.stream_id,
        seq=msg.seq,
        height=msg.height,
        width=msg.width,
        key_codec=_codec_from_pb(msg.key_codec),
        mask_codec=_codec_from_pb(msg.mask_codec),
        prompt_codec=_codec_from_pb(msg.prompt_codec),
        key_region=region,
        alpha=msg.alpha,
        tx_power=msg.tx_power,
        segmenter=msg.segmenter,
        describer=msg.describer,
        pilot_spacing=msg.pilot_spacing,
        pilot_length=msg.pilot_length,
        rate_plan=rate_plan_from_pb(msg.rate_plan) if msg.HasField("rate_plan") else None,
        wire_version=msg.wire_version,
    )


def segment_to_pb(s: Segment) -> pb.IqSegment:
    return pb.IqSegment(
        kind=int(s.kind),
        modulation=int(s.modulation),
        code=int(s.code),
        repetition=s.repetition,
        code_rate=s.code_rate,
        n_symbols=s.n_symbols,
        n_payload_bits=s.n_payload_bits,
        iq=iq_to_bytes(s.iq),
        mcs=s.mcs,
    )


def segment_from_pb(msg: pb.IqSegment) -> Segment:
    kind = _enum(SegmentKind, msg.kind, "segment kind")
    return Segment(
        kind=kind,
        modulation=_enum(Modulation, msg.modulation, f"modulation of {kind.name} segment"),
        code=_enum(ChannelCode, msg.code, f"channel code of {kind.name} segment"),
        iq=iq_from_bytes(msg.iq, msg.n_symbols),
        repetition=max(1, msg.repetition),
        code_rate=msg.code_rate,
        n_payload_bits=msg.n_payload_bits,
        mcs=_mcs_from_pb(msg, kind),
    )


def _mcs_from_pb(msg: pb.IqSegment, kind: SegmentKind) -> int | None:
    """The MCS index of an LDPC segment (required there, checked against the table)."""
    if msg.code != ChannelCode.LDPC:
        return msg.mcs if msg.HasField("mcs") else None
    if not msg.HasField("mcs"):
        raise FrameError(f"LDPC-coded {kind.name} segment carries no MCS index")
    if msg.mcs >= N_MCS:
        raise FrameError(f"{kind.name} segment: MCS index {msg.mcs} is not in the table (0..{N_MCS - 1})")
    return msg.mcs


def truth_to_pb(truth: ChannelTruth) -> pb.ChannelTruth:
    return pb.ChannelTruth(gains=iq_to_bytes(truth.gains), noise_variance=truth.no)


def truth_from_pb(msg: pb.ChannelTruth, n_symbols: int) -> ChannelTruth:
    """The channel's per-symbol gains; there must be one per symbol of the frame."""
    if len(msg.gains) != n_symbols * IQ_DTYPE.itemsize:
        raise FrameError(f"channel truth holds {len(msg.gains) // IQ_DTYPE.itemsize} gains for {n_symbols} symbols")
    if not (np.isfinite(msg.noise_variance) and msg.noise_variance >= 0):
        raise FrameError(f"channel truth noise variance {msg.noise_variance} must be finite and >= 0")
    return ChannelTruth(iq_from_bytes(msg.gains, n_symbols), float(msg.noise_variance))


def frame_to_pb(frame: Frame) -> pb.Frame:
    msg = pb.Frame(
        header=header_to_pb(frame.header),
        segments=[segment_to_pb(s) for s in frame.segments],
        timings=[timing_to_pb(t) for t in frame.timings],
    )
    if frame.truth is not None:
        msg.truth.CopyFrom(truth_to_pb(frame.truth))
    return msg


def frame_from_pb(msg: pb.Frame) -> Frame:
    """Validate and convert a received frame; raises ``FrameError``."""
    if not msg.HasField("header"):
        raise FrameError("frame has no header")
    if not msg.segments:
        raise FrameError("frame has no segments")
    if len(msg.segments) > MAX_SEGMENTS:
        raise FrameError(f"frame has {len(msg.segments)} segments; at most {MAX_SEGMENTS} are allowed")
    segments = [segment_from_pb(s) for s in msg.segments]
    truth = truth_from_pb(msg.truth, sum(s.n_symbols for s in segments)) if msg.HasField("truth") else None
    return Frame(
        header=header_from_pb(msg.header),
        segments=segments,
        timings=[Timing(t.hop, t.stage, t.ms) for t in msg.timings],
        truth=truth,
    )


def frame_iq_from_pb(msg: pb.Frame) -> np.ndarray:
    """All symbols of a frame in order, validating only what the channel relies on.

    The channel must not need to understand segments (so that an SDR can sit
    there); it only checks that each segment's bytes match its symbol count.
    The segments are joined straight from their bytes: one copy per frame.
    """
    if not msg.segments:
        raise FrameError("frame has no segments")
    return np.concatenate([iq_view(s.iq, s.n_symbols) for s in msg.segments])


def frame_with_iq_pb(msg: pb.Frame, iq: np.ndarray, out: pb.Frame | None = None) -> pb.Frame:
    """A copy of ``msg`` whose segments carry ``iq`` instead (same layout), written into ``out`` if given.

    Pass the reply's own frame field as ``out`` (``reply.frame``): building a
    separate frame and then setting it on the reply copies every symbol once
    more, and for large frames each copy is a fresh allocation the kernel has
    to fault in.
    """
    out = pb.Frame() if out is None else out
    out.CopyFrom(msg)
    start = 0
    for seg in out.segments:
        seg.iq = iq_to_bytes(iq[start : start + seg.n_symbols])
        start += seg.n_symbols
    if start != iq.size:
        raise FrameError(f"got {iq.size} symbols for a frame of {start}")
    return out


def timing_to_pb(t: Timing) -> pb.StageTiming:
    return pb.StageTiming(hop=t.hop, stage=t.stage, ms=t.ms)
