"""The receiver as a plain object: Frame of received symbols -> reconstructed image.

Stages, each timed: estimate (pilots -> channel gain and noise), digital
(mask and prompt: equalise, demap, combine repetitions, CRC), key (analog
key-region symbols -> pixels), inpaint (background from the prompt around the
key region), composite (key region pasted back with a feathered edge).

A segment that fails its CRC does not fail the frame: the receiver uses what
it has (bounding box instead of the mask, no prompt) and says so in the
segment outcomes.
"""

import functools
import logging
from dataclasses import dataclass, field

import numpy as np

from gensemcom.receiver.composite import composite
from gensemcom.receiver.equalise import LinkEstimate, equalise, estimate_link
from gensemcom.receiver.inpaint import ClassicalInpainter
from gensemcom.shared import modem
from gensemcom.shared.frame import Codec, Frame, Segment, SegmentKind, Timing
from gensemcom.shared.keycodec import LinearKeyCodec
from gensemcom.shared.maskcodec import MaskCodec
from gensemcom.shared.rpc import UnsupportedCodec
from gensemcom.shared.timing import StageClock

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=16)
def _codec_at(bandwidth_ratio: float, block: int) -> LinearKeyCodec:
    """The key codec at the bandwidth ratio a frame was sent with (the transmitter chooses it)."""
    return LinearKeyCodec(bandwidth_ratio=bandwidth_ratio, block=block)


@dataclass(frozen=True)
class SegmentOutcome:
    kind: SegmentKind
    n_symbols: int
    decoded: bool
    crc_ok: bool
    detail: str = ""


@dataclass
class Reconstruction:
    image: np.ndarray  # uint8 H×W×3
    key: np.ndarray  # uint8 H×W×3, decoded key region (zero outside the mask)
    mask: np.ndarray  # bool H×W, the mask used for compositing
    prompt: str | None
    link: LinkEstimate
    outcomes: list[SegmentOutcome]
    timings: list[Timing] = field(default_factory=list)
    inpainter: str = ""


@dataclass
class Receiver:
    key_codec: LinearKeyCodec
    mask_codec: MaskCodec
    inpainter: ClassicalInpainter
    equaliser: str = "mmse"

    def check_codecs(self, frame: Frame) -> None:
        """Refuse frames made by a codec this receiver does not have."""
        have = {
            "key": Codec(self.key_codec.id, self.key_codec.version),
            "mask": Codec(self.mask_codec.id, self.mask_codec.version),
        }
        for what, got in (("key", frame.header.key_codec), ("mask", frame.header.mask_codec)):
            if got != have[what]:
                raise UnsupportedCodec(
                    f"frame uses {what} codec {got.id!r} version {got.version!r}; "
                    f"this receiver has {have[what].id!r} version {have[what].version!r}"
                )

    def decode(self, frame: Frame) -> Reconstruction:
        self.check_codecs(frame)
        clock = StageClock("receiver")
        h = frame.header
        pilots = frame.segment(SegmentKind.PILOT)
        if pilots is None or pilots.n_symbols < 2:
            raise ValueError("frame has no PILOT segment with at least 2 symbols")
        outcomes = [SegmentOutcome(SegmentKind.PILOT, pilots.n_symbols, True, True)]

        with clock.stage("estimate"):
            link = estimate_link(pilots.iq, modem.pilot_sequence(pilots.n_symbols), equaliser=self.equaliser)

        with clock.stage("digital"):
            mask_payload, outcome = self._digital(frame.segment(SegmentKind.MASK), SegmentKind.MASK, link)
            outcomes.append(outcome)
            prompt_payload, outcome = self._digital(frame.segment(SegmentKind.PROMPT), SegmentKind.PROMPT, link)
            outcomes.append(outcome)
            mask = self._mask(mask_payload, frame, outcomes)
            prompt = self._prompt(prompt_payload, outcomes)

        canvas = np.zeros((h.height, h.width, 3), np.uint8)
        known = np.zeros((h.height, h.width), bool)
        key_segment = frame.segment(SegmentKind.KEY_JSCC)
        if h.key_region is not None:
            if key_segment is None:
                raise ValueError("header declares a key region but the frame has no KEY_JSCC segment")
            with clock.stage("key"):
                x, y, w, hh = h.key_region.bbox
                canvas[y : y + hh, x : x + w] = self._key(key_segment, frame, link)
                known[y : y + hh, x : x + w] = mask[y : y + hh, x : x + w]
            outcomes.append(SegmentOutcome(SegmentKind.KEY_JSCC, key_segment.n_symbols, True, True, "analog"))

        with clock.stage("inpaint"):
            background = self.inpainter(prompt, canvas, known)
        with clock.stage("composite"):
            image = composite(background, canvas, known)
        key = np.where(known[..., None], canvas, 0).astype(np.uint8)
        return Reconstruction(image, key, known, prompt, link, outcomes, clock.timings, self.inpainter.name)

    def _digital(
        self, segment: Segment | None, kind: SegmentKind, link: LinkEstimate
    ) -> tuple[bytes | None, SegmentOutcome]:
        if segment is None:
            return None, SegmentOutcome(kind, 0, False, False, "segment absent")
        x_hat, no_eff = equalise(segment.iq, link.gain, link.no, method=self.equaliser)
        payload, crc_ok = modem.decode_payload(x_hat, no_eff, segment.n_payload_bits, repetition=segment.repetition)
        detail = "" if crc_ok else "CRC failed"
        return (payload if crc_ok else None), SegmentOutcome(kind, segment.n_symbols, crc_ok, crc_ok, detail)

    def _mask(self, payload: bytes | None, frame: Frame, outcomes: list[SegmentOutcome]) -> np.ndarray:
        h = frame.header
        if payload is not None:
            try:
                return self.mask_codec.decode(payload, h.height, h.width)
            except ValueError as exc:
                outcomes[-2] = SegmentOutcome(SegmentKind.MASK, outcomes[-2].n_symbols, False, True, str(exc))
        # Fallback: without a mask, the whole key-region bounding box is taken as key.
        mask = np.zeros((h.height, h.width), bool)
        if h.key_region is not None:
            x, y, w, hh = h.key_region.bbox
            mask[y : y + hh, x : x + w] = True
        return mask

    @staticmethod
    def _prompt(payload: bytes | None, outcomes: list[SegmentOutcome]) -> str | None:
        if payload is None:
            return None
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            outcomes[-1] = SegmentOutcome(SegmentKind.PROMPT, outcomes[-1].n_symbols, False, True, str(exc))
            return None

    def _key(self, segment: Segment, frame: Frame, link: LinkEstimate) -> np.ndarray:
        region = frame.header.key_region
        codec = _codec_at(region.bandwidth_ratio, self.key_codec.block)
        expected = codec.n_symbols(region.bbox)
        if segment.n_symbols != expected:
            raise ValueError(
                f"KEY_JSCC segment has {segment.n_symbols} symbols; a {region.width}x{region.height} key region "
                f"at bandwidth ratio {region.bandwidth_ratio:.4g} needs {expected}"
            )
        # Zero-forcing keeps the analog symbols unbiased; the codec applies its own LMMSE weighting.
        x_hat, no_eff = equalise(segment.iq, link.gain, link.no, method="zf")
        crop = codec.decode(x_hat, list(region.params), region.bbox, no=float(np.mean(no_eff)))
        return np.clip(crop * 255.0 + 0.5, 0, 255).astype(np.uint8)
