"""Frame codec: in-process ``Frame`` <-> protobuf ``semcom.v1.Frame``, with validation.

Everything a peer sends is checked here before any signal processing sees it:
enum values must be known, ``iq`` must hold exactly ``n_symbols`` complex64
samples, sizes must be sane. Failures raise ``FrameError`` (a ``ValueError``),
which the gRPC adapters answer with INVALID_ARGUMENT.
"""

import numpy as np

from gensemcom.shared.frame import (
    WIRE_VERSION,
    ChannelCode,
    Codec,
    Frame,
    Header,
    KeyRegion,
    Modulation,
    Segment,
    SegmentKind,
    Timing,
)
from gensemcom.shared.pb import semcom_pb2 as pb

IQ_DTYPE = np.dtype("<c8")  # little-endian complex64: interleaved float32 re, im
MAX_SIDE = 16384  # largest image side a frame may declare
MAX_SEGMENTS = 64


class FrameError(ValueError):
    """A frame that violates the wire contract."""


def iq_to_bytes(iq: np.ndarray) -> bytes:
    return np.ascontiguousarray(iq, dtype=IQ_DTYPE).tobytes()


def iq_from_bytes(data: bytes, n_symbols: int) -> np.ndarray:
    """Parse ``n_symbols`` complex64 samples; the byte count must match exactly."""
    if len(data) != n_symbols * IQ_DTYPE.itemsize:
        raise FrameError(
            f"iq holds {len(data)} bytes but n_symbols={n_symbols} needs {n_symbols * IQ_DTYPE.itemsize}"
        )
    iq = np.frombuffer(data, dtype=IQ_DTYPE).astype(np.complex64)
    if not np.all(np.isfinite(iq.view(np.float32))):
        raise FrameError("iq contains NaN or infinite samples")
    return iq


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
    )


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
    )
    if h.key_region is not None:
        msg.key_region.CopyFrom(_key_region_to_pb(h.key_region))
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
        region = KeyRegion(r.x, r.y, r.width, r.height, r.bandwidth_ratio, tuple(r.params))
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
    )


def frame_to_pb(frame: Frame) -> pb.Frame:
    return pb.Frame(
        header=header_to_pb(frame.header),
        segments=[segment_to_pb(s) for s in frame.segments],
        timings=[timing_to_pb(t) for t in frame.timings],
    )


def frame_from_pb(msg: pb.Frame) -> Frame:
    """Validate and convert a received frame; raises ``FrameError``."""
    if not msg.HasField("header"):
        raise FrameError("frame has no header")
    if not msg.segments:
        raise FrameError("frame has no segments")
    if len(msg.segments) > MAX_SEGMENTS:
        raise FrameError(f"frame has {len(msg.segments)} segments; at most {MAX_SEGMENTS} are allowed")
    return Frame(
        header=header_from_pb(msg.header),
        segments=[segment_from_pb(s) for s in msg.segments],
        timings=[Timing(t.hop, t.stage, t.ms) for t in msg.timings],
    )


def frame_iq_from_pb(msg: pb.Frame) -> np.ndarray:
    """All symbols of a frame in order, validating only what the channel relies on.

    The channel must not need to understand segments (so that an SDR can sit
    there); it only checks that each segment's bytes match its symbol count.
    """
    if not msg.segments:
        raise FrameError("frame has no segments")
    return np.concatenate([iq_from_bytes(s.iq, s.n_symbols) for s in msg.segments])


def frame_with_iq_pb(msg: pb.Frame, iq: np.ndarray) -> pb.Frame:
    """A copy of ``msg`` whose segments carry ``iq`` instead (same layout)."""
    out = pb.Frame()
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
