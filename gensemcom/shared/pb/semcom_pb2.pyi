from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SegmentKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEGMENT_KIND_UNSPECIFIED: _ClassVar[SegmentKind]
    SEGMENT_KIND_PILOT: _ClassVar[SegmentKind]
    SEGMENT_KIND_MASK: _ClassVar[SegmentKind]
    SEGMENT_KIND_PROMPT: _ClassVar[SegmentKind]
    SEGMENT_KIND_KEY_JSCC: _ClassVar[SegmentKind]
    SEGMENT_KIND_CONTEXT_REF: _ClassVar[SegmentKind]

class Modulation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODULATION_UNSPECIFIED: _ClassVar[Modulation]
    MODULATION_ANALOG: _ClassVar[Modulation]
    MODULATION_BPSK: _ClassVar[Modulation]
    MODULATION_QPSK: _ClassVar[Modulation]
    MODULATION_QAM16: _ClassVar[Modulation]
    MODULATION_QAM64: _ClassVar[Modulation]
    MODULATION_QAM256: _ClassVar[Modulation]

class ChannelCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_CODE_UNSPECIFIED: _ClassVar[ChannelCode]
    CHANNEL_CODE_NONE: _ClassVar[ChannelCode]
    CHANNEL_CODE_REPETITION: _ClassVar[ChannelCode]
    CHANNEL_CODE_LDPC: _ClassVar[ChannelCode]
SEGMENT_KIND_UNSPECIFIED: SegmentKind
SEGMENT_KIND_PILOT: SegmentKind
SEGMENT_KIND_MASK: SegmentKind
SEGMENT_KIND_PROMPT: SegmentKind
SEGMENT_KIND_KEY_JSCC: SegmentKind
SEGMENT_KIND_CONTEXT_REF: SegmentKind
MODULATION_UNSPECIFIED: Modulation
MODULATION_ANALOG: Modulation
MODULATION_BPSK: Modulation
MODULATION_QPSK: Modulation
MODULATION_QAM16: Modulation
MODULATION_QAM64: Modulation
MODULATION_QAM256: Modulation
CHANNEL_CODE_UNSPECIFIED: ChannelCode
CHANNEL_CODE_NONE: ChannelCode
CHANNEL_CODE_REPETITION: ChannelCode
CHANNEL_CODE_LDPC: ChannelCode

class IqSegment(_message.Message):
    __slots__ = ("kind", "modulation", "code", "repetition", "code_rate", "n_symbols", "n_payload_bits", "iq", "mcs")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODULATION_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    REPETITION_FIELD_NUMBER: _ClassVar[int]
    CODE_RATE_FIELD_NUMBER: _ClassVar[int]
    N_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    N_PAYLOAD_BITS_FIELD_NUMBER: _ClassVar[int]
    IQ_FIELD_NUMBER: _ClassVar[int]
    MCS_FIELD_NUMBER: _ClassVar[int]
    kind: SegmentKind
    modulation: Modulation
    code: ChannelCode
    repetition: int
    code_rate: float
    n_symbols: int
    n_payload_bits: int
    iq: bytes
    mcs: int
    def __init__(self, kind: _Optional[_Union[SegmentKind, str]] = ..., modulation: _Optional[_Union[Modulation, str]] = ..., code: _Optional[_Union[ChannelCode, str]] = ..., repetition: _Optional[int] = ..., code_rate: _Optional[float] = ..., n_symbols: _Optional[int] = ..., n_payload_bits: _Optional[int] = ..., iq: _Optional[bytes] = ..., mcs: _Optional[int] = ...) -> None: ...

class CodecInfo(_message.Message):
    __slots__ = ("id", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    version: str
    def __init__(self, id: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class KeyRegion(_message.Message):
    __slots__ = ("x", "y", "width", "height", "bandwidth_ratio", "params", "side", "block_power")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_RATIO_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    BLOCK_POWER_FIELD_NUMBER: _ClassVar[int]
    x: int
    y: int
    width: int
    height: int
    bandwidth_ratio: float
    params: _containers.RepeatedScalarFieldContainer[float]
    side: bytes
    block_power: bytes
    def __init__(self, x: _Optional[int] = ..., y: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., bandwidth_ratio: _Optional[float] = ..., params: _Optional[_Iterable[float]] = ..., side: _Optional[bytes] = ..., block_power: _Optional[bytes] = ...) -> None: ...

class RatePlan(_message.Message):
    __slots__ = ("mode", "snr_db", "snr_source", "metric", "target", "predicted", "budget", "important_blocks", "importance")
    MODE_FIELD_NUMBER: _ClassVar[int]
    SNR_DB_FIELD_NUMBER: _ClassVar[int]
    SNR_SOURCE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    IMPORTANT_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    IMPORTANCE_FIELD_NUMBER: _ClassVar[int]
    mode: str
    snr_db: float
    snr_source: str
    metric: str
    target: float
    predicted: float
    budget: int
    important_blocks: int
    importance: str
    def __init__(self, mode: _Optional[str] = ..., snr_db: _Optional[float] = ..., snr_source: _Optional[str] = ..., metric: _Optional[str] = ..., target: _Optional[float] = ..., predicted: _Optional[float] = ..., budget: _Optional[int] = ..., important_blocks: _Optional[int] = ..., importance: _Optional[str] = ...) -> None: ...

class FrameHeader(_message.Message):
    __slots__ = ("wire_version", "frame_id", "stream_id", "seq", "height", "width", "key_codec", "mask_codec", "prompt_codec", "key_region", "alpha", "tx_power", "segmenter", "describer", "pilot_spacing", "pilot_length", "rate_plan")
    WIRE_VERSION_FIELD_NUMBER: _ClassVar[int]
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    KEY_CODEC_FIELD_NUMBER: _ClassVar[int]
    MASK_CODEC_FIELD_NUMBER: _ClassVar[int]
    PROMPT_CODEC_FIELD_NUMBER: _ClassVar[int]
    KEY_REGION_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    TX_POWER_FIELD_NUMBER: _ClassVar[int]
    SEGMENTER_FIELD_NUMBER: _ClassVar[int]
    DESCRIBER_FIELD_NUMBER: _ClassVar[int]
    PILOT_SPACING_FIELD_NUMBER: _ClassVar[int]
    PILOT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    RATE_PLAN_FIELD_NUMBER: _ClassVar[int]
    wire_version: int
    frame_id: str
    stream_id: str
    seq: int
    height: int
    width: int
    key_codec: CodecInfo
    mask_codec: CodecInfo
    prompt_codec: CodecInfo
    key_region: KeyRegion
    alpha: float
    tx_power: float
    segmenter: str
    describer: str
    pilot_spacing: int
    pilot_length: int
    rate_plan: RatePlan
    def __init__(self, wire_version: _Optional[int] = ..., frame_id: _Optional[str] = ..., stream_id: _Optional[str] = ..., seq: _Optional[int] = ..., height: _Optional[int] = ..., width: _Optional[int] = ..., key_codec: _Optional[_Union[CodecInfo, _Mapping]] = ..., mask_codec: _Optional[_Union[CodecInfo, _Mapping]] = ..., prompt_codec: _Optional[_Union[CodecInfo, _Mapping]] = ..., key_region: _Optional[_Union[KeyRegion, _Mapping]] = ..., alpha: _Optional[float] = ..., tx_power: _Optional[float] = ..., segmenter: _Optional[str] = ..., describer: _Optional[str] = ..., pilot_spacing: _Optional[int] = ..., pilot_length: _Optional[int] = ..., rate_plan: _Optional[_Union[RatePlan, _Mapping]] = ...) -> None: ...

class ChannelTruth(_message.Message):
    __slots__ = ("gains", "noise_variance")
    GAINS_FIELD_NUMBER: _ClassVar[int]
    NOISE_VARIANCE_FIELD_NUMBER: _ClassVar[int]
    gains: bytes
    noise_variance: float
    def __init__(self, gains: _Optional[bytes] = ..., noise_variance: _Optional[float] = ...) -> None: ...

class StageTiming(_message.Message):
    __slots__ = ("hop", "stage", "ms")
    HOP_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    MS_FIELD_NUMBER: _ClassVar[int]
    hop: str
    stage: str
    ms: float
    def __init__(self, hop: _Optional[str] = ..., stage: _Optional[str] = ..., ms: _Optional[float] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("header", "segments", "timings", "truth")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    TRUTH_FIELD_NUMBER: _ClassVar[int]
    header: FrameHeader
    segments: _containers.RepeatedCompositeFieldContainer[IqSegment]
    timings: _containers.RepeatedCompositeFieldContainer[StageTiming]
    truth: ChannelTruth
    def __init__(self, header: _Optional[_Union[FrameHeader, _Mapping]] = ..., segments: _Optional[_Iterable[_Union[IqSegment, _Mapping]]] = ..., timings: _Optional[_Iterable[_Union[StageTiming, _Mapping]]] = ..., truth: _Optional[_Union[ChannelTruth, _Mapping]] = ...) -> None: ...

class ChannelConfig(_message.Message):
    __slots__ = ("model", "snr_db", "seed", "coherence_symbols", "k_factor", "doppler", "profile", "delay_spread", "n_subcarriers", "cfo", "phase_noise", "path_loss_db", "attach_truth")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SNR_DB_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    COHERENCE_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    K_FACTOR_FIELD_NUMBER: _ClassVar[int]
    DOPPLER_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    DELAY_SPREAD_FIELD_NUMBER: _ClassVar[int]
    N_SUBCARRIERS_FIELD_NUMBER: _ClassVar[int]
    CFO_FIELD_NUMBER: _ClassVar[int]
    PHASE_NOISE_FIELD_NUMBER: _ClassVar[int]
    PATH_LOSS_DB_FIELD_NUMBER: _ClassVar[int]
    ATTACH_TRUTH_FIELD_NUMBER: _ClassVar[int]
    model: str
    snr_db: float
    seed: int
    coherence_symbols: int
    k_factor: float
    doppler: float
    profile: str
    delay_spread: float
    n_subcarriers: int
    cfo: float
    phase_noise: float
    path_loss_db: float
    attach_truth: bool
    def __init__(self, model: _Optional[str] = ..., snr_db: _Optional[float] = ..., seed: _Optional[int] = ..., coherence_symbols: _Optional[int] = ..., k_factor: _Optional[float] = ..., doppler: _Optional[float] = ..., profile: _Optional[str] = ..., delay_spread: _Optional[float] = ..., n_subcarriers: _Optional[int] = ..., cfo: _Optional[float] = ..., phase_noise: _Optional[float] = ..., path_loss_db: _Optional[float] = ..., attach_truth: _Optional[bool] = ...) -> None: ...

class ChannelReport(_message.Message):
    __slots__ = ("model", "snr_db", "noise_variance", "seed", "coherence_symbols", "gain_re", "gain_im", "n_gains", "parameters", "profile")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SNR_DB_FIELD_NUMBER: _ClassVar[int]
    NOISE_VARIANCE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    COHERENCE_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    GAIN_RE_FIELD_NUMBER: _ClassVar[int]
    GAIN_IM_FIELD_NUMBER: _ClassVar[int]
    N_GAINS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    model: str
    snr_db: float
    noise_variance: float
    seed: int
    coherence_symbols: int
    gain_re: _containers.RepeatedScalarFieldContainer[float]
    gain_im: _containers.RepeatedScalarFieldContainer[float]
    n_gains: int
    parameters: _containers.ScalarMap[str, float]
    profile: str
    def __init__(self, model: _Optional[str] = ..., snr_db: _Optional[float] = ..., noise_variance: _Optional[float] = ..., seed: _Optional[int] = ..., coherence_symbols: _Optional[int] = ..., gain_re: _Optional[_Iterable[float]] = ..., gain_im: _Optional[_Iterable[float]] = ..., n_gains: _Optional[int] = ..., parameters: _Optional[_Mapping[str, float]] = ..., profile: _Optional[str] = ...) -> None: ...

class ChannelInput(_message.Message):
    __slots__ = ("frame", "config")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    frame: Frame
    config: ChannelConfig
    def __init__(self, frame: _Optional[_Union[Frame, _Mapping]] = ..., config: _Optional[_Union[ChannelConfig, _Mapping]] = ...) -> None: ...

class ChannelOutput(_message.Message):
    __slots__ = ("frame", "report")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    frame: Frame
    report: ChannelReport
    def __init__(self, frame: _Optional[_Union[Frame, _Mapping]] = ..., report: _Optional[_Union[ChannelReport, _Mapping]] = ...) -> None: ...

class LinkEstimate(_message.Message):
    __slots__ = ("snr_db", "noise_variance", "gain_re", "gain_im", "estimator", "equaliser", "estimation_error", "n_pilots")
    SNR_DB_FIELD_NUMBER: _ClassVar[int]
    NOISE_VARIANCE_FIELD_NUMBER: _ClassVar[int]
    GAIN_RE_FIELD_NUMBER: _ClassVar[int]
    GAIN_IM_FIELD_NUMBER: _ClassVar[int]
    ESTIMATOR_FIELD_NUMBER: _ClassVar[int]
    EQUALISER_FIELD_NUMBER: _ClassVar[int]
    ESTIMATION_ERROR_FIELD_NUMBER: _ClassVar[int]
    N_PILOTS_FIELD_NUMBER: _ClassVar[int]
    snr_db: float
    noise_variance: float
    gain_re: _containers.RepeatedScalarFieldContainer[float]
    gain_im: _containers.RepeatedScalarFieldContainer[float]
    estimator: str
    equaliser: str
    estimation_error: float
    n_pilots: int
    def __init__(self, snr_db: _Optional[float] = ..., noise_variance: _Optional[float] = ..., gain_re: _Optional[_Iterable[float]] = ..., gain_im: _Optional[_Iterable[float]] = ..., estimator: _Optional[str] = ..., equaliser: _Optional[str] = ..., estimation_error: _Optional[float] = ..., n_pilots: _Optional[int] = ...) -> None: ...

class SegmentOutcome(_message.Message):
    __slots__ = ("kind", "n_symbols", "decoded", "crc_ok", "detail")
    KIND_FIELD_NUMBER: _ClassVar[int]
    N_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    DECODED_FIELD_NUMBER: _ClassVar[int]
    CRC_OK_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    kind: SegmentKind
    n_symbols: int
    decoded: bool
    crc_ok: bool
    detail: str
    def __init__(self, kind: _Optional[_Union[SegmentKind, str]] = ..., n_symbols: _Optional[int] = ..., decoded: _Optional[bool] = ..., crc_ok: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class Status(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("frame_id", "stream_id", "seq", "request_id", "status", "height", "width", "image_png", "key_png", "mask_png", "prompt", "timings", "channel", "link", "segments", "key_codec", "inpainter", "segmenter", "describer", "alpha", "client_profile", "inpainter_settings", "context_reused", "symbols_saved", "rate_plan", "n_symbols")
    class InpainterSettingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_PNG_FIELD_NUMBER: _ClassVar[int]
    KEY_PNG_FIELD_NUMBER: _ClassVar[int]
    MASK_PNG_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    KEY_CODEC_FIELD_NUMBER: _ClassVar[int]
    INPAINTER_FIELD_NUMBER: _ClassVar[int]
    SEGMENTER_FIELD_NUMBER: _ClassVar[int]
    DESCRIBER_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    CLIENT_PROFILE_FIELD_NUMBER: _ClassVar[int]
    INPAINTER_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_REUSED_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_SAVED_FIELD_NUMBER: _ClassVar[int]
    RATE_PLAN_FIELD_NUMBER: _ClassVar[int]
    N_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    frame_id: str
    stream_id: str
    seq: int
    request_id: str
    status: Status
    height: int
    width: int
    image_png: bytes
    key_png: bytes
    mask_png: bytes
    prompt: str
    timings: _containers.RepeatedCompositeFieldContainer[StageTiming]
    channel: ChannelReport
    link: LinkEstimate
    segments: _containers.RepeatedCompositeFieldContainer[SegmentOutcome]
    key_codec: str
    inpainter: str
    segmenter: str
    describer: str
    alpha: float
    client_profile: str
    inpainter_settings: _containers.ScalarMap[str, str]
    context_reused: bool
    symbols_saved: int
    rate_plan: RatePlan
    n_symbols: int
    def __init__(self, frame_id: _Optional[str] = ..., stream_id: _Optional[str] = ..., seq: _Optional[int] = ..., request_id: _Optional[str] = ..., status: _Optional[_Union[Status, _Mapping]] = ..., height: _Optional[int] = ..., width: _Optional[int] = ..., image_png: _Optional[bytes] = ..., key_png: _Optional[bytes] = ..., mask_png: _Optional[bytes] = ..., prompt: _Optional[str] = ..., timings: _Optional[_Iterable[_Union[StageTiming, _Mapping]]] = ..., channel: _Optional[_Union[ChannelReport, _Mapping]] = ..., link: _Optional[_Union[LinkEstimate, _Mapping]] = ..., segments: _Optional[_Iterable[_Union[SegmentOutcome, _Mapping]]] = ..., key_codec: _Optional[str] = ..., inpainter: _Optional[str] = ..., segmenter: _Optional[str] = ..., describer: _Optional[str] = ..., alpha: _Optional[float] = ..., client_profile: _Optional[str] = ..., inpainter_settings: _Optional[_Mapping[str, str]] = ..., context_reused: _Optional[bool] = ..., symbols_saved: _Optional[int] = ..., rate_plan: _Optional[_Union[RatePlan, _Mapping]] = ..., n_symbols: _Optional[int] = ...) -> None: ...

class ImageRequest(_message.Message):
    __slots__ = ("image", "stream_id", "frame_id", "seq", "request_id", "channel", "alpha", "snr_db", "rate_mode", "max_symbols")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    SNR_DB_FIELD_NUMBER: _ClassVar[int]
    RATE_MODE_FIELD_NUMBER: _ClassVar[int]
    MAX_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    stream_id: str
    frame_id: str
    seq: int
    request_id: str
    channel: ChannelConfig
    alpha: float
    snr_db: float
    rate_mode: str
    max_symbols: int
    def __init__(self, image: _Optional[bytes] = ..., stream_id: _Optional[str] = ..., frame_id: _Optional[str] = ..., seq: _Optional[int] = ..., request_id: _Optional[str] = ..., channel: _Optional[_Union[ChannelConfig, _Mapping]] = ..., alpha: _Optional[float] = ..., snr_db: _Optional[float] = ..., rate_mode: _Optional[str] = ..., max_symbols: _Optional[int] = ...) -> None: ...
