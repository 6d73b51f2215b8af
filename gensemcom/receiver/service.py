"""gRPC adapter for the receiver: Decode (Frame -> Delivery)."""

import logging
import time

import grpc
import numpy as np

from gensemcom.receiver.pipeline import LinkReport, Receiver, Reconstruction
from gensemcom.shared.image_io import encode_png
from gensemcom.shared.pb import semcom_pb2 as pb
from gensemcom.shared.pb import semcom_pb2_grpc as pb_grpc
from gensemcom.shared.batching import Batcher
from gensemcom.shared.frame import Frame
from gensemcom.shared.observability import ServiceMetrics, frame_ids, observed
from gensemcom.shared.rpc import rpc_errors
from gensemcom.shared.wire import MAX_REPORTED_GAINS, frame_from_pb, timing_to_pb

log = logging.getLogger(__name__)


def delivery_from(frame: pb.Frame, rec: Reconstruction, key_codec: str) -> pb.Delivery:
    """The Delivery message for one reconstruction, carrying every hop's timings so far."""
    h = frame.header
    return pb.Delivery(
        frame_id=h.frame_id,
        stream_id=h.stream_id,
        seq=h.seq,
        status=pb.Status(code=0, message="OK"),
        height=h.height,
        width=h.width,
        image_png=encode_png(rec.image),
        key_png=encode_png(_with_alpha(rec.key, rec.mask)),
        mask_png=encode_png(rec.mask),
        prompt=rec.prompt or "",
        timings=[*frame.timings, *(timing_to_pb(t) for t in rec.timings)],
        link=link_estimate_pb(rec.link),
        segments=[
            pb.SegmentOutcome(kind=int(o.kind), n_symbols=o.n_symbols, decoded=o.decoded, crc_ok=o.crc_ok,
                              detail=o.detail)
            for o in rec.outcomes
        ],
        key_codec=key_codec,
        inpainter=rec.inpainter,
        inpainter_settings=rec.inpainter_settings,
        segmenter=h.segmenter,
        describer=h.describer,
        alpha=h.alpha,
        context_reused=rec.context_reused,
        symbols_saved=rec.symbols_saved,
        rate_plan=h.rate_plan if h.HasField("rate_plan") else None,
        n_symbols=sum(s.n_symbols for s in frame.segments),
    )


def link_estimate_pb(link: LinkReport) -> pb.LinkEstimate:
    """The receiver's estimate: SNR, noise, the pilot-group gains (first MAX_REPORTED_GAINS) and its error."""
    estimate = link.estimate
    gains = estimate.pilot_gains[:MAX_REPORTED_GAINS]
    return pb.LinkEstimate(
        snr_db=estimate.snr_db,
        noise_variance=estimate.no,
        gain_re=gains.real.tolist(),
        gain_im=gains.imag.tolist(),
        estimator=estimate.method,
        equaliser=link.equaliser,
        estimation_error=float(np.mean(estimate.error)) if estimate.error.size else 0.0,
        n_pilots=link.n_pilots,
    )


def _with_alpha(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RGBA image that is transparent outside the key mask."""
    return np.dstack([rgb, mask.astype(np.uint8) * 255])


class ReceiverService(pb_grpc.ReceiverServicer):
    """Decode requests from many gRPC threads queue for one worker (the GPU's), bounded by ``max_queue``."""

    def __init__(self, receiver: Receiver, max_batch: int = 8, max_wait_s: float = 0.005, max_queue: int = 32) -> None:
        self.receiver = receiver
        self.metrics = ServiceMetrics("receiver")
        self.batcher: Batcher[Frame, Reconstruction | Exception] = Batcher(
            self._decode_batch, max_batch, max_wait_s, max_queue, name="receiver-worker"
        )
        self.metrics.watch_queue(lambda: self.batcher.waiting)

    def _decode_batch(self, frames: list[Frame]) -> list[Reconstruction | Exception]:
        self.metrics.batch(len(frames))
        return self.receiver.decode_batch(frames)

    def close(self) -> None:
        self.batcher.close()

    @rpc_errors
    @observed
    def Decode(self, request: pb.Frame, context: grpc.ServicerContext) -> pb.Delivery:
        start = time.perf_counter()
        frame = frame_from_pb(request)
        # No deadline here: a queued frame is decoded anyway, and a retry of it waits for this outcome
        # (docs/reliability.md) rather than decoding it twice.
        rec = self.batcher(frame)
        if isinstance(rec, Exception):
            raise rec
        h = frame.header
        delivery = delivery_from(request, rec, f"{h.key_codec.id}/{h.key_codec.version}")
        self.metrics.stages(rec.timings)
        self.metrics.snr(rec.link.estimate.snr_db)
        log.info("frame %s: decoded in %.1f ms, est. SNR %.1f dB, crc %s", h.frame_id,
                 (time.perf_counter() - start) * 1e3, rec.link.estimate.snr_db,
                 ",".join(f"{o.kind.name}={'ok' if o.crc_ok else 'FAIL'}" for o in rec.outcomes),
                 extra=frame_ids(h.frame_id, h.stream_id))
        return delivery
