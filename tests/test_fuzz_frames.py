"""Thousands of malformed Frames at the receiver and the channel: a status each, and the service lives on.

Three kinds of input: random bytes sent as the request message (most do not even parse
as a Frame: gensemcom.shared.malformed answers them with INVALID_ARGUMENT, where plain
grpc says INTERNAL), random Frame messages built field by field, and a real frame with
one part mutated. Every answer must be a gRPC status from the allowed set (never UNKNOWN
or INTERNAL, which would mean an unhandled exception), and after the whole batch a good
frame must still decode.
"""

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gensemcom.shared.pb import semcom_pb2 as pb
from tests.conftest import Chain

pytestmark = pytest.mark.slow

# What a service may answer to a bad frame: refused as invalid, or as a codec it does not have.
ALLOWED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OK}
HYPOTHESIS = settings(max_examples=1000, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _raw_call(address: str, method: str, payload: bytes) -> grpc.StatusCode:
    """Send ``payload`` as the request bytes, bypassing protobuf serialisation."""
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            call(payload, timeout=30)
            return grpc.StatusCode.OK
        except grpc.RpcError as exc:
            return exc.code()


def _code(call, request) -> grpc.StatusCode:
    try:
        call(request, timeout=30)
        return grpc.StatusCode.OK
    except grpc.RpcError as exc:
        return exc.code()


@pytest.fixture(scope="module")
def good_frame(chain: Chain, astronaut_png: bytes) -> pb.Frame:
    return chain.transmitter.Encode(pb.ImageRequest(image=astronaut_png, frame_id="good"), timeout=60)


_segment = st.builds(
    pb.IqSegment,
    kind=st.integers(0, 8), modulation=st.integers(0, 6), code=st.integers(0, 5),
    n_symbols=st.integers(0, 1 << 20), repetition=st.integers(0, 40), n_payload_bits=st.integers(0, 1 << 24),
    code_rate=st.floats(allow_nan=True), iq=st.binary(max_size=256), mcs=st.integers(0, 40),
)
_header = st.builds(
    pb.FrameHeader,
    wire_version=st.integers(0, 3), frame_id=st.text(max_size=20), height=st.integers(0, 5000),
    width=st.integers(0, 5000), alpha=st.floats(allow_nan=True),
    pilot_spacing=st.integers(0, 300), pilot_length=st.integers(0, 300),
)
_frames = st.builds(pb.Frame, header=_header, segments=st.lists(_segment, max_size=6))


@HYPOTHESIS
@given(payload=st.binary(max_size=512))
def test_random_bytes_are_refused_and_the_receiver_lives(chain: Chain, payload: bytes) -> None:
    code = _raw_call(chain.addresses["receiver"], "/semcom.v1.Receiver/Decode", payload)
    assert code in ALLOWED, code


@HYPOTHESIS
@given(frame=_frames)
def test_random_frames_are_refused_by_the_receiver(chain: Chain, frame: pb.Frame) -> None:
    assert _code(chain.receiver.Decode, frame) in ALLOWED


@HYPOTHESIS
@given(frame=_frames, snr=st.floats(-50, 80) | st.just(float("nan")))
def test_random_frames_are_refused_by_the_channel(chain: Chain, frame: pb.Frame, snr: float) -> None:
    config = pb.ChannelConfig(model="awgn", snr_db=snr, seed=1)
    assert _code(chain.channel.Apply, pb.ChannelInput(frame=frame, config=config)) in ALLOWED


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(0, 10), field=st.sampled_from(["n_symbols", "iq", "kind", "mcs", "n_payload_bits"]),
       value=st.integers(0, 1 << 30), cut=st.integers(0, 4096))
def test_one_mutation_of_a_real_frame_is_decoded_or_refused(chain: Chain, good_frame: pb.Frame, index: int,
                                                            field: str, value: int, cut: int) -> None:
    frame = pb.Frame()
    frame.CopyFrom(good_frame)
    segment = frame.segments[index % len(frame.segments)]
    if field == "iq":
        segment.iq = segment.iq[: cut * 8]
    elif field == "kind":
        segment.kind = value % 7
    else:
        setattr(segment, field, value % (1 << 24) if field != "mcs" else value % 40)
    assert _code(chain.receiver.Decode, frame) in ALLOWED


def test_after_the_fuzzing_a_good_frame_still_decodes(chain: Chain, good_frame: pb.Frame) -> None:
    delivery = chain.receiver.Decode(good_frame, timeout=60)
    image = np.frombuffer(delivery.image_png[:8], np.uint8)
    assert bytes(image) == b"\x89PNG\r\n\x1a\n"
    assert all(s.crc_ok for s in delivery.segments if s.kind in (pb.SEGMENT_KIND_MASK, pb.SEGMENT_KIND_PROMPT))
