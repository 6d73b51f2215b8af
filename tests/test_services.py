"""The three services on loopback: health, reflection, and bad input answered with a status, never a crash.

Every bad request is followed by a good one that must succeed, so a service that
died or wedged on the bad input fails the test.
"""

import struct
import zlib

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from gensemcom.services import build_receiver, build_transmitter, transmitter_pool
from gensemcom.shared.config import ChannelSettings, ReceiverSettings, TransmitterSettings
from gensemcom.shared.frame import SegmentKind
from gensemcom.shared.image_io import decode_image
from gensemcom.shared.pb import semcom_pb2 as pb
from tests.conftest import Chain, png_bytes

SERVICES = {"transmitter": "semcom.v1.Transmitter", "channel": "semcom.v1.Channel", "receiver": "semcom.v1.Receiver"}


def _status(call, *args) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=30)
    return info.value.code(), info.value.details()


def _good_frame(chain: Chain, image: bytes) -> pb.Frame:
    return chain.transmitter.Encode(pb.ImageRequest(image=image, frame_id="good"), timeout=30)


def _zero_size_png() -> bytes:
    """A syntactically valid PNG header that declares a 0×0 image."""
    ihdr = struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))


@pytest.mark.parametrize("name", list(SERVICES))
def test_health_serving_and_reflection_lists_service(chain: Chain, name: str) -> None:
    with grpc.insecure_channel(chain.addresses[name]) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", SERVICES[name]):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        listed = set(ProtoReflectionDescriptorDatabase(channel).get_services())
        assert {SERVICES[name], "grpc.health.v1.Health"} <= listed


@pytest.mark.parametrize(
    "image, expect",
    [
        (b"", "empty"),
        (b"this is not an image at all", "not a readable image"),
        (png_bytes(np.zeros((1, 1, 3), np.uint8)), "at least"),
        (_zero_size_png(), "image"),
    ],
    ids=["empty", "not-an-image", "1x1", "0x0"],
)
def test_encode_rejects_bad_images_then_serves(chain: Chain, astronaut_png: bytes, image: bytes, expect: str) -> None:
    code, details = _status(chain.transmitter.Encode, pb.ImageRequest(image=image))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert expect in details
    assert _good_frame(chain, astronaut_png).segments


def test_oversized_message_is_resource_exhausted(chain: Chain, astronaut_png: bytes) -> None:
    code, _ = _status(chain.transmitter.Encode, pb.ImageRequest(image=b"\0" * (5 * 1024 * 1024)))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _good_frame(chain, astronaut_png).segments


def _corrupt(frame: pb.Frame, how: str) -> pb.Frame:
    bad = pb.Frame()
    bad.CopyFrom(frame)
    if how == "iq-length":
        bad.segments[1].iq = bad.segments[1].iq[:-5]
    elif how == "unknown-kind":
        bad.segments[0].kind = 77
    elif how == "unknown-modulation":
        bad.segments[2].modulation = 123
    elif how == "no-header":
        bad.ClearField("header")
    return bad


@pytest.mark.parametrize("how", ["iq-length", "unknown-kind", "unknown-modulation", "no-header"])
def test_receiver_rejects_malformed_frames_then_serves(chain: Chain, astronaut_png: bytes, how: str) -> None:
    frame = _good_frame(chain, astronaut_png)
    code, _ = _status(chain.receiver.Decode, _corrupt(frame, how))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert chain.receiver.Decode(frame, timeout=30).height == 256


def test_receiver_refuses_unknown_codec(chain: Chain, astronaut_png: bytes) -> None:
    frame = _good_frame(chain, astronaut_png)
    frame.header.key_codec.version = "999"
    code, details = _status(chain.receiver.Decode, frame)
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "999" in details


@pytest.mark.parametrize(
    "config, expect",
    [
        (pb.ChannelConfig(model="teleport"), "teleport"),
        (pb.ChannelConfig(snr_db=500), "SNR"),
        (pb.ChannelConfig(coherence_symbols=0, model="rayleigh", snr_db=float("nan")), "SNR"),
    ],
    ids=["unknown-model", "snr-out-of-range", "snr-nan"],
)
def test_channel_rejects_bad_parameters_then_serves(chain: Chain, astronaut_png: bytes, config, expect: str) -> None:
    frame = _good_frame(chain, astronaut_png)
    code, details = _status(chain.channel.Apply, pb.ChannelInput(frame=frame, config=config))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert expect.lower() in details.lower()
    out = chain.channel.Apply(pb.ChannelInput(frame=frame), timeout=30)
    assert [s.n_symbols for s in out.frame.segments] == [s.n_symbols for s in frame.segments]


def test_channel_rejects_iq_length_mismatch(chain: Chain, astronaut_png: bytes) -> None:
    frame = _corrupt(_good_frame(chain, astronaut_png), "iq-length")
    code, _ = _status(chain.channel.Apply, pb.ChannelInput(frame=frame))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_send_gives_exactly_one_outcome_per_image(chain: Chain, astronaut_png: bytes) -> None:
    images = [astronaut_png, b"", b"junk", astronaut_png, png_bytes(np.zeros((1, 1, 3), np.uint8)), astronaut_png]
    requests = [pb.ImageRequest(image=img, request_id=f"r{i}", seq=i, stream_id="t") for i, img in enumerate(images)]
    deliveries = list(chain.transmitter.Send(iter(requests), timeout=120))
    assert [d.request_id for d in deliveries] == [r.request_id for r in requests]
    codes = [d.status.code for d in deliveries]
    invalid = grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert codes == [0, invalid, invalid, 0, invalid, 0]
    for d in deliveries:
        assert (d.status.code == 0) == bool(d.image_png)
        assert d.status.code == 0 or d.status.message


def test_channel_report_and_timings_reach_the_delivery(chain: Chain, astronaut_png: bytes) -> None:
    request = pb.ImageRequest(image=astronaut_png, channel=pb.ChannelConfig(model="rayleigh", snr_db=12, seed=5))
    (delivery,) = list(chain.transmitter.Send(iter([request]), timeout=60))
    assert delivery.channel.model == "rayleigh"
    assert delivery.channel.snr_db == pytest.approx(12)
    assert len(delivery.channel.gain_re) == 1
    hops = {t.hop for t in delivery.timings}
    assert hops == {"transmitter", "channel", "receiver"}
    # The pilot groups' LS estimates, averaged, are within 4 standard deviations (sqrt(no / n_pilots),
    # theory for near-equal groups) of the gain the channel really applied; |error| is Rayleigh, so this
    # fails with probability about e^-16.
    true_gain = complex(delivery.channel.gain_re[0], delivery.channel.gain_im[0])
    est_gain = complex(np.mean(delivery.link.gain_re), np.mean(delivery.link.gain_im))
    assert delivery.link.n_pilots > 64 and delivery.link.estimator == "lmmse"
    assert abs(est_gain - true_gain) < 4 * np.sqrt(delivery.channel.noise_variance / delivery.link.n_pilots)
    assert 0 < delivery.link.estimation_error < delivery.channel.noise_variance


def test_channel_attaches_its_true_gains_only_when_asked(chain: Chain, astronaut_png: bytes) -> None:
    frame = chain.transmitter.Encode(pb.ImageRequest(image=astronaut_png), timeout=60)
    n = sum(s.n_symbols for s in frame.segments)
    config = pb.ChannelConfig(model="rayleigh", snr_db=10, seed=2, doppler=0.01)
    plain = chain.channel.Apply(pb.ChannelInput(frame=frame, config=config), timeout=60)
    assert not plain.frame.HasField("truth")
    config.attach_truth = True
    out = chain.channel.Apply(pb.ChannelInput(frame=frame, config=config), timeout=60)
    gains = np.frombuffer(out.frame.truth.gains, "<c8")
    assert gains.size == n and out.frame.truth.noise_variance == pytest.approx(out.report.noise_variance)
    np.testing.assert_allclose(gains[: len(out.report.gain_re)], np.array(out.report.gain_re) + 1j * np.array(out.report.gain_im), rtol=1e-6)
    # The same draw with and without truth: attaching it changes nothing else.
    assert [s.iq for s in out.frame.segments] == [s.iq for s in plain.frame.segments]


def test_truth_cannot_come_from_an_external_channel() -> None:
    with pytest.raises(ValueError, match="attach_truth"):
        ChannelSettings(attach_truth=True, external="exec:cat")


def test_receiver_follows_the_bandwidth_ratio_in_the_header(astronaut_png: bytes) -> None:
    """A transmitter configured at another ratio than the receiver's default still decodes."""
    image = decode_image(astronaut_png)
    receiver = build_receiver(ReceiverSettings())
    sizes = []
    for ratio in (1 / 24, 1 / 6):
        frame = build_transmitter(TransmitterSettings(bandwidth_ratio=ratio)).encode(image, "r")
        rec = receiver.decode(frame)
        assert rec.image.shape == image.shape
        sizes.append(frame.segment(SegmentKind.KEY_JSCC).n_symbols)
    assert sizes[1] > 3 * sizes[0]


def test_client_profile_in_metadata_chooses_the_bandwidth_ratio(chain: Chain, astronaut_png: bytes) -> None:
    request = pb.ImageRequest(image=astronaut_png)
    plain = chain.transmitter.Encode(request, timeout=60)
    iot = chain.transmitter.Encode(request, timeout=60, metadata=[("semcom-profile", "iot")])
    assert plain.header.key_region.bandwidth_ratio == pytest.approx(1 / 6)
    assert iot.header.key_region.bandwidth_ratio == pytest.approx(1 / 24)
    key_symbols = [sum(s.n_symbols for s in f.segments if s.kind == pb.SEGMENT_KIND_KEY_JSCC) for f in (plain, iot)]
    assert key_symbols[0] > 3 * key_symbols[1]
    (delivery,) = chain.transmitter.Send(iter([request]), timeout=60, metadata=[("semcom-profile", "phone")])
    assert delivery.status.code == 0 and delivery.client_profile == "phone"


def test_unknown_client_profile_is_invalid_argument_then_serves(chain: Chain, astronaut_png: bytes) -> None:
    request = pb.ImageRequest(image=astronaut_png)
    with pytest.raises(grpc.RpcError) as err:
        chain.transmitter.Encode(request, timeout=60, metadata=[("semcom-profile", "toaster")])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "iot" in err.value.details()
    assert chain.transmitter.Encode(request, timeout=60).header.frame_id


@pytest.mark.parametrize("profiles, message", [({"x": {"bandwidth_ratio": 2}}, "bandwidth_ratio"),
                                               ({"x": {"next_hop": "evil:1"}}, "cannot change")])
def test_a_bad_client_profile_is_a_startup_error(profiles: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        transmitter_pool(TransmitterSettings(profiles=profiles))


def test_alpha_target_reaches_the_transmitter_and_the_achieved_share_is_reported(astronaut_png: bytes) -> None:
    image = decode_image(astronaut_png)
    frame = build_transmitter(TransmitterSettings(alpha=0.15, key_codec="linear-dct")).encode(image, "alpha")
    assert abs(frame.header.alpha - 0.15) <= 0.02
    assert "/" in frame.header.segmenter, "the segmenter name says how the target was reached"
