"""Prometheus metrics and structured (JSON) logs for the three services.

Each service owns a :class:`ServiceMetrics`: its own ``CollectorRegistry``
rather than prometheus_client's global one, because tests and the demo run
all three services in one process and each must report only its own
numbers. The adapters (``*/service.py``) feed it where a request finishes;
the signal-processing code never sees it: stage latencies come from the
``Timing`` records the pipelines already attach to every frame.

Metric names and labels are documented in docs/observability.md.
"""

import functools
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily

from gensemcom.shared.frame import Frame, Timing
from gensemcom.shared.rpc import status_for

# Seconds: from a sub-millisecond channel model to CPU diffusion inpainting.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# Frames per receiver batch: max_batch is at most 256.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# Es/N0 in dB: the range where the codes and the key codec go from useless to saturated.
SNR_BUCKETS = (-10, -5, 0, 5, 10, 15, 20, 25, 30, 40)


@dataclass
class Call:
    """One request being served; the adapter sets ``code`` when it turns a failure into a reply itself."""

    code: str = "OK"


class ServiceMetrics:
    """Every metric one service exports, registered in a registry of its own."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # CPU seconds, resident memory, open files
        labels = ["service"]
        self._requests = Counter("semcom_requests", "requests served, by method and gRPC status code",
                                 [*labels, "method", "code"], registry=self.registry)
        self._request_seconds = Histogram("semcom_request_seconds", "time to serve one request (next hops included)",
                                          [*labels, "method"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self._in_flight = Gauge("semcom_in_flight", "requests being served now", labels, registry=self.registry)
        self._stage_seconds = Histogram("semcom_stage_seconds", "time one frame spent in one pipeline stage",
                                        [*labels, "stage"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self._symbols = Counter("semcom_symbols", "complex baseband symbols produced, by segment kind",
                                [*labels, "kind"], registry=self.registry)
        self._snr_db = Histogram("semcom_snr_db", "SNR per frame, dB: the channel's applied Es/N0, the "
                                 "receiver's estimate", labels, buckets=SNR_BUCKETS, registry=self.registry)
        self._batch_size = Histogram("semcom_batch_size", "frames decoded together in one batch", labels,
                                     buckets=BATCH_BUCKETS, registry=self.registry)
        self._queue_depth = Gauge("semcom_queue_depth", "frames waiting for the decode worker", labels,
                                  registry=self.registry)

    @contextmanager
    def request(self, method: str) -> Iterator[Call]:
        """Count one request of ``method`` and time it; an exception escaping it sets the code it will get."""
        call = Call()
        in_flight = self._in_flight.labels(self.service)
        in_flight.inc()
        start = time.perf_counter()
        try:
            yield call
        except Exception as exc:
            call.code = status_for(exc).name
            raise
        finally:
            in_flight.dec()
            self._request_seconds.labels(self.service, method).observe(time.perf_counter() - start)
            self._requests.labels(self.service, method, call.code).inc()

    def stages(self, timings: Iterable[Timing]) -> None:
        """One observation per stage a frame went through at this hop."""
        for timing in timings:
            # "inpaint[batch 4]" and "inpaint" are one stage: the batch size has its own histogram.
            stage = timing.stage.split("[", 1)[0]
            self._stage_seconds.labels(self.service, stage).observe(timing.ms / 1e3)

    def symbols(self, frame: Frame) -> None:
        for segment in frame.segments:
            self._symbols.labels(self.service, segment.kind.name).inc(segment.n_symbols)

    def snr(self, snr_db: float) -> None:
        """Record an SNR; a noiseless frame's infinite estimate has no bucket and is left out."""
        if math.isfinite(snr_db):
            self._snr_db.labels(self.service).observe(snr_db)

    def batch(self, size: int) -> None:
        self._batch_size.labels(self.service).observe(size)

    def watch_queue(self, depth: Callable[[], int]) -> None:
        """Report ``depth()`` as the queue depth, read at each scrape so it is never stale."""
        self._queue_depth.labels(self.service).set_function(depth)

    def watch_server(self, refused: Callable[[], int], repeats: Callable[[], int]) -> None:
        """Export what the server's interceptors answer before any adapter runs (so ``request`` never sees it):
        calls refused by the in-flight limit, and retried frames answered from memory."""
        self.registry.register(_ServerCounts(self.service, refused, repeats))

    def serve(self, host: str, port: int) -> None:
        """Serve ``/metrics`` over HTTP on ``host:port`` from a daemon thread, for the life of the process."""
        start_http_server(port, addr=host, registry=self.registry)


class _ServerCounts:
    """A collector reading the interceptors' own counters at each scrape."""

    def __init__(self, service: str, refused: Callable[[], int], repeats: Callable[[], int]) -> None:
        self.service, self.refused, self.repeats = service, refused, repeats

    def collect(self) -> Iterator[CounterMetricFamily]:
        refused = CounterMetricFamily("semcom_refused", "calls refused by the in-flight limit "
                                      "(RESOURCE_EXHAUSTED with retry-after-ms)", labels=["service"])
        refused.add_metric([self.service], self.refused())
        repeats = CounterMetricFamily("semcom_repeats", "retried frames answered from memory, not processed "
                                      "again", labels=["service"])
        repeats.add_metric([self.service], self.repeats())
        yield refused
        yield repeats


class Observed(Protocol):
    metrics: ServiceMetrics


S = TypeVar("S", bound=Observed)
R = TypeVar("R")


def observed(method: Callable[[S, Any, Any], R]) -> Callable[[S, Any, Any], R]:
    """Count and time a unary servicer method under its own name; goes below ``@rpc_errors``.

    Below it, the wrapper still sees the Python exception, so the count gets
    the status code ``rpc_errors`` is about to send.
    """

    @functools.wraps(method)
    def wrapper(self: S, request: Any, context: Any) -> R:
        with self.metrics.request(method.__name__):
            return method(self, request, context)

    return wrapper


def frame_ids(frame_id: str, stream_id: str) -> dict[str, str]:
    """``extra=`` for a per-frame log call: the JSON log format turns these into fields."""
    return {"frame_id": frame_id, "stream_id": stream_id}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, so log collectors can filter by frame or stream without parsing text."""

    ID_FIELDS = ("frame_id", "stream_id")

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({name: getattr(record, name) for name in self.ID_FIELDS if hasattr(record, name)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)
