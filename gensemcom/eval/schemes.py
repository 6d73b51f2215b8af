"""The schemes an evaluation compares, and one transmission of an image under one condition.

Five of the six schemes are the project's own transmitter with parts left out
(its built-in client profiles, :data:`gensemcom.transmitter.profiles.BUILTIN_PROFILES`),
so they share the segmenter, the describer, the key codec, the pilots, the channel
and the receiver with ``ours``; only what the frame carries differs:

=================  ======================================================
``ours``           mask + prompt + DeepJSCC key region
``directlygen``    prompt of the whole image only; the receiver generates everything
``alledge``        mask + prompt with the key region's labels; no key pixels
``humanonly``      mask + key region; no prompt
``deepjscc-image`` DeepJSCC on the whole image (no prompt, no mask)
``bpg-ldpc``       HEVC file + 5G LDPC + QAM (:mod:`gensemcom.eval.bpg_ldpc`), given
                   ``ours``' symbol count for the same image and condition as budget
=================  ======================================================

Every scheme's symbols are counted the same way: complex channel uses, pilots
included. All schemes of one image and condition see the same channel draw
(the channel seed depends on the image and condition, not on the scheme).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gensemcom.channel.link import ChannelParams, apply_channel
from gensemcom.receiver.pipeline import Receiver
from gensemcom.shared.config import TransmitterSettings
from gensemcom.transmitter.pipeline import Transmitter
from gensemcom.transmitter.profiles import BUILTIN_PROFILES

SCHEMES = ("ours", "directlygen", "alledge", "humanonly", "deepjscc-image", "bpg-ldpc")
#: Schemes whose transmission does not depend on the non-key ratio 1 − α.
RATIO_FREE = frozenset({"directlygen", "deepjscc-image"})
#: The transmitter profile behind each scheme that is the project's transmitter with parts left out.
PROFILE = {"ours": None, "directlygen": "directlygen", "alledge": "alledge", "humanonly": "humanonly",
           "deepjscc-image": "deepjscc-image"}
#: The scheme whose symbol count is the budget of the budgeted schemes.
BUDGET_FROM = {"bpg-ldpc": "ours"}
RICIAN_K = 3.0  # linear K factor of the "rician" condition: a strong line of sight, still visibly faded


def check_schemes(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``names`` in :data:`SCHEMES` order; a budgeted scheme brings the scheme its budget comes from."""
    unknown = sorted(set(names) - set(SCHEMES))
    if unknown or not names:
        raise ValueError(f"unknown scheme(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(SCHEMES)}")
    wanted = set(names) | {BUDGET_FROM[n] for n in names if n in BUDGET_FROM}
    return tuple(s for s in SCHEMES if s in wanted)


@dataclass(frozen=True)
class Condition:
    """One point of a sweep: the channel, its average SNR, the requested non-key ratio, the seed."""

    channel: str
    snr_db: float
    nonkey_target: float | None  # 1 − α asked of the segmenter; None = the segmenter's own mask
    seed: int = 0

    def __post_init__(self) -> None:
        if self.nonkey_target is not None and not 0.0 < self.nonkey_target < 1.0:
            raise ValueError(f"non-key ratio must lie strictly between 0 and 1, got {self.nonkey_target}")

    def channel_params(self) -> ChannelParams:
        k_factor = RICIAN_K if self.channel == "rician" else 0.0
        return ChannelParams(model=self.channel, snr_db=self.snr_db, seed=self.seed, k_factor=k_factor)

    def frame_id(self, image: str) -> str:
        """The channel draw's name: the same for every scheme of one image and condition."""
        return f"{image}|{self.channel}|{self.snr_db:g}|{self.nonkey_target}"


@dataclass
class Transmission:
    """What one scheme delivered for one image under one condition."""

    image: np.ndarray  # uint8 H×W×3, what the receiver shows
    symbols: int  # complex channel uses, pilots included
    status: str = "ok"  # "ok", or "lost" when a digital scheme's file did not arrive
    alpha: float | None = None  # share of pixels the transmitter sent as key region
    detail: dict[str, object] = field(default_factory=dict)


def scheme_settings(base: TransmitterSettings, scheme: str) -> TransmitterSettings:
    """The transmitter settings of ``scheme``: the base with the scheme's profile applied.

    Nothing depends on the condition: like the services, the transmitter is told
    nothing about the channel per image (open loop); the non-key ratio travels as
    the per-image α target (``ImageRequest.alpha``).
    """
    profile = PROFILE[scheme]
    overrides = dict(BUILTIN_PROFILES[profile]) if profile else {}
    return TransmitterSettings(**{**base.model_dump(), **overrides})


def alpha_target(scheme: str, condition: Condition) -> float | None:
    """The α asked of the transmitter for one image: 1 − the non-key ratio (None for ratio-free schemes)."""
    if scheme in RATIO_FREE or condition.nonkey_target is None:
        return None
    return round(1.0 - condition.nonkey_target, 6)


def sends_key_region(scheme: str) -> bool:
    """Whether the scheme's frames carry a mask or key region, so that α means something."""
    return scheme != "directlygen"


class InProcessChain:
    """Transmitter → channel → receiver as plain objects: what the services run, without gRPC.

    ``build_transmitter`` is the services' own builder (one transmitter per scheme,
    built on first use), so a sweep measures what the services would deliver.
    """

    via = "in-process"

    def __init__(self, tx: TransmitterSettings, build_transmitter: Callable[[TransmitterSettings], Transmitter],
                 receiver: Receiver) -> None:
        self.tx = tx
        self.receiver = receiver
        self._build = build_transmitter
        self._transmitters: dict[str, Transmitter] = {}

    def transmitter(self, scheme: str) -> Transmitter:
        if scheme not in self._transmitters:
            self._transmitters[scheme] = self._build(scheme_settings(self.tx, scheme))
        return self._transmitters[scheme]

    def send(self, image: np.ndarray, name: str, scheme: str, condition: Condition) -> Transmission:
        """One image through ``scheme``'s transmitter, the channel and the receiver."""
        frame_id = condition.frame_id(name)
        frame = self.transmitter(scheme).encode(image, frame_id=frame_id, alpha=alpha_target(scheme, condition))
        received, _ = apply_channel(frame.iq(), condition.channel_params(), frame_id)
        out = self.receiver.decode(frame.with_iq(received))
        return Transmission(
            image=out.image,
            symbols=frame.n_symbols,
            alpha=frame.header.alpha if sends_key_region(scheme) else None,
            detail={"segmenter": frame.header.segmenter,
                    "crc": {o.kind.name.lower(): o.crc_ok for o in out.outcomes if o.kind.name in ("MASK", "PROMPT")}},
        )
