"""Frame codec: bit-exact round trips and rejection of frames that break the contract."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gensemcom.shared.frame import (
    ChannelCode,
    ChannelTruth,
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
from gensemcom.shared.wire import (
    FrameError,
    frame_from_pb,
    frame_iq_from_pb,
    frame_to_pb,
    frame_with_iq_pb,
    iq_from_bytes,
    iq_view,
)


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


def test_iq_view_reads_the_bytes_in_place() -> None:
    """The channel's zero-copy read: the copying parser's samples and checks, without the copy."""
    data = (np.arange(6) - 2.5j * np.arange(6)).astype("<c8").tobytes()
    view = iq_view(data, 6)
    assert np.shares_memory(view, np.frombuffer(data, np.uint8))
    assert not view.flags.writeable
    assert view.tobytes() == iq_from_bytes(data, 6).tobytes() == data
    with pytest.raises(FrameError, match="bytes"):
        iq_view(data[:-1], 6)
    with pytest.raises(FrameError, match="NaN"):
        iq_view(np.array([1, np.inf], "<c8").tobytes(), 2)


def test_channel_view_owns_its_samples() -> None:
    """Joined from read-only views, the channel's symbols are still an array of its own: writing leaves the frame."""
    msg = frame_to_pb(make_frame(np.random.default_rng(3), [7]))
    iq = frame_iq_from_pb(msg)
    assert iq.dtype == np.complex64 and iq.flags.writeable and iq.flags.owndata
    iq[:] = 0
    assert np.all(frame_iq_from_pb(msg) != 0)


def test_frame_with_iq_written_into_a_reply() -> None:
    """Written into ``reply.frame``: the new symbols, every other field of the input, and the input left alone."""
    msg = frame_to_pb(make_frame(np.random.default_rng(4), [5, 0, 9]))
    before = msg.SerializeToString(deterministic=True)
    y = frame_iq_from_pb(msg) * np.complex64(1j)
    reply = pb.ChannelOutput()
    frame_with_iq_pb(msg, y, reply.frame)
    assert msg.SerializeToString(deterministic=True) == before
    assert frame_iq_from_pb(reply.frame).tobytes() == y.tobytes()
    restored = pb.Frame()
    restored.CopyFrom(reply.frame)
    for segment, original in zip(restored.segments, msg.segments, strict=True):
        segment.iq = original.iq
    assert restored.SerializeToString(deterministic=True) == before


def _pilot_frame() -> Frame:
    """A frame using every field the pilot, MCS, truth and DeepJSCC side information added."""
    rng = np.random.default_rng(4)
    frame = make_frame(rng, [8, 12])
    frame.segments[1] = Segment(SegmentKind.MASK, Modulation.QAM16, ChannelCode.LDPC, frame.segments[1].iq,
                                code_rate=0.43, n_payload_bits=24, mcs=6)
    frame.header = Header(**{**frame.header.__dict__, "pilot_spacing": 32, "pilot_length": 2,
                             "key_region": KeyRegion(10, 20, 100, 50, 1 / 6, (10.0,), b"\x01\xff\x00")})
    gains = (rng.standard_normal(20) + 1j * rng.standard_normal(20)).astype(np.complex64)
    frame.truth = ChannelTruth(gains, 0.125)
    return frame


def test_pilot_pattern_mcs_truth_and_key_side_information_round_trip() -> None:
    frame = _pilot_frame()
    back = frame_from_pb(pb.Frame.FromString(frame_to_pb(frame).SerializeToString()))
    assert back.header == frame.header
    assert [s.mcs for s in back.segments] == [None, 6]
    assert back.truth.gains.tobytes() == frame.truth.gains.tobytes() and back.truth.no == 0.125


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda m: m.header.__setattr__("pilot_length", 0), "pilot pattern"),
        (lambda m: m.header.__setattr__("pilot_length", 32), "pilot pattern"),
        (lambda m: m.segments[1].ClearField("mcs"), "no MCS index"),
        (lambda m: m.segments[1].__setattr__("mcs", 16), "not in the table"),
        (lambda m: m.truth.__setattr__("gains", m.truth.gains[:-8]), "19 gains for 20 symbols"),
        (lambda m: m.truth.__setattr__("noise_variance", -1.0), "noise variance"),
    ],
)
def test_broken_pilot_mcs_and_truth_fields_are_refused(damage, message: str) -> None:
    msg = frame_to_pb(_pilot_frame())
    damage(msg)
    with pytest.raises(FrameError, match=message):
        frame_from_pb(msg)
