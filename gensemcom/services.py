"""Composition root: build each service's pipeline from its settings and serve it.

This is the one place that chooses concrete backends; pipelines and adapters
take whatever objects they are given.
"""

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gensemcom.adapt.control import RateControl
from gensemcom.adapt.importance import ImportanceRanker
from gensemcom.adapt.table import RateTable

from gensemcom.channel.service import ChannelService
from gensemcom.receiver.inpaint import ClassicalInpainter, Inpainter
from gensemcom.receiver.estimate import ChannelPrior
from gensemcom.receiver.pipeline import Receiver
from gensemcom.receiver.service import ReceiverService
from gensemcom.shared.config import ChannelSettings, ReceiverSettings, ServiceSettings, TransmitterSettings
from gensemcom.shared.context import ContextStore
from gensemcom.shared.device import resolve_device
from gensemcom.shared.digital import DigitalScheme, warm_up
from gensemcom.shared.keycodecs import DeepJsccKey, KeyCodec, LinearKey
from gensemcom.shared.maskcodec import MaskCodec
from gensemcom.shared.observability import JsonFormatter, Observed
from gensemcom.shared.paths import shared_data_dir
from gensemcom.shared.pb import semcom_pb2
from gensemcom.shared.phy.mcs import choose_mcs
from gensemcom.shared.pilots import PilotPattern
from gensemcom.shared.pb import semcom_pb2_grpc as pb_grpc
from gensemcom.shared.rpc import Server
from gensemcom.shared.security import summary as security_summary
from gensemcom.transmitter.describe import Describer, StructuredDescriptor
from gensemcom.transmitter.faces import FACE_MODEL, FaceDetector
from gensemcom.transmitter.pipeline import Transmitter
from gensemcom.transmitter.profiles import BUILTIN_PROFILES, ClientProfile, PipelinePool, profiles_from
from gensemcom.transmitter.segment import make_segmenter
from gensemcom.transmitter.service import TransmitterService

log = logging.getLogger("gensemcom")

SERVICE_NAMES = {name: semcom_pb2.DESCRIPTOR.services_by_name[name].full_name
                 for name in ("Transmitter", "Channel", "Receiver")}


def build_transmitter(settings: TransmitterSettings) -> Transmitter:
    weights = settings.weights_dir or shared_data_dir() / "weights"
    return Transmitter(
        segmenter=make_segmenter(
            settings.segmenter, weights, alpha=settings.alpha, alpha_tolerance=settings.alpha_tolerance,
            yolo_weights=settings.yolo_weights, classes=settings.yolo_classes, confidence=settings.yolo_confidence,
            device=str(resolve_device(settings.device)) if settings.segmenter == "yolo" else "cpu",
        ),
        describer=build_describer(settings),
        key_codec=build_key_codec(settings),
        mask_codec=MaskCodec(),
        digital=digital_scheme(settings),
        pilots=PilotPattern(settings.pilots, settings.pilot_spacing, settings.pilot_length),
        memory=context_store(settings) if settings.context_memory else None,
        context_threshold=settings.context_threshold,
        refresh_every=settings.context_refresh,
        parts=tuple(settings.parts.split(",")),
        rate=rate_control(settings, weights) if settings.key_codec != LinearKey.id else None,
        max_symbols=settings.max_symbols,
    )


def rate_control(settings: TransmitterSettings, weights: Path) -> RateControl:
    """The rate table, target and importance ranker behind the adaptive modes (docs/adapt.md)."""
    table = (RateTable.load(settings.rate_table, settings.rate_metric, settings.rate_channel)
             if settings.rate_table else RateTable.shipped(settings.key_codec, settings.rate_metric,
                                                            settings.rate_channel))
    faces = FaceDetector(weights / FACE_MODEL) if settings.importance == "faces" else None
    return RateControl(table, settings.target_quality, mode=settings.rate_mode,
                       fallback_snr_db=settings.fallback_snr_db, mcs_margin_db=settings.mcs_margin_db,
                       mcs_spread_factor=settings.mcs_spread_factor,
                       boost_db=settings.importance_boost_db,
                       importance=ImportanceRanker(faces, settings.importance_share))


def context_store(settings: TransmitterSettings | ReceiverSettings) -> ContextStore:
    """The per-stream context memory; both ends must be configured alike (docs/memory.md)."""
    return ContextStore(settings.context_capacity, settings.context_rule, settings.context_max_streams)


def build_describer(settings: TransmitterSettings) -> Describer:
    """BLIP caption + structured description when a captioner is configured, else the structured one alone."""
    if not settings.captioner:
        return StructuredDescriptor()
    from gensemcom.transmitter.captioner.prompt import make_describer  # transformers loads only when used

    return make_describer(
        settings.captioner, settings.captioner_precision, settings.captioner_quant_type,
        settings.captioner_compute_dtype, device=str(resolve_device(settings.device)),
        max_tokens=settings.prompt_max_tokens,
    )


def digital_scheme(settings: TransmitterSettings) -> DigitalScheme:
    """The prompt/mask coding: a fixed MCS, or the best one for the expected SNR (open loop)."""
    mcs = settings.mcs if settings.link_snr_db is None else choose_mcs(settings.link_snr_db).index
    return DigitalScheme(code=settings.digital, mcs=mcs, repetition=settings.repetition)


DEFAULT_JSCC_SNR_DB = 10.0  # DeepJSCC's design SNR when the transmitter is told nothing about the link


def build_key_codec(settings: TransmitterSettings) -> KeyCodec:
    if settings.key_codec == LinearKey.id:
        return LinearKey(bandwidth_ratio=settings.bandwidth_ratio)
    from gensemcom.shared.jscc.zoo import load_pretrained  # torch loads only for the learned codec

    model = load_pretrained(settings.key_codec, resolve_device(settings.device))
    snr_db = next((v for v in (settings.jscc_snr_db, settings.link_snr_db) if v is not None), DEFAULT_JSCC_SNR_DB)
    return DeepJsccKey(model, bandwidth_ratio=settings.bandwidth_ratio, snr_db=snr_db)


def build_receiver(settings: ReceiverSettings) -> Receiver:
    """A receiver that decodes every key codec the project ships."""
    from gensemcom.shared.jscc.zoo import DEFAULT_MODEL, load_pretrained

    return Receiver(
        key_codecs=[LinearKey(), DeepJsccKey(load_pretrained(DEFAULT_MODEL, resolve_device(settings.device)))],
        mask_codec=MaskCodec(),
        inpainter=build_inpainter(settings),
        equaliser=settings.equaliser,
        estimator=settings.estimator,
        prior=ChannelPrior(coherence=settings.prior_coherence, doppler=settings.prior_doppler),
        memory=context_store(settings) if settings.context_memory else None,
        feather_px=settings.composite_feather_px,
        match_px=settings.composite_match_px,
    )


def build_inpainter(settings: ReceiverSettings) -> Inpainter:
    if settings.inpainter == "classical":
        return ClassicalInpainter(StructuredDescriptor())
    if not settings.inpaint_model:
        raise ValueError("--inpainter diffusion needs --inpaint-model (a diffusers inpainting model folder or id)")
    from gensemcom.receiver.inpaint_diffusion import DiffusionInpainter  # diffusers loads only when used

    return DiffusionInpainter(
        settings.inpaint_model,
        scheduler=None if settings.inpaint_scheduler == "default" else settings.inpaint_scheduler,
        steps=settings.inpaint_steps,
        guidance_scale=settings.inpaint_guidance,
        strength=settings.inpaint_strength,
        seed=settings.inpaint_seed,
        size=settings.inpaint_size or None,
        negative_prompt=settings.inpaint_negative_prompt,
        device=resolve_device(settings.device),
    )


def configure_logging(settings: ServiceSettings, service: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(service) if settings.log_format == "json"
                         else logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])


def _start(settings: ServiceSettings, service: str, add: Callable[[Any, Any], None], servicer: Observed) -> Server:
    server = Server(settings, [SERVICE_NAMES[service]])
    add(servicer, server.grpc_server)
    servicer.metrics.watch_server(lambda: server.limit.refused,
                                  lambda: sum(recent.repeats for recent in server.idempotent.recent.values()))
    port = server.start()
    if settings.metrics_port:
        servicer.metrics.serve(settings.host, settings.metrics_port)
        log.info("%s metrics on http://%s:%d/metrics", service.lower(), settings.host, settings.metrics_port)
    log.info("%s listening on %s:%d (next hop: %s; %s)", service.lower(), settings.host, port,
             settings.next_hop or "none", security_summary(settings))
    return server


#: What a client profile may override: the pipeline's settings, not where or how the service runs.
PROFILE_FIELDS = set(TransmitterSettings.model_fields) - set(ServiceSettings.model_fields) - {
    "profiles", "max_loaded_profiles", "max_image_pixels", "device", "weights_dir",
    "context_capacity", "context_rule", "context_max_streams",  # must match the receiver's store
    "feedback_smoothing", "feedback_stale_s",  # the service's one feedback tracker serves every profile
}


def transmitter_pool(settings: TransmitterSettings) -> PipelinePool[Transmitter]:
    """The service's own pipeline plus the client profiles, each built on first use."""
    profiles = profiles_from(BUILTIN_PROFILES, settings.profiles, PROFILE_FIELDS)
    # Validate every profile's values now: a bad profile is a startup error, not a failure on first use.
    resolved = {name: TransmitterSettings(**{**settings.model_dump(), **p.overrides}) for name, p in profiles.items()}

    def build(profile: ClientProfile) -> Transmitter:
        return build_transmitter(resolved[profile.name])

    return PipelinePool(build_transmitter(settings), profiles, build, settings.max_loaded_profiles)


def start_transmitter(settings: TransmitterSettings) -> Server:
    """Build and start the transmitter service; returns the running server (port in ``server.port``)."""
    service = TransmitterService(transmitter_pool(settings), settings)
    warm_up(digital_scheme(settings))
    return _start(settings, "Transmitter", pb_grpc.add_TransmitterServicer_to_server, service)


def start_channel(settings: ChannelSettings) -> Server:
    return _start(settings, "Channel", pb_grpc.add_ChannelServicer_to_server, ChannelService(settings))


def start_receiver(settings: ReceiverSettings) -> Server:
    receiver = build_receiver(settings)
    warm_up(DigitalScheme())  # the receiver decodes whatever MCS a frame names; one warms the whole stack
    device = resolve_device(settings.device)
    log.info("receiver: inpainter %s %s; key codecs %s; learned stages on %s%s", receiver.inpainter.name,
             dict(receiver.inpainter.settings), ", ".join(f"{c.id}/{c.version}" for c in receiver.key_codecs),
             device, " (no GPU found: diffusion will be slow)" if device.type == "cpu" else "")
    service = ReceiverService(receiver, settings.max_batch, settings.batch_wait_ms / 1e3, settings.max_queue)
    return _start(settings, "Receiver", pb_grpc.add_ReceiverServicer_to_server, service)


STARTERS: dict[str, Callable[[Any], Server]] = {
    "transmitter": start_transmitter,
    "channel": start_channel,
    "receiver": start_receiver,
}


def serve(service: str, settings: ServiceSettings) -> None:
    """Run one service in the foreground until SIGTERM/SIGINT (graceful shutdown)."""
    configure_logging(settings, service)
    STARTERS[service](settings).serve_forever()
