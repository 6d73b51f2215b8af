"""Requests that do not parse get INVALID_ARGUMENT, not grpc's INTERNAL.

grpc-python deserialises a request before any handler runs; bytes that are not a valid
message end the call with INTERNAL ("Exception deserializing request"), which tells the
client the server is broken when it is the request that is. This interceptor gives
every method a deserialiser that turns a parse failure into a marker, and a behaviour
that answers the marker with INVALID_ARGUMENT naming the expected message type.
"""

from collections.abc import Callable
from typing import Any

import grpc


class _Malformed:
    """Stands in for a request whose bytes did not parse."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _safe(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the client's error
            return _Malformed(exc)

    return parse


def _refuse(request: _Malformed, context: grpc.ServicerContext, method: str) -> None:
    context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                  f"{method}: the request is not a valid message ({type(request.error).__name__}: {request.error})")


def _guard_unary(behaviour: Callable, method: str) -> Callable:
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, _Malformed):
            _refuse(request, context, method)
        return behaviour(request, context)

    return handle


def _guard_stream(behaviour: Callable, method: str) -> Callable:
    def handle(requests: Any, context: grpc.ServicerContext) -> Any:
        def checked() -> Any:
            for request in requests:
                if isinstance(request, _Malformed):
                    _refuse(request, context, method)
                yield request

        return behaviour(checked(), context)

    return handle


class MalformedRequests(grpc.ServerInterceptor):
    """Answer unparsable requests with INVALID_ARGUMENT (see the module docstring)."""

    def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method
        deserialize = _safe(handler.request_deserializer)
        serialize = handler.response_serializer
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(_guard_unary(handler.unary_unary, method), deserialize, serialize)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(_guard_unary(handler.unary_stream, method), deserialize,
                                                        serialize)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(_guard_stream(handler.stream_unary, method), deserialize,
                                                        serialize)
        return grpc.stream_stream_rpc_method_handler(_guard_stream(handler.stream_stream, method), deserialize,
                                                     serialize)
