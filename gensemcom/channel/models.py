"""Channel models: a :class:`ChannelSpec` names one, :func:`make_channel` builds it.

The blocks live in their own modules, in the style of Sionna (``AWGN()(x,
no, rng)``): :mod:`~gensemcom.channel.noise` (AWGN),
:mod:`~gensemcom.channel.fading` (block Rayleigh/Rician),
:mod:`~gensemcom.channel.doppler` (Clarke/Jakes time variation),
:mod:`~gensemcom.channel.tdl` (3GPP TDL profiles over OFDM) and
:mod:`~gensemcom.channel.impairments` (CFO, phase noise, path loss). This
module composes them into the configured channels that the channel service
calls: complex64 symbols in, impaired symbols and a :class:`ChannelState`
out.

Conventions:

- SNR is Es/N0 per complex symbol for unit *transmit* power, so the complex
  noise variance is ``no = 10**(-snr_db/10)``; with path loss the received
  SNR is lower by the loss.
- Every model reports y[i] = g[i]·x[i] + n[i] exactly (for OFDM: per
  subcarrier), impairments folded into g.
- Reproducibility: every draw comes from the caller's ``np.random.Generator``
  in a fixed order: the noise seed first (so one seed gives the same noise
  under every flat model), then the fading, then the phase noise. A seeded
  run is bit-for-bit repeatable.
- Parameters that a model does not use are ignored (a service default K
  factor does not stop a request from switching to AWGN), but every
  parameter must be valid; :meth:`ChannelSpec.applied` lists those used.
"""

from dataclasses import dataclass, fields, replace
from typing import Protocol

import numpy as np

from gensemcom.channel.doppler import LOS_ANGLE_38901, DopplerFading, check_doppler
from gensemcom.channel.fading import BlockRayleigh, BlockRician, check_k_factor
from gensemcom.channel.impairments import CarrierFrequencyOffset, PathLoss, PhaseNoise
from gensemcom.channel.noise import AWGN, add_faded_noise, noise_stream, snr_db_to_no
from gensemcom.channel.ofdm import check_ofdm_shape
from gensemcom.channel.state import ChannelState, OFDMState, check_coherence
from gensemcom.channel.tdl import OFDMTDL, check_delay_spread, check_profile
from gensemcom.shared.modem import as_symbol_array

__all__ = [
    "AWGN",
    "CHANNEL_MODELS",
    "SNR_DB_RANGE",
    "BlockRayleigh",
    "BlockRician",
    "ChannelModel",
    "ChannelSpec",
    "ChannelState",
    "DopplerFading",
    "FlatChannel",
    "OFDMState",
    "TDLChannel",
    "make_channel",
    "snr_db_to_no",
]

CHANNEL_MODELS = ("awgn", "rayleigh", "rician", "tdl")
SNR_DB_RANGE = (-30.0, 60.0)

# The parameters each model uses, besides model and snr_db.
_MODEL_PARAMETERS = {
    "awgn": ("cfo", "phase_noise", "path_loss_db"),
    "rayleigh": ("coherence", "doppler", "cfo", "phase_noise", "path_loss_db"),
    "rician": ("k_factor", "coherence", "doppler", "los_angle", "cfo", "phase_noise", "path_loss_db"),
    "tdl": ("profile", "delay_spread", "n_subcarriers", "cp_length", "coherence", "doppler", "los_angle",
            "path_loss_db"),
}


@dataclass(frozen=True)
class ChannelSpec:
    """Every parameter of a channel, as a service reads it from settings or a request.

    - ``coherence``: symbols per fading block (OFDM symbols for ``tdl``);
      0 = one block per frame.
    - ``k_factor``: Rician K, *linear* (LOS power / scattered power), >= 0.
    - ``doppler``: normalised maximum Doppler fD·Ts in [0, 0.5), per symbol
      (per time sample for ``tdl``); > 0 replaces block fading by a
      Clarke/Jakes process, so it excludes ``coherence`` > 0.
    - ``los_angle``: angle of arrival of the LOS path vs. the motion, radians;
      its Doppler shift is ``doppler``·cos(``los_angle``).
    - ``profile``, ``delay_spread`` (RMS, in samples), ``n_subcarriers``,
      ``cp_length`` (None: the largest tap delay): the TDL/OFDM channel.
    - ``cfo``: carrier-frequency offset Δf·Ts in (−0.5, 0.5), per symbol.
    - ``phase_noise``: Wiener phase noise, oscillator linewidth·Ts, >= 0.
    - ``path_loss_db``: attenuation in [0, 200] dB; SNR refers to transmit power.
    """

    model: str = "awgn"
    snr_db: float = 20.0
    coherence: int = 0
    k_factor: float = 0.0
    doppler: float = 0.0
    los_angle: float = LOS_ANGLE_38901
    profile: str = "A"
    delay_spread: float = 1.0
    n_subcarriers: int = 64
    cp_length: int | None = None
    cfo: float = 0.0
    phase_noise: float = 0.0
    path_loss_db: float = 0.0

    def validate(self) -> "ChannelSpec":
        """This spec, or ValueError naming the first invalid parameter."""
        self.build()
        return self

    def override(self, **changes: object) -> "ChannelSpec":
        """This spec with the given (non-None) parameters replaced, e.g. by a request."""
        _check_names(changes)
        return replace(self, **{name: value for name, value in changes.items() if value is not None})

    def applied(self) -> dict[str, object]:
        """The parameters this model uses, with their values (the cyclic prefix resolved)."""
        channel = self.build()
        used = {"model": self.model, "snr_db": float(self.snr_db)}
        for name in _MODEL_PARAMETERS[self.model]:
            used[name] = getattr(self, name)
        if isinstance(channel, TDLChannel):
            used["cp_length"] = channel.ofdm.cp_length
        return used

    def build(self) -> "ChannelModel":
        """The configured channel; ValueError if any parameter is invalid."""
        _check_parameters(self)
        if self.model == "tdl":
            ofdm = OFDMTDL(self.profile, self.delay_spread, self.n_subcarriers, self.cp_length, self.coherence,
                           self.doppler, self.los_angle)
            return TDLChannel(self, ofdm, PathLoss(self.path_loss_db))
        return FlatChannel(self, _flat_fading(self), _impairments(self))


class ChannelModel(Protocol):
    """A configured channel, as the channel service uses it."""

    name: str
    snr_db: float
    spec: ChannelSpec

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ChannelState]: ...


class _Impairment(Protocol):
    def factor(self, n: int, rng: np.random.Generator) -> np.ndarray: ...


@dataclass(frozen=True)
class FlatChannel:
    """AWGN, Rayleigh or Rician (block or Doppler) fading with optional impairments: y = g·x + n.

    ``fading`` is None for AWGN. Impairment factors multiply the fading gain;
    one that changes per symbol makes the reported gains per symbol.
    """

    spec: ChannelSpec
    fading: BlockRician | DopplerFading | None
    impairments: tuple[_Impairment, ...]

    @property
    def name(self) -> str:
        return self.spec.model

    @property
    def snr_db(self) -> float:
        return self.spec.snr_db

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ChannelState]:
        x = as_symbol_array(x, "x")
        no = snr_db_to_no(self.spec.snr_db)
        noise = noise_stream(rng)
        if self.fading is None:
            gains, coherence = np.ones(1, np.complex64), 0
        else:
            gains, coherence = self.fading.gains(x.size, rng), self.fading.coherence
        for impairment in self.impairments:
            factor = impairment.factor(x.size, rng)
            if factor.ndim == 0:
                gains = gains * factor
            else:
                gains = ChannelState(gains, coherence, no).per_symbol(x.size) * factor
                coherence = 1
        return add_faded_noise(x, gains, coherence, no, noise), ChannelState(gains, coherence, no)


@dataclass(frozen=True)
class TDLChannel:
    """A 3GPP TDL profile over OFDM (see :class:`~gensemcom.channel.tdl.OFDMTDL`), with path loss."""

    spec: ChannelSpec
    ofdm: OFDMTDL
    path_loss: PathLoss

    @property
    def name(self) -> str:
        return self.spec.model

    @property
    def snr_db(self) -> float:
        return self.spec.snr_db

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, OFDMState]:
        x = as_symbol_array(x, "x")
        noise = noise_stream(rng)
        taps = self.ofdm.taps(self.ofdm.n_ofdm_symbols(x.size), rng)
        taps *= self.path_loss.factor(x.size, rng)
        return self.ofdm.transmit(x, taps, snr_db_to_no(self.spec.snr_db), noise)


def make_channel(model: str, snr_db: float, coherence: int = 0, **params: object) -> ChannelModel:
    """Build a channel from its name, SNR in dB, coherence and any other :class:`ChannelSpec` parameter.

    Raises ValueError for an unknown model or parameter and for any value out
    of range, so that a bad request never reaches the signal path.
    """
    _check_names(params)
    return ChannelSpec(model=model, snr_db=snr_db, coherence=coherence, **params).build()


def _check_names(params: dict[str, object]) -> None:
    unknown = sorted(set(params) - {field.name for field in fields(ChannelSpec)})
    if unknown:
        raise ValueError(f"unknown channel parameter(s): {', '.join(unknown)}")


def _check_parameters(spec: ChannelSpec) -> None:
    """Every field on its own; the combinations are checked by the blocks the model builds."""
    if spec.model not in CHANNEL_MODELS:
        raise ValueError(f"unknown channel model {spec.model!r}; choose one of {', '.join(CHANNEL_MODELS)}")
    low, high = SNR_DB_RANGE
    if not (np.isfinite(spec.snr_db) and low <= spec.snr_db <= high):
        raise ValueError(f"SNR must be within [{low:g}, {high:g}] dB, got {spec.snr_db}")
    check_coherence(spec.coherence)
    check_k_factor(spec.k_factor)
    check_doppler(spec.doppler)
    if not np.isfinite(spec.los_angle):
        raise ValueError(f"line-of-sight angle must be finite, got {spec.los_angle}")
    check_profile(spec.profile)
    check_delay_spread(spec.delay_spread)
    check_ofdm_shape(spec.n_subcarriers, 0 if spec.cp_length is None else spec.cp_length)
    _impairments(spec)
    if spec.model == "tdl" and (spec.cfo != 0 or spec.phase_noise != 0):
        raise ValueError(
            "CFO and phase noise are not modelled with tdl: in OFDM they cause inter-carrier "
            "interference, which the per-subcarrier channel state cannot describe"
        )


def _flat_fading(spec: ChannelSpec) -> BlockRician | DopplerFading | None:
    if spec.model == "awgn":
        return None
    k_factor = spec.k_factor if spec.model == "rician" else 0.0
    if spec.doppler == 0:
        return BlockRician(k_factor, spec.coherence)
    if spec.coherence > 0:
        raise ValueError("set either coherence (block fading) or doppler (time-varying fading), not both")
    return DopplerFading(spec.doppler, k_factor, spec.los_angle)


def _impairments(spec: ChannelSpec) -> tuple[_Impairment, ...]:
    """Path loss, CFO, then phase noise (the only one that draws), each only when non-trivial.

    All three are built first, so that every value is checked even when unused.
    """
    path_loss = PathLoss(spec.path_loss_db)
    cfo = CarrierFrequencyOffset(spec.cfo)
    phase_noise = PhaseNoise(spec.phase_noise)
    active = ((path_loss, spec.path_loss_db != 0), (cfo, spec.cfo != 0), (phase_noise, spec.phase_noise != 0))
    return tuple(block for block, used in active if used)
