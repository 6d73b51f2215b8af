"""gRPC plumbing shared by the three services: server set-up, error mapping, clients.

The adapters in ``*/service.py`` stay thin because everything generic lives
here: health and reflection services, message-size limits and keepalive, TLS
and the token check (``security``), the in-flight limit and frame-id
idempotency (``limits``), graceful shutdown on SIGTERM, and the mapping from
Python exceptions to gRPC status codes that keeps a service alive whatever a
request contains.
"""

import functools
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent import futures
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gensemcom.shared.config import ServiceSettings
from gensemcom.shared.limits import Idempotent, InFlightLimit, retry_after_from, retry_after_metadata
from gensemcom.shared.malformed import MalformedRequests
from gensemcom.shared.security import (
    client_credentials_from_env, next_hop_credentials, server_credentials, token_interceptors,
)

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class FailedPrecondition(RuntimeError):
    """The request is valid but the service is not in a state to run it: FAILED_PRECONDITION."""


class UnsupportedCodec(FailedPrecondition):
    """A frame needs a codec (id, version) this receiver does not have."""


_SETTINGS = ServiceSettings.model_fields  # their defaults are the defaults of the helpers below


class Overloaded(RuntimeError):
    """The service is at capacity: RESOURCE_EXHAUSTED, with trailing metadata ``retry-after-ms``."""

    def __init__(self, message: str, retry_after_ms: int = _SETTINGS["retry_after_ms"].default) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms


class Unavailable(RuntimeError):
    """Something the service relies on (an external channel, a radio) is not answering: UNAVAILABLE."""


def status_for(exc: BaseException) -> grpc.StatusCode:
    """The gRPC status a request failing with ``exc`` gets."""
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        return exc.code()
    if isinstance(exc, FailedPrecondition):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(exc, Overloaded):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, Unavailable):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(exc, ValueError):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, TimeoutError):  # e.g. waiting in a queue past the caller's deadline
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.INTERNAL


def message_for(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "details"):
        details = exc.details() or ""
        if "larger than max" in details:  # grpc's own words for a message over a hop's size limit
            details += "; every hop's max_message_mb must allow this message"
        return f"downstream: {details}"
    return str(exc) or type(exc).__name__


def retry_after_ms(exc: BaseException) -> int | None:
    """When the caller may retry a request that failed with ``exc``: ours, or the one a next hop sent."""
    if isinstance(exc, Overloaded):
        return exc.retry_after_ms
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "trailing_metadata"):
        return retry_after_from(exc.trailing_metadata())
    return None


def relay_retry_after(exc: BaseException, context: grpc.ServicerContext) -> None:
    """Pass the retry hint of ``exc`` (if any) to our caller, so a refusal three hops away reaches the client."""
    ms = retry_after_ms(exc)
    if ms is not None:
        context.set_trailing_metadata(retry_after_metadata(ms))


def log_failure(exc: BaseException, what: str) -> tuple[grpc.StatusCode, str]:
    """Log a failed request (traceback only for unexpected errors); return its status and message."""
    code, message = status_for(exc), message_for(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.error("%s failed", what, exc_info=exc)
    else:
        log.warning("%s: %s: %s", what, code.name, message)
    return code, message


def rpc_errors(method: F) -> F:
    """Turn exceptions of a unary servicer method into a gRPC status; the server keeps serving."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as exc:  # noqa: BLE001 - every failure must become a status, never a crash
            relay_retry_after(exc, context)
            context.abort(*log_failure(exc, method.__name__))

    return wrapper  # type: ignore[return-value]


#: A server accepts pings this close together: half the shortest keepalive_s a hop may set (1 s), for timer jitter.
ACCEPTED_PING_INTERVAL_MS = 500
#: A restarted next hop is found again within this long, however long it was down (grpc's default: 2 min).
MAX_RECONNECT_BACKOFF_MS = 5_000


def channel_options(
    max_message_mb: int,
    keepalive_s: float = _SETTINGS["keepalive_s"].default,
    keepalive_timeout_s: float = _SETTINGS["keepalive_timeout_s"].default,
) -> list[tuple[str, int]]:
    """Options every server and client channel of the chain shares (docs/reliability.md).

    Each side pings its peer every ``keepalive_s`` and drops the connection
    when a ping is not answered within ``keepalive_timeout_s``: a call to a
    hop whose machine vanished fails with UNAVAILABLE instead of hanging
    until its deadline. The ping policy lets pings continue during a long
    silent call (a slow decode) and lets a server accept them from any hop
    whose keepalive_s is within the allowed range, so they never cost a
    GOAWAY ("too_many_pings").
    """
    limit = max_message_mb * 1024 * 1024
    return [
        ("grpc.max_send_message_length", limit),
        ("grpc.max_receive_message_length", limit),
        ("grpc.keepalive_time_ms", round(keepalive_s * 1000)),
        ("grpc.keepalive_timeout_ms", round(keepalive_timeout_s * 1000)),
        # grpc 1.85 times an unanswered ping out by this (default 1 min), whatever keepalive_timeout_ms says (measured)
        ("grpc.http2.ping_timeout_ms", round(keepalive_timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_ping_interval_without_data_ms", ACCEPTED_PING_INTERVAL_MS),
        ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
    ]


def connect(
    address: str,
    max_message_mb: int,
    credentials: grpc.ChannelCredentials | None = None,
    keepalive_s: float = _SETTINGS["keepalive_s"].default,
    keepalive_timeout_s: float = _SETTINGS["keepalive_timeout_s"].default,
) -> grpc.Channel:
    """Client channel with the same message-size limits and keepalive as the server; TLS when ``credentials``."""
    options = channel_options(max_message_mb, keepalive_s, keepalive_timeout_s)
    if credentials is None:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, credentials, options=options)


def connect_client(address: str, max_message_mb: int) -> grpc.Channel:
    """A command-line client's channel (demo, load, eval): TLS and token from the environment
    (``SEMCOM_TLS_CA``, ``SEMCOM_TLS_CERT``, ``SEMCOM_TLS_KEY``, ``SEMCOM_TOKEN``; docs/security.md)."""
    return connect(address, max_message_mb, client_credentials_from_env())


def connect_next_hop(settings: ServiceSettings) -> grpc.Channel:
    """A service's channel to its next hop, secured as its settings say (docs/security.md)."""
    return connect(settings.next_hop, settings.max_message_mb, next_hop_credentials(settings), settings.keepalive_s,
                   settings.keepalive_timeout_s)


def remaining_timeout(context: grpc.ServicerContext) -> float | None:
    """Deadline left on an incoming call, to pass to the downstream call."""
    remaining = context.time_remaining()
    return None if remaining is None or remaining > 1e8 else max(remaining, 0.001)


class Server:
    """A gRPC server with health, reflection, limits and graceful SIGTERM handling.

    Interceptors, outermost first: the in-flight limit (the cheapest refusal),
    the token check, unparsable requests, then frame-id idempotency, so that
    only authorised, well-formed calls ever see a remembered outcome.
    """

    def __init__(self, settings: ServiceSettings, service_names: Iterable[str]) -> None:
        self.settings = settings
        self.service_names = list(service_names)
        self.limit = InFlightLimit(settings.max_in_flight, settings.retry_after_ms)
        self.idempotent = Idempotent(settings.dedupe_window)
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=settings.workers),
            options=channel_options(settings.max_message_mb, settings.keepalive_s, settings.keepalive_timeout_s),
            interceptors=[self.limit, *token_interceptors(settings), MalformedRequests(), self.idempotent],
        )
        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            [*self.service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
            self._server,
        )
        self._stopped = threading.Event()
        self.port = 0

    @property
    def grpc_server(self) -> grpc.Server:
        return self._server

    def start(self) -> int:
        """Bind (with TLS when the settings give a certificate) and start; returns the port actually bound."""
        address = f"{self.settings.host}:{self.settings.port}"
        credentials = server_credentials(self.settings)
        self.port = self._server.add_insecure_port(address) if credentials is None \
            else self._server.add_secure_port(address, credentials)
        if self.port == 0:
            raise OSError(f"could not bind {address}")
        self._server.start()
        for name in ["", *self.service_names]:
            self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return self.port

    def stop(self, grace_s: float | None = None) -> None:
        """Stop accepting work, let in-flight requests finish within the grace period."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._health.enter_graceful_shutdown()
        self._server.stop(self.settings.grace_s if grace_s is None else grace_s).wait()

    def serve_forever(self) -> None:
        """Block until SIGTERM or SIGINT, then shut down gracefully."""

        def on_signal(signum: int, _frame: Any) -> None:
            log.info("%s received: finishing in-flight requests (grace %.1f s)", signal.Signals(signum).name,
                     self.settings.grace_s)
            threading.Thread(target=self.stop, daemon=True).start()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self._server.wait_for_termination()
        log.info("stopped")
