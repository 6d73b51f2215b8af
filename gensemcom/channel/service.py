"""gRPC adapter for the channel: Apply (Frame -> Frame) and Forward (apply, then the receiver).

Only IQ bytes are read and written here; segment meaning stays opaque, so a
radio process can replace the simulated model behind the same RPCs: with
``external`` set, each frame's IQ goes to that process (docs/sdr.md) and the
per-request model parameters do not apply.
"""

import dataclasses
import logging
import time

import grpc
import numpy as np

from gensemcom.channel.external import ExternalChannel, ExternalChannelError
from gensemcom.channel.external.spec import make_transport
from gensemcom.channel.link import ChannelParams, ChannelReport, apply_channel
from gensemcom.shared.config import ChannelSettings
from gensemcom.shared.observability import ServiceMetrics, frame_ids, observed
from gensemcom.shared.pb import semcom_pb2 as pb
from gensemcom.shared.pb import semcom_pb2_grpc as pb_grpc
from gensemcom.shared.rpc import FailedPrecondition, Unavailable, connect_next_hop, remaining_timeout, rpc_errors
from gensemcom.shared.frame import ChannelTruth, Timing
from gensemcom.shared.wire import MAX_REPORTED_GAINS, frame_iq_from_pb, frame_with_iq_pb, timing_to_pb, truth_to_pb

log = logging.getLogger(__name__)


def params_from_pb(defaults: ChannelParams, config: pb.ChannelConfig) -> ChannelParams:
    """Request fields that are set override the service defaults."""
    names = [f.name for f in dataclasses.fields(ChannelParams)]
    return defaults.override(**{name: getattr(config, name) for name in names if config.HasField(name)})


def report_to_pb(report: ChannelReport) -> pb.ChannelReport:
    gains = report.state.gains[:MAX_REPORTED_GAINS]
    numeric = {k: float(v) for k, v in report.applied.items() if isinstance(v, (int, float)) and k != "snr_db"}
    return pb.ChannelReport(
        model=report.model,
        snr_db=report.snr_db,
        noise_variance=report.state.no,
        seed=report.seed,
        coherence_symbols=report.coherence_symbols,
        gain_re=gains.real.tolist(),
        gain_im=gains.imag.tolist(),
        n_gains=report.state.gains.size,
        parameters=numeric,
        profile=str(report.applied.get("profile", "")),
    )


def _through(external: ExternalChannel, iq: np.ndarray, frame_id: str) -> np.ndarray:
    """The external channel's reply; its failures (a radio down, a dead process) are UNAVAILABLE, not a bad request."""
    try:
        return external(iq, frame_id)
    except ExternalChannelError as exc:
        raise Unavailable(str(exc)) from exc


class ChannelService(pb_grpc.ChannelServicer):
    def __init__(self, settings: ChannelSettings) -> None:
        self.defaults = ChannelParams(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(ChannelParams)})
        self._receiver = pb_grpc.ReceiverStub(connect_next_hop(settings)) \
            if settings.next_hop else None
        self._external: ExternalChannel | None = make_transport(settings.external) if settings.external else None
        self._attach_truth_default = settings.attach_truth
        self.metrics = ServiceMetrics("channel")

    def _apply(self, request: pb.ChannelInput, out: pb.Frame) -> pb.ChannelReport:
        """Write the frame after the channel into ``out`` (a field of the reply, so it is never copied again)."""
        start = time.perf_counter()
        iq = frame_iq_from_pb(request.frame)
        frame_id = request.frame.header.frame_id
        attach_truth = self._attach_truth(request.config)
        if self._external is None:
            params = params_from_pb(self.defaults, request.config)
            y, report = apply_channel(iq, params, frame_id)
            stage, report_pb, what = params.model, report_to_pb(report), f"{params.model} at {params.snr_db:.1f} dB"
            truth = ChannelTruth(report.state.per_symbol(y.size), report.state.no) if attach_truth else None
            self.metrics.snr(params.snr_db)
        else:
            if attach_truth:
                raise FailedPrecondition("an external channel cannot report its true gains (attach_truth)")
            truth = None
            y = _through(self._external, iq, frame_id)
            stage = what = f"external:{self._external.name}"
            report_pb = pb.ChannelReport(model=stage)  # what a radio did is not known here
        frame_with_iq_pb(request.frame, y, out)
        if truth is not None:
            out.truth.CopyFrom(truth_to_pb(truth))
        timing = Timing("channel", stage, (time.perf_counter() - start) * 1e3)
        out.timings.append(timing_to_pb(timing))
        self.metrics.stages([timing])
        log.info("frame %s: %s, %d symbols", frame_id, what, iq.size,
                 extra=frame_ids(frame_id, request.frame.header.stream_id))
        return report_pb

    def _attach_truth(self, config: pb.ChannelConfig) -> bool:
        return config.attach_truth if config.HasField("attach_truth") else self._attach_truth_default

    def close(self) -> None:
        """Release the external channel (its process or sockets), if any."""
        if self._external is not None:
            self._external.close()

    @rpc_errors
    @observed
    def Apply(self, request: pb.ChannelInput, context: grpc.ServicerContext) -> pb.ChannelOutput:
        reply = pb.ChannelOutput()
        reply.report.CopyFrom(self._apply(request, reply.frame))
        return reply

    @rpc_errors
    @observed
    def Forward(self, request: pb.ChannelInput, context: grpc.ServicerContext) -> pb.Delivery:
        if self._receiver is None:
            raise FailedPrecondition("this channel has no next hop configured; use Apply")
        frame = pb.Frame()
        report = self._apply(request, frame)
        delivery = self._receiver.Decode(frame, timeout=remaining_timeout(context))
        delivery.channel.CopyFrom(report)
        return delivery
