"""Frame codec: bit-exact round trips and rejection of frames that break the contract."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gensemcom.shared.frame import (
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
from gensemcom.shared.wire import FrameError, frame_from_pb, frame_iq_from_pb, frame_to_pb, frame_with_iq_pb


def make_frame(rng: np.random.Generator, sizes: list[int]) -> Frame:
    kinds = list(SegmentKind)
    segments = [
        Segment(kinds[i % len(kinds)], Modulation.QPSK, ChannelCode.REPETITION,
                (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64),
                repetition=3, code_rate=1 / 3, n_payload_bits=2 * n)
        for i, n in enumerate(sizes)
    ]
    header = Header("f-1", "s", 7, 512, 768, Codec("linear-dct", "1"), Codec("zlib-bitmap", "1"), Codec("utf8", "1"),
                    KeyRegion(10, 20, 100, 50, 1 / 6, (0.5, -1.25, 3.0)), alpha=0.2, segmenter="x", describer="y")
    return Frame(header, segments, [Timing("transmitter", "segment", 1.5)])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=1, max_size=6), st.integers(0, 2**32 - 1))
def test_round_trip_is_bit_exact(sizes: list[int], seed: int) -> None:
    frame = make_frame(np.random.default_rng(seed), sizes)
    wire = pb.Frame.FromString(frame_to_pb(frame).SerializeToString())
    back = frame_from_pb(wire)
    assert back.header == frame.header
    assert back.timings == frame.timings
    for a, b in zip(frame.segments, back.segments, strict=True):
        assert a.iq.tobytes() == b.iq.tobytes()
        assert (a.kind, a.modulation, a.code, a.repetition, a.n_payload_bits) == (
            b.kind, b.modulation, b.code, b.repetition, b.n_payload_bits)
        assert b.code_rate == pytest.approx(a.code_rate)


def test_iq_is_little_endian_interleaved_complex64() -> None:
    seg = Segment(SegmentKind.PILOT, Modulation.QPSK, ChannelCode.NONE, np.array([1 + 2j, -3.5 - 0.25j]))
    raw = frame_to_pb(Frame(make_frame(np.random.default_rng(0), [1]).header, [seg])).segments[0].iq
    assert np.frombuffer(raw, "<f4").tolist() == [1.0, 2.0, -3.5, -0.25]


def test_channel_view_keeps_layout() -> None:
    msg = frame_to_pb(make_frame(np.random.default_rng(1), [5, 0, 9]))
    iq = frame_iq_from_pb(msg)
    assert iq.size == 14
    out = frame_with_iq_pb(msg, iq * 2)
    assert np.allclose(frame_iq_from_pb(out), iq * 2)
    assert [s.n_symbols for s in out.segments] == [5, 0, 9]


def _valid() -> pb.Frame:
    return frame_to_pb(make_frame(np.random.default_rng(2), [4, 6]))


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda m: setattr(m.segments[0], "iq", m.segments[0].iq[:-3]), "bytes"),
        (lambda m: setattr(m.segments[1], "n_symbols", 7), "n_symbols"),
        (lambda m: setattr(m.segments[0], "kind", 42), "unknown segment kind"),
        (lambda m: setattr(m.segments[0], "modulation", 99), "unknown modulation"),
        (lambda m: setattr(m.segments[0], "code", 17), "unknown channel code"),
        (lambda m: m.ClearField("header"), "no header"),
        (lambda m: m.ClearField("segments"), "no segments"),
        (lambda m: setattr(m.header, "width", 0), "image size"),
        (lambda m: setattr(m.header, "height", 10**6), "image size"),
        (lambda m: setattr(m.header, "wire_version", 2), "wire_version"),
        (lambda m: setattr(m.header, "alpha", 1.5), "alpha"),
        (lambda m: setattr(m.header.key_region, "x", 700), "key region"),
        (lambda m: setattr(m.segments[0], "iq", np.full(8, np.nan, np.float32).tobytes()), "NaN"),
    ],
)
def test_malformed_frames_are_rejected(corrupt, message: str) -> None:
    msg = _valid()
    corrupt(msg)
    with pytest.raises(FrameError, match=message):
        frame_from_pb(msg)


def test_frame_error_is_a_value_error() -> None:
    """Adapters map ValueError to INVALID_ARGUMENT; FrameError must be one."""
    assert issubclass(FrameError, ValueError)


@pytest.mark.parametrize("enum_cls, proto_enum, prefix", [
    (SegmentKind, pb.SegmentKind, "SEGMENT_KIND_"),
    (Modulation, pb.Modulation, "MODULATION_"),
    (ChannelCode, pb.ChannelCode, "CHANNEL_CODE_"),
])
def test_python_enums_mirror_proto(enum_cls, proto_enum, prefix: str) -> None:
    proto = {name.removeprefix(prefix): value for name, value in proto_enum.items() if value != 0}
    assert proto == {m.name: m.value for m in enum_cls}
