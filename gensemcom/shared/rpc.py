"""gRPC plumbing shared by the three services: server set-up, error mapping, clients.

The adapters in ``*/service.py`` stay thin because everything generic lives
here: health and reflection services, message-size limits, TLS and the token
check (``security``), graceful shutdown on SIGTERM, and the mapping from Python
exceptions to gRPC status codes that keeps a service alive whatever a request
contains.
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
from gensemcom.shared.malformed import MalformedRequests
from gensemcom.shared.security import next_hop_credentials, server_credentials, token_interceptors

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class FailedPrecondition(RuntimeError):
    """The request is valid but the service is not in a state to run it: FAILED_PRECONDITION."""


class UnsupportedCodec(FailedPrecondition):
    """A frame needs a codec (id, version) this receiver does not have."""


class Overloaded(RuntimeError):
    """The service is at capacity: RESOURCE_EXHAUSTED."""


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
        return f"downstream: {exc.details()}"
    return str(exc) or type(exc).__name__


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
            context.abort(*log_failure(exc, method.__name__))

    return wrapper  # type: ignore[return-value]


def channel_options(max_message_mb: int) -> list[tuple[str, int]]:
    limit = max_message_mb * 1024 * 1024
    return [
        ("grpc.max_send_message_length", limit),
        ("grpc.max_receive_message_length", limit),
    ]


def connect(address: str, max_message_mb: int, credentials: grpc.ChannelCredentials | None = None) -> grpc.Channel:
    """Client channel with the same message-size limits as the server; TLS when ``credentials`` are given."""
    options = channel_options(max_message_mb)
    if credentials is None:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, credentials, options=options)


def connect_next_hop(settings: ServiceSettings) -> grpc.Channel:
    """A service's channel to its next hop, secured as its settings say (docs/security.md)."""
    return connect(settings.next_hop, settings.max_message_mb, next_hop_credentials(settings))


def remaining_timeout(context: grpc.ServicerContext) -> float | None:
    """Deadline left on an incoming call, to pass to the downstream call."""
    remaining = context.time_remaining()
    return None if remaining is None or remaining > 1e8 else max(remaining, 0.001)


class Server:
    """A gRPC server with health, reflection, limits and graceful SIGTERM handling."""

    def __init__(self, settings: ServiceSettings, service_names: Iterable[str]) -> None:
        self.settings = settings
        self.service_names = list(service_names)
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=settings.workers),
            options=channel_options(settings.max_message_mb),
            interceptors=[*token_interceptors(settings), MalformedRequests()],
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
