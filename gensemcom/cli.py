"""`semcom`: serve the three services, run the demo, probe health.

Every serve option can also come from an environment variable or a YAML file
(`--config`); the help of each option names its variable and default.
"""

from pathlib import Path
from typing import Annotated, Optional, TypeVar

import typer
from pydantic import ValidationError

from gensemcom.shared.config import (
    ChannelSettings,
    ReceiverSettings,
    ServiceSettings,
    TransmitterSettings,
    load_settings,
)

S = TypeVar("S", bound=ServiceSettings)

app = typer.Typer(
    help="gensemcom: generative semantic communication for images "
    "(transmitter -> channel -> receiver over gRPC).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
transmitter_app = typer.Typer(help="The transmitter service: image -> Frame of complex baseband symbols.",
                              no_args_is_help=True)
channel_app = typer.Typer(help="The channel service: fading and noise on a frame's IQ.", no_args_is_help=True)
receiver_app = typer.Typer(help="The receiver service: Frame -> reconstructed image.", no_args_is_help=True)
app.add_typer(transmitter_app, name="transmitter")
app.add_typer(channel_app, name="channel")
app.add_typer(receiver_app, name="receiver")


def _help(cls: type[ServiceSettings], name: str) -> str:
    """Option help from the settings field: its description, variable and default."""
    field = cls.model_fields[name]
    description = field.description or ServiceSettings.model_fields[name].description
    env = f"{cls.model_config.get('env_prefix', '')}{name}".upper()
    return f"{description} (env {env}; default {field.default!r})"


ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="YAML file with any of these settings.")]


def _common(cls: type[ServiceSettings]):
    """Annotated types for the options every service has."""
    return (
        Annotated[Optional[str], typer.Option(help=_help(cls, "host"))],
        Annotated[Optional[int], typer.Option(help=_help(cls, "port"))],
        Annotated[Optional[str], typer.Option(help=_help(cls, "next_hop"))],
        Annotated[Optional[int], typer.Option(help=_help(cls, "workers"))],
        Annotated[Optional[int], typer.Option(help=_help(cls, "max_message_mb"))],
        Annotated[Optional[str], typer.Option(help=_help(cls, "log_level"))],
    )


TxHost, TxPort, TxNext, TxWorkers, TxMax, TxLog = _common(TransmitterSettings)
ChHost, ChPort, ChNext, ChWorkers, ChMax, ChLog = _common(ChannelSettings)
RxHost, RxPort, RxNext, RxWorkers, RxMax, RxLog = _common(ReceiverSettings)


def _tls(cls: type[ServiceSettings]):
    """Annotated types for the TLS options every service has (tokens come from the environment or --config only)."""
    return (
        Annotated[Optional[Path], typer.Option(help=_help(cls, "tls_cert"))],
        Annotated[Optional[Path], typer.Option(help=_help(cls, "tls_key"))],
        Annotated[Optional[Path], typer.Option(help=_help(cls, "tls_ca"))],
        Annotated[Optional[bool], typer.Option(help=_help(cls, "tls_client_auth"))],
        Annotated[Optional[bool], typer.Option(help=_help(cls, "next_hop_tls"))],
    )


TxCert, TxKey, TxCa, TxClientAuth, TxNextTls = _tls(TransmitterSettings)
ChCert, ChKey, ChCa, ChClientAuth, ChNextTls = _tls(ChannelSettings)
RxCert, RxKey, RxCa, RxClientAuth, RxNextTls = _tls(ReceiverSettings)


def _observability(cls: type[ServiceSettings]):
    """Annotated types for the metrics and log-format options every service has (docs/observability.md)."""
    return (
        Annotated[Optional[int], typer.Option(help=_help(cls, "metrics_port"))],
        Annotated[Optional[str], typer.Option(help=_help(cls, "log_format"))],
    )


TxMetrics, TxLogFormat = _observability(TransmitterSettings)
ChMetrics, ChLogFormat = _observability(ChannelSettings)
RxMetrics, RxLogFormat = _observability(ReceiverSettings)


def _limits(cls: type[ServiceSettings]):
    """Annotated types for the backpressure and keepalive options every service has (docs/reliability.md)."""
    return (
        Annotated[Optional[int], typer.Option(help=_help(cls, "max_in_flight"))],
        Annotated[Optional[int], typer.Option(help=_help(cls, "retry_after_ms"))],
        Annotated[Optional[float], typer.Option(help=_help(cls, "keepalive_s"))],
        Annotated[Optional[float], typer.Option(help=_help(cls, "keepalive_timeout_s"))],
        Annotated[Optional[float], typer.Option(help=_help(cls, "grace_s"))],
    )


TxInFlight, TxRetryAfter, TxKeepalive, TxKeepaliveTimeout, TxGrace = _limits(TransmitterSettings)
ChInFlight, ChRetryAfter, ChKeepalive, ChKeepaliveTimeout, ChGrace = _limits(ChannelSettings)
RxInFlight, RxRetryAfter, RxKeepalive, RxKeepaliveTimeout, RxGrace = _limits(ReceiverSettings)

#: Settings a serve command takes from the environment or --config only: secrets stay off command lines
#: (and out of shell history, docs/security.md); client profiles are nested mappings.
NOT_OPTIONS = {"auth_token", "next_hop_token", "profiles"}


@transmitter_app.command("serve")
def transmitter_serve(
    config: ConfigOpt = None,
    host: TxHost = None,
    port: TxPort = None,
    next_hop: TxNext = None,
    workers: TxWorkers = None,
    max_message_mb: TxMax = None,
    log_level: TxLog = None,
    tls_cert: TxCert = None,
    tls_key: TxKey = None,
    tls_ca: TxCa = None,
    tls_client_auth: TxClientAuth = None,
    next_hop_tls: TxNextTls = None,
    metrics_port: TxMetrics = None,
    log_format: TxLogFormat = None,
    max_in_flight: TxInFlight = None,
    retry_after_ms: TxRetryAfter = None,
    keepalive_s: TxKeepalive = None,
    keepalive_timeout_s: TxKeepaliveTimeout = None,
    grace_s: TxGrace = None,
    dedupe_window: Annotated[Optional[int], typer.Option(help=_help(TransmitterSettings, "dedupe_window"))] = None,
    max_image_pixels: Annotated[Optional[int], typer.Option(help=_help(TransmitterSettings, "max_image_pixels"))] = None,
    segmenter: Annotated[Optional[str], typer.Option(help=_help(TransmitterSettings, "segmenter"))] = None,
    parts: Annotated[Optional[str], typer.Option(help=_help(TransmitterSettings, "parts"))] = None,
    weights_dir: Annotated[Optional[Path], typer.Option(help=_help(TransmitterSettings, "weights_dir"))] = None,
    alpha: Annotated[Optional[float], typer.Option(help=_help(TransmitterSettings, "alpha"))] = None,
    alpha_tolerance: Annotated[Optional[float], typer.Option(help=_help(TransmitterSettings, "alpha_tolerance"))] = None,
    yolo_weights: Annotated[Optional[str], typer.Option(help=_help(TransmitterSettings, "yolo_weights"))] = None,
    yolo_classes: Annotated[Optional[str], typer.Option(help=_help(TransmitterSettings, "yolo_classes"))] = None,
    yolo_confidence: Annotated[Optional[float], typer.Option(help=_help(TransmitterSettings, "yolo_confidence"))] = None,
    key_codec: Annotated[Optional[str], typer.Option(help=_help(TransmitterSettings, "key_codec"))] = None,
    bandwidth_ratio: Annotated[Optional[float], typer.Option(help=_help(TransmitterSettings, "bandwidth_ratio"))] = None,
    jscc_snr_db: Annotated[Optional[float], typer.Option(help=_help(TransmitterSettings, "jscc_snr_db"))] = None,
    device: Annotated[Optional[str], typer.Option(help=_help(TransmitterSettings, "device"))] = None,
    digital: Annotated[Optional[str], typer.Option(help=_help(TransmitterSettings, "digital"))] = None,
    mcs: Annotated[Optional[int], typer.Option(help=_help(TransmitterSettings, "mcs"))] = None,
    link_snr_db: Annotated[Optional[float], typer.Option(help=_help(TransmitterSettings, "link_snr_db"))] = None,
    repetition: Annotated[Optional[int], typer.Option(help=_help(TransmitterSettings, "repetition"))] = None,
    pilots: Annotated[Optional[int], typer.Option(help=_help(TransmitterSettings, "pilots"))] = None,
    pilot_spacing: Annotated[Optional[int], typer.Option(help=_help(TransmitterSettings, "pilot_spacing"))] = None,
    pilot_length: Annotated[Optional[int], typer.Option(help=_help(TransmitterSettings, "pilot_length"))] = None,
    captioner: Annotated[Optional[str], typer.Option(help=_help(TransmitterSettings, "captioner"))] = None,
    captioner_precision: Annotated[
        Optional[str], typer.Option(help=_help(TransmitterSettings, "captioner_precision"))
    ] = None,
    captioner_quant_type: Annotated[Optional[str], typer.Option(help=_help(TransmitterSettings, "captioner_quant_type"))] = None,
    captioner_compute_dtype: Annotated[Optional[str], typer.Option(help=_help(TransmitterSettings, "captioner_compute_dtype"))] = None,
    prompt_max_tokens: Annotated[Optional[int], typer.Option(help=_help(TransmitterSettings, "prompt_max_tokens"))] = None,
    max_loaded_profiles: Annotated[
        Optional[int], typer.Option(help=_help(TransmitterSettings, "max_loaded_profiles"))
    ] = None,
    context_memory: Annotated[Optional[bool], typer.Option(help=_help(TransmitterSettings, "context_memory"))] = None,
    context_capacity: Annotated[Optional[int], typer.Option(help=_help(TransmitterSettings, "context_capacity"))] = None,
    context_rule: Annotated[Optional[str], typer.Option(help=_help(TransmitterSettings, "context_rule"))] = None,
    context_max_streams: Annotated[Optional[int], typer.Option(help=_help(TransmitterSettings, "context_max_streams"))] = None,
    context_threshold: Annotated[Optional[float], typer.Option(help=_help(TransmitterSettings, "context_threshold"))] = None,
    context_refresh: Annotated[Optional[int], typer.Option(help=_help(TransmitterSettings, "context_refresh"))] = None,
    rate_mode: Annotated[Optional[str], typer.Option(help=_help(TransmitterSettings, "rate_mode"))] = None,
    rate_table: Annotated[Optional[Path], typer.Option(help=_help(TransmitterSettings, "rate_table"))] = None,
    rate_metric: Annotated[Optional[str], typer.Option(help=_help(TransmitterSettings, "rate_metric"))] = None,
    rate_channel: Annotated[Optional[str], typer.Option(help=_help(TransmitterSettings, "rate_channel"))] = None,
    target_quality: Annotated[Optional[float], typer.Option(help=_help(TransmitterSettings, "target_quality"))] = None,
    fallback_snr_db: Annotated[Optional[float], typer.Option(help=_help(TransmitterSettings, "fallback_snr_db"))] = None,
    mcs_margin_db: Annotated[Optional[float], typer.Option(help=_help(TransmitterSettings, "mcs_margin_db"))] = None,
    mcs_spread_factor: Annotated[
        Optional[float], typer.Option(help=_help(TransmitterSettings, "mcs_spread_factor"))
    ] = None,
    importance: Annotated[Optional[str], typer.Option(help=_help(TransmitterSettings, "importance"))] = None,
    importance_share: Annotated[Optional[float], typer.Option(help=_help(TransmitterSettings, "importance_share"))] = None,
    importance_boost_db: Annotated[
        Optional[float], typer.Option(help=_help(TransmitterSettings, "importance_boost_db"))
    ] = None,
    feedback_smoothing: Annotated[
        Optional[float], typer.Option(help=_help(TransmitterSettings, "feedback_smoothing"))
    ] = None,
    feedback_stale_s: Annotated[Optional[float], typer.Option(help=_help(TransmitterSettings, "feedback_stale_s"))] = None,
    max_symbols: Annotated[Optional[int], typer.Option(help=_help(TransmitterSettings, "max_symbols"))] = None,
) -> None:
    """Serve the transmitter (gRPC Transmitter.Encode / Transmitter.Send, health, reflection)."""
    settings = _settings(TransmitterSettings, config, locals())
    from gensemcom.services import serve

    serve("transmitter", settings)


@channel_app.command("serve")
def channel_serve(
    config: ConfigOpt = None,
    host: ChHost = None,
    port: ChPort = None,
    next_hop: ChNext = None,
    workers: ChWorkers = None,
    max_message_mb: ChMax = None,
    log_level: ChLog = None,
    tls_cert: ChCert = None,
    tls_key: ChKey = None,
    tls_ca: ChCa = None,
    tls_client_auth: ChClientAuth = None,
    next_hop_tls: ChNextTls = None,
    metrics_port: ChMetrics = None,
    log_format: ChLogFormat = None,
    max_in_flight: ChInFlight = None,
    retry_after_ms: ChRetryAfter = None,
    keepalive_s: ChKeepalive = None,
    keepalive_timeout_s: ChKeepaliveTimeout = None,
    grace_s: ChGrace = None,
    dedupe_window: Annotated[Optional[int], typer.Option(help=_help(ChannelSettings, "dedupe_window"))] = None,
    model: Annotated[Optional[str], typer.Option(help=_help(ChannelSettings, "model"))] = None,
    snr_db: Annotated[Optional[float], typer.Option(help=_help(ChannelSettings, "snr_db"))] = None,
    seed: Annotated[Optional[int], typer.Option(help=_help(ChannelSettings, "seed"))] = None,
    coherence_symbols: Annotated[Optional[int], typer.Option(help=_help(ChannelSettings, "coherence_symbols"))] = None,
    k_factor: Annotated[Optional[float], typer.Option(help=_help(ChannelSettings, "k_factor"))] = None,
    doppler: Annotated[Optional[float], typer.Option(help=_help(ChannelSettings, "doppler"))] = None,
    profile: Annotated[Optional[str], typer.Option(help=_help(ChannelSettings, "profile"))] = None,
    delay_spread: Annotated[Optional[float], typer.Option(help=_help(ChannelSettings, "delay_spread"))] = None,
    n_subcarriers: Annotated[Optional[int], typer.Option(help=_help(ChannelSettings, "n_subcarriers"))] = None,
    cfo: Annotated[Optional[float], typer.Option(help=_help(ChannelSettings, "cfo"))] = None,
    phase_noise: Annotated[Optional[float], typer.Option(help=_help(ChannelSettings, "phase_noise"))] = None,
    path_loss_db: Annotated[Optional[float], typer.Option(help=_help(ChannelSettings, "path_loss_db"))] = None,
    external: Annotated[Optional[str], typer.Option(help=_help(ChannelSettings, "external"))] = None,
    attach_truth: Annotated[Optional[bool], typer.Option(help=_help(ChannelSettings, "attach_truth"))] = None,
) -> None:
    """Serve the channel (gRPC Channel.Apply / Channel.Forward, health, reflection)."""
    settings = _settings(ChannelSettings, config, locals())
    from gensemcom.services import serve

    serve("channel", settings)


@channel_app.command(
    "ber-curves",
    add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def channel_ber_curves(ctx: typer.Context) -> None:
    """BER/BLER vs Es/N0 for every modulation and a few MCS, theory overlaid (PNG + JSON). Options: --help."""
    from gensemcom.channel.curves import main

    raise typer.Exit(main(ctx.args))


@channel_app.command(
    "external-sim",
    add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def channel_external_sim(ctx: typer.Context) -> None:
    """Reference external channel process: framed cf32 bursts on stdin/stdout, or ZMQ. Options: --help."""
    from gensemcom.channel.external_sim import main

    raise typer.Exit(main(ctx.args, prog="semcom channel external-sim"))


@receiver_app.command("serve")
def receiver_serve(
    config: ConfigOpt = None,
    host: RxHost = None,
    port: RxPort = None,
    next_hop: RxNext = None,
    workers: RxWorkers = None,
    max_message_mb: RxMax = None,
    log_level: RxLog = None,
    tls_cert: RxCert = None,
    tls_key: RxKey = None,
    tls_ca: RxCa = None,
    tls_client_auth: RxClientAuth = None,
    next_hop_tls: RxNextTls = None,
    metrics_port: RxMetrics = None,
    log_format: RxLogFormat = None,
    max_in_flight: RxInFlight = None,
    retry_after_ms: RxRetryAfter = None,
    keepalive_s: RxKeepalive = None,
    keepalive_timeout_s: RxKeepaliveTimeout = None,
    grace_s: RxGrace = None,
    dedupe_window: Annotated[Optional[int], typer.Option(help=_help(ReceiverSettings, "dedupe_window"))] = None,
    max_batch: Annotated[Optional[int], typer.Option(help=_help(ReceiverSettings, "max_batch"))] = None,
    batch_wait_ms: Annotated[Optional[float], typer.Option(help=_help(ReceiverSettings, "batch_wait_ms"))] = None,
    max_queue: Annotated[Optional[int], typer.Option(help=_help(ReceiverSettings, "max_queue"))] = None,
    equaliser: Annotated[Optional[str], typer.Option(help=_help(ReceiverSettings, "equaliser"))] = None,
    estimator: Annotated[Optional[str], typer.Option(help=_help(ReceiverSettings, "estimator"))] = None,
    prior_coherence: Annotated[Optional[int], typer.Option(help=_help(ReceiverSettings, "prior_coherence"))] = None,
    prior_doppler: Annotated[Optional[float], typer.Option(help=_help(ReceiverSettings, "prior_doppler"))] = None,
    context_memory: Annotated[Optional[bool], typer.Option(help=_help(ReceiverSettings, "context_memory"))] = None,
    context_capacity: Annotated[Optional[int], typer.Option(help=_help(ReceiverSettings, "context_capacity"))] = None,
    context_rule: Annotated[Optional[str], typer.Option(help=_help(ReceiverSettings, "context_rule"))] = None,
    context_max_streams: Annotated[Optional[int], typer.Option(help=_help(ReceiverSettings, "context_max_streams"))] = None,
    inpainter: Annotated[Optional[str], typer.Option(help=_help(ReceiverSettings, "inpainter"))] = None,
    inpaint_model: Annotated[Optional[str], typer.Option(help=_help(ReceiverSettings, "inpaint_model"))] = None,
    inpaint_scheduler: Annotated[Optional[str], typer.Option(help=_help(ReceiverSettings, "inpaint_scheduler"))] = None,
    inpaint_steps: Annotated[Optional[int], typer.Option(help=_help(ReceiverSettings, "inpaint_steps"))] = None,
    inpaint_guidance: Annotated[Optional[float], typer.Option(help=_help(ReceiverSettings, "inpaint_guidance"))] = None,
    inpaint_strength: Annotated[Optional[float], typer.Option(help=_help(ReceiverSettings, "inpaint_strength"))] = None,
    inpaint_seed: Annotated[Optional[int], typer.Option(help=_help(ReceiverSettings, "inpaint_seed"))] = None,
    inpaint_size: Annotated[Optional[int], typer.Option(help=_help(ReceiverSettings, "inpaint_size"))] = None,
    inpaint_negative_prompt: Annotated[Optional[str], typer.Option(help=_help(ReceiverSettings, "inpaint_negative_prompt"))] = None,
    composite_feather_px: Annotated[Optional[int], typer.Option(help=_help(ReceiverSettings, "composite_feather_px"))] = None,
    composite_match_px: Annotated[Optional[int], typer.Option(help=_help(ReceiverSettings, "composite_match_px"))] = None,
    device: Annotated[Optional[str], typer.Option(help=_help(ReceiverSettings, "device"))] = None,
) -> None:
    """Serve the receiver (gRPC Receiver.Decode, health, reflection)."""
    settings = _settings(ReceiverSettings, config, locals())
    from gensemcom.services import serve

    serve("receiver", settings)


def _settings(cls: type[S], config: Path | None, values: dict) -> S:
    """The service's settings from a serve command's locals (flags > environment > --config > defaults); a
    bad value ends the command with one line per problem, naming the option, instead of a traceback."""
    flags = {k: v for k, v in values.items() if k != "config"}
    try:
        return load_settings(cls, config, **flags)
    except ValidationError as exc:
        lines = [f"--{'-'.join(str(part) for part in error['loc']).replace('_', '-')}: {error['msg']}"
                 for error in exc.errors()]
    except (FileNotFoundError, ValueError) as exc:
        lines = [str(exc)]
    typer.echo("error: invalid settings\n  " + "\n  ".join(lines), err=True)
    raise typer.Exit(2)


@app.command()
def demo(
    input: Annotated[
        Optional[list[Path]],
        typer.Option("--input", "-i", help="Image folder(s); default: ../shared/data/kodak24 and ../shared/data/people."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Output folder for panels and metrics.json.")] = Path("out"),
    model: Annotated[str, typer.Option(help="Channel model: awgn, rayleigh, rician or tdl.")] = "awgn",
    snr_db: Annotated[float, typer.Option(help="Es/N0 per complex symbol, dB.")] = 15.0,
    seed: Annotated[int, typer.Option(help="Channel seed (each frame mixes in its id).")] = 0,
    limit: Annotated[Optional[int], typer.Option(help="Send at most this many images.")] = None,
    target: Annotated[
        Optional[str],
        typer.Option(help="Use a running transmitter at HOST:PORT instead of starting the three services."),
    ] = None,
) -> None:
    """Start the three services on free loopback ports, stream images through them, write panels and metrics."""
    from gensemcom.demo import run_demo

    raise typer.Exit(run_demo(input, out, model=model, snr_db=snr_db, seed=seed, limit=limit, target=target))


@app.command()
def health(
    address: Annotated[str, typer.Argument(help="HOST:PORT of a service.")],
    service: Annotated[str, typer.Option(help="Service name to check; '' = the whole server.")] = "",
    tls_ca: Annotated[Optional[Path], typer.Option(help="PEM CA of the service's certificate: probe over TLS.")] = None,
    tls_cert: Annotated[Optional[Path], typer.Option(help="PEM client certificate (mutual TLS).")] = None,
    tls_key: Annotated[Optional[Path], typer.Option(help="PEM private key of --tls-cert.")] = None,
) -> None:
    """Exit 0 if the service at ADDRESS answers grpc.health.v1 SERVING."""
    from gensemcom.shared.healthprobe import main

    tls = [arg for flag, path in (("--tls-ca", tls_ca), ("--tls-cert", tls_cert), ("--tls-key", tls_key))
           if path is not None for arg in (flag, str(path))]
    raise typer.Exit(main([address, "--service", service, *tls]))


@app.command()
def certs(
    out: Annotated[Path, typer.Option(help="Folder for ca.pem, server.pem, client.pem and keys.")] = Path("certs"),
    hosts: Annotated[
        str, typer.Option(help="Comma-separated host names and IP addresses the server certificate is valid for.")
    ] = "localhost,127.0.0.1,transmitter,channel,receiver",
    days: Annotated[int, typer.Option(help="Validity in days (short: these are development certificates).")] = 30,
    force: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
) -> None:
    """Make a development CA and server and client certificates for TLS and mutual TLS (docs/security.md)."""
    from gensemcom.certs import write_dev_certs  # cryptography loads only for this command

    try:
        files = write_dev_certs(out, hosts.split(","), days=days, force=force)
    except (FileExistsError, ValueError) as error:
        typer.echo(f"semcom certs: {error}", err=True)
        raise typer.Exit(1) from None
    for path in files.paths():
        typer.echo(str(path))


@app.command()
def load(
    target: Annotated[str, typer.Option(help="Transmitter HOST:PORT; loopback only unless --allow-remote.")],
    images: Annotated[
        Optional[Path], typer.Option(help="Image folder, read once and cycled; default ../shared/data/kodak24.")
    ] = None,
    rate: Annotated[Optional[float], typer.Option(help="Open loop: requests scheduled per second (≤ 10000).")] = None,
    concurrency: Annotated[
        Optional[int], typer.Option(help="Closed loop: workers, each sending when its last request ends (≤ 1024).")
    ] = None,
    duration: Annotated[float, typer.Option(help="Seconds to send for (≤ 3600).")] = 10.0,
    requests: Annotated[Optional[int], typer.Option(help="Stop after this many requests (≤ 1000000).")] = None,
    arrivals: Annotated[str, typer.Option(help="Open loop: 'uniform' or 'poisson' arrivals.")] = "uniform",
    max_in_flight: Annotated[int, typer.Option(help="Open loop: outstanding requests before CLIENT_OVERLOAD.")] = 64,
    timeout: Annotated[float, typer.Option(help="Deadline of each attempt, s.")] = 30.0,
    retries: Annotated[int, typer.Option(help="Retries on UNAVAILABLE / RESOURCE_EXHAUSTED, backing off.")] = 0,
    image_size: Annotated[Optional[str], typer.Option(help="Downscale images to fit WxH, e.g. 128x96.")] = None,
    model: Annotated[str, typer.Option(help="Channel model: awgn, rayleigh, rician or tdl.")] = "awgn",
    snr_db: Annotated[float, typer.Option(help="Es/N0 per complex symbol, dB.")] = 15.0,
    seed: Annotated[int, typer.Option(help="Seed of Poisson arrivals and of the channel.")] = 0,
    allow_remote: Annotated[bool, typer.Option(help="Allow a non-loopback target (you name it, you consent).")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Write the report as JSON here.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Write a PNG plot of the latencies here.")] = None,
    raw: Annotated[bool, typer.Option(help="Put every request (start, latency, status) in the JSON.")] = False,
) -> None:
    """Load a transmitter: open loop (--rate) or closed loop (--concurrency); latency, throughput, outcomes."""
    from gensemcom.load import LoadSettings, main, parse_size

    try:
        settings = LoadSettings(
            target, images=images, rate=rate, concurrency=concurrency, duration_s=duration, requests=requests,
            arrivals=arrivals, max_in_flight=max_in_flight, timeout_s=timeout, retries=retries,
            image_size=parse_size(image_size) if image_size else None, model=model, snr_db=snr_db, seed=seed,
            allow_remote=allow_remote,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    raise typer.Exit(main(settings, out=out, plot_path=plot, raw=raw))


_PASS_THROUGH = {"add_help_option": False,
                 "context_settings": {"allow_extra_args": True, "ignore_unknown_options": True}}


def _run_sub_app(module: str, ctx: typer.Context, prog: str) -> None:
    """Run the typer app of ``module`` on the remaining arguments.

    Its import (torch, transformers, peft) takes seconds, so it happens only when the command runs,
    not every time ``semcom`` starts a service.
    """
    import importlib

    sub_app = importlib.import_module(module).app
    typer.main.get_command(sub_app)(args=ctx.args or ["--help"], prog_name=prog)


@app.command("jscc", **_PASS_THROUGH)
def jscc(ctx: typer.Context) -> None:
    """The DeepJSCC key-region codec: train, and evaluate on Kodak (`semcom jscc eval --help`)."""
    _run_sub_app("gensemcom.shared.jscc.cli", ctx, "semcom jscc")


@app.command("eval", **_PASS_THROUGH)
def evaluate(ctx: typer.Context) -> None:
    """Compare ours with the paper's baselines over SNR, 1 − α and channel; report (`semcom eval run --help`)."""
    _run_sub_app("gensemcom.eval.cli", ctx, "semcom eval")


@app.command("captioner", **_PASS_THROUGH)
def captioner(ctx: typer.Context) -> None:
    """The BLIP captioner: QLoRA fine-tuning with the paper's losses (`semcom captioner finetune --help`)."""
    _run_sub_app("gensemcom.transmitter.captioner.cli", ctx, "semcom captioner")


if __name__ == "__main__":
    app()


@app.command("adapt", **_PASS_THROUGH)
def adapt(ctx: typer.Context) -> None:
    """Adaptive and importance-aware rate: the SNR → ratio table, and its evaluation (`semcom adapt --help`)."""
    _run_sub_app("gensemcom.adapt.cli", ctx, "semcom adapt")
