"""The receiver's worker queue: bounded, RESOURCE_EXHAUSTED when full, serving again afterwards."""

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import grpc
import numpy as np
import pytest

from gensemcom.receiver.service import ReceiverService
from gensemcom.services import SERVICE_NAMES, build_receiver, build_transmitter
from gensemcom.shared.config import ReceiverSettings, TransmitterSettings
from gensemcom.shared.image_io import decode_image
from gensemcom.shared.pb import semcom_pb2_grpc as pb_grpc
from gensemcom.shared.rpc import Server
from gensemcom.shared.wire import frame_from_pb, frame_to_pb


@dataclass
class SlowReceiver:
    """The real receiver, held up so that requests pile up in the queue."""

    inner: object
    delay_s: float
    calls: int = 0

    def decode_batch(self, frames):
        self.calls += len(frames)
        time.sleep(self.delay_s)
        return self.inner.decode_batch(frames)


@pytest.fixture(scope="module")
def frame(astronaut_png: bytes):
    image = decode_image(astronaut_png)
    return frame_to_pb(build_transmitter(TransmitterSettings(key_codec="linear-dct", segmenter="saliency"))
                       .encode(image, "q"))


def test_a_full_queue_answers_resource_exhausted_and_the_service_recovers(frame) -> None:
    slow = SlowReceiver(build_receiver(ReceiverSettings(device="cpu")), delay_s=0.5)
    service = ReceiverService(slow, max_batch=1, max_wait_s=0.0, max_queue=1)
    server = Server(ReceiverSettings(port=0), [SERVICE_NAMES["Receiver"]])
    pb_grpc.add_ReceiverServicer_to_server(service, server.grpc_server)
    port = server.start()
    try:
        stub = pb_grpc.ReceiverStub(grpc.insecure_channel(f"127.0.0.1:{port}"))

        def call(i: int) -> grpc.StatusCode:
            numbered = type(frame)()
            numbered.CopyFrom(frame)
            numbered.header.frame_id = f"q{i}"  # distinct frames: one id repeated is a retry, decoded once
            try:
                stub.Decode(numbered, timeout=60)
                return grpc.StatusCode.OK
            except grpc.RpcError as err:
                return err.code()

        with ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(call, range(6)))
        assert codes.count(grpc.StatusCode.OK) >= 2  # one decoding, one queued
        assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert slow.calls == codes.count(grpc.StatusCode.OK), "refused frames never reach the decoder"
        assert call(99) == grpc.StatusCode.OK
    finally:
        server.stop(grace_s=1)
        service.close()


def test_one_bad_frame_in_a_batch_fails_alone(frame) -> None:
    receiver = build_receiver(ReceiverSettings(device="cpu"))
    service = ReceiverService(receiver, max_batch=4, max_wait_s=0.2, max_queue=8)
    broken = type(frame)()
    broken.CopyFrom(frame)
    broken.header.key_codec.id = "no-such-codec"
    futures = [service.batcher.submit(frame_from_pb(f)) for f in (frame, broken, frame)]
    results = [f.result(60) for f in futures]
    assert [isinstance(r, Exception) for r in results] == [False, True, False]
    assert "no-such-codec" in str(results[1])
    assert service.batcher.stats.largest >= 2
    service.close()


class BatchRecorder:
    """The classical inpainter with a batched call that records the batch sizes it was given."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.settings, self.batches = inner, inner.name, inner.settings, []

    def __call__(self, prompt, canvas, known):
        self.batches.append(1)
        return self.inner(prompt, canvas, known)

    def inpaint_batch(self, items):
        self.batches.append(len(items))
        return [self.inner(*item) for item in items]


def test_backgrounds_of_a_batch_are_generated_in_one_call_and_match_single_decodes(frame) -> None:
    receiver = build_receiver(ReceiverSettings(device="cpu", context_memory=False))
    frames = []
    for stream in ("a", "b", "c"):
        f = frame_from_pb(frame)
        f.header = replace(f.header, stream_id=stream)
        frames.append(f)
    singles = [receiver.decode(f).image for f in frames]
    recorder = BatchRecorder(receiver.inpainter)
    batched = replace(receiver, inpainter=recorder).decode_batch(frames)
    assert recorder.batches == [3]
    for single, rec in zip(singles, batched, strict=True):
        np.testing.assert_array_equal(single, rec.image)
        assert any(t.stage == "inpaint[batch 3]" for t in rec.timings)


def test_frames_of_one_stream_never_share_a_batch(frame) -> None:
    receiver = build_receiver(ReceiverSettings(device="cpu"))
    recorder = BatchRecorder(receiver.inpainter)
    f = frame_from_pb(frame)
    f.header = replace(f.header, stream_id="same")
    results = replace(receiver, inpainter=recorder).decode_batch([f, f, f])
    assert not any(isinstance(r, Exception) for r in results)
    assert recorder.batches == [1, 1, 1]
