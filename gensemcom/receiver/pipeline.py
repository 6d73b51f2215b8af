"""The receiver as a plain object: Frame of received symbols -> reconstructed image.

Stages, each timed: estimate (the preamble and the pilot bursts spread
through the frame -> a channel gain per symbol, its error and the noise,
:mod:`gensemcom.receiver.estimate`), digital (mask and prompt: equalise,
demap, decode, CRC), key (analog key-region symbols -> pixels), inpaint
(background from the prompt around the key region), composite (key region
pasted back with a feathered edge).

A segment that fails its CRC does not fail the frame: the receiver uses what
it has (bounding box instead of the mask, no prompt) and says so in the
segment outcomes.

With a context memory (:mod:`gensemcom.shared.context`), the background
generated for each received PROMPT is stored per stream; a CONTEXT_REF in a
later frame reuses it instead of inpainting again (docs/memory.md).
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from gensemcom.receiver.composite import composite
from gensemcom.receiver.equalise import EQUALISERS, equalise
from gensemcom.receiver.estimate import (
    ESTIMATORS, ChannelEstimate, ChannelPrior, estimate_channel, perfect_csi, pilot_group,
)
from gensemcom.receiver.inpaint import Inpainter
from gensemcom.shared.context import ContextEntry, ContextStore, UnknownContext
from gensemcom.shared.digital import DigitalScheme, decode_segment, encode_segment
from gensemcom.shared.frame import ChannelCode, Codec, Frame, Header, Segment, SegmentKind, Timing
from gensemcom.shared.keycodecs import KeyCodec
from gensemcom.shared.maskcodec import MaskCodec
from gensemcom.shared.pilots import PilotPattern
from gensemcom.shared.rpc import FailedPrecondition, UnsupportedCodec
from gensemcom.shared.timing import StageClock

log = logging.getLogger(__name__)


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
    link: "LinkReport"
    outcomes: list[SegmentOutcome]
    timings: list[Timing] = field(default_factory=list)
    inpainter: str = ""
    context_reused: bool = False  # the background came from the context memory, not the inpainter
    symbols_saved: int = 0  # symbols the PROMPT would have added over the CONTEXT_REF (0 unless reused)
    inpainter_settings: dict[str, str] = field(default_factory=dict)


@dataclass
class _Front:
    """A frame decoded up to its background (which the context memory or the inpainter supplies)."""

    frame: Frame
    pattern: PilotPattern
    link: "LinkReport"
    outcomes: list[SegmentOutcome]
    clock: StageClock
    prompt: str | None
    canvas: np.ndarray  # uint8 H×W×3, the key region on black
    known: np.ndarray  # bool H×W, where the canvas holds received pixels
    background: np.ndarray | None = None
    context_reused: bool = False
    symbols_saved: int = 0


def _one_frame_per_stream(frames: Sequence[Frame]) -> list[list[Frame]]:
    """Consecutive runs of ``frames`` in which no stream id repeats (order kept)."""
    runs: list[list[Frame]] = []
    streams: set[str] = set()
    for frame in frames:
        stream = frame.header.stream_id
        if not runs or (stream and stream in streams):
            runs.append([])
            streams = set()
        runs[-1].append(frame)
        if stream:
            streams.add(stream)
    return runs


@dataclass(frozen=True)
class LinkReport:
    """The receiver's view of the link for one frame (what the Delivery reports)."""

    estimate: ChannelEstimate
    equaliser: str
    n_pilots: int


@dataclass(frozen=True)
class _Received:
    """One segment's data symbols with the channel estimate at their positions (pilots taken out)."""

    segment: Segment
    y: np.ndarray
    gain: np.ndarray
    no: np.ndarray  # noise plus channel-estimation error, per symbol


@dataclass(frozen=True)
class StoredBackground:
    """What the receiver keeps per context: the generated image and the key mask it was generated around."""

    image: np.ndarray  # uint8 H×W×3, read-only
    mask: np.ndarray  # bool H×W, read-only

    def around(self, known: np.ndarray) -> np.ndarray:
        """The background for a frame whose key mask is ``known``.

        Inside the old mask the stored image holds the old key pixels; where the
        new key region no longer covers them they are filled from their
        surroundings (Telea), so a moved key object leaves no ghost.
        """
        vacated = self.mask & ~known
        if not vacated.any():
            return self.image
        return cv2.inpaint(self.image, vacated.astype(np.uint8), 3, cv2.INPAINT_TELEA)


@dataclass
class Receiver:
    key_codecs: Sequence[KeyCodec]  # every key codec this receiver can decode, told apart by id
    mask_codec: MaskCodec
    inpainter: Inpainter
    equaliser: str = "auto"  # for the key symbols; "auto" = the form the key codec was designed for
    estimator: str = "lmmse"
    prior: ChannelPrior = ChannelPrior()
    memory: ContextStore | None = None  # backgrounds per stream for CONTEXT_REF; None = refuse references
    feather_px: int = 3  # compositing: width of the blend band at the key region's edge
    match_px: int = 0  # compositing: ring for colour matching the background to the key region; 0 = off

    def __post_init__(self) -> None:
        if self.equaliser not in ("auto", *EQUALISERS):
            raise ValueError(f"unknown equaliser {self.equaliser!r}; choose auto or one of {', '.join(EQUALISERS)}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {self.estimator!r}; choose one of {', '.join(ESTIMATORS)}")

    def key_codec_for(self, frame: Frame) -> KeyCodec:
        """The key codec that made ``frame``; refuses ids and versions this receiver does not have."""
        got = frame.header.key_codec
        have = [Codec(c.id, c.version) for c in self.key_codecs]
        for codec in self.key_codecs:
            if Codec(codec.id, codec.version) == got:
                return codec
        raise UnsupportedCodec(
            f"frame uses key codec {got.id!r} version {got.version!r}; this receiver has "
            + ", ".join(f"{c.id!r} version {c.version!r}" for c in have)
        )

    def check_mask_codec(self, frame: Frame) -> None:
        got, have = frame.header.mask_codec, Codec(self.mask_codec.id, self.mask_codec.version)
        if got != have:
            raise UnsupportedCodec(
                f"frame uses mask codec {got.id!r} version {got.version!r}; "
                f"this receiver has {have.id!r} version {have.version!r}"
            )

    def decode(self, frame: Frame) -> Reconstruction:
        """One frame to its reconstruction; raises on a frame that cannot be decoded."""
        (result,) = self.decode_batch([frame])
        if isinstance(result, Exception):
            raise result
        return result

    def decode_batch(self, frames: Sequence[Frame]) -> list[Reconstruction | Exception]:
        """Several frames at once: each is decoded alone up to its background, then all backgrounds
        that need generating go to the inpainter together (one batched call when it has
        ``inpaint_batch``, e.g. diffusion on a GPU). A frame that fails gets its exception in its
        place; the others are unaffected. Two frames of one stream never share a batch: the second
        may refer to the context the first one creates."""
        out: list[Reconstruction | Exception] = []
        for run in _one_frame_per_stream(frames):
            out.extend(self._decode_together(run))
        return out

    def _decode_together(self, frames: Sequence[Frame]) -> list[Reconstruction | Exception]:
        parts: list[_Front | Exception] = []
        for frame in frames:
            try:
                parts.append(self._front(frame))
            except Exception as exc:  # noqa: BLE001 - reported in this frame's place only
                parts.append(exc)
        self._backgrounds([p for p in parts if isinstance(p, _Front) and p.background is None])
        out: list[Reconstruction | Exception] = []
        for part in parts:
            try:
                out.append(part if isinstance(part, Exception) else self._finish(part))
            except Exception as exc:  # noqa: BLE001
                out.append(exc)
        return out

    def _front(self, frame: Frame) -> "_Front":
        """Everything before the background: link, digital segments, key region, context lookup."""
        key_codec = self.key_codec_for(frame)
        self.check_mask_codec(frame)
        clock = StageClock("receiver")
        h = frame.header
        pilots = frame.segments[0]
        if pilots.kind != SegmentKind.PILOT or pilots.n_symbols < 2:
            raise ValueError("a frame must start with a PILOT segment (the preamble) of at least 2 symbols")
        pattern = PilotPattern(pilots.n_symbols, h.pilot_spacing, h.pilot_length)
        outcomes = [SegmentOutcome(SegmentKind.PILOT, pilots.n_symbols, True, True)]

        with clock.stage("estimate"):
            link = self._estimate(frame, pattern, key_codec)
            received = self._split(frame, pattern, link.estimate)

        with clock.stage("digital"):
            mask_payload, outcome = self._digital(received, SegmentKind.MASK)
            outcomes.append(outcome)
            prompt_payload, outcome = self._digital(received, SegmentKind.PROMPT)
            outcomes.append(outcome)
            mask = self._mask(mask_payload, frame, outcomes)
            prompt = self._prompt(prompt_payload, outcomes)
            context = self._recall(frame, received, prompt, outcomes)

        canvas = np.zeros((h.height, h.width, 3), np.uint8)
        known = np.zeros((h.height, h.width), bool)
        key_segment = frame.segment(SegmentKind.KEY_JSCC)
        if h.key_region is not None:
            if key_segment is None:
                raise ValueError("header declares a key region but the frame has no KEY_JSCC segment")
            with clock.stage("key"):
                x, y, w, hh = h.key_region.bbox
                canvas[y : y + hh, x : x + w] = self._key(received[SegmentKind.KEY_JSCC], frame, key_codec)
                known[y : y + hh, x : x + w] = mask[y : y + hh, x : x + w]
            outcomes.append(SegmentOutcome(SegmentKind.KEY_JSCC, key_segment.n_symbols, True, True, "analog"))

        front = _Front(frame, pattern, link, outcomes, clock, prompt, canvas, known)
        if context is not None:
            with clock.stage("context"):
                front.background = context.payload.around(known)
                front.prompt = context.prompt
                front.symbols_saved = self._symbols_saved(frame, pattern, context.prompt)
                front.context_reused = True
        return front

    def _backgrounds(self, fronts: list["_Front"]) -> None:
        """Generate the missing backgrounds, in one batched call when the inpainter offers one."""
        if not fronts:
            return
        start = time.perf_counter()
        batch = getattr(self.inpainter, "inpaint_batch", None)
        if batch is not None and len(fronts) > 1:
            backgrounds = batch([(f.prompt, f.canvas, f.known) for f in fronts])
            elapsed_ms = (time.perf_counter() - start) * 1e3
            for front, background in zip(fronts, backgrounds, strict=True):
                front.background = background
                front.clock.timings.append(Timing("receiver", f"inpaint[batch {len(fronts)}]", elapsed_ms))
        else:
            for front in fronts:
                with front.clock.stage("inpaint"):
                    front.background = self.inpainter(front.prompt, front.canvas, front.known)
        for front in fronts:
            self._remember(front.frame.header.stream_id, front.prompt, front.background, front.known)

    def _finish(self, front: "_Front") -> Reconstruction:
        with front.clock.stage("composite"):
            image = composite(front.background, front.canvas, front.known, self.feather_px, self.match_px)
        key = np.where(front.known[..., None], front.canvas, 0).astype(np.uint8)
        return Reconstruction(image, key, front.known, front.prompt, front.link, front.outcomes, front.clock.timings,
                              self.inpainter.name, context_reused=front.context_reused,
                              symbols_saved=front.symbols_saved,
                              inpainter_settings={k: str(v) for k, v in self.inpainter.settings.items()})

    def _estimate(self, frame: Frame, pattern: PilotPattern, key_codec: KeyCodec) -> LinkReport:
        """Channel gain per symbol of the frame, from its pilots or (ablation) from the channel's truth."""
        stream = frame.iq()
        pilot_index = np.flatnonzero(pattern.is_pilot(np.arange(stream.size)))
        if self.estimator == "perfect":
            if frame.truth is None:
                raise FailedPrecondition(
                    "this receiver uses perfect CSI, but the frame carries no channel truth: "
                    "ask the channel to attach it (attach_truth)"
                )
            estimate = perfect_csi(frame.truth.gains, frame.truth.no)
        else:
            estimate = estimate_channel(
                stream, pilot_index, pattern.values(pilot_index), method=self.estimator, prior=self.prior,
                group=pilot_group(self.prior),
            )
        equaliser = key_codec.equaliser if self.equaliser == "auto" else self.equaliser
        return LinkReport(estimate, equaliser, int(pilot_index.size))

    @staticmethod
    def _split(frame: Frame, pattern: PilotPattern, estimate: ChannelEstimate) -> dict[SegmentKind, _Received]:
        """Each data segment's symbols without the pilot bursts, with the gain and noise they saw."""
        out, start = {}, 0
        for segment in frame.segments:
            stop = start + segment.n_symbols
            if segment.kind != SegmentKind.PILOT and segment.kind not in out:
                data = pattern.data_positions(start, segment.n_symbols)
                out[segment.kind] = _Received(
                    segment=segment,
                    y=segment.iq[data],
                    gain=estimate.gain[start:stop][data],
                    no=estimate.no + estimate.error[start:stop][data],
                )
            start = stop
        return out

    @staticmethod
    def _digital(received: dict[SegmentKind, _Received], kind: SegmentKind) -> tuple[bytes | None, SegmentOutcome]:
        r = received.get(kind)
        if r is None:
            return None, SegmentOutcome(kind, 0, False, False, "segment absent")
        segment = r.segment
        # Unbiased (zero-forcing) symbols: what the soft demapper of any QAM order needs.
        x_hat, no_eff = equalise(r.y, r.gain, r.no, method="zf")
        payload, crc_ok = decode_segment(segment, x_hat, no_eff)
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

    def _recall(self, frame: Frame, received: dict[SegmentKind, _Received], prompt: str | None,
                outcomes: list[SegmentOutcome]) -> ContextEntry | None:
        """The stored context a CONTEXT_REF names, or None (no reference, or one that cannot be used).

        A reference that cannot be used gets an outcome saying why; the frame
        then falls back to its own prompt, if it carries one, else to no prompt.
        """
        h = frame.header
        if self.memory is not None:
            self.memory.touch(h.stream_id)  # every frame ages the stream, as at the transmitter
        if SegmentKind.CONTEXT_REF not in received:
            return None
        payload, outcome = self._digital(received, SegmentKind.CONTEXT_REF)
        entry, problem = (None, outcome.detail) if payload is None else self._lookup(h, payload)
        if entry is None:
            fallback = "falling back to the frame's prompt" if prompt is not None else "inpainting without a prompt"
            outcomes.append(replace(outcome, decoded=False, detail=f"{problem}; {fallback}"))
            return None
        outcomes.append(replace(outcome, detail=f"context {entry.context_id.hex()} reused"))
        return entry

    def _lookup(self, h: Header, cid: bytes) -> tuple[ContextEntry | None, str]:
        """The stored context ``cid`` of the frame's stream (counted as reused), or None and the reason."""
        if self.memory is None:
            return None, "this receiver keeps no context memory"
        try:
            entry = self.memory.get(h.stream_id, cid)
        except UnknownContext as exc:
            return None, str(exc)
        height, width = entry.payload.image.shape[:2]
        if (height, width) != (h.height, h.width):
            return None, (f"context {cid.hex()} was stored for a {width}x{height} image, "
                          f"this frame is {h.width}x{h.height}")
        return entry, ""

    def _remember(self, stream: str, prompt: str | None, background: np.ndarray, known: np.ndarray) -> None:
        """Store the background generated from a received PROMPT, for CONTEXT_REFs to come."""
        if self.memory is None or prompt is None:
            return
        image, mask = background.copy(), known.copy()
        image.setflags(write=False)
        mask.setflags(write=False)
        self.memory.put(stream, prompt, StoredBackground(image, mask))

    @staticmethod
    def _symbols_saved(frame: Frame, pattern: PilotPattern, prompt: str) -> int:
        """Symbols the frame would have had with ``prompt`` as a PROMPT in the CONTEXT_REF's place, minus its own.

        The PROMPT is coded with the reference's own scheme, and pilot bursts are
        counted as they would have fallen: exact whenever the reference names the
        very prompt the transmitter described (similarity threshold 1).
        """
        ref = frame.segment(SegmentKind.CONTEXT_REF)
        scheme = (DigitalScheme("ldpc", mcs=ref.mcs) if ref.code == ChannelCode.LDPC
                  else DigitalScheme("repetition", repetition=ref.repetition))
        prompt_symbols = encode_segment(SegmentKind.PROMPT, prompt.encode("utf-8"), scheme).n_symbols
        actual = without_ref = pattern.preamble
        for segment in frame.segments[1:]:
            n_data = int(pattern.data_positions(actual, segment.n_symbols).sum())
            actual += segment.n_symbols
            without_ref += pattern.span(without_ref, prompt_symbols if segment is ref else n_data)
        return without_ref - actual

    def _key(self, received: _Received, frame: Frame, codec: KeyCodec) -> np.ndarray:
        region = frame.header.key_region
        expected = codec.n_symbols(region)
        if received.y.size != expected:
            raise ValueError(
                f"KEY_JSCC segment has {received.y.size} data symbols; a {region.width}x{region.height} key region "
                f"at bandwidth ratio {region.bandwidth_ratio:.4g} with codec {codec.id} needs {expected}"
            )
        method = codec.equaliser if self.equaliser == "auto" else self.equaliser
        sent_with = getattr(codec, "symbol_gain", lambda _: None)(region)  # unequal block powers (importance)
        gain = received.gain if sent_with is None else received.gain * sent_with
        x_hat, no_eff = equalise(received.y, gain, received.no, method=method)
        return codec.decode(x_hat, no_eff, region, method)
