"""Faults, nothing lost: frame-id idempotency, a channel killed mid-stream, a frozen receiver.

The memory of recent outcomes and the frame key are checked directly, then
through a real server. The chain tests run the three services as processes
on fixed ports, so the channel can be SIGKILLed and started again where the
transmitter expects it; the receiver's log says how often each frame was
decoded.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import pytest

from gensemcom.certs import write_dev_certs
from gensemcom.demo import free_port, wait_healthy
from gensemcom.load import load_images
from gensemcom.shared.config import ReceiverSettings
from gensemcom.shared.image_io import decode_image
from gensemcom.shared.limits import RecentOutcomes, frame_key
from gensemcom.shared.pb import semcom_pb2 as pb
from gensemcom.shared.pb import semcom_pb2_grpc as pb_grpc
from gensemcom.shared.rpc import Server, connect
from gensemcom.shared.security import channel_credentials

OK, UNAVAILABLE = grpc.StatusCode.OK.value[0], grpc.StatusCode.UNAVAILABLE.value[0]


# --- the memory of recent outcomes -------------------------------------------------------------


def test_concurrent_repeats_of_a_key_are_computed_once_and_share_the_outcome() -> None:
    recent: RecentOutcomes[object] = RecentOutcomes(window=4)
    runs = []

    def compute() -> object:
        runs.append(1)
        time.sleep(0.2)
        return object()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: recent.once("k", compute), range(8)))
    assert len(runs) == 1
    assert len({id(outcome) for outcome, _ in results}) == 1
    assert sorted(repeated for _, repeated in results) == [False] + [True] * 7
    assert recent.once("k", compute)[1] and len(runs) == 1


def test_a_failed_attempt_is_not_remembered_and_its_waiters_try_again() -> None:
    recent: RecentOutcomes[str] = RecentOutcomes(window=4)
    attempts = []
    first_started = threading.Event()

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            first_started.set()
            time.sleep(0.2)
            raise ConnectionError("first attempt lost")
        return "decoded"

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(recent.once, "k", flaky)
        first_started.wait(5)
        waiter = pool.submit(recent.once, "k", flaky)
        with pytest.raises(ConnectionError):
            first.result()
        assert waiter.result() == ("decoded", False), "the waiter ran it itself once the first attempt failed"
    assert len(attempts) == 2
    assert recent.once("k", flaky) == ("decoded", True)


def test_the_window_forgets_the_oldest_and_none_is_never_remembered() -> None:
    recent: RecentOutcomes[str] = RecentOutcomes(window=2)
    runs: list[str] = []

    def run(key: str | None):
        return recent.once(key, lambda: runs.append(str(key)) or str(key))

    for key in ("a", "b", "a", "c", "b", "a", None, None):
        run(key)
    # a, b computed; a remembered (now newest); c evicts b; b computed, evicts a; a computed; None always.
    assert runs == ["a", "b", "c", "b", "a", "None", "None"]
    assert RecentOutcomes(window=0).once("x", lambda: 1) == (1, False)


@pytest.fixture(scope="module")
def sample_frame() -> pb.Frame:
    iq = np.arange(16, dtype=np.complex64).tobytes()
    return pb.Frame(
        header=pb.FrameHeader(frame_id="f1", stream_id="s", height=8, width=8, alpha=0.5),
        segments=[pb.IqSegment(kind=pb.SEGMENT_KIND_PILOT, n_symbols=16, iq=iq),
                  pb.IqSegment(kind=pb.SEGMENT_KIND_KEY_JSCC, modulation=pb.MODULATION_ANALOG, n_symbols=16, iq=iq)],
    )


def test_a_frame_keeps_its_key_through_the_channel_but_not_through_a_change(sample_frame: pb.Frame) -> None:
    def changed(how) -> pb.Frame:
        copy = pb.Frame()
        copy.CopyFrom(sample_frame)
        how(copy)
        return copy

    key = frame_key(sample_frame)
    noisy = changed(lambda f: setattr(f.segments[1], "iq", (np.arange(16) + 0.1).astype(np.complex64).tobytes()))
    assert frame_key(noisy) == key and key.frame_id == "f1", "fresh noise on the same symbols: the same frame"
    timed = changed(lambda f: f.timings.add(hop="channel", stage="awgn", ms=1.0))
    assert frame_key(timed) == key
    for how in (lambda f: setattr(f.header, "alpha", 0.25),
                lambda f: setattr(f.segments[0], "kind", pb.SEGMENT_KIND_MASK),
                lambda f: setattr(f.segments[1], "iq", f.segments[1].iq[:-8]),
                lambda f: f.segments.pop()):
        assert frame_key(changed(how)) != key
    assert frame_key(sample_frame, pb.ChannelConfig(snr_db=5)) != frame_key(sample_frame, pb.ChannelConfig(snr_db=6))
    assert frame_key(changed(lambda f: setattr(f.header, "frame_id", ""))) is None


class CountingReceiver(pb_grpc.ReceiverServicer):
    """Takes 0.3 s per frame and counts the frames it really decoded, by id."""

    def __init__(self) -> None:
        self.decoded: dict[str, int] = defaultdict(int)

    def Decode(self, request: pb.Frame, context: grpc.ServicerContext) -> pb.Delivery:
        self.decoded[request.header.frame_id] += 1
        time.sleep(0.3)
        return pb.Delivery(frame_id=request.header.frame_id, height=request.header.height)


@contextmanager
def counting_server(**settings) -> Iterator[tuple[Server, CountingReceiver, str]]:
    receiver = CountingReceiver()
    server = Server(ReceiverSettings(port=0, **settings), [])
    pb_grpc.add_ReceiverServicer_to_server(receiver, server.grpc_server)
    port = server.start()
    try:
        yield server, receiver, f"127.0.0.1:{port}"
    finally:
        server.stop(grace_s=0)


def test_the_server_answers_a_repeated_frame_from_memory(sample_frame: pb.Frame) -> None:
    with counting_server() as (server, receiver, address):
        with connect(address, 4) as channel:
            decode = pb_grpc.ReceiverStub(channel).Decode
            with ThreadPoolExecutor(3) as pool:  # a retry sent while the first attempt still runs
                concurrent = list(pool.map(lambda _: decode(sample_frame, timeout=10), range(3)))
            later = decode(sample_frame, timeout=10)
            other = pb.Frame()
            other.CopyFrom(sample_frame)
            other.header.height = 9  # same id, different frame: not a repeat
            assert decode(other, timeout=10).height == 9
            anonymous = pb.Frame(header=pb.FrameHeader(height=1))
            for _ in range(2):
                decode(anonymous, timeout=10)
    assert {d.SerializeToString() for d in [*concurrent, later]} == {later.SerializeToString()}
    assert dict(receiver.decoded) == {"f1": 2, "": 2}
    assert server.idempotent.recent["/semcom.v1.Receiver/Decode"].repeats == 3


def test_a_remembered_outcome_is_never_given_to_a_caller_without_the_token(
    sample_frame: pb.Frame, tmp_path: Path
) -> None:
    certs = write_dev_certs(tmp_path, ("127.0.0.1",))
    token = "idempotent-but-private"
    with counting_server(tls_cert=certs.server, tls_key=certs.server_key, auth_token=token) as (_, receiver, address):
        with connect(address, 4, channel_credentials(certs.ca, token=token)) as channel:
            assert pb_grpc.ReceiverStub(channel).Decode(sample_frame, timeout=10).frame_id == "f1"
        with connect(address, 4, channel_credentials(certs.ca)) as channel:
            with pytest.raises(grpc.RpcError) as refused:
                pb_grpc.ReceiverStub(channel).Decode(sample_frame, timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert dict(receiver.decoded) == {"f1": 1}


# --- the three services as processes -----------------------------------------------------------


@dataclass
class Hop:
    """One service as a child process on a fixed port, so that it can be killed and started again there."""

    name: str
    port: int
    next_hop: str
    log: Path
    env: dict[str, str]
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "a") as log:  # a restarted hop appends to the same log
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gensemcom.cli", self.name, "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--next-hop", self.next_hop],
                stdout=log, stderr=subprocess.STDOUT, env=self.env)

    def wait_serving(self) -> None:
        wait_healthy(self.address, self.process, self.log)

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)
        if signum == signal.SIGKILL:
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def hops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Hop]]:
    """Receiver, channel and transmitter processes, started together; the channel's keepalive is 1 s."""
    logs = tmp_path_factory.mktemp("logs")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SEMCOM_TX_KEY_CODEC": "linear-dct", "SEMCOM_TX_SEGMENTER": "saliency",
           "SEMCOM_RX_DEVICE": "cpu", "SEMCOM_CH_KEEPALIVE_S": "1", "SEMCOM_CH_KEEPALIVE_TIMEOUT_S": "1"}
    ports = {name: free_port() for name in ("receiver", "channel", "transmitter")}
    next_hop = {"receiver": "", "channel": f"127.0.0.1:{ports['receiver']}",
                "transmitter": f"127.0.0.1:{ports['channel']}"}
    hops = {name: Hop(name, port, next_hop[name], logs / f"{name}.log", env) for name, port in ports.items()}
    try:
        for hop in hops.values():
            hop.start()
        for hop in hops.values():
            hop.wait_serving()
        yield hops
    finally:
        for hop in hops.values():
            hop.stop()


def wait_for_line(log: Path, text: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in log.read_text():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{text!r} never appeared in {log}")
        time.sleep(0.005)


def decodes(log: Path, frame_id: str) -> int:
    """How many times the receiver decoded ``frame_id`` (one log line each)."""
    return log.read_text().count(f"frame {frame_id}: decoded in ")


CONFIG = pb.ChannelConfig(model="awgn", snr_db=20.0, seed=7)
VICTIM = 4  # the image in the receiver when the channel is killed: full size, so its decoding takes a while


@pytest.mark.slow
def test_killing_the_channel_mid_stream_loses_nothing_and_duplicates_nothing(data_dir: Path, hops) -> None:
    """SIGKILL the channel while image 4 is being decoded, start it again, retry what failed, with the same ids.

    Every image gets one Delivery per attempt, every image ends with exactly one OK, and the receiver
    decoded each frame once: image 4's retry is answered with its first decoding.
    """
    small = load_images(data_dir / "kodak24", (128, 96))[:12]
    images = [*small[:VICTIM], (data_dir / "kodak24" / "kodim05.png").read_bytes(), *small[VICTIM + 1:]]
    requests = [pb.ImageRequest(image=png, frame_id=f"img-{i}", seq=i, stream_id="faults", request_id=str(i),
                                channel=CONFIG) for i, png in enumerate(images)]
    attempts: dict[str, list[int]] = defaultdict(list)  # frame id -> the status of each attempt
    delivered: dict[str, pb.Delivery] = {}

    def record(sent: list[pb.ImageRequest], replies: list[pb.Delivery]) -> list[pb.ImageRequest]:
        """Check one Delivery per image sent, in order; return the images to send again."""
        assert [d.request_id for d in replies] == [r.request_id for r in sent]
        for request, delivery in zip(sent, replies):
            assert delivery.frame_id == request.frame_id
            attempts[request.frame_id].append(delivery.status.code)
            if delivery.status.code == OK:
                delivered[request.frame_id] = delivery
        return [r for r, d in zip(sent, replies) if d.status.code != OK]

    channel, receiver = hops["channel"], hops["receiver"]
    with connect(hops["transmitter"].address, 64) as grpc_channel:
        send = pb_grpc.TransmitterStub(grpc_channel).Send
        first: list[pb.Delivery] = []
        for delivery in send(iter(requests), timeout=120):
            first.append(delivery)
            if len(first) == VICTIM:
                wait_for_line(channel.log, f"frame img-{VICTIM}:")  # the channel has passed it on ...
                time.sleep(0.1)  # ... and the receiver is decoding it (~300 ms)
                channel.signal(signal.SIGKILL)
        pending = record(requests, first)
        assert [d.status.code for d in first[:VICTIM]] == [OK] * VICTIM
        assert first[VICTIM].status.code == UNAVAILABLE, first[VICTIM].status.message
        assert {d.status.code for d in first} <= {OK, UNAVAILABLE}

        channel.start()
        channel.wait_serving()
        for _ in range(30):
            if not pending:
                break
            time.sleep(0.3)
            pending = record(pending, list(send(iter(pending), timeout=60)))

    assert not pending, f"still failing after the restart: {[r.frame_id for r in pending]}"
    for request in requests:
        codes = attempts[request.frame_id]
        assert codes.count(OK) == 1 and codes[-1] == OK, (request.frame_id, codes)
        assert set(codes[:-1]) <= {UNAVAILABLE}, (request.frame_id, codes)
        image = decode_image(request.image)
        assert decode_image(delivered[request.frame_id].image_png).shape == image.shape
        assert decodes(receiver.log, request.frame_id) == 1, f"{request.frame_id} decoded more than once"
    assert receiver.log.read_text().count(f"frame img-{VICTIM} repeated") == 1, "the retry was decoded again"
    print(f"attempts per image: {dict(attempts)}")


@pytest.mark.slow
def test_a_frozen_receiver_is_detected_by_keepalive_not_by_the_deadline(data_dir: Path, hops) -> None:
    """SIGSTOP the receiver: the channel's unanswered pings (1 s + 1 s) end the call with UNAVAILABLE long
    before the client's 40 s deadline; after SIGCONT the same frame goes through, decoded once."""
    receiver = hops["receiver"]
    request = pb.ImageRequest(image=load_images(data_dir / "kodak24", (128, 96))[0], frame_id="frozen",
                              request_id="frozen", channel=CONFIG)
    with connect(hops["transmitter"].address, 64) as grpc_channel:
        send = pb_grpc.TransmitterStub(grpc_channel).Send
        receiver.signal(signal.SIGSTOP)
        try:
            start = time.monotonic()
            (frozen,) = list(send(iter([request]), timeout=40))
            waited_s = time.monotonic() - start
        finally:
            receiver.signal(signal.SIGCONT)
        for _ in range(30):
            (retried,) = list(send(iter([request]), timeout=40))
            if retried.status.code == OK:
                break
            time.sleep(0.3)
    print(f"frozen receiver detected after {waited_s:.1f} s")
    assert frozen.status.code == UNAVAILABLE, frozen.status.message
    assert waited_s < 15
    assert retried.status.code == OK, retried.status.message
    time.sleep(1)  # the first attempt, still buffered in the thawed receiver, may decode late: count after it
    assert decodes(receiver.log, "frozen") == 1
