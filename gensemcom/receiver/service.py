"""gRPC adapter for the receiver: Decode (Frame -> Delivery)."""

import logging
import time

import grpc
import numpy as np

from gensemcom.receiver.pipeline import Receiver, Reconstruction
from gensemcom.shared.image_io import encode_png
from gensemcom.shared.pb import semcom_pb2 as pb
from gensemcom.shared.pb import semcom_pb2_grpc as pb_grpc
from gensemcom.shared.rpc import rpc_errors
from gensemcom.shared.wire import frame_from_pb, timing_to_pb

log = logging.getLogger(__name__)


def delivery_from(frame: pb.Frame, rec: Reconstruction, key_codec: str) -> pb.Delivery:
    """The Delivery message for one reconstruction, carrying every hop's timings so far."""
    h = frame.header
    link = rec.link
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
        link=pb.LinkEstimate(
            snr_db=link.snr_db,
            noise_variance=link.no,
            gain_re=[float(link.gain.real)],
            gain_im=[float(link.gain.imag)],
            estimator=link.estimator,
            equaliser=link.equaliser,
        ),
        segments=[
            pb.SegmentOutcome(kind=int(o.kind), n_symbols=o.n_symbols, decoded=o.decoded, crc_ok=o.crc_ok,
                              detail=o.detail)
            for o in rec.outcomes
        ],
        key_codec=key_codec,
        inpainter=rec.inpainter,
        segmenter=h.segmenter,
        describer=h.describer,
        alpha=h.alpha,
    )


def _with_alpha(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RGBA image that is transparent outside the key mask."""
    return np.dstack([rgb, mask.astype(np.uint8) * 255])


class ReceiverService(pb_grpc.ReceiverServicer):
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    @rpc_errors
    def Decode(self, request: pb.Frame, context: grpc.ServicerContext) -> pb.Delivery:
        start = time.perf_counter()
        frame = frame_from_pb(request)
        rec = self.receiver.decode(frame)
        h = frame.header
        delivery = delivery_from(request, rec, f"{h.key_codec.id}/{h.key_codec.version}")
        log.info("frame %s: decoded in %.1f ms, est. SNR %.1f dB, crc %s", h.frame_id,
                 (time.perf_counter() - start) * 1e3, rec.link.snr_db,
                 ",".join(f"{o.kind.name}={'ok' if o.crc_ok else 'FAIL'}" for o in rec.outcomes))
        return delivery
