"""Backpressure and idempotency for the gRPC services: two server interceptors.

:class:`InFlightLimit` bounds how many calls a service holds at once. A call
counts from the moment it is admitted, waiting for a worker thread included,
until it ends, so this bound is also the bound on the service's queue:
the next caller is answered ``RESOURCE_EXHAUSTED`` at once, with trailing
metadata ``retry-after-ms`` saying when to try again, instead of being parked
in grpc's unbounded thread-pool queue while memory grows.

:class:`Idempotent` makes a retried frame cheap and harmless. The receiver's
``Decode`` and the channel's ``Forward`` remember the outcome of the last
frames they served, keyed by frame id; a frame seen again is answered with the
first outcome instead of being processed twice, and a repeat that arrives
while the first attempt still runs waits for it. Only successes are
remembered: after a failure the next attempt runs afresh.

Health checks and reflection are exempt from both, so a busy service still
answers its probes. docs/reliability.md tells the whole story.
"""

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from typing import Any, Generic, NamedTuple, TypeVar

import grpc
from google.protobuf.message import Message

from gensemcom.shared.pb import semcom_pb2 as pb

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_AFTER_KEY = "retry-after-ms"
#: Method-name prefixes that are never refused or deduplicated: probes must answer under load.
UNLIMITED = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def retry_after_metadata(ms: int) -> tuple[tuple[str, str]]:
    """Trailing metadata telling the caller to wait ``ms`` milliseconds before retrying."""
    return ((RETRY_AFTER_KEY, str(int(ms))),)


def retry_after_from(metadata: Any) -> int | None:
    """The ``retry-after-ms`` value in call metadata, or None when absent or not a whole number."""
    for key, value in metadata or ():
        if key == RETRY_AFTER_KEY:
            try:
                return max(0, int(value))
            except ValueError:
                return None
    return None


# --- the in-flight limit -----------------------------------------------------------------------


_HANDLER_FACTORIES = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def _with_behaviour(handler: grpc.RpcMethodHandler, behaviour: Callable) -> grpc.RpcMethodHandler:
    """A handler of the same shape and (de)serialisers as ``handler`` that runs ``behaviour``."""
    factory = _HANDLER_FACTORIES[(handler.request_streaming, handler.response_streaming)]
    return factory(behaviour, request_deserializer=handler.request_deserializer,
                   response_serializer=handler.response_serializer)


def _refusal(handler: grpc.RpcMethodHandler, refuse: Callable) -> grpc.RpcMethodHandler:
    """A handler answering like ``handler`` that runs ``refuse`` without reading the request.

    It always takes a request *stream* (the wire format of one request is the
    same): grpc then hands over a lazy iterator instead of first receiving and
    parsing the whole message, so a refused 1 MB frame costs no more memory
    than its transport window.
    """
    factory = _HANDLER_FACTORIES[(True, handler.response_streaming)]
    return factory(refuse, request_deserializer=None, response_serializer=handler.response_serializer)


def _behaviour(handler: grpc.RpcMethodHandler) -> Callable:
    return handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream


class _Slot:
    """One admitted call's place in the limit; released exactly once.

    The handler releases it when the call ends. grpc does not always run the
    handler: a caller that cancels while its call waits for a worker thread
    never reaches it. The slot is then released when grpc drops the handler
    that holds it (``__del__``), so no cancelled call leaks a place.
    """

    def __init__(self, limit: "InFlightLimit") -> None:
        self._limit: InFlightLimit | None = limit

    def release(self) -> None:
        limit, self._limit = self._limit, None
        if limit is not None:
            limit._release()

    __del__ = release


class InFlightLimit(grpc.ServerInterceptor):
    """Admit at most ``limit`` calls at once; refuse the rest with RESOURCE_EXHAUSTED and ``retry-after-ms``.

    A response stream (``Transmitter.Send``) holds its place until the stream ends.
    """

    def __init__(self, limit: int, retry_after_ms: int) -> None:
        if limit < 1 or retry_after_ms < 0:
            raise ValueError(f"need limit >= 1 and retry_after_ms >= 0, got {limit} and {retry_after_ms}")
        self.limit, self.retry_after_ms = limit, retry_after_ms
        self._lock = threading.Lock()
        self._in_flight = 0
        self.refused = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None or details.method.startswith(UNLIMITED):
            return handler
        with self._lock:
            admitted = self._in_flight < self.limit
            if admitted:
                self._in_flight += 1
            else:
                self.refused += 1
        if not admitted:
            return _refusal(handler, self._refuse)
        return _with_behaviour(handler, _holding(_behaviour(handler), _Slot(self), handler.response_streaming))

    def _release(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _refuse(self, _requests: Any, context: grpc.ServicerContext) -> None:
        context.set_trailing_metadata(retry_after_metadata(self.retry_after_ms))
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                      f"{self.limit} requests already in flight; retry after {self.retry_after_ms} ms")


def _holding(behaviour: Callable, slot: _Slot, streaming: bool) -> Callable:
    """``behaviour`` releasing ``slot`` when it returns, or, for a response stream, when the stream ends."""
    if streaming:
        def run_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            try:
                yield from behaviour(request, context)
            finally:
                slot.release()

        return run_stream

    def run(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return behaviour(request, context)
        finally:
            slot.release()

    return run


# --- idempotency by frame id -------------------------------------------------------------------


class FrameKey(NamedTuple):
    """A frame's identity: its id, and a digest of everything about it that the channel does not change.

    The digest covers the header, each segment's description with its IQ
    length (not its samples: a retry through the channel carries fresh noise)
    and the request's other fields (the channel configuration). It keeps two
    different frames sent under one id (a client bug, or a test's corrupted
    copy) from being taken for each other.
    """

    frame_id: str
    digest: str


def frame_key(frame: pb.Frame, *more: Message) -> FrameKey | None:
    """The key of ``frame`` (with the other request fields ``more``); None when it has no id."""
    if not frame.header.frame_id:
        return None
    digest = hashlib.blake2b(digest_size=16)

    def feed(data: bytes) -> None:
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)

    feed(frame.header.SerializeToString(deterministic=True))
    for segment in frame.segments:
        shape = pb.IqSegment()
        shape.CopyFrom(segment)
        shape.ClearField("iq")
        feed(shape.SerializeToString(deterministic=True))
        feed(len(segment.iq).to_bytes(8, "little"))
    for message in more:
        feed(message.SerializeToString(deterministic=True))
    return FrameKey(frame.header.frame_id, digest.hexdigest())


_FAILED = object()  # what a first attempt that failed hands to the repeats waiting for it


class RecentOutcomes(Generic[T]):
    """The outcomes of the last ``window`` keys, and the keys being computed now.

    ``once(key, compute)`` runs ``compute`` for a new key; for a key seen
    before it returns the remembered outcome, or waits for the attempt in
    progress. Outcomes are shared, not copied: callers must not change them.
    """

    def __init__(self, window: int) -> None:
        if window < 0:
            raise ValueError(f"window must be >= 0, got {window}")
        self.window = window
        self.repeats = 0  # calls answered without computing
        self._lock = threading.Lock()
        self._done: OrderedDict[Any, T] = OrderedDict()
        self._running: dict[Any, Future] = {}

    def once(self, key: Any, compute: Callable[[], T]) -> tuple[T, bool]:
        """(``compute()``'s outcome for ``key``, whether it was a repeat); key None: always computed."""
        if key is None or self.window == 0:
            return compute(), False
        while True:
            with self._lock:
                if key in self._done:
                    self._done.move_to_end(key)
                    self.repeats += 1
                    return self._done[key], True
                running = self._running.get(key)
                if running is None:
                    running = self._running[key] = Future()
                    break
            outcome = running.result()  # a repeat waits as long as the first attempt takes
            if outcome is not _FAILED:
                with self._lock:
                    self.repeats += 1
                return outcome, True
            # the first attempt failed; nothing is remembered, so this caller tries itself
        try:
            outcome = compute()
        except BaseException:
            with self._lock:
                del self._running[key]
            running.set_result(_FAILED)
            raise
        with self._lock:
            del self._running[key]
            self._done[key] = outcome
            if len(self._done) > self.window:
                self._done.popitem(last=False)
        running.set_result(outcome)
        return outcome, False


KeyOf = Callable[[Any], FrameKey | None]

_SERVICES = pb.DESCRIPTOR.services_by_name
#: The methods whose repeats are answered from memory, and how a request's key is read.
FRAME_KEYED: Mapping[str, KeyOf] = {
    f"/{_SERVICES['Receiver'].full_name}/Decode": frame_key,
    f"/{_SERVICES['Channel'].full_name}/Forward": lambda request: frame_key(request.frame, request.config),
}


class Idempotent(grpc.ServerInterceptor):
    """Answer a repeated frame of a ``keyed`` unary method with its first outcome (see the module docstring).

    Place it inside the token check, so that only authorised callers ever see
    a remembered outcome.
    """

    def __init__(self, window: int, keyed: Mapping[str, KeyOf] = FRAME_KEYED) -> None:
        self._keyed = dict(keyed)
        self.recent: dict[str, RecentOutcomes] = {method: RecentOutcomes(window) for method in keyed}

    def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None or details.method not in self._keyed or handler.unary_unary is None:
            return handler
        recent, key_of, behaviour = self.recent[details.method], self._keyed[details.method], handler.unary_unary

        def run(request: Any, context: grpc.ServicerContext) -> Any:
            key = key_of(request)
            outcome, repeated = recent.once(key, lambda: behaviour(request, context))
            if repeated:
                log.info("frame %s repeated: answered with its first outcome", key.frame_id)
            return outcome

        return _with_behaviour(handler, run)
