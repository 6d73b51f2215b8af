"""Backpressure and limits: the in-flight bound, retry hints, deadlines, keepalive, message size.

The limit is exercised on a real ``rpc.Server`` with a method that holds
each call until the test lets it go, so the number in flight is known
exactly. The chain tests run the real channel and transmitter in process in
front of a receiver that refuses every frame, so the refusal's retry hint and
the caller's deadline can be read where they arrive. The last test overloads
a real receiver process and reads its memory from /proc.
"""

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gensemcom.demo import free_port, wait_healthy
from gensemcom.load import ChainClient, LoadSettings, load_images
from gensemcom.services import build_transmitter, start_channel, start_transmitter
from gensemcom.shared.config import ChannelSettings, ReceiverSettings, TransmitterSettings
from gensemcom.shared.image_io import decode_image
from gensemcom.shared.limits import retry_after_from
from gensemcom.shared.pb import semcom_pb2 as pb
from gensemcom.shared.pb import semcom_pb2_grpc as pb_grpc
from gensemcom.shared.rpc import Overloaded, Server, channel_options, connect, rpc_errors
from gensemcom.shared.wire import frame_to_pb

RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class Gate:
    """``Hold`` waits until the gate opens; ``Stream`` replies every 10 ms once the gate is open, until cancelled
    (or ``request[0]`` replies when the request says how many)."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.ran = 0

    def hold(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.ran += 1
        self.open.wait(10)
        return b"done"

    def stream(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        sent = 0
        while not request or sent < request[0]:
            yield bytes([sent % 256])
            sent += 1
            self.open.wait(10)
            time.sleep(0.01)

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler("test.Gate", {
            "Hold": grpc.unary_unary_rpc_method_handler(self.hold),
            "Stream": grpc.unary_stream_rpc_method_handler(self.stream),
        })


@contextmanager
def gate_server(**settings) -> Iterator[tuple[Server, Gate, grpc.Channel]]:
    gate = Gate()
    server = Server(ReceiverSettings(port=0, **settings), [])
    server.grpc_server.add_generic_rpc_handlers((gate.handler(),))
    port = server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield server, gate, channel
    finally:
        gate.open.set()
        channel.close()
        server.stop(grace_s=0)


def test_calls_beyond_the_limit_are_refused_at_once_with_a_retry_hint_and_the_service_recovers() -> None:
    with gate_server(max_in_flight=2, retry_after_ms=321) as (server, gate, channel):
        hold = channel.unary_unary("/test.Gate/Hold")
        held = [hold.future(b"", timeout=10) for _ in range(2)]
        assert eventually(lambda: server.limit.in_flight == 2 and gate.ran == 2)
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as refused:
            hold(b"", timeout=10)
        assert time.monotonic() - start < 1.0, "a refusal must not wait for a slot"
        assert refused.value.code() == RESOURCE_EXHAUSTED
        assert retry_after_from(refused.value.trailing_metadata()) == 321
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING, "probes are exempt from the limit"

        gate.open.set()
        assert [f.result() for f in held] == [b"done", b"done"]
        assert hold(b"", timeout=10) == b"done"
        assert eventually(lambda: server.limit.in_flight == 0)
        assert (server.limit.refused, gate.ran) == (1, 3)


def test_a_call_cancelled_while_waiting_for_a_worker_gives_its_place_back() -> None:
    with gate_server(workers=1, max_in_flight=3) as (server, gate, channel):
        hold = channel.unary_unary("/test.Gate/Hold")
        first = hold.future(b"", timeout=10)
        assert eventually(lambda: gate.ran == 1)
        queued = hold.future(b"", timeout=0.3)  # admitted, but the only worker is busy
        assert queued.exception(5).code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert server.limit.in_flight == 2
        gate.open.set()
        assert first.result() == b"done"
        assert eventually(lambda: server.limit.in_flight == 0), "the cancelled call's place leaked"
        assert gate.ran == 1, "the cancelled call never reached the handler"


def test_a_response_stream_holds_its_place_until_it_ends_or_is_cancelled() -> None:
    with gate_server(max_in_flight=1) as (server, gate, channel):
        stream, hold = channel.unary_stream("/test.Gate/Stream"), channel.unary_unary("/test.Gate/Hold")
        endless = stream(b"", timeout=10)
        assert next(endless) == b"\0"
        with pytest.raises(grpc.RpcError) as refused:
            hold(b"", timeout=10)
        assert refused.value.code() == RESOURCE_EXHAUSTED
        gate.open.set()
        assert next(endless) == b"\1"
        endless.cancel()
        assert eventually(lambda: server.limit.in_flight == 0), "a cancelled stream kept its place"
        assert list(stream(b"\3", timeout=10)) == [b"\0", b"\1", b"\2"]
        assert eventually(lambda: server.limit.in_flight == 0)


def test_keepalive_pings_during_a_long_silent_call_are_accepted() -> None:
    """Pings every second through a 4.5 s call: without the server's ping policy grpc ends it at ~4 s
    with GOAWAY too_many_pings (measured); with it the call completes."""
    with gate_server(keepalive_s=1, keepalive_timeout_s=1) as (server, gate, _):
        threading.Timer(4.5, gate.open.set).start()
        with grpc.insecure_channel(f"127.0.0.1:{server.port}", options=channel_options(4, 1, 1)) as pinging:
            assert pinging.unary_unary("/test.Gate/Hold")(b"", timeout=20) == b"done"


# --- hints and deadlines along the real chain --------------------------------------------------


class RefusingReceiver(pb_grpc.ReceiverServicer):
    """A receiver that is always full, and notes the deadline each call arrived with."""

    RETRY_AFTER_MS = 750

    def __init__(self) -> None:
        self.deadlines: list[float | None] = []

    @rpc_errors
    def Decode(self, request: pb.Frame, context: grpc.ServicerContext) -> pb.Delivery:
        self.deadlines.append(context.time_remaining())
        raise Overloaded("queue full", retry_after_ms=self.RETRY_AFTER_MS)


@pytest.fixture(scope="module")
def refusing_chain() -> Iterator[tuple[str, RefusingReceiver, str]]:
    """(transmitter address, the refusing receiver, its address) with the real channel and transmitter between."""
    receiver = RefusingReceiver()
    rx = Server(ReceiverSettings(port=0), [])
    pb_grpc.add_ReceiverServicer_to_server(receiver, rx.grpc_server)
    rx_address = f"127.0.0.1:{rx.start()}"
    channel = start_channel(ChannelSettings(port=0, next_hop=rx_address, seed=1, max_message_mb=4))
    transmitter = start_transmitter(TransmitterSettings(
        port=0, next_hop=f"127.0.0.1:{channel.port}", key_codec="linear-dct", segmenter="whole", max_message_mb=4))
    yield f"127.0.0.1:{transmitter.port}", receiver, rx_address
    for server in (transmitter, channel, rx):
        server.stop(grace_s=0)


@pytest.fixture(scope="module")
def small_png(data_dir: Path) -> bytes:
    return load_images(data_dir / "kodak24", (128, 96))[0]


def test_a_refusal_at_the_receiver_reaches_the_client_with_its_hint_and_deadline(refusing_chain, small_png) -> None:
    address, receiver, _ = refusing_chain
    with connect(address, 4) as channel:
        call = pb_grpc.TransmitterStub(channel).Send(iter([pb.ImageRequest(image=small_png, frame_id="r")]), timeout=20)
        (delivery,) = list(call)
    assert delivery.status.code == RESOURCE_EXHAUSTED.value[0]
    assert "queue full" in delivery.status.message
    assert retry_after_from(call.trailing_metadata()) == RefusingReceiver.RETRY_AFTER_MS
    deadline = receiver.deadlines[-1]
    assert deadline is not None and 0 < deadline < 20, "the client's deadline reached the receiver, less time spent"


def test_the_load_client_waits_as_long_as_the_receiver_asked(refusing_chain, small_png) -> None:
    address, _, _ = refusing_chain
    slept: list[float] = []
    with connect(address, 4) as channel:
        client = ChainClient(channel, [small_png], LoadSettings(address, concurrency=1, retries=2), sleep=slept.append)
        assert client(0) == ("RESOURCE_EXHAUSTED", 3)
    assert slept == [RefusingReceiver.RETRY_AFTER_MS / 1000] * 2


def test_a_frame_over_a_hops_message_limit_fails_clearly_and_without_a_retry_hint(refusing_chain, data_dir) -> None:
    """A channel allowing 1 MiB behind a transmitter allowing 4: the whole-image frame of a Kodak photo is ~1.6 MB."""
    _, _, rx_address = refusing_chain
    image = (data_dir / "kodak24" / "kodim01.png").read_bytes()
    small = start_channel(ChannelSettings(port=0, next_hop=rx_address, max_message_mb=1))
    transmitter = start_transmitter(TransmitterSettings(
        port=0, next_hop=f"127.0.0.1:{small.port}", key_codec="linear-dct", segmenter="whole", max_message_mb=4))
    try:
        with connect(f"127.0.0.1:{transmitter.port}", 4) as channel:
            request = pb.ImageRequest(image=image, frame_id="big")
            call = pb_grpc.TransmitterStub(channel).Send(iter([request]), timeout=60)
            (delivery,) = list(call)
    finally:
        transmitter.stop(grace_s=0)
        small.stop(grace_s=0)
    assert delivery.status.code == RESOURCE_EXHAUSTED.value[0]
    assert "larger than max" in delivery.status.message and "max_message_mb" in delivery.status.message
    assert retry_after_from(call.trailing_metadata()) is None, "waiting cannot make a message smaller"


# --- overload on a real receiver process -------------------------------------------------------


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident) of a process, KiB, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


@contextmanager
def receiver_process(log_path: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """``semcom receiver serve`` as a child process on a free port, settings from ``env``; stopped on exit."""
    address = f"127.0.0.1:{free_port()}"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gensemcom.cli", "receiver", "serve", "--host", "127.0.0.1",
             "--port", address.rsplit(":", 1)[1]],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1", **env})
        try:
            wait_healthy(address, process, log_path)
            yield address, process
        finally:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_overload_is_refused_with_a_hint_memory_stays_bounded_and_the_receiver_recovers(
    data_dir: Path, tmp_path: Path
) -> None:
    """32 callers back to back, each frame 0.6 MB, against a receiver that holds one at a time (max_in_flight=1).

    Measured on this machine: peak memory +20 MB with the limit; +144 MB with max_in_flight=1000, where
    every call is taken in and the frames pile up in grpc's queue and the batcher. One malloc arena makes
    resident memory track what is allocated, not how glibc spread it over the worker threads' arenas.
    """
    image = decode_image(load_images(data_dir / "kodak24", (768, 512))[0])
    frame = frame_to_pb(build_transmitter(TransmitterSettings(key_codec="linear-dct", segmenter="saliency"))
                        .encode(image, "overload"))

    def numbered(name: str) -> pb.Frame:
        copy = pb.Frame()
        copy.CopyFrom(frame)
        copy.header.frame_id = name  # distinct ids: a repeated frame would be answered from memory
        return copy

    with receiver_process(tmp_path / "receiver.log", SEMCOM_RX_MAX_IN_FLIGHT="1", SEMCOM_RX_RETRY_AFTER_MS="150",
                          SEMCOM_RX_DEVICE="cpu", MALLOC_ARENA_MAX="1") as (address, process):
        with connect(address, 4) as channel:
            decode = pb_grpc.ReceiverStub(channel).Decode
            for i in range(2):  # warm up: the first decodes allocate what every later one reuses
                decode(numbered(f"warm-{i}"), timeout=60)
            before = memory_kib(process.pid)

            def caller(worker: int) -> list[tuple[grpc.StatusCode, int | None]]:
                outcomes = []
                for i in range(4):
                    try:
                        decode(numbered(f"burst-{worker}-{i}"), timeout=60)
                        outcomes.append((grpc.StatusCode.OK, None))
                    except grpc.RpcError as exc:
                        outcomes.append((exc.code(), retry_after_from(exc.trailing_metadata())))
                return outcomes

            start = time.monotonic()
            with ThreadPoolExecutor(32) as pool:
                outcomes = [o for worker in pool.map(caller, range(32)) for o in worker]
            burst_s = time.monotonic() - start
            after = memory_kib(process.pid)
            recovered = decode(numbered("after"), timeout=60)

    codes = [code for code, _ in outcomes]
    ok, refused = codes.count(grpc.StatusCode.OK), codes.count(RESOURCE_EXHAUSTED)
    growth_mb = (after["VmHWM"] - before["VmRSS"]) / 1024
    print(f"overload: {len(codes)} calls in {burst_s:.1f} s: {ok} OK, {refused} RESOURCE_EXHAUSTED; "
          f"RSS {before['VmRSS'] / 1024:.0f} MB before, peak {after['VmHWM'] / 1024:.0f} MB (+{growth_mb:.1f} MB)")
    assert ok + refused == len(codes) == 128, "every call gets exactly one outcome: decoded or refused"
    assert ok >= 1 and refused >= 64, "most of the burst is beyond capacity"
    assert {hint for code, hint in outcomes if code == RESOURCE_EXHAUSTED} == {150}
    assert growth_mb < 64, "the receiver's memory grew with the offered load"
    assert recovered.frame_id == "after" and recovered.image_png
    decoded = (tmp_path / "receiver.log").read_text().count(": decoded in ")
    assert decoded == ok + 3, "refused frames never reach the decoder"
