"""`semcom load`: drive a transmitter with many images and measure latency, throughput and outcomes.

Each request is one image through the whole chain (transmitter -> channel ->
receiver): a ``Transmitter.Send`` stream that carries that single image, so
every request has its own deadline and its own status. Two ways to offer load:

- **closed loop** (``concurrency``): C workers, each sending its next request
  when its previous one ends. The offered load adapts to the server, so it
  measures capacity, not behaviour under a given arrival rate.
- **open loop** (``rate``): requests are *scheduled* at R per second (evenly
  spaced or Poisson) whatever the server does. Latency counts from the
  scheduled send time, not from when a busy client got round to sending, so a
  stall is charged to every request it delayed (no coordinated omission). At
  most ``max_in_flight`` requests are outstanding; one scheduled beyond that
  bound is recorded as ``CLIENT_OVERLOAD`` rather than dropped.

Every request sent gets exactly one recorded outcome: the Delivery's status
when the call returned (a failed image comes back as a Delivery with a status),
else the gRPC error's code. The run is bounded in count and time, and only
talks to loopback unless the caller names a remote target and allows it.
"""

import ipaddress
import json
import math
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, NamedTuple

import grpc
import numpy as np
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter
from PIL import Image
from tqdm import tqdm

from gensemcom.demo import MAX_MESSAGE_MB, find_images
from gensemcom.shared.paths import shared_data_dir
from gensemcom.shared.pb import semcom_pb2 as pb
from gensemcom.shared.pb import semcom_pb2_grpc as pb_grpc
from gensemcom.shared.image_io import encode_png
from gensemcom.shared.rpc import connect_client

MAX_DURATION_S = 3600.0
MAX_REQUESTS = 1_000_000
MAX_RATE = 10_000.0
MAX_CONCURRENCY = 1024
MAX_IN_FLIGHT = 4096
MAX_TIMEOUT_S = 600.0
MAX_RETRIES = 10
MAX_IMAGES = 256  # images read into memory; more would only cost RAM, not realism
BACKOFF_BASE_S = 0.05
BACKOFF_MAX_S = 5.0  # also caps a server's retry-after, so a run stays bounded in time
RETRY_AFTER_KEY = "retry-after-ms"
RETRYABLE = {grpc.StatusCode.UNAVAILABLE.name, grpc.StatusCode.RESOURCE_EXHAUSTED.name}
OK = grpc.StatusCode.OK.name
CLIENT_OVERLOAD = "CLIENT_OVERLOAD"  # open loop: scheduled while max_in_flight requests were outstanding
CLIENT_ERROR = "CLIENT_ERROR"  # the client itself failed to make the call (a bug, logged on stderr)
NO_DELIVERY = "NO_DELIVERY"  # the stream ended OK without exactly one Delivery: the server broke its contract
STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
STREAM_ID = "semcom-load"

Arrivals = Literal["uniform", "poisson"]


def check_target(target: str, allow_remote: bool) -> None:
    """Refuse a malformed HOST:PORT, and a non-loopback host unless the user allowed it.

    Loopback is 127.0.0.0/8, ::1 and ``localhost``. Load can hurt a service, so
    sending it elsewhere needs the explicit consent of ``allow_remote``.
    """
    match = re.fullmatch(r"\[([^\]]+)\]:(\d+)|([^:\[\]]+):(\d+)", target)
    if match is None:
        raise ValueError(f"target must be HOST:PORT or [IPv6]:PORT, got {target!r}")
    host, port = (match[1], match[2]) if match[1] else (match[3], match[4])
    if not 0 < int(port) < 65536:
        raise ValueError(f"target port must be in 1..65535, got {port}")
    if allow_remote or _is_loopback(host):
        return
    raise ValueError(f"target {target} is not loopback (127.0.0.0/8, ::1, localhost); "
                     "pass --allow-remote to load a host you name")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost: we cannot know where it resolves
        return False


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` (e.g. ``"128x96"``) -> (width, height)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if match is None:
        raise ValueError(f"image size must be WIDTHxHEIGHT, e.g. 128x96, got {text!r}")
    return int(match[1]), int(match[2])


def _check_range(name: str, value: float, low: float, high: float, low_open: bool = False) -> None:
    if not (low < value <= high if low_open else low <= value <= high):
        raise ValueError(f"{name} must be in {'(' if low_open else '['}{low}, {high}], got {value}")


@dataclass(frozen=True)
class LoadSettings:
    """One load run. Exactly one of ``rate`` (open loop) and ``concurrency`` (closed loop)."""

    target: str
    images: Path | None = None  # folder; None = the shared Kodak set
    rate: float | None = None
    concurrency: int | None = None
    duration_s: float = 10.0
    requests: int | None = None  # stop after this many, whichever of this and duration_s comes first
    arrivals: Arrivals = "uniform"
    max_in_flight: int = 64
    timeout_s: float = 30.0  # deadline of each attempt
    retries: int = 0
    image_size: tuple[int, int] | None = None  # downscale to fit in (width, height), bounding per-request cost
    model: str = "awgn"
    snr_db: float = 15.0
    seed: int = 0  # Poisson arrivals and the channel's noise
    allow_remote: bool = False

    def __post_init__(self) -> None:
        if (self.rate is None) == (self.concurrency is None):
            raise ValueError("give exactly one of rate (open loop) and concurrency (closed loop)")
        if self.rate is not None:
            _check_range("rate", self.rate, 0, MAX_RATE, low_open=True)
        if self.concurrency is not None:
            _check_range("concurrency", self.concurrency, 1, MAX_CONCURRENCY)
        _check_range("duration_s", self.duration_s, 0, MAX_DURATION_S, low_open=True)
        if self.requests is not None:
            _check_range("requests", self.requests, 1, MAX_REQUESTS)
        if self.arrivals not in ("uniform", "poisson"):
            raise ValueError(f"arrivals must be 'uniform' or 'poisson', got {self.arrivals!r}")
        _check_range("max_in_flight", self.max_in_flight, 1, MAX_IN_FLIGHT)
        _check_range("timeout_s", self.timeout_s, 0, MAX_TIMEOUT_S, low_open=True)
        _check_range("retries", self.retries, 0, MAX_RETRIES)
        if self.image_size is not None:
            for side in self.image_size:
                _check_range("image_size side", side, 8, 8192)
        if not math.isfinite(self.snr_db):
            raise ValueError(f"snr_db must be finite, got {self.snr_db}")
        check_target(self.target, self.allow_remote)

    @property
    def mode(self) -> Literal["open", "closed"]:
        return "open" if self.rate is not None else "closed"

    @property
    def limit(self) -> int:
        """Most requests this run may send."""
        return self.requests or MAX_REQUESTS


def load_images(folder: Path, size: tuple[int, int] | None) -> list[bytes]:
    """The first MAX_IMAGES images of ``folder`` as file bytes, read once; downscaled PNGs when ``size`` is given."""
    paths = find_images([folder])[:MAX_IMAGES]
    if size is None:
        return [path.read_bytes() for path in paths]
    images = []
    for path in paths:
        image = Image.open(path).convert("RGB")
        image.thumbnail(size, Image.Resampling.LANCZOS)  # keeps the aspect ratio, never upscales
        images.append(encode_png(np.asarray(image)))
    return images


# --- the outcome of each request ---------------------------------------------------------------


class Sample(NamedTuple):
    index: int  # the request's number, 0 .. sent-1
    start_s: float  # when the request was sent (closed loop) or scheduled (open loop), from the run's start
    latency_s: float | None  # None when it was never sent (CLIENT_OVERLOAD)
    status: str  # gRPC status name, or one of the CLIENT_* / NO_DELIVERY names above
    attempts: int


class Recorder:
    """Counts requests sent and records one Sample per request, from any thread."""

    def __init__(self, clock: Callable[[], float], on_record: Callable[[], object] = lambda: None) -> None:
        self.clock = clock
        self.start = clock()
        self.sent = 0
        self.samples: list[Sample] = []
        self._on_record = on_record
        self._lock = threading.Lock()

    def count_sent(self) -> None:
        with self._lock:
            self.sent += 1

    def record(self, sample: Sample) -> None:
        with self._lock:
            self.samples.append(sample)
            self._on_record()


Outcome = tuple[str, int]  # (status name, attempts)
Send = Callable[[int], Outcome]  # request number -> its outcome; blocks until the request ends


def _timed(send: Send, index: int, recorder: Recorder, t0: float) -> None:
    """Run request ``index`` and record its outcome with latency from ``t0`` (absolute clock time)."""
    try:
        status, attempts = send(index)
    except Exception as exc:  # noqa: BLE001 - every request must get an outcome, even if the client breaks
        print(f"request {index}: client error: {type(exc).__name__}: {exc}", file=sys.stderr)
        status, attempts = CLIENT_ERROR, 1
    recorder.record(Sample(index, t0 - recorder.start, recorder.clock() - t0, status, attempts))


# --- closed loop -------------------------------------------------------------------------------


def closed_loop(send: Send, recorder: Recorder, concurrency: int, duration_s: float, limit: int) -> None:
    """C workers, each sending its next request when the last one ends, until ``duration_s`` or ``limit``."""
    tickets = iter(range(limit))
    lock = threading.Lock()

    def worker() -> None:
        while recorder.clock() - recorder.start < duration_s:
            with lock:
                index = next(tickets, None)
            if index is None:
                return
            recorder.count_sent()
            _timed(send, index, recorder, recorder.clock())

    threads = [threading.Thread(target=worker, name=f"load-{i}", daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# --- open loop ---------------------------------------------------------------------------------


def send_times(rate: float, duration_s: float, limit: int, arrivals: Arrivals,
               rng: np.random.Generator) -> np.ndarray:
    """Scheduled send times (s from the start) in [0, duration_s), at most ``limit`` of them.

    ``uniform`` spaces them 1/rate apart from 0; ``poisson`` draws exponential gaps of mean 1/rate.
    """
    if arrivals == "uniform":
        times = np.arange(min(limit, math.ceil(rate * duration_s))) / rate
    else:
        expected = rate * duration_s
        chunk = min(limit, int(expected + 6 * math.sqrt(expected)) + 16)
        parts, last = [], 0.0
        while last < duration_s and sum(map(len, parts)) < limit:
            parts.append(last + np.cumsum(rng.exponential(1 / rate, size=chunk)))
            last = float(parts[-1][-1])
        times = np.concatenate(parts)
    return times[times < duration_s][:limit]


def pace(times: np.ndarray, start: float, clock: Callable[[], float],
         sleep: Callable[[float], None]) -> Iterator[int]:
    """Yield each request's index once its scheduled time ``start + times[i]`` has come.

    A late scheduler yields at once and never sleeps to catch up: the request is
    still charged from its scheduled time.
    """
    for index, offset in enumerate(times):
        wait = start + float(offset) - clock()
        if wait > 0:
            sleep(wait)
        yield index


def open_loop(send: Send, recorder: Recorder, times: np.ndarray, max_in_flight: int,
              sleep: Callable[[float], None] = time.sleep) -> None:
    """Send request i at ``times[i]`` whatever the server does; at most ``max_in_flight`` outstanding."""
    slots = threading.BoundedSemaphore(max_in_flight)

    def run(index: int, scheduled: float) -> None:
        try:
            _timed(send, index, recorder, scheduled)
        finally:
            slots.release()

    with ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="load") as pool:
        for index in pace(times, recorder.start, recorder.clock, sleep):
            recorder.count_sent()
            offset = float(times[index])
            if not slots.acquire(blocking=False):
                recorder.record(Sample(index, offset, None, CLIENT_OVERLOAD, 0))
                continue
            pool.submit(run, index, recorder.start + offset)


# --- the gRPC client ---------------------------------------------------------------------------


class ChainClient:
    """Sends request i (image i mod N) as a one-image Transmitter.Send stream; retries if asked."""

    def __init__(self, channel: grpc.Channel, images: list[bytes], settings: LoadSettings,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._stub = pb_grpc.TransmitterStub(channel)
        self._images = images
        self._settings = settings
        self._config = pb.ChannelConfig(model=settings.model, snr_db=settings.snr_db, seed=settings.seed)
        self._run = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")  # frame ids differ between runs
        self._sleep = sleep

    def __call__(self, index: int) -> Outcome:
        request = pb.ImageRequest(
            image=self._images[index % len(self._images)], stream_id=STREAM_ID, seq=index,
            frame_id=f"load-{self._run}-{index}", request_id=str(index), channel=self._config,
        )  # a retry reuses the frame id, so a server that dedups sees the same frame
        status, retry_after_s = self._attempt(request)
        attempts = 1
        while status in RETRYABLE and attempts <= self._settings.retries:
            backoff = BACKOFF_BASE_S * 2 ** (attempts - 1)
            self._sleep(min(BACKOFF_MAX_S, max(backoff, retry_after_s or 0.0)))
            status, retry_after_s = self._attempt(request)
            attempts += 1
        return status, attempts

    def _attempt(self, request: pb.ImageRequest) -> tuple[str, float | None]:
        """(status name, the server's retry-after in s if it sent one)."""
        call = self._stub.Send(iter([request]), timeout=self._settings.timeout_s)
        try:
            deliveries = list(call)
        except grpc.RpcError as exc:
            return exc.code().name, _retry_after_s(exc.trailing_metadata())
        retry_after = _retry_after_s(call.trailing_metadata())
        if len(deliveries) != 1:
            return NO_DELIVERY, retry_after
        code = deliveries[0].status.code
        return STATUS_NAMES.get(code, f"CODE_{code}"), retry_after


def _retry_after_s(metadata: tuple | None) -> float | None:
    """The ``retry-after-ms`` trailing metadata value in seconds; None if absent or not a number."""
    for key, value in metadata or ():
        if key == RETRY_AFTER_KEY:
            try:
                return max(0.0, float(value)) / 1000
            except ValueError:
                return None
    return None


# --- the report --------------------------------------------------------------------------------


def latency_summary(latencies_ms: np.ndarray) -> dict[str, float]:
    """p50/p90/p99 (numpy's linear interpolation), max, mean and min, in ms."""
    p50, p90, p99 = np.percentile(latencies_ms, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "max": float(latencies_ms.max()),
            "mean": float(latencies_ms.mean()), "min": float(latencies_ms.min())}


def latency_histogram(latencies_ms: np.ndarray, bins_per_decade: int = 10) -> dict[str, list]:
    """Log-spaced histogram on fixed decade-aligned edges (10^(k/bins)), so runs compare bucket by bucket."""
    logs = np.log10(np.maximum(latencies_ms, 1e-6))
    low = math.floor(logs.min() * bins_per_decade)
    high = max(math.ceil(logs.max() * bins_per_decade), low + 1)
    edges = 10.0 ** (np.arange(low, high + 1) / bins_per_decade)
    edges[0], edges[-1] = min(edges[0], latencies_ms.min()), max(edges[-1], latencies_ms.max())  # float safety
    counts, _ = np.histogram(latencies_ms, bins=edges)
    return {"edges_ms": edges.tolist(), "counts": counts.tolist()}


@dataclass
class LoadReport:
    mode: str
    target: str
    settings: dict
    started_utc: str
    elapsed_s: float  # from the first send to the last outcome
    sent: int
    completed: int  # requests whose outcome is OK
    errors: int  # every other outcome, CLIENT_OVERLOAD included
    outcomes: dict[str, int]
    throughput_rps: float  # completed / elapsed_s
    retried: int  # attempts beyond each request's first
    latency_ms: dict[str, float] | None  # over completed requests; None if none completed
    histogram: dict[str, list] | None
    requests: list[dict] | None = field(default=None)  # every request, with raw=True

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def summarise(settings: LoadSettings, recorder: Recorder, started_utc: str, elapsed_s: float,
              raw: bool = False) -> LoadReport:
    """The report of a finished run; raises unless each request sent has exactly one outcome."""
    samples = recorder.samples
    if sorted(s.index for s in samples) != list(range(recorder.sent)):
        raise RuntimeError(f"{recorder.sent} requests sent but {len(samples)} outcomes recorded, "
                           "or some request has none and another two")
    outcomes = Counter(s.status for s in samples)
    ok_ms = np.array([s.latency_s * 1000 for s in samples if s.status == OK and s.latency_s is not None])
    return LoadReport(
        mode=settings.mode,
        target=settings.target,
        settings={k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
        started_utc=started_utc,
        elapsed_s=elapsed_s,
        sent=recorder.sent,
        completed=outcomes[OK],
        errors=recorder.sent - outcomes[OK],
        outcomes=dict(sorted(outcomes.items())),
        throughput_rps=outcomes[OK] / elapsed_s if elapsed_s > 0 else 0.0,
        retried=sum(max(s.attempts - 1, 0) for s in samples),
        latency_ms=latency_summary(ok_ms) if ok_ms.size else None,
        histogram=latency_histogram(ok_ms) if ok_ms.size else None,
        requests=[s._asdict() for s in sorted(samples)] if raw else None,
    )


def plot(samples: list[Sample], report: LoadReport, path: Path) -> None:
    """Latency histogram of completed requests, and every request's latency over time by outcome."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    hist_ax, time_ax = fig.subplots(1, 2, width_ratios=[1, 1.5])
    if report.histogram is not None:
        edges = np.array(report.histogram["edges_ms"])
        hist_ax.stairs(report.histogram["counts"], edges, fill=True, alpha=0.7)
        for name, style in (("p50", "-"), ("p90", "--"), ("p99", ":")):
            value = report.latency_ms[name]
            hist_ax.axvline(value, color="k", lw=1, ls=style, label=f"{name} {value:.0f} ms")
        hist_ax.set_xscale("log")
        _plain_log_labels(hist_ax.xaxis)
        hist_ax.legend(fontsize=8, loc="best")
    hist_ax.set(xlabel="latency of completed requests (ms)", ylabel="requests",
                title=f"{report.completed} completed, {report.throughput_rps:.2f} req/s")
    for status in sorted({s.status for s in samples}):
        mine = [s for s in samples if s.status == status]
        label = f"{status} ({len(mine)})"
        if status == CLIENT_OVERLOAD:  # never sent, so no latency: ticks along the bottom
            time_ax.plot([s.start_s for s in mine], [0.02] * len(mine), "|", color="tab:red", ms=8,
                         transform=time_ax.get_xaxis_transform(), label=label)
        else:
            time_ax.scatter([s.start_s for s in mine], [s.latency_s * 1000 for s in mine], s=8, label=label)
    time_ax.set_yscale("log")
    _plain_log_labels(time_ax.yaxis)
    time_ax.set(xlabel="send time (s from start)" if report.mode == "closed" else "scheduled send time (s)",
                ylabel="latency (ms)", title=f"{report.mode} loop on {report.target}")
    time_ax.legend(fontsize=8, loc="best")
    fig.savefig(path, dpi=120)


def _plain_log_labels(axis: Axis) -> None:
    """Label a log axis with plain numbers (200, 1000) on major ticks only: minor labels collide."""
    axis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


# --- the whole run -----------------------------------------------------------------------------


def run_load(settings: LoadSettings, raw: bool = False, progress: bool = True) -> tuple[LoadReport, list[Sample]]:
    """Read the images, offer the load, and summarise; the samples are for plotting."""
    images = load_images(settings.images or shared_data_dir() / "kodak24", settings.image_size)
    started_utc = datetime.now(timezone.utc).isoformat(timespec="seconds")
    times = None if settings.rate is None else send_times(
        settings.rate, settings.duration_s, settings.limit, settings.arrivals, np.random.default_rng(settings.seed))
    total = settings.requests if times is None else len(times)
    with (connect_client(settings.target, MAX_MESSAGE_MB) as channel,
          tqdm(total=total, unit="req", file=sys.stderr, disable=not progress, desc=f"{settings.mode} loop") as bar):
        client = ChainClient(channel, images, settings)
        recorder = Recorder(time.perf_counter, on_record=bar.update)
        if times is None:
            closed_loop(client, recorder, settings.concurrency, settings.duration_s, settings.limit)
        else:
            open_loop(client, recorder, times, settings.max_in_flight)
        elapsed_s = recorder.clock() - recorder.start
    return summarise(settings, recorder, started_utc, elapsed_s, raw=raw), recorder.samples


def main(settings: LoadSettings, out: Path | None = None, plot_path: Path | None = None, raw: bool = False,
         progress: bool = True) -> int:
    """Run, print a summary, write JSON and the plot if asked; 0 when every request completed OK."""
    report, samples = run_load(settings, raw=raw, progress=progress)
    lat = report.latency_ms
    print(f"{report.mode} loop on {report.target}: sent {report.sent}, completed {report.completed} "
          f"in {report.elapsed_s:.1f} s = {report.throughput_rps:.2f} req/s; outcomes {report.outcomes}")
    if lat is not None:
        print("latency ms: " + ", ".join(f"{k} {lat[k]:.1f}" for k in ("p50", "p90", "p99", "max", "mean")))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report.to_json())
    if plot_path is not None:
        plot_path.parent.mkdir(parents=True, exist_ok=True)
        plot(samples, report, plot_path)
    return 0 if report.errors == 0 else 1
