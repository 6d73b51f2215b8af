"""One typed settings object per service.

Values come, highest priority first, from command-line flags, environment
variables (``SEMCOM_TX_*``, ``SEMCOM_CH_*``, ``SEMCOM_RX_*``), an optional YAML
file, and the defaults below. ``semcom <service> serve --help`` lists them.
"""

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

from gensemcom.shared.frame import PARTS, check_parts
from gensemcom.shared.pilots import PilotPattern


Port = Annotated[int, Field(ge=0, le=65535)]


class ServiceSettings(BaseSettings):
    """What every service has: where it listens, where it forwards, how big and busy it may get."""

    # Errors name the field and the rule but never echo the input: it may hold a token.
    model_config = SettingsConfigDict(extra="forbid", hide_input_in_errors=True)

    host: str = Field("127.0.0.1", description="interface to listen on (0.0.0.0 in containers)")
    port: Port = Field(0, description="TCP port; 0 picks a free one")
    next_hop: str = Field("", description="address of the next service in the chain (host:port)")
    workers: int = Field(8, ge=1, le=256, description="gRPC worker threads")
    max_message_mb: int = Field(64, ge=1, le=1024, description="largest gRPC message, sent or received (MiB)")
    grace_s: float = Field(10.0, ge=0, description="on SIGTERM, time given to in-flight requests")
    # Backpressure and faults: docs/reliability.md.
    max_in_flight: int = Field(
        64, ge=1, le=100_000,
        description="calls held at once, waiting for a worker included; more get RESOURCE_EXHAUSTED + retry-after-ms",
    )
    retry_after_ms: int = Field(
        200, ge=0, le=600_000, description="wait a refused caller is told in the retry-after-ms trailing metadata"
    )
    keepalive_s: float = Field(
        30.0, ge=1, le=7200, description="HTTP/2 keepalive ping interval on every connection (to and from this service)"
    )
    keepalive_timeout_s: float = Field(
        10.0, ge=1, le=600, description="a connection whose keepalive ping is unanswered this long is dropped"
    )
    dedupe_window: int = Field(
        64, ge=0, le=65_536,
        description="frames whose outcome Decode (receiver) and Forward (channel) remember, so a retried frame id "
        "is answered, not processed twice; 0 = off",
    )
    log_level: str = Field("INFO", description="Python logging level")
    log_format: Literal["text", "json"] = Field(
        "text", description="log lines as text, or one JSON object each with frame_id/stream_id fields"
    )
    metrics_port: Port = Field(0, description="serve Prometheus /metrics over HTTP on this port; 0 = off")
    tls_cert: Path | None = Field(
        None, description="PEM certificate this service presents: TLS on its port, and its client "
        "certificate on an mTLS next hop (docs/security.md)"
    )
    tls_key: Path | None = Field(None, description="PEM private key of --tls-cert")
    tls_ca: Path | None = Field(
        None, description="PEM CA bundle that client certificates (--tls-client-auth) and the next hop's certificate "
        "(--next-hop-tls; unset: system roots) must chain to"
    )
    tls_client_auth: bool = Field(False, description="mutual TLS: refuse callers without a certificate from --tls-ca")
    next_hop_tls: bool = Field(False, description="call the next hop over TLS, checking its certificate")
    # Tokens come from the environment or the YAML file, never a flag: flags show in `ps` and shell history.
    auth_token: SecretStr | None = Field(None, description="bearer token callers must send (health checks excepted)")
    next_hop_token: SecretStr | None = Field(None, description="bearer token sent to the next hop")

    @field_validator("auth_token", "next_hop_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        """A token travels as an HTTP/2 header value: non-empty printable ASCII without spaces."""
        text = None if value is None else value.get_secret_value()
        if text is not None and not (text and text.isascii() and text.isprintable() and " " not in text):
            raise ValueError("a token must be non-empty printable ASCII without spaces")
        return value

    @model_validator(mode="after")
    def _security_is_consistent(self) -> "ServiceSettings":
        """Refuse, at start-up, settings that would fail on first use or send a token in the clear."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        if self.tls_client_auth and (self.tls_cert is None or self.tls_ca is None):
            raise ValueError("tls_client_auth needs tls_cert, tls_key and tls_ca (the CA client certificates "
                             "chain to)")
        if self.auth_token is not None and self.tls_cert is None:
            raise ValueError("auth_token needs TLS (tls_cert, tls_key): over plaintext the token can be read "
                             "off the wire")
        if self.next_hop_token is not None and not self.next_hop_tls:
            raise ValueError("next_hop_token needs next_hop_tls: over plaintext the token can be read off the wire")
        return self


class TransmitterSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SEMCOM_TX_", extra="forbid")

    port: Port = 50051
    next_hop: str = "127.0.0.1:50052"
    segmenter: Literal["mediapipe", "saliency", "yolo", "whole"] = Field(
        "mediapipe",
        description="key-region segmenter: mediapipe (people) or yolo (COCO classes, needs weights), "
        "both falling back to saliency when they find nothing; whole = every pixel (DeepJSCC on the image)",
    )
    parts: str = Field(
        ",".join(PARTS),
        description="what each frame carries, comma-separated from mask,prompt,key (baselines send less: "
        "prompt = DirectlyGen, mask,prompt = Alledge, mask,key = HumanOnly)",
    )

    @field_validator("parts")
    @classmethod
    def _parts(cls, value: str) -> str:
        return ",".join(check_parts([p.strip() for p in value.split(",") if p.strip()]))

    alpha: float | None = Field(
        None, gt=0, lt=1,
        description="target share of pixels in the key region (the paper's α); unset: the segmenter's own mask",
    )
    alpha_tolerance: float = Field(
        0.02, ge=0, lt=1, description="accepted |achieved α - target|; the achieved α is what is reported"
    )
    yolo_weights: str = Field(
        "yolo11n-seg.pt",
        description="YOLO-seg weights: a file, a name looked up in <weights_dir>/yolo/, or a model YAML "
        "(random weights); never downloaded",
    )
    yolo_classes: str = Field(
        "person", description="COCO classes forming the key region: names or ids, comma-separated, or 'all'"
    )
    yolo_confidence: float = Field(0.25, ge=0, le=1, description="minimum YOLO detection confidence")
    weights_dir: Path | None = Field(None, description="folder with model weights (default: ../shared/data/weights)")
    key_codec: Literal["deepjscc-afgdn", "linear-dct"] = Field(
        "deepjscc-afgdn", description="key-region codec: the shipped DeepJSCC model, or the linear DCT codec"
    )
    bandwidth_ratio: float = Field(
        1 / 6, gt=0, le=1,
        description="key-region channel uses per source dimension (pixel x colour); DeepJSCC offers 1/24, 1/12, 1/6",
    )
    jscc_snr_db: float | None = Field(
        None, ge=-10, le=40, description="SNR the DeepJSCC encoder is conditioned on (default: --link-snr-db, else 10)"
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="compute device for learned stages")
    digital: Literal["ldpc", "repetition"] = Field(
        "ldpc", description="code for prompt and mask: 5G LDPC + QAM at --mcs, or CRC + repetition + QPSK"
    )
    mcs: int = Field(2, ge=0, le=15, description="MCS index for prompt and mask (docs/phy.md; 2 = QPSK rate 1/4)")
    link_snr_db: float | None = Field(
        None, ge=-30, le=60, description="if set, choose the MCS for this expected SNR instead of --mcs"
    )
    repetition: int = Field(3, ge=1, le=15, description="copies of each bit when --digital repetition")
    pilots: int = Field(64, ge=4, le=4096, description="preamble: pilot symbols at the start of each frame")
    pilot_spacing: int = Field(
        128, ge=0, le=1_000_000, description="a pilot burst starts every this many symbols after the preamble; 0 = none"
    )
    pilot_length: int = Field(4, ge=0, le=4096, description="pilot symbols per burst (0 with --pilot-spacing 0)")

    @model_validator(mode="after")
    def _pilot_pattern(self) -> "TransmitterSettings":
        PilotPattern(self.pilots, self.pilot_spacing, self.pilot_length)  # raises ValueError with the reason
        return self
    max_image_pixels: int = Field(40_000_000, ge=256, description="larger images are refused")
    captioner: str = Field(
        "", description="BLIP model id or local folder for the global caption (empty: structured descriptor only)"
    )
    captioner_precision: Literal["fp32", "fp16", "int8", "int4-mixed"] = Field(
        "int4-mixed", description="captioner weights: int4-mixed keeps the paper's FP32 modules, the rest 4-bit"
    )
    captioner_quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit number format (bitsandbytes)")
    captioner_compute_dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="dtype the 4-bit layers compute in"
    )
    prompt_max_tokens: int = Field(
        60, ge=8, le=512, description="BLIP-tokenizer tokens for the prompt's words (the colour grid is extra)"
    )
    profiles: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="extra client profiles (YAML): name -> settings it overrides; built in: server, laptop, phone, iot",
    )
    max_loaded_profiles: int = Field(2, ge=1, le=16, description="client-profile pipelines kept in memory at once")
    context_memory: bool = Field(
        False, description="send a CONTEXT_REF instead of the prompt when a stream's background is unchanged"
    )
    context_capacity: int = Field(4, ge=1, le=1024, description="contexts kept per stream (must match the other end)")
    context_rule: Literal["fifo", "value", "correlation"] = Field(
        "fifo", description="which context to evict: oldest, least reused, or least similar to the new one"
    )
    context_max_streams: int = Field(16, ge=1, le=4096, description="streams with a context store (LRU)")
    context_threshold: float = Field(
        1.0, gt=0, le=1, description="prompt similarity counted as unchanged (1 = identical text; lower is lossy)"
    )
    context_refresh: int = Field(32, ge=0, description="send the full prompt again after this many references")
    # Adaptive and importance-aware rate (docs/adapt.md).
    rate_mode: Literal["fixed", "adaptive", "importance"] = Field(
        "fixed", description="key ratio and MCS: fixed settings, adaptive (SNR feedback + rate table), or "
        "importance (adaptive; under a budget faces/salient blocks are kept first); a request may choose its own"
    )
    rate_table: Path | None = Field(None, description="rate table JSON (default: the one shipped for the key codec)")
    rate_metric: Literal["psnr", "lpips"] = Field("psnr", description="quality the target is in")
    rate_channel: Literal["awgn", "rayleigh"] = Field(
        "awgn", description="channel family the table plans for (rayleigh: the SNR is an average over fades)"
    )
    target_quality: float = Field(28.0, gt=0, description="key-region target: PSNR in dB, or LPIPS")
    fallback_snr_db: float = Field(
        0.0, ge=-30, le=60, description="SNR planned for without fresh feedback (a safe, large ratio)"
    )
    mcs_margin_db: float = Field(1.0, ge=0, le=20, description="SNR margin when choosing the MCS per frame")
    mcs_spread_factor: float = Field(
        1.3, ge=0, le=5,
        description="extra MCS margin per dB of rms frame-to-frame SNR change seen in the feedback (fast fading)",
    )
    importance: Literal["faces", "saliency"] = Field(
        "faces", description="what ranks key blocks: detected faces (else saliency), or saliency alone"
    )
    importance_share: float = Field(0.25, gt=0, le=1, description="share of key blocks boosted when no face is found")
    importance_boost_db: float = Field(
        0.0, ge=0, le=12, description="power of important blocks over the rest, dB (experimental: docs/adapt.md)"
    )
    feedback_smoothing: float = Field(0.5, gt=0, le=1, description="weight of the newest SNR report in the average")
    feedback_stale_s: float = Field(10.0, gt=0, description="an SNR estimate older than this is not used")
    max_symbols: int = Field(0, ge=0, description="frame symbol budget, pilots included (0 = none)")


class ChannelSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SEMCOM_CH_", extra="forbid")

    port: Port = 50052
    next_hop: str = "127.0.0.1:50053"
    model: Literal["awgn", "rayleigh", "rician", "tdl"] = Field("awgn", description="channel model")
    snr_db: float = Field(20.0, ge=-30, le=60, description="Es/N0 per complex symbol, dB")
    seed: int | None = Field(None, ge=0, description="seed; each frame then draws from (seed, frame id)")
    coherence_symbols: int = Field(0, ge=0, description="block-fading length in symbols; 0 = one block per frame")
    k_factor: float = Field(0.0, ge=0, description="Rician K factor, linear (0 = Rayleigh)")
    doppler: float = Field(0.0, ge=0, lt=0.5, description="normalised Doppler fD*Ts; > 0 gives Clarke/Jakes fading")
    profile: Literal["A", "B", "C", "D", "E"] = Field("A", description="3GPP 38.901 TDL profile (model tdl)")
    delay_spread: float = Field(1.0, gt=0, description="TDL RMS delay spread in samples (model tdl)")
    n_subcarriers: int = Field(64, ge=8, le=4096, description="OFDM FFT size (model tdl)")
    cfo: float = Field(0.0, gt=-0.5, lt=0.5, description="carrier-frequency offset, fraction of the symbol rate")
    phase_noise: float = Field(0.0, ge=0, description="Wiener phase noise, oscillator linewidth x symbol time")
    path_loss_db: float = Field(0.0, ge=0, le=200, description="path loss in dB (SNR refers to transmit power)")
    attach_truth: bool = Field(
        False, description="attach the true per-symbol gains to each frame (for a perfect-CSI receiver)"
    )

    @model_validator(mode="after")
    def _truth_needs_a_model(self) -> "ChannelSettings":
        if self.attach_truth and self.external:
            raise ValueError("attach_truth needs the simulated channel: an external one cannot report its gains")
        return self
    external: str = Field(
        "",
        description="hand IQ to an external channel instead of the model (model options then do not apply): "
        "exec:COMMAND, zmq:TX_ADDRESS,RX_ADDRESS, replay:PREFIX or record:PREFIX=SPEC (docs/sdr.md)",
    )


class ReceiverSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SEMCOM_RX_", extra="forbid")

    port: Port = 50053
    max_batch: int = Field(8, ge=1, le=256, description="frames decoded together by the worker")
    batch_wait_ms: float = Field(5.0, ge=0, le=1000, description="longest wait for a batch to fill, ms")
    max_queue: int = Field(32, ge=1, le=4096, description="frames waiting beyond this get RESOURCE_EXHAUSTED")
    equaliser: Literal["auto", "mmse", "zf"] = Field(
        "auto", description="equaliser for the key-region symbols (auto: the one the key codec was designed for)"
    )
    estimator: Literal["lmmse", "ls", "perfect"] = Field(
        "lmmse", description="channel estimate from the pilots, or perfect (the channel's truth; needs attach_truth)"
    )
    prior_coherence: int = Field(
        0, ge=0, description="block length in symbols the estimator assumes; 0 = one block per frame"
    )
    prior_doppler: float = Field(
        0.0, ge=0, lt=0.5, description="normalised Doppler the estimator assumes; > 0 tracks time variation"
    )
    context_memory: bool = Field(True, description="keep generated backgrounds so CONTEXT_REF frames can reuse them")
    context_capacity: int = Field(4, ge=1, le=1024, description="contexts kept per stream (must match the other end)")
    context_rule: Literal["fifo", "value", "correlation"] = Field(
        "fifo", description="which context to evict: oldest, least reused, or least similar to the new one"
    )
    context_max_streams: int = Field(16, ge=1, le=4096, description="streams with a context store (LRU)")
    inpainter: Literal["classical", "diffusion"] = Field(
        "classical", description="background regeneration: classical (from the descriptor) or diffusion (diffusers)"
    )
    inpaint_model: str = Field(
        "", description="diffusers inpainting model folder or cached model id (needed for --inpainter diffusion)"
    )
    inpaint_scheduler: Literal[
        "default", "ddim", "pndm", "euler", "euler-a", "dpm++", "dpm++-karras", "unipc", "lcm"
    ] = Field("default", description="diffusion scheduler; default = the model's own")
    inpaint_steps: int = Field(25, ge=1, le=1000, description="diffusion steps")
    inpaint_guidance: float = Field(7.5, ge=0, le=50, description="classifier-free guidance scale")
    inpaint_strength: float = Field(1.0, gt=0, le=1, description="how far the background is noised before denoising")
    inpaint_seed: int = Field(0, ge=0, description="base seed; each frame's seed also depends on its content")
    inpaint_size: int = Field(0, ge=0, le=4096, description="longer side of the working image; 0 = model's native size")
    inpaint_negative_prompt: str = Field("", description="negative prompt for the diffusion inpainter")
    composite_feather_px: int = Field(3, ge=0, le=64, description="blend band at the key region's edge, pixels")
    composite_match_px: int = Field(
        8, ge=0, le=64, description="ring used to match the background's colours to the key region; 0 = off"
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="compute device for learned stages")


S = TypeVar("S", bound=ServiceSettings)


def load_settings(cls: type[S], config_file: Path | None = None, **flags: Any) -> S:
    """Build ``cls`` from flags (None = not given) > environment > YAML file > defaults."""
    if config_file is not None and not Path(config_file).is_file():
        raise FileNotFoundError(f"config file {config_file} does not exist")
    given = {k: v for k, v in flags.items() if v is not None}

    class _FromSources(cls):  # type: ignore[valid-type, misc]
        @classmethod
        def settings_customise_sources(
            cls_,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
            if config_file is not None:
                sources += (YamlConfigSettingsSource(settings_cls, yaml_file=config_file),)
            return sources

    return cls.model_validate(_FromSources(**given).model_dump())
