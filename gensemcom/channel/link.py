"""Apply a configured channel to a frame's symbols, seeded per frame.

This is what the channel service runs, and what in-process sweeps call. It
sees only the concatenated IQ of a frame, never its segments, so an external
radio can take its place behind the same interface.
"""

import secrets
import zlib
import dataclasses
from dataclasses import dataclass, replace

import numpy as np

from gensemcom.channel.models import ChannelSpec, ChannelState


@dataclass(frozen=True)
class ChannelParams:
    """A channel configuration plus its seed: what the service holds and a request may override."""

    model: str = "awgn"
    snr_db: float = 20.0
    seed: int | None = None
    coherence_symbols: int = 0
    k_factor: float = 0.0
    doppler: float = 0.0
    profile: str = "A"
    delay_spread: float = 1.0
    n_subcarriers: int = 64
    cfo: float = 0.0
    phase_noise: float = 0.0
    path_loss_db: float = 0.0

    def override(self, **changes: object) -> "ChannelParams":
        """These parameters with the given (non-None) fields replaced."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def spec(self) -> ChannelSpec:
        """The validated channel specification (ValueError with a clear message if invalid)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("seed",)}
        fields["coherence"] = fields.pop("coherence_symbols")
        return ChannelSpec(**fields).validate()


@dataclass(frozen=True)
class ChannelReport:
    """What was applied: enough to reproduce the draw exactly."""

    model: str
    snr_db: float
    seed: int
    coherence_symbols: int
    state: ChannelState
    applied: dict[str, object] = dataclasses.field(default_factory=dict)


def frame_seed(service_seed: int | None, frame_id: str) -> int:
    """Seed for one frame: fixed by (service seed, frame id) so results do not depend on arrival order."""
    if service_seed is None:
        return secrets.randbits(63)
    return int(np.random.SeedSequence([service_seed, zlib.crc32(frame_id.encode())]).generate_state(1, np.uint64)[0]
               >> np.uint64(1))


def apply_channel(iq: np.ndarray, params: ChannelParams, frame_id: str = "") -> tuple[np.ndarray, ChannelReport]:
    """Pass ``iq`` through the channel; the draw is fixed by (params.seed, frame_id) when a seed is set."""
    spec = params.spec()
    seed = frame_seed(params.seed, frame_id)
    y, state = spec.build()(np.asarray(iq, np.complex64), np.random.default_rng(seed))
    return y, ChannelReport(params.model, params.snr_db, seed, params.coherence_symbols, state, spec.applied())
