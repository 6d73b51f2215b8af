"""gRPC adapter for the transmitter: Encode (image -> Frame) and Send (images through the chain)."""

import logging
import uuid
from collections.abc import Iterator

import grpc

from gensemcom.adapt.control import LinkState
from gensemcom.adapt.feedback import SnrTracker
from gensemcom.shared.image_io import decode_image
from gensemcom.shared.observability import Call, ServiceMetrics, frame_ids, observed
from gensemcom.shared.pb import semcom_pb2 as pb
from gensemcom.shared.pb import semcom_pb2_grpc as pb_grpc
from gensemcom.shared.rpc import connect_next_hop, log_failure, relay_retry_after, remaining_timeout, rpc_errors
from gensemcom.shared.config import TransmitterSettings
from gensemcom.shared.wire import frame_to_pb
from gensemcom.transmitter.pipeline import Transmitter
from gensemcom.transmitter.alpha import check_alpha_target
from gensemcom.transmitter.profiles import PROFILE_METADATA_KEY, PipelinePool

log = logging.getLogger(__name__)


def client_profile(context: grpc.ServicerContext) -> str:
    """The profile a client asked for in its call metadata ("" = none)."""
    return next((v for k, v in context.invocation_metadata() if k == PROFILE_METADATA_KEY), "")


class TransmitterService(pb_grpc.TransmitterServicer):
    def __init__(self, pipelines: PipelinePool[Transmitter], settings: TransmitterSettings) -> None:
        self.pipelines = pipelines
        self.settings = settings
        self.metrics = ServiceMetrics("transmitter")
        self.feedback = SnrTracker(settings.feedback_smoothing, settings.feedback_stale_s)
        self._channel = pb_grpc.ChannelStub(connect_next_hop(settings)) \
            if settings.next_hop else None

    def _encode(self, request: pb.ImageRequest, profile: str) -> pb.Frame:
        transmitter = self.pipelines.get(profile)
        image = decode_image(request.image, max_pixels=self.settings.max_image_pixels)
        frame_id = request.frame_id or uuid.uuid4().hex
        alpha = None if request.alpha == 0 else check_alpha_target(request.alpha)
        frame = transmitter.encode(image, frame_id=frame_id, stream_id=request.stream_id, seq=request.seq,
                                   alpha=alpha, link=self._link(request), mode=request.rate_mode or None,
                                   max_symbols=request.max_symbols or None)
        self.metrics.stages(frame.timings)
        self.metrics.symbols(frame)
        log.info("frame %s: %dx%d, alpha %.3f, %d symbols, profile %s", frame_id, image.shape[1], image.shape[0],
                 frame.header.alpha, frame.n_symbols, profile or "-", extra=frame_ids(frame_id, request.stream_id))
        return frame_to_pb(frame)

    def _link(self, request: pb.ImageRequest) -> LinkState:
        """The SNR for this image: the request's own, else the stream's fresh feedback (docs/adapt.md)."""
        if request.HasField("snr_db"):
            return LinkState(request.snr_db, "request")
        return self.feedback.link(request.stream_id) if request.stream_id else LinkState(None, "none")

    @rpc_errors
    @observed
    def Encode(self, request: pb.ImageRequest, context: grpc.ServicerContext) -> pb.Frame:
        return self._encode(request, client_profile(context))

    def Send(self, request_iterator: Iterator[pb.ImageRequest], context: grpc.ServicerContext) -> Iterator[pb.Delivery]:
        """One Delivery per image, in order; a failed image gets a Delivery with its status, the stream goes on."""
        profile = client_profile(context)
        for request in request_iterator:
            with self.metrics.request("Send") as call:  # one count per image, under the code its Delivery carries
                delivery = self._send_one(request, profile, context, call)
            yield delivery

    def _send_one(self, request: pb.ImageRequest, profile: str, context: grpc.ServicerContext,
                  call: Call) -> pb.Delivery:
        frame_id = request.frame_id
        try:
            if self._channel is None:
                raise ValueError("this transmitter has no next hop configured; use Encode")
            frame = self._encode(request, profile)
            frame_id = frame.header.frame_id
            delivery = self._channel.Forward(pb.ChannelInput(frame=frame, config=request.channel),
                                             timeout=remaining_timeout(context))
            if request.stream_id and delivery.status.code == 0 and delivery.HasField("link"):
                self.feedback.report(request.stream_id, delivery.link.snr_db)  # CSI feedback for the next frames
        except Exception as exc:  # noqa: BLE001 - each image gets exactly one outcome, the stream survives
            code, message = log_failure(exc, f"frame {frame_id or '-'}")
            relay_retry_after(exc, context)  # the stream's trailers carry the last refused image's hint
            call.code = code.name
            delivery = pb.Delivery(frame_id=frame_id, stream_id=request.stream_id, seq=request.seq,
                                   status=pb.Status(code=code.value[0], message=message))
        delivery.request_id = request.request_id
        delivery.client_profile = profile
        return delivery
