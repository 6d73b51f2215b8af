"""External channels: subprocess, ZeroMQ and SigMF against the in-process model, and the chain through them.

The reference is always a second path to the same numbers: the in-process
``apply_channel`` with the same seed and frame id (or, over raw ZMQ, the
documented burst-counter frame id), an echo peer whose output must equal its
input, or the recording read back with plain ``json`` and ``numpy``.
Failures must be clear errors that name the frame, and the transport must
work again on the next call.
"""

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import numpy as np
import pytest
import zmq

from gensemcom.channel.external import ExternalChannel, ExternalChannelError, ExternalChannelTimeout, ProtocolError
from gensemcom.channel.external.pipe import SubprocessChannel
from gensemcom.channel.external.spec import make_transport
from gensemcom.channel.external.zmqlink import ZmqChannel
from gensemcom.channel.external_sim import burst_frame_id
from gensemcom.channel.link import ChannelParams, apply_channel
from gensemcom.channel.service import ChannelService
from gensemcom.channel.sigmf import SigmfRecorder, SigmfReplay, load_recording, recording_paths
from gensemcom.services import SERVICE_NAMES, start_receiver, start_transmitter
from gensemcom.shared.config import ChannelSettings, ReceiverSettings, TransmitterSettings
from gensemcom.shared.pb import semcom_pb2 as pb
from gensemcom.shared.pb import semcom_pb2_grpc as pb_grpc
from gensemcom.shared.rpc import Server, connect
from gensemcom.shared.wire import frame_iq_from_pb
from tests.conftest import Chain

SIM = [sys.executable, "-m", "gensemcom.channel.external_sim"]
TIMEOUT_S = 20.0

# A stand-in for a misbehaving radio process, steered by the frame id of each burst.
FAKE = """
import os, sys, time
from gensemcom.channel.external.framing import encode_reply, read_request
while (request := read_request(sys.stdin.buffer.read)) is not None:
    frame_id, x = request
    if frame_id == "die":
        sys.stderr.write("fake radio: lost the USB link\\n"); sys.stderr.flush(); os._exit(3)
    if frame_id == "hang":
        time.sleep(60)
    if frame_id == "chatty":
        sys.stdout.buffer.write(b"hello from a stray print\\n"); sys.stdout.flush(); continue
    reply = x[:-1] if frame_id == "short" else x
    sys.stdout.buffer.write(encode_reply(reply)); sys.stdout.flush()
"""
FAKE_CMD = [sys.executable, "-c", FAKE]


def _symbols(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)


def _sim_args(params: ChannelParams) -> list[str]:
    return ["--model", params.model, "--snr-db", str(params.snr_db), "--seed", str(params.seed),
            "--coherence-symbols", str(params.coherence_symbols)]


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype == np.complex64 and a.shape == b.shape and a.tobytes() == b.tobytes()


def _free_tcp() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


# --- subprocess ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("params", [ChannelParams("awgn", 7.5, 3), ChannelParams("rayleigh", 12.0, 11, 64)])
def test_subprocess_sim_is_bit_identical_to_in_process(params: ChannelParams) -> None:
    frames = [("a", 1000), ("bild-ü-2", 4097), ("a", 1000), ("c", 1)]  # a repeated id must repeat its draw
    with SubprocessChannel([*SIM, *_sim_args(params)], timeout_s=TIMEOUT_S) as channel:
        for i, (frame_id, n) in enumerate(frames):
            x = _symbols(n, seed=i if frame_id != "a" else 0)
            expected, _ = apply_channel(x, params, frame_id)
            assert _same_bits(channel(x, frame_id), expected), frame_id


def test_dying_process_fails_its_frame_clearly_and_is_restarted() -> None:
    x = _symbols(300, seed=1)
    with SubprocessChannel(FAKE_CMD, timeout_s=TIMEOUT_S) as channel:
        assert _same_bits(channel(x, "ok-1"), x)
        first_pid = channel.pid
        with pytest.raises(ExternalChannelError, match="exited with code 3") as info:
            channel(x, "die")
        assert "lost the USB link" in str(info.value) and "'die'" in str(info.value)
        assert _same_bits(channel(x, "ok-2"), x)
        assert channel.pid not in (None, first_pid)
        # Killed between bursts: the next burst is not lost, a fresh process takes it.
        os.kill(channel.pid, signal.SIGKILL)
        time.sleep(0.2)
        assert _same_bits(channel(x, "ok-3"), x)


def test_hung_process_times_out_and_is_replaced() -> None:
    x = _symbols(50, seed=2)
    with SubprocessChannel(FAKE_CMD, timeout_s=1.5) as channel:
        channel(x, "warm-up")  # the timeout covers start-up; let the first process start outside the measurement
        start = time.monotonic()
        with pytest.raises(ExternalChannelTimeout, match="'hang' within 1.5 s"):
            channel(x, "hang")
        assert 1.4 < time.monotonic() - start < 5
        assert _same_bits(channel(x, "after"), x)


def test_wrong_length_reply_is_an_error_and_the_stream_stays_in_step() -> None:
    x = _symbols(100, seed=3)
    with SubprocessChannel(FAKE_CMD, timeout_s=TIMEOUT_S) as channel:
        pid = channel.pid
        with pytest.raises(ExternalChannelError, match="returned 99 samples for frame 'short' of 100"):
            channel(x, "short")
        assert _same_bits(channel(x, "ok"), x)
        assert channel.pid == pid


def test_text_on_stdout_is_a_protocol_error_not_samples() -> None:
    x = _symbols(10, seed=4)
    with SubprocessChannel(FAKE_CMD, timeout_s=TIMEOUT_S) as channel:
        with pytest.raises(ProtocolError, match="expected b'SCR1'"):
            channel(x, "chatty")
        assert _same_bits(channel(x, "ok"), x)


def test_bad_sim_parameters_surface_in_the_error() -> None:
    with SubprocessChannel([*SIM, "--model", "teleport"], timeout_s=TIMEOUT_S) as channel:
        with pytest.raises(ExternalChannelError, match="exited with code 2(.|\n)*unknown channel model 'teleport'"):
            channel(_symbols(10, seed=5), "f")


def test_bad_bursts_and_specs_are_value_errors() -> None:
    with SubprocessChannel(FAKE_CMD, timeout_s=TIMEOUT_S) as channel:
        for bad in (np.zeros(4, np.float32), np.zeros((2, 2), np.complex64), np.zeros(0, np.complex64),
                    np.array([np.nan], np.complex64)):
            with pytest.raises(ValueError):
                channel(bad, "f")
        with pytest.raises(ValueError, match="frame id"):
            channel(_symbols(4, seed=6), "x" * 5000)
    for spec in ("", "exec:", "zmq:tcp://127.0.0.1:1", "radio:usrp", "record:only-a-prefix"):
        with pytest.raises(ValueError):
            make_transport(spec)
    with pytest.raises(FileNotFoundError):
        make_transport("exec:/nonexistent/radio-binary --fast")


# --- ZeroMQ ----------------------------------------------------------------------------------------------------------

def test_zmq_sim_matches_in_process_with_burst_counter_seeding() -> None:
    params = ChannelParams("rayleigh", 9.0, 5, 100)
    tx, rx = _free_tcp(), _free_tcp()
    with ZmqChannel(tx, rx, timeout_s=TIMEOUT_S) as channel:
        sim = subprocess.Popen([*SIM, *_sim_args(params), "--zmq-in", tx, "--zmq-out", rx])
        try:
            for k, n in enumerate((2000, 1, 777)):
                x = _symbols(n, seed=10 + k)
                expected, _ = apply_channel(x, params, burst_frame_id(k))
                # The frame id does not travel over raw ZMQ: the sim numbers bursts instead.
                assert _same_bits(channel(x, f"frame-{k}"), expected), k
        finally:
            sim.terminate()
            sim.wait(timeout=10)


@contextmanager
def _fake_flowgraph(tx: str, rx: str, chunk: int) -> Iterator[None]:
    """A peer wired like GNU Radio's ZMQ blocks (PULL connects, PUSH binds) that echoes in ``chunk``-sample messages."""
    context = zmq.Context()
    pull, push = context.socket(zmq.PULL), context.socket(zmq.PUSH)
    pull.connect(tx)
    push.bind(rx)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            if pull.poll(50):
                data = pull.recv()
                for i in range(0, len(data), 8 * chunk):
                    push.send(data[i : i + 8 * chunk])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        context.destroy(linger=0)


def test_zmq_reassembles_a_reply_split_across_messages() -> None:
    tx, rx = _free_tcp(), _free_tcp()
    with ZmqChannel(tx, rx, timeout_s=TIMEOUT_S) as channel, _fake_flowgraph(tx, rx, chunk=1000):
        x = _symbols(4500, seed=7)  # comes back as 1000+1000+1000+1000+500 samples
        assert _same_bits(channel(x, "f"), x)
        assert _same_bits(channel(x[:3], "g"), x[:3])


def test_zmq_times_out_without_a_flowgraph_and_names_the_address() -> None:
    tx, rx = _free_tcp(), _free_tcp()
    with ZmqChannel(tx, rx, timeout_s=0.3) as channel:
        start = time.monotonic()
        with pytest.raises(ExternalChannelTimeout, match=re.escape(tx)):
            channel(_symbols(10, seed=8), "f")
        assert time.monotonic() - start < 3


# --- SigMF -----------------------------------------------------------------------------------------------------------

class _ModelChannel(ExternalChannel):
    """The in-process model behind the ExternalChannel interface, to have something to record."""

    name = "model"

    def __init__(self, params: ChannelParams) -> None:
        self.params = params

    def __call__(self, iq: np.ndarray, frame_id: str) -> np.ndarray:
        return apply_channel(iq, self.params, frame_id)[0]

    def close(self) -> None:
        pass


def _record(prefix: Path, frames: list[tuple[str, int]], params: ChannelParams) -> list[np.ndarray]:
    outputs = []
    with SigmfRecorder(_ModelChannel(params), prefix, sample_rate=1e6) as recorder:
        for i, (frame_id, n) in enumerate(frames):
            outputs.append(recorder(_symbols(n, seed=i), frame_id))
    return outputs


def test_sigmf_recording_is_valid_and_replays_bit_for_bit(tmp_path: Path) -> None:
    params = ChannelParams("rayleigh", 5.0, 2, 10)
    frames = [("f0", 120), ("f1", 1), ("f2", 999)]
    outputs = _record(tmp_path / "run", frames, params)

    # Read back with plain json/numpy: the fields SigMF requires, and samples where the metadata says.
    meta = json.loads((tmp_path / "run.sigmf-meta").read_text())
    data = np.fromfile(tmp_path / "run.sigmf-data", dtype="<c8")
    glob = meta["global"]
    assert glob["core:datatype"] == "cf32_le" and re.fullmatch(r"1\.\d+\.\d+", glob["core:version"])
    assert glob["core:sample_rate"] == 1e6 and glob["core:description"]
    assert {"name": "semcom", "version": "1.0.0", "optional": True} in glob["core:extensions"]
    starts = np.cumsum([0] + [n for _, n in frames[:-1]]).tolist()
    assert [c["core:sample_start"] for c in meta["captures"]] == starts
    assert [(a["core:sample_start"], a["core:sample_count"], a["semcom:frame_id"]) for a in meta["annotations"]] \
        == [(s, n, f) for s, (f, n) in zip(starts, frames, strict=True)]
    assert data.size == sum(n for _, n in frames)
    for s, (_, n), y in zip(starts, frames, outputs, strict=True):
        assert _same_bits(data[s : s + n].astype(np.complex64), y)

    with SigmfReplay(tmp_path / "run.sigmf-meta") as replay:  # either suffix names the recording
        for i in (2, 0, 1, 2):  # by frame id, in any order, as often as asked
            frame_id, n = frames[i]
            assert _same_bits(replay(np.zeros(n, np.complex64), frame_id), outputs[i])
        with pytest.raises(ExternalChannelError, match="'f9' is not in the recording"):
            replay(np.zeros(5, np.complex64), "f9")
        with pytest.raises(ExternalChannelError, match="returned 120 samples for frame 'f0' of 7"):
            replay(np.zeros(7, np.complex64), "f0")
    in_order = SigmfReplay(tmp_path / "run", by_frame_id=False)
    for (_, n), y in zip(frames, outputs, strict=True):
        assert _same_bits(in_order(np.zeros(n, np.complex64), "any id"), y)
    with pytest.raises(ExternalChannelError, match="all 3 bursts"):
        in_order(np.zeros(1, np.complex64), "one more")


def test_sigmf_refuses_to_overwrite_and_rejects_invalid_recordings(tmp_path: Path) -> None:
    _record(tmp_path / "run", [("a", 16), ("b", 8)], ChannelParams("awgn", 10.0, 1))
    with pytest.raises(FileExistsError):
        SigmfRecorder(_ModelChannel(ChannelParams()), tmp_path / "run")
    data_path, meta_path = recording_paths(tmp_path / "run")
    good_meta, good_data = json.loads(meta_path.read_text()), data_path.read_bytes()

    def broken(change_meta=None, data: bytes = good_data) -> Path:
        meta = json.loads(json.dumps(good_meta))
        if change_meta:
            change_meta(meta)
        prefix = tmp_path / f"broken{len(list(tmp_path.iterdir()))}"
        recording_paths(prefix)[1].write_text(json.dumps(meta))
        recording_paths(prefix)[0].write_bytes(data)
        return prefix

    cases = {
        "only 'cf32_le'": broken(lambda m: m["global"].update({"core:datatype": "ri16_le"})),
        "not a SigMF 1.x version": broken(lambda m: m["global"].pop("core:version")),
        "has no 'captures'": broken(lambda m: m.pop("captures")),
        "has no core:sample_count": broken(lambda m: m["annotations"][1].pop("core:sample_count")),
        "dataset has 24": broken(lambda m: m["annotations"][1].update({"core:sample_count": 9})),
        "not a whole number": broken(data=good_data[:-3]),
        "recorded twice": broken(lambda m: m["annotations"][1].update({"semcom:frame_id": "a"})),
    }
    for message, prefix in cases.items():
        with pytest.raises(ValueError, match=re.escape(message)):
            SigmfReplay(prefix)
    assert len(load_recording(tmp_path / "run").bursts) == 2


def test_record_spec_records_what_the_process_returns(tmp_path: Path) -> None:
    params = ChannelParams("awgn", 3.0, 8)
    x = _symbols(256, seed=9)
    with make_transport(f"record:{tmp_path / 'live'}=exec:{shlex.join([*SIM, *_sim_args(params)])}") as channel:
        assert channel.name == "exec+sigmf"
        y = channel(x, "frame-9")
    assert _same_bits(y, apply_channel(x, params, "frame-9")[0])
    with make_transport(f"replay:{tmp_path / 'live'}") as replay:
        assert _same_bits(replay(x, "frame-9"), y)


# --- the whole chain -------------------------------------------------------------------------------------------------

@contextmanager
def _channel_server(settings: ChannelSettings) -> Iterator[str]:
    service = ChannelService(settings)
    server = Server(settings, [SERVICE_NAMES["Channel"]])
    pb_grpc.add_ChannelServicer_to_server(service, server.grpc_server)
    server.start()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        server.stop(grace_s=1)
        service.close()


def test_chain_through_the_external_sim_equals_the_in_process_chain(chain: Chain, astronaut_png: bytes) -> None:
    config = pb.ChannelConfig(model="rayleigh", snr_db=14.0, seed=21, coherence_symbols=500)
    sim = shlex.join([sys.executable, "-m", "gensemcom.cli", "channel", "external-sim", "--model", "rayleigh",
                      "--snr-db", "14", "--seed", "21", "--coherence-symbols", "500"])
    # A receiver of its own: the chain's receiver would answer the in-process path's frame "ext-1" from its
    # memory of the external path's (a repeated frame id is a retry, decoded once), and compare nothing.
    receiver = start_receiver(ReceiverSettings(port=0, max_message_mb=4))
    settings = ChannelSettings(port=0, next_hop=f"127.0.0.1:{receiver.port}", external=f"exec:{sim}",
                               max_message_mb=4)
    request = pb.ImageRequest(image=astronaut_png, frame_id="ext-1", request_id="r", channel=config)
    with _channel_server(settings) as channel_address:
        transmitter = start_transmitter(TransmitterSettings(port=0, next_hop=channel_address, max_message_mb=4))
        try:
            with connect(f"127.0.0.1:{transmitter.port}", 4) as grpc_channel:
                external = list(pb_grpc.TransmitterStub(grpc_channel).Send(iter([request]), timeout=60))[0]
            frame = chain.transmitter.Encode(request, timeout=30)
            with connect(channel_address, 4) as grpc_channel:
                applied = pb_grpc.ChannelStub(grpc_channel).Apply(pb.ChannelInput(frame=frame), timeout=30)
        finally:
            transmitter.stop(grace_s=1)
            receiver.stop(grace_s=1)
    in_process = list(chain.transmitter.Send(iter([request]), timeout=60))[0]
    reference = chain.channel.Apply(pb.ChannelInput(frame=frame, config=config), timeout=30)

    assert external.status.code == 0, external.status.message
    assert (external.channel.model, in_process.channel.model) == ("external:exec", "rayleigh")
    assert _same_bits(frame_iq_from_pb(applied.frame), frame_iq_from_pb(reference.frame))
    for field in ("image_png", "key_png", "mask_png", "prompt"):
        assert getattr(external, field) == getattr(in_process, field), field
    assert external.link.snr_db == in_process.link.snr_db


def test_a_failing_external_channel_is_unavailable_and_the_service_recovers(chain: Chain, astronaut_png: bytes) -> None:
    settings = ChannelSettings(port=0, next_hop=chain.addresses["receiver"], external=f"exec:{shlex.join(FAKE_CMD)}",
                               max_message_mb=4)
    with _channel_server(settings) as channel_address, connect(channel_address, 4) as grpc_channel:
        stub = pb_grpc.ChannelStub(grpc_channel)
        for frame_id, ok in (("die", False), ("after", True)):
            frame = chain.transmitter.Encode(pb.ImageRequest(image=astronaut_png, frame_id=frame_id), timeout=30)
            if ok:
                delivery = stub.Forward(pb.ChannelInput(frame=frame), timeout=30)
                assert delivery.status.code == 0 and delivery.channel.model == "external:exec"
            else:
                with pytest.raises(grpc.RpcError) as info:
                    stub.Forward(pb.ChannelInput(frame=frame), timeout=30)
                assert info.value.code() == grpc.StatusCode.UNAVAILABLE
                assert "lost the USB link" in info.value.details()
