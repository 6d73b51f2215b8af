"""TLS, mutual TLS and bearer tokens for the gRPC hops, built from a service's settings.

Each hop is secured by the two ends' settings (docs/security.md):

- a service with ``tls_cert``/``tls_key`` listens with TLS; with ``tls_client_auth``
  it also demands a client certificate that chains to ``tls_ca`` (mutual TLS);
- a service with ``next_hop_tls`` calls its next hop over TLS, trusting ``tls_ca``
  and presenting its own certificate, so the next hop may require mutual TLS;
- a service with ``auth_token`` refuses calls without ``authorization: Bearer
  <token>`` (UNAUTHENTICATED); ``next_hop_token`` is the token it sends onwards.

The health check is the one method a token does not guard: container health
probes carry no secrets, and "serving or not" tells a caller nothing it could not
learn by connecting. TLS and mutual TLS guard it like everything else, because
they act on the connection before any method is known.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:  # the health probe imports this module, and must start fast without pydantic
    from gensemcom.shared.config import ServiceSettings

AUTHORIZATION = "authorization"  # gRPC metadata keys are lower-case
#: Methods callers may use without a token. Watch is left out: it holds a stream open for anyone.
TOKEN_EXEMPT = frozenset({"/grpc.health.v1.Health/Check"})


def read_pem(path: Path, what: str) -> bytes:
    """The bytes of a PEM file, or an error naming which setting points at a missing or non-PEM file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} does not exist")
    data = path.read_bytes()
    if b"-----BEGIN " not in data:
        raise ValueError(f"{what} file {path} is not PEM (no -----BEGIN line)")
    return data


def server_credentials(settings: ServiceSettings) -> grpc.ServerCredentials | None:
    """TLS for the listening port (mutual with ``tls_client_auth``); None means plaintext."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    pair = (read_pem(settings.tls_key, "tls_key"), read_pem(settings.tls_cert, "tls_cert"))
    if not settings.tls_client_auth:
        return grpc.ssl_server_credentials([pair])
    assert settings.tls_ca is not None  # the settings refuse client auth without a CA
    return grpc.ssl_server_credentials(
        [pair], root_certificates=read_pem(settings.tls_ca, "tls_ca"), require_client_auth=True
    )


def channel_credentials(
    ca: Path | None = None, cert: Path | None = None, key: Path | None = None, token: str | None = None
) -> grpc.ChannelCredentials:
    """Client TLS trusting ``ca`` (None: the system roots), with a client certificate and a bearer token if given.

    gRPC sends call credentials (the token) only over a secure channel, so a
    token can never leave in the clear by mistake.
    """
    if (cert is None) != (key is None):
        raise ValueError("a client certificate needs both its certificate and its key")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=None if ca is None else read_pem(ca, "CA"),
        private_key=None if key is None else read_pem(key, "client key"),
        certificate_chain=None if cert is None else read_pem(cert, "client certificate"),
    )
    if token is None:
        return credentials
    return grpc.composite_channel_credentials(credentials, grpc.access_token_call_credentials(token))


#: Environment variables the command-line clients (demo, load, eval --via grpc) read their security from.
CLIENT_ENV = {"ca": "SEMCOM_TLS_CA", "cert": "SEMCOM_TLS_CERT", "key": "SEMCOM_TLS_KEY", "token": "SEMCOM_TOKEN"}


def client_credentials_from_env(env: Mapping[str, str] | None = None) -> grpc.ChannelCredentials | None:
    """A command-line client's credentials from ``SEMCOM_TLS_CA/CERT/KEY`` and ``SEMCOM_TOKEN``; None = plaintext.

    From the environment, not flags, so that a token never shows in ``ps`` or a shell history.
    A token without TLS is refused: gRPC would not send it, and the server would answer
    UNAUTHENTICATED with no hint why.
    """
    env = os.environ if env is None else env
    ca, cert, key, token = (env.get(CLIENT_ENV[k]) or None for k in ("ca", "cert", "key", "token"))
    if ca is None and cert is None and key is None:
        if token is not None:
            raise ValueError(f"{CLIENT_ENV['token']} is set but TLS is not: set {CLIENT_ENV['ca']} too "
                             "(a token is only sent over TLS)")
        return None
    return channel_credentials(None if ca is None else Path(ca), None if cert is None else Path(cert),
                               None if key is None else Path(key), token)


def next_hop_credentials(settings: ServiceSettings) -> grpc.ChannelCredentials | None:
    """What this service uses to call its next hop: its CA, its own certificate and the next-hop token.

    None means plaintext (``next_hop_tls`` off).
    """
    if not settings.next_hop_tls:
        return None
    token = None if settings.next_hop_token is None else settings.next_hop_token.get_secret_value()
    return channel_credentials(settings.tls_ca, settings.tls_cert, settings.tls_key, token)


def summary(settings: ServiceSettings) -> str:
    """How the port and the next hop are secured, for the start-up log line (never the secrets themselves)."""
    port = "plaintext" if settings.tls_cert is None else "mutual TLS" if settings.tls_client_auth else "TLS"
    hop = "TLS" if settings.next_hop_tls else "plaintext"
    return (f"{port}{'' if settings.auth_token is None else ', token required'}; "
            f"next hop {hop}{'' if settings.next_hop_token is None else ' with token'}")


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Refuse every call without the right ``authorization: Bearer <token>`` header, except ``exempt`` methods."""

    def __init__(self, token: str, exempt: Iterable[str] = TOKEN_EXEMPT) -> None:
        if not token:
            raise ValueError("the bearer token must not be empty")
        self._expected = f"Bearer {token}".encode()
        self._exempt = frozenset(exempt)

    def authorised(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> bool:
        """True when the metadata holds exactly one authorization header and it matches (in constant time)."""
        values = [value for key, value in metadata or () if key == AUTHORIZATION]
        if len(values) != 1:
            return False
        value = values[0].encode() if isinstance(values[0], str) else values[0]
        return hmac.compare_digest(value, self._expected)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method in self._exempt:
            return handler
        if self.authorised(handler_call_details.invocation_metadata):
            return handler
        return _refusal(handler)


def token_interceptors(settings: ServiceSettings) -> list[grpc.ServerInterceptor]:
    """The server interceptors ``settings`` ask for: the token check, or none."""
    if settings.auth_token is None:
        return []
    return [BearerTokenInterceptor(settings.auth_token.get_secret_value())]


_HANDLER_FACTORIES = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def _refusal(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` that answers UNAUTHENTICATED without running it."""

    def refuse(_request: Any, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token (authorization metadata)")

    factory = _HANDLER_FACTORIES[(handler.request_streaming, handler.response_streaming)]
    return factory(refuse, request_deserializer=handler.request_deserializer,
                   response_serializer=handler.response_serializer)
