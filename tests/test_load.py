"""`semcom load`: scheduling, bounds and statistics against hand-computed truth, then a real run.

The pure parts run on fake clocks and fake senders; the retry logic runs
against a tiny in-process Transmitter that answers RESOURCE_EXHAUSTED with a
``retry-after-ms`` trailer; the last test loads the three real services on
loopback at concurrency 8 and checks every request against the hops' logs.
"""

import json
import re
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from gensemcom.cli import app
from gensemcom.demo import local_chain
from gensemcom.load import (
    CLIENT_OVERLOAD,
    ChainClient,
    LoadSettings,
    Recorder,
    Sample,
    check_target,
    closed_loop,
    latency_histogram,
    latency_summary,
    main,
    open_loop,
    pace,
    parse_size,
    send_times,
    summarise,
)
from gensemcom.shared.pb import semcom_pb2 as pb
from gensemcom.shared.pb import semcom_pb2_grpc as pb_grpc
from gensemcom.shared.rpc import connect


class FakeClock:
    """Time that moves only when someone sleeps; ``oversleep`` makes the first sleep run late."""

    def __init__(self, oversleep: float = 0.0) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._oversleep = oversleep

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds + (self._oversleep if len(self.sleeps) == 1 else 0.0)


# --- statistics --------------------------------------------------------------------------------


def test_percentiles_are_linear_interpolation_between_order_statistics() -> None:
    latencies = np.random.default_rng(0).permutation(np.arange(1.0, 101.0))  # 1..100 ms, shuffled
    summary = latency_summary(latencies)
    # Position (n - 1) q between the sorted values v_k = k + 1: p50 at 49.5 -> 50.5, p90 at 89.1 -> 90.1, ...
    assert summary["p50"] == pytest.approx(50.5)
    assert summary["p90"] == pytest.approx(90.1)
    assert summary["p99"] == pytest.approx(99.01)
    assert (summary["max"], summary["min"], summary["mean"]) == (100.0, 1.0, pytest.approx(50.5))


@pytest.mark.parametrize("latencies", [np.random.default_rng(1).lognormal(3.0, 1.5, 997), np.full(7, 100.0)],
                         ids=["lognormal", "all-equal-on-an-edge"])
def test_histogram_is_log_spaced_and_counts_every_latency(latencies: np.ndarray) -> None:
    hist = latency_histogram(latencies)
    edges, counts = np.array(hist["edges_ms"]), np.array(hist["counts"])
    assert counts.sum() == latencies.size
    ratios = edges[1:-1] / edges[:-2]  # inner edges are exact tenths of a decade
    assert np.allclose(ratios, 10 ** 0.1)
    # Each bucket holds what falls in it: [e_i, e_i+1), the last one closed.
    for i, count in enumerate(counts):
        upper = latencies <= edges[i + 1] if i == len(counts) - 1 else latencies < edges[i + 1]
        assert count == np.sum((latencies >= edges[i]) & upper)


# --- open-loop schedule ------------------------------------------------------------------------


def test_uniform_send_times_are_one_over_rate_apart_and_bounded() -> None:
    rng = np.random.default_rng(0)
    assert np.allclose(send_times(50, 0.2, 1000, "uniform", rng), np.arange(10) / 50)
    assert np.allclose(send_times(3, 0.7, 1000, "uniform", rng), [0, 1 / 3, 2 / 3])
    assert len(send_times(10_000, 3600, 4, "uniform", rng)) == 4  # the request limit wins


def test_poisson_send_times_have_exponential_gaps_and_repeat_with_the_seed() -> None:
    rate, duration = 1000.0, 10.0
    times = send_times(rate, duration, 10**6, "poisson", np.random.default_rng(7))
    assert abs(len(times) - rate * duration) < 5 * np.sqrt(rate * duration)  # Poisson count, 5 sigma
    gaps = np.diff(times)
    assert gaps.mean() == pytest.approx(1 / rate, rel=0.05)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.05)  # exponential: CV = 1
    assert times[-1] < duration and np.all(gaps > 0)
    assert np.array_equal(times, send_times(rate, duration, 10**6, "poisson", np.random.default_rng(7)))
    assert len(send_times(rate, duration, 123, "poisson", np.random.default_rng(7))) == 123


def test_pace_releases_each_request_at_its_scheduled_time() -> None:
    clock = FakeClock()
    times = send_times(10, 1.0, 100, "uniform", np.random.default_rng(0))
    released = [clock() for _ in pace(times, 0.0, clock, clock.sleep)]
    assert np.allclose(released, times)


def test_a_stalled_scheduler_charges_latency_from_the_scheduled_time() -> None:
    """The first sleep overruns by 0.5 s: requests due meanwhile go at once, their latency includes the stall."""
    clock = FakeClock(oversleep=0.5)
    times = np.array([0.0, 0.1, 0.2, 0.3])
    assert [clock() for _ in pace(times, 0.0, clock, clock.sleep)] == pytest.approx([0.0, 0.6, 0.6, 0.6])
    assert clock.sleeps == pytest.approx([0.1])  # never sleeps for a request already due

    clock = FakeClock(oversleep=0.5)
    recorder = Recorder(clock)
    open_loop(lambda index: ("OK", 1), recorder, times, max_in_flight=4, sleep=clock.sleep)
    latency = {s.start_s: s.latency_s for s in recorder.samples}
    assert [latency[t] for t in (0.1, 0.2, 0.3)] == pytest.approx([0.5, 0.4, 0.3])
    assert recorder.sent == 4 and sorted(s.index for s in recorder.samples) == [0, 1, 2, 3]


def test_in_flight_bound_records_client_overload_not_a_drop() -> None:
    release = threading.Event()

    def blocked(index: int) -> tuple[str, int]:
        release.wait(10)
        return "OK", 1

    recorder = Recorder(lambda: 0.0)  # every request is due at once
    runner = threading.Thread(target=open_loop, args=(blocked, recorder, np.zeros(5), 2))
    runner.start()
    for _ in range(1000):
        if len(recorder.samples) == 3:
            break
        time.sleep(0.01)
    assert sorted(s.status for s in recorder.samples) == [CLIENT_OVERLOAD] * 3  # 2 slots held, 3 refused
    release.set()
    runner.join(10)
    assert recorder.sent == 5
    assert sorted(s.status for s in recorder.samples) == sorted(["OK"] * 2 + [CLIENT_OVERLOAD] * 3)
    report = summarise(LoadSettings("127.0.0.1:1", rate=1.0), recorder, "", 1.0)
    assert (report.completed, report.errors, report.outcomes) == (2, 3, {"OK": 2, CLIENT_OVERLOAD: 3})


# --- closed loop -------------------------------------------------------------------------------


def test_closed_loop_sends_each_request_once_with_at_most_c_outstanding() -> None:
    lock, in_flight, peak, seen = threading.Lock(), [0], [0], []

    def send(index: int) -> tuple[str, int]:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
            seen.append(index)
        time.sleep(0.002)
        with lock:
            in_flight[0] -= 1
        return "OK", 1

    recorder = Recorder(time.perf_counter)
    closed_loop(send, recorder, concurrency=4, duration_s=30.0, limit=60)
    assert sorted(seen) == list(range(60)) and recorder.sent == 60 and len(recorder.samples) == 60
    assert 1 < peak[0] <= 4


def test_summary_refuses_a_request_without_exactly_one_outcome() -> None:
    recorder = Recorder(lambda: 0.0)
    for _ in range(3):
        recorder.count_sent()
    for index in (0, 1, 1):
        recorder.record(Sample(index, 0.0, 0.01, "OK", 1))
    with pytest.raises(RuntimeError, match="3 requests sent"):
        summarise(LoadSettings("127.0.0.1:1", concurrency=1), recorder, "", 1.0)


# --- bounds ------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["127.0.0.1:50051", "127.9.8.7:1", "[::1]:50051", "localhost:8080",
                                    "LOCALHOST:8080"])
def test_loopback_targets_are_accepted(target: str) -> None:
    check_target(target, allow_remote=False)


@pytest.mark.parametrize("target", ["10.0.0.1:50051", "192.168.1.2:50051", "[2001:db8::1]:50051", "example.com:443"])
def test_remote_targets_need_allow_remote(target: str) -> None:
    with pytest.raises(ValueError, match="allow-remote"):
        check_target(target, allow_remote=False)
    check_target(target, allow_remote=True)


@pytest.mark.parametrize("target", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "::1:50051", ""])
def test_malformed_targets_are_refused_even_with_allow_remote(target: str) -> None:
    with pytest.raises(ValueError, match="target"):
        check_target(target, allow_remote=True)


@pytest.mark.parametrize("kwargs", [
    {}, {"rate": 5.0, "concurrency": 2}, {"rate": 10_001.0}, {"rate": 0.0}, {"concurrency": 1025},
    {"concurrency": 1, "duration_s": 3601.0}, {"concurrency": 1, "requests": 1_000_001},
    {"concurrency": 1, "retries": 11}, {"rate": 1.0, "arrivals": "bursty"}, {"concurrency": 1, "image_size": (4, 4)},
])
def test_settings_outside_the_bounds_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        LoadSettings("127.0.0.1:50051", **kwargs)


def test_cli_refuses_a_remote_target_before_sending_anything() -> None:
    result = CliRunner().invoke(app, ["load", "--target", "10.0.0.1:50051", "--concurrency", "1"])
    assert result.exit_code != 0
    assert "allow-remote" in result.output
    assert parse_size("128x96") == (128, 96)
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_size("128")


# --- retries against an in-process transmitter -------------------------------------------------


class BusyTransmitter(pb_grpc.TransmitterServicer):
    """Refuses each frame ``busy_for`` times with RESOURCE_EXHAUSTED + retry-after-ms: 70, then delivers it."""

    def __init__(self, busy_for: int, image_status: int = 0) -> None:
        self.busy_for, self.image_status, self.attempts = busy_for, image_status, {}

    def Send(self, request_iterator, context):  # noqa: N802 - gRPC method name
        for request in request_iterator:
            seen = self.attempts[request.frame_id] = self.attempts.get(request.frame_id, 0) + 1
            if seen <= self.busy_for:
                context.set_trailing_metadata((("retry-after-ms", "70"),))
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy")
            yield pb.Delivery(frame_id=request.frame_id, status=pb.Status(code=self.image_status))


@pytest.fixture
def busy_server():
    servers = []

    def start(servicer: BusyTransmitter) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        pb_grpc.add_TransmitterServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(0)


@pytest.mark.parametrize(("retries", "outcome", "sleeps"), [
    (3, ("OK", 3), [0.07, 0.1]),  # backoff 0.05 then 0.1 s, each at least the server's 70 ms
    (1, ("RESOURCE_EXHAUSTED", 2), [0.07]),
    (0, ("RESOURCE_EXHAUSTED", 1), []),
])
def test_retries_back_off_exponentially_and_honour_retry_after(busy_server, retries, outcome, sleeps) -> None:
    address = busy_server(BusyTransmitter(busy_for=2))
    slept: list[float] = []
    with connect(address, 8) as channel:
        client = ChainClient(channel, [b"img"], LoadSettings(address, concurrency=1, retries=retries),
                             sleep=slept.append)
        assert client(0) == outcome
    assert slept == pytest.approx(sleeps)


def test_a_failed_image_is_its_delivery_status_and_is_not_retried(busy_server) -> None:
    address = busy_server(BusyTransmitter(busy_for=0, image_status=grpc.StatusCode.INVALID_ARGUMENT.value[0]))
    with connect(address, 8) as channel:
        client = ChainClient(channel, [b"img"], LoadSettings(address, concurrency=1, retries=3), sleep=pytest.fail)
        assert client(0) == ("INVALID_ARGUMENT", 1)


# --- the three real services -------------------------------------------------------------------


@pytest.mark.slow
def test_closed_loop_at_concurrency_8_through_the_real_chain(data_dir: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("kodim01.png", "kodim05.png", "kodim23.png"):
        (images / name).write_bytes((data_dir / "kodak24" / name).read_bytes())
    with local_chain(tmp_path / "logs", env={"SEMCOM_TX_KEY_CODEC": "linear-dct"}) as chain:
        settings = LoadSettings(chain.address, images=images, concurrency=8, requests=40, duration_s=60.0,
                                image_size=(128, 96), timeout_s=60.0)
        code = main(settings, out=tmp_path / "load.json", plot_path=tmp_path / "load.png", raw=True, progress=False)
    report = json.loads((tmp_path / "load.json").read_text())
    print(f"load: {report['throughput_rps']:.2f} req/s, latency ms {report['latency_ms']}")

    assert code == 0
    assert report["sent"] == 40 == report["completed"] + report["errors"]
    assert report["outcomes"] == {"OK": 40}
    assert [r["index"] for r in report["requests"]] == list(range(40))
    lat = report["latency_ms"]
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"] <= report["elapsed_s"] * 1000
    assert sum(report["histogram"]["counts"]) == 40
    assert report["throughput_rps"] == pytest.approx(40 / report["elapsed_s"])
    # Little's law: the mean number in flight is (sum of latencies) / elapsed; 8 workers keep it well above 1.
    in_flight = sum(r["latency_s"] for r in report["requests"]) / report["elapsed_s"]
    assert 4 < in_flight <= 8
    # Every request went through each hop exactly once: one log line per frame id on every hop.
    for hop in ("transmitter", "channel", "receiver"):
        frames = re.findall(r"frame (load-\S+?):", (tmp_path / "logs" / f"{hop}.log").read_text())
        assert sorted(int(f.rsplit("-", 1)[1]) for f in frames) == list(range(40)), hop
    with Image.open(tmp_path / "load.png") as plot_image:
        assert plot_image.format == "PNG" and plot_image.width > 500
