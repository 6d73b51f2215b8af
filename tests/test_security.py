"""TLS, mutual TLS and bearer tokens on real services: the wrong caller is refused, the right one served.

Certificates come from `semcom certs` (a fresh dev CA per module, plus a second,
unrelated CA standing in for an attacker's). Every refusal is paired with the
same call succeeding under the right credentials, so a server that refused
everything would fail too.
"""

import datetime
import logging
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from pydantic import ValidationError
from typer.testing import CliRunner

from gensemcom.certs import DevCerts, write_dev_certs
from gensemcom.cli import app
from gensemcom.services import build_transmitter, start_channel, start_receiver
from gensemcom.shared.config import ChannelSettings, ReceiverSettings, TransmitterSettings
from gensemcom.shared.healthprobe import main as probe_main
from gensemcom.shared.healthprobe import probe
from gensemcom.shared.image_io import decode_image
from gensemcom.shared.pb import semcom_pb2 as pb
from gensemcom.shared.pb import semcom_pb2_grpc as pb_grpc
from gensemcom.shared.rpc import connect
from gensemcom.shared.security import channel_credentials
from gensemcom.shared.wire import frame_to_pb

TOKEN = "s3cret-token-for-tests"
HOSTS = ("localhost", "127.0.0.1")
REFUSED = grpc.StatusCode.UNAVAILABLE  # what a client sees when the TLS handshake fails


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> DevCerts:
    return write_dev_certs(tmp_path_factory.mktemp("certs"), HOSTS)


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> DevCerts:
    """Certificates from another CA: valid in form, trusted by nobody here."""
    return write_dev_certs(tmp_path_factory.mktemp("stranger"), HOSTS)


@pytest.fixture(scope="module")
def frame(astronaut_png: bytes, one_torch_thread: None) -> pb.Frame:
    transmitter = build_transmitter(TransmitterSettings(segmenter="saliency", key_codec="linear-dct"))
    return frame_to_pb(transmitter.encode(decode_image(astronaut_png), frame_id="sec"))


@contextmanager
def serving(start, settings) -> Iterator[str]:
    """Run a service on a free loopback port; yields its address."""
    server = start(settings)
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        server.stop(grace_s=0)


def tls(certs: DevCerts, **more) -> dict:
    """Settings for TLS with the dev server certificate."""
    return {"port": 0, "tls_cert": certs.server, "tls_key": certs.server_key, "tls_ca": certs.ca, **more}


def apply(address: str, credentials: grpc.ChannelCredentials | None, frame: pb.Frame) -> pb.ChannelOutput:
    with connect(address, 4, credentials) as channel:
        return pb_grpc.ChannelStub(channel).Apply(pb.ChannelInput(frame=frame), timeout=10)


def refusal(address: str, credentials: grpc.ChannelCredentials | None, frame: pb.Frame) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        apply(address, credentials, frame)
    return info.value.code()


def same_shape(out: pb.ChannelOutput, frame: pb.Frame) -> bool:
    return [s.n_symbols for s in out.frame.segments] == [s.n_symbols for s in frame.segments]


def test_tls_serves_a_client_trusting_the_ca_and_refuses_plaintext_and_other_cas(
    certs: DevCerts, stranger: DevCerts, frame: pb.Frame
) -> None:
    with serving(start_channel, ChannelSettings(**tls(certs))) as address:
        assert same_shape(apply(address, channel_credentials(certs.ca), frame), frame)
        assert refusal(address, None, frame) == REFUSED
        assert refusal(address, channel_credentials(stranger.ca), frame) == REFUSED
        assert probe(address) == REFUSED.name
        assert probe(address, credentials=channel_credentials(certs.ca)) == "SERVING"


def test_mutual_tls_needs_a_client_certificate_from_the_ca(
    certs: DevCerts, stranger: DevCerts, frame: pb.Frame
) -> None:
    with serving(start_channel, ChannelSettings(**tls(certs, tls_client_auth=True))) as address:
        assert refusal(address, channel_credentials(certs.ca), frame) == REFUSED
        assert refusal(address, channel_credentials(certs.ca, stranger.client, stranger.client_key), frame) == REFUSED
        assert same_shape(apply(address, channel_credentials(certs.ca, certs.client, certs.client_key), frame), frame)
        # The health probe under mTLS: refused without a certificate, served with one (exit codes 1 and 0).
        assert probe_main([address, "--tls-ca", str(certs.ca)]) == 1
        assert probe_main([address, "--tls-ca", str(certs.ca), "--tls-cert", str(certs.client),
                           "--tls-key", str(certs.client_key)]) == 0


def test_token_is_required_except_for_the_health_check(certs: DevCerts, frame: pb.Frame) -> None:
    with serving(start_channel, ChannelSettings(**tls(certs, auth_token=TOKEN))) as address:
        assert refusal(address, channel_credentials(certs.ca), frame) == grpc.StatusCode.UNAUTHENTICATED
        wrong = channel_credentials(certs.ca, token=TOKEN + "x")
        assert refusal(address, wrong, frame) == grpc.StatusCode.UNAUTHENTICATED
        assert same_shape(apply(address, channel_credentials(certs.ca, token=TOKEN), frame), frame)
        with connect(address, 4, channel_credentials(certs.ca)) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            # Reflection (a streaming method) is guarded like the services it describes.
            with pytest.raises(grpc.RpcError) as info:
                ProtoReflectionDescriptorDatabase(channel).get_services()
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with connect(address, 4, channel_credentials(certs.ca, token=TOKEN)) as channel:
            assert "semcom.v1.Channel" in ProtoReflectionDescriptorDatabase(channel).get_services()


@pytest.fixture(scope="module")
def secure_receiver(certs: DevCerts, one_torch_thread: None) -> Iterator[str]:
    """A receiver that demands mutual TLS and a token."""
    with serving(start_receiver, ReceiverSettings(**tls(certs, tls_client_auth=True, auth_token=TOKEN))) as address:
        yield address


def hop_settings(certs: DevCerts, receiver: str, **more) -> ChannelSettings:
    """A TLS + token channel whose next hop is ``receiver``."""
    return ChannelSettings(**tls(certs, next_hop=receiver, seed=3, auth_token=TOKEN, **more))


def forward(address: str, certs: DevCerts, frame: pb.Frame) -> pb.Delivery:
    with connect(address, 4, channel_credentials(certs.ca, token=TOKEN)) as channel:
        return pb_grpc.ChannelStub(channel).Forward(pb.ChannelInput(frame=frame), timeout=60)


def test_chain_forwards_over_mutual_tls_with_a_token(
    certs: DevCerts, secure_receiver: str, frame: pb.Frame, caplog: pytest.LogCaptureFixture
) -> None:
    settings = hop_settings(certs, secure_receiver, next_hop_tls=True, next_hop_token=TOKEN)
    with caplog.at_level(logging.INFO, logger="gensemcom"), serving(start_channel, settings) as address:
        delivery = forward(address, certs, frame)
    assert delivery.status.code == 0, delivery.status.message
    assert (delivery.height, delivery.width) == (frame.header.height, frame.header.width)
    assert delivery.channel.model == "awgn" and delivery.image_png
    assert "TLS, token required; next hop TLS with token" in caplog.text and TOKEN not in caplog.text


@pytest.mark.parametrize("hop, expect", [
    ({"next_hop_tls": False}, grpc.StatusCode.UNAVAILABLE),
    ({"next_hop_tls": True}, grpc.StatusCode.UNAUTHENTICATED),
    ({"next_hop_tls": True, "next_hop_token": TOKEN + "x"}, grpc.StatusCode.UNAUTHENTICATED),
], ids=["plaintext-hop", "no-token", "wrong-token"])
def test_chain_fails_when_the_hop_lacks_credentials(
    certs: DevCerts, secure_receiver: str, frame: pb.Frame, hop: dict, expect: grpc.StatusCode
) -> None:
    with serving(start_channel, hop_settings(certs, secure_receiver, **hop)) as address:
        with pytest.raises(grpc.RpcError) as info:
            forward(address, certs, frame)
    assert info.value.code() == expect
    assert "downstream" in info.value.details()


def test_settings_refuse_insecure_combinations_and_never_show_the_token(certs: DevCerts) -> None:
    for bad in ({"auth_token": TOKEN}, {"tls_cert": certs.server}, {"next_hop_token": TOKEN},
                {"tls_cert": certs.server, "tls_key": certs.server_key, "tls_client_auth": True},
                {**tls(certs), "auth_token": "two words"}):
        with pytest.raises(ValidationError) as info:
            ChannelSettings(**bad)
        assert TOKEN not in str(info.value) and "two words" not in str(info.value)
    settings = ChannelSettings(**tls(certs, auth_token=TOKEN))
    assert TOKEN not in repr(settings) and TOKEN not in settings.model_dump_json()


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_certs_command_writes_a_verifiable_chain_with_private_keys(tmp_path: Path) -> None:
    out = tmp_path / "dev"
    hosts = "localhost,127.0.0.1,channel,::1"
    result = CliRunner().invoke(app, ["certs", "--out", str(out), "--hosts", hosts, "--days", "7"])
    assert result.exit_code == 0, result.output
    files = DevCerts.in_folder(out)
    for key in (files.ca_key, files.server_key, files.client_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ca, server, client = _load(files.ca), _load(files.server), _load(files.client)
    server.verify_directly_issued_by(ca)  # raises on a bad signature or issuer
    client.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "channel"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert server.not_valid_after_utc - server.not_valid_before_utc == datetime.timedelta(days=7, minutes=5)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    before = files.ca.read_bytes()
    again = CliRunner().invoke(app, ["certs", "--out", str(out)])
    assert again.exit_code == 1 and "refusing to overwrite" in again.output
    assert files.ca.read_bytes() == before
    files.server_key.chmod(0o644)
    forced = CliRunner().invoke(app, ["certs", "--out", str(out), "--force"])
    assert forced.exit_code == 0 and files.ca.read_bytes() != before
    assert stat.S_IMODE(files.server_key.stat().st_mode) == 0o600


def test_command_line_clients_take_tls_and_token_from_the_environment(
    certs: DevCerts, frame: pb.Frame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """demo, load and eval --via grpc connect with connect_client: TLS and token from SEMCOM_TLS_* / SEMCOM_TOKEN."""
    from gensemcom.shared.rpc import connect_client
    from gensemcom.shared.security import client_credentials_from_env

    assert client_credentials_from_env({}) is None
    with pytest.raises(ValueError, match="TLS is not"):
        client_credentials_from_env({"SEMCOM_TOKEN": TOKEN})
    with serving(start_channel, ChannelSettings(**tls(certs, auth_token=TOKEN))) as address:
        monkeypatch.setenv("SEMCOM_TLS_CA", str(certs.ca))
        with connect_client(address, 4) as channel, pytest.raises(grpc.RpcError) as info:
            pb_grpc.ChannelStub(channel).Apply(pb.ChannelInput(frame=frame), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        monkeypatch.setenv("SEMCOM_TOKEN", TOKEN)
        with connect_client(address, 4) as channel:
            out = pb_grpc.ChannelStub(channel).Apply(pb.ChannelInput(frame=frame), timeout=10)
        assert same_shape(out, frame)
