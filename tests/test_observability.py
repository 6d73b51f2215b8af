"""Metrics endpoints and JSON logs, checked against what the services told the client.

The three services run in this process with their /metrics endpoints on; a
fixed workload (good and bad Encode, Send and Decode calls) goes through them,
and each endpoint is scraped over HTTP. Every expected number comes from the
replies themselves (frames' segments and timings, Deliveries' outcomes, link
estimates and status codes), never from the metrics code.
"""

import contextlib
import io
import json
import logging
import socket
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from gensemcom.services import start_channel, start_receiver, start_transmitter
from gensemcom.shared.config import ChannelSettings, ReceiverSettings, TransmitterSettings
from gensemcom.shared.frame import SegmentKind
from gensemcom.shared.observability import JsonFormatter, frame_ids
from gensemcom.shared.pb import semcom_pb2 as pb
from gensemcom.shared.pb import semcom_pb2_grpc as pb_grpc
from tests.conftest import png_bytes

CHANNEL_SNR_DB = 12.0
REPO = Path(__file__).resolve().parents[1]


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports free right now (all bound at once, then released).

    Every server a test starts takes one of these rather than port 0: a gRPC server on port 0 may be
    handed the very port just released for a metrics endpoint, which then fails to bind.
    """
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def scrape(port: int) -> list[Sample]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels`` (0 when there are none)."""
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


def buckets(samples: list[Sample], name: str) -> dict[float, float]:
    """A histogram's cumulative bucket counts by upper bound."""
    return {float(s.labels["le"]): s.value for s in samples if s.name == f"{name}_bucket"}


def stage_of(timing: pb.StageTiming) -> str:
    """The stage label a timing is counted under: a batch note such as "[batch 4]" is dropped."""
    return timing.stage.split("[", 1)[0]


@dataclass
class Workload:
    """What the client saw, and each service's scrape after it."""

    frames: list[pb.Frame]  # from Transmitter.Encode
    deliveries: list[pb.Delivery]  # good images from Transmitter.Send
    rejected: dict[str, grpc.StatusCode]  # "service.Method" -> the status the bad request got
    scrapes: dict[str, list[Sample]]


def _code(call, request) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30)
    return info.value.code()


@pytest.fixture(scope="module")
def workload(astronaut_png: bytes, data_dir: Path, one_torch_thread: None) -> Iterator[Workload]:
    kodak = np.asarray(Image.open(data_dir / "kodak24" / "kodim01.png").convert("RGB").resize((192, 128)))
    images = [astronaut_png, png_bytes(kodak)]
    names = ("transmitter", "channel", "receiver")
    free = free_ports(2 * len(names))
    ports, grpc_ports = dict(zip(names, free)), dict(zip(names, free[len(names):]))
    servers = [start_receiver(ReceiverSettings(port=grpc_ports["receiver"], metrics_port=ports["receiver"],
                                               max_message_mb=4))]
    rx = f"127.0.0.1:{servers[-1].port}"
    servers.append(start_channel(ChannelSettings(port=grpc_ports["channel"], next_hop=rx, seed=1, snr_db=CHANNEL_SNR_DB,
                                                 metrics_port=ports["channel"], max_message_mb=4)))
    ch = f"127.0.0.1:{servers[-1].port}"
    servers.append(start_transmitter(TransmitterSettings(port=grpc_ports["transmitter"], next_hop=ch,
                                                         segmenter="saliency", metrics_port=ports["transmitter"],
                                                         max_message_mb=4)))
    tx = f"127.0.0.1:{servers[-1].port}"
    with grpc.insecure_channel(tx) as tx_channel, grpc.insecure_channel(rx) as rx_channel:
        transmitter, receiver = pb_grpc.TransmitterStub(tx_channel), pb_grpc.ReceiverStub(rx_channel)
        frames = [transmitter.Encode(pb.ImageRequest(image=image, stream_id="s"), timeout=60) for image in images]
        requests = [pb.ImageRequest(image=image, stream_id="s", seq=i) for i, image in enumerate(images)]
        replies = list(transmitter.Send(iter([*requests, pb.ImageRequest(image=b"not an image")]), timeout=120))
        rejected = {
            "transmitter.Encode": _code(transmitter.Encode, pb.ImageRequest(image=b"not an image")),
            "receiver.Decode": _code(receiver.Decode, pb.Frame()),
        }
    rejected["transmitter.Send"] = grpc.StatusCode(
        next(c for c in grpc.StatusCode if c.value[0] == replies[-1].status.code)
    )
    scrapes = {name: scrape(port) for name, port in ports.items()}
    yield Workload(frames, replies[:-1], rejected, scrapes)
    for server in servers:
        server.stop(grace_s=1)


def test_request_counters_match_the_calls(workload: Workload) -> None:
    assert [d.status.code for d in workload.deliveries] == [0, 0]
    assert all(code != grpc.StatusCode.OK for code in workload.rejected.values())
    tx, ch, rx = (workload.scrapes[name] for name in ("transmitter", "channel", "receiver"))
    assert value(tx, "semcom_requests_total", method="Encode", code="OK") == 2
    assert value(tx, "semcom_requests_total", method="Send", code="OK") == 2
    assert value(ch, "semcom_requests_total", method="Forward", code="OK") == 2
    assert value(rx, "semcom_requests_total", method="Decode", code="OK") == 2
    assert all(value(samples, "semcom_refused_total") == 0 for samples in workload.scrapes.values())
    for where, code in workload.rejected.items():
        service, method = where.split(".")
        samples = workload.scrapes[service]
        assert value(samples, "semcom_requests_total", method=method, code=code.name) == 1, where
        total = value(samples, "semcom_requests_total", method=method)
        assert value(samples, "semcom_request_seconds_count", method=method) == total, where
    assert value(ch, "semcom_requests_total") == 2  # the bad image never left the transmitter
    for samples in workload.scrapes.values():
        assert value(samples, "semcom_in_flight") == 0


def test_a_retried_frame_is_counted_as_a_repeat_not_a_request(workload: Workload) -> None:
    """The dedupe interceptor answers the retry before the adapter: only semcom_repeats sees it."""
    port, grpc_port = free_ports(2)
    server = start_receiver(ReceiverSettings(port=grpc_port, metrics_port=port, max_message_mb=4))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            receiver = pb_grpc.ReceiverStub(channel)
            first, retry = (receiver.Decode(workload.frames[0], timeout=60) for _ in range(2))
        assert first.image_png == retry.image_png
        samples = scrape(port)
        assert value(samples, "semcom_requests_total", method="Decode") == 1
        assert value(samples, "semcom_repeats_total") == 1 and value(samples, "semcom_refused_total") == 0
    finally:
        server.stop(grace_s=1)


def test_stage_histograms_count_every_stage_of_every_frame(workload: Workload) -> None:
    timings = [t for f in workload.frames for t in f.timings] + [t for d in workload.deliveries for t in d.timings]
    for service in ("transmitter", "channel", "receiver"):
        mine = [t for t in timings if t.hop == service]
        expected = Counter(stage_of(t) for t in mine)
        assert expected, service
        samples = workload.scrapes[service]
        for stage, count in expected.items():
            assert value(samples, "semcom_stage_seconds_count", service=service, stage=stage) == count, stage
            seconds = sum(t.ms for t in mine if stage_of(t) == stage) / 1e3
            assert value(samples, "semcom_stage_seconds_sum", stage=stage) == pytest.approx(seconds, rel=1e-6)
        assert value(samples, "semcom_stage_seconds_count") == sum(expected.values())


def test_symbols_per_kind_match_the_frames(workload: Workload) -> None:
    expected: Counter[str] = Counter()
    for frame in workload.frames:
        for segment in frame.segments:
            expected[SegmentKind(segment.kind).name] += segment.n_symbols
    for delivery in workload.deliveries:  # the receiver reports each segment it got, with its length
        for outcome in delivery.segments:
            expected[SegmentKind(outcome.kind).name] += outcome.n_symbols
    samples = workload.scrapes["transmitter"]
    assert {"PILOT", "MASK", "PROMPT", "KEY_JSCC"} <= set(expected)
    for kind, n in expected.items():
        assert value(samples, "semcom_symbols_total", kind=kind) == n, kind
    assert value(samples, "semcom_symbols_total") == sum(expected.values())


def test_snr_and_batches(workload: Workload) -> None:
    # SNRs may be negative, so the histograms export buckets and a count but no sum (Prometheus convention).
    ch, rx = workload.scrapes["channel"], workload.scrapes["receiver"]
    estimates = [d.link.snr_db for d in workload.deliveries]
    for samples, snrs in [(ch, [CHANNEL_SNR_DB] * 2), (rx, estimates)]:
        assert value(samples, "semcom_snr_db_count") == len(snrs)
        counts = buckets(samples, "semcom_snr_db")
        assert len(counts) > 5
        assert counts == {le: sum(snr <= le for snr in snrs) for le in counts}
    # Each decoded frame was in exactly one batch; the rejected empty frame never reached the worker.
    assert value(rx, "semcom_batch_size_sum") == 2
    assert 1 <= value(rx, "semcom_batch_size_count") <= 2
    assert value(rx, "semcom_queue_depth", service="receiver") == 0


def test_json_log_line_carries_the_ids() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("receiver"))
    logger = logging.getLogger("tests.observability.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("frame %s: decoded", "f-1", extra=frame_ids("f-1", "cam-2"))
        logger.warning("no frame here")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "frame f-1: decoded"
    assert (first["frame_id"], first["stream_id"]) == ("f-1", "cam-2")
    assert (first["level"], first["service"], first["logger"]) == ("WARNING", "receiver", logger.name)
    assert abs(datetime.fromisoformat(first["time"]) - datetime.now(timezone.utc)) < timedelta(minutes=1)
    assert "frame_id" not in second and "stream_id" not in second
    assert third["exception"].startswith("Traceback") and "ValueError: boom" in third["exception"]


def test_serve_command_turns_on_metrics_and_json_logs() -> None:
    """The CLI flags reach the settings: JSON lines on stderr and a /metrics endpoint on the given port."""
    metrics_port, grpc_port = free_ports(2)
    command = [sys.executable, "-m", "gensemcom.cli", "channel", "serve", "--port", str(grpc_port), "--next-hop", "",
               "--metrics-port", str(metrics_port), "--log-format", "json"]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(60, process.kill)  # a hung start ends stderr, so the loop below fails, not hangs
    watchdog.start()
    try:
        assert process.stderr is not None
        lines = []
        while not any("listening" in line for line in lines):
            line = process.stderr.readline()
            assert line, f"the channel exited: {''.join(lines)}"
            lines.append(line)
        # Library warnings may print plain text; the service's own lines are JSON.
        records = [json.loads(line) for line in lines if line.startswith("{")]
        assert {r["service"] for r in records} == {"channel"}
        assert any(r["message"].endswith(f":{metrics_port}/metrics") for r in records)
        samples = scrape(metrics_port)
        assert value(samples, "semcom_requests_total") == 0
        assert value(samples, "process_resident_memory_bytes") > 0
    finally:
        watchdog.cancel()
        process.terminate()
        process.wait(timeout=30)
