"""The transmitter as a plain object: RGB image -> Frame of complex baseband symbols.

Stages, each timed: segment (key mask), describe (background prompt), key
(analog symbols for the key region), digital (prompt and mask, LDPC-coded at
one MCS by default: :mod:`gensemcom.shared.digital`), assemble (the pilot
preamble, then MASK, PROMPT, KEY_JSCC, with pilot bursts spread through the
stream: :mod:`gensemcom.shared.pilots`). Any stage can be swapped for another
object with the same call signature.

A transmitter may leave parts out (``parts``): the evaluation's baselines are
transmitters that send only the prompt (DirectlyGen: it then describes the
whole image), prompt and mask (Alledge) or mask and key region (HumanOnly);
see docs/eval.md.

With a context memory (:mod:`gensemcom.shared.context`), a frame whose
background the receiver already holds carries a short CONTEXT_REF (the
context id) in the PROMPT's place; see docs/memory.md.
"""

import logging
from dataclasses import dataclass, replace

import numpy as np

from gensemcom.adapt.allocate import centre_first, fit_budget, importance_power, key_budget
from gensemcom.adapt.control import FramePlan, LinkState, RateControl, check_mode
from gensemcom.shared import modem
from gensemcom.shared.blocks import blocks_of
from gensemcom.shared.context import ContextStore
from gensemcom.shared.digital import DigitalScheme, encode_segment
from gensemcom.shared.frame import (
    PARTS, ChannelCode, Codec, Frame, Header, KeyRegion, Modulation, RatePlan, Segment, SegmentKind, check_parts,
)
from gensemcom.shared.pilots import PilotPattern
from gensemcom.shared.image_io import check_rgb8
from gensemcom.shared.keycodecs import KeyCode, KeyCodec
from gensemcom.shared.maskcodec import MaskCodec
from gensemcom.shared.timing import StageClock
from gensemcom.transmitter.alpha import AlphaControl
from gensemcom.transmitter.describe import Describer
from gensemcom.transmitter.segment import Segmentation, Segmenter

log = logging.getLogger(__name__)

PROMPT_CODEC = Codec("utf8", "1")
ALPHA_TOLERANCE = 0.02  # |achieved α − target| accepted for a per-image α, as the settings' default


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x, y, width, height) of the True pixels, or None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    x0, y0 = int(xs.min()), int(ys.min())
    return x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0


@dataclass
class Transmitter:
    segmenter: Segmenter
    describer: Describer
    key_codec: KeyCodec
    mask_codec: MaskCodec
    digital: DigitalScheme = DigitalScheme()
    pilots: PilotPattern = PilotPattern(preamble=64, spacing=128, length=4)
    memory: ContextStore | None = None  # mirror of the receiver's context store; None = always send the PROMPT
    context_threshold: float = 1.0  # prompt similarity that counts as "background unchanged"; 1 = identical text
    refresh_every: int = 32  # after this many references, send the PROMPT again (0 = never)
    parts: tuple[str, ...] = PARTS  # what the frame carries (a subset of PARTS)
    rate: RateControl | None = None  # adaptive / importance-aware rate (docs/adapt.md); None = fixed only
    max_symbols: int = 0  # frame symbol budget, pilots included (0 = none)

    def __post_init__(self) -> None:
        self.parts = check_parts(self.parts)
        if (self.rate is not None or self.max_symbols) and not hasattr(self.key_codec, "rates"):
            raise ValueError(f"adaptive rate and a symbol budget need a key codec with a rate ladder (DeepJSCC); "
                             f"{self.key_codec.id} has none")
        if self.max_symbols < 0:
            raise ValueError(f"max_symbols must be >= 0, got {self.max_symbols}")
        if not 0.0 < self.context_threshold <= 1.0:
            raise ValueError(f"context_threshold must be in (0, 1], got {self.context_threshold}")
        if int(self.refresh_every) != self.refresh_every or self.refresh_every < 0:
            raise ValueError(f"refresh_every must be an integer >= 0, got {self.refresh_every}")

    def encode(self, image: np.ndarray, frame_id: str, stream_id: str = "", seq: int = 0,
               alpha: float | None = None, link: LinkState | None = None, mode: str | None = None,
               max_symbols: int | None = None) -> Frame:
        """Build the frame for one uint8 H×W×3 RGB image.

        ``alpha`` asks for a key-region share for this image only (α control around the segmenter's
        own proposal). ``mode`` ("fixed", "adaptive", "importance"; None = the rate control's default)
        and ``link`` (what is known of the SNR) set the rate; ``max_symbols`` caps the frame's symbols
        (None = the transmitter's cap). None keeps the transmitter's setting throughout.
        """
        check_rgb8(image)
        clock = StageClock("transmitter")
        height, width = image.shape[:2]
        plan = self._plan(mode, link)
        budget = self.max_symbols if max_symbols is None else int(max_symbols)
        digital = self.digital if plan is None or self.digital.code != "ldpc" else replace(self.digital, mcs=plan.mcs)

        with clock.stage("segment"):
            seg = self._segment(image, alpha)
        segments = []
        if "prompt" in self.parts:
            with clock.stage("describe"):
                prompt = self.describer(image, seg)
        with clock.stage("digital"):
            if "mask" in self.parts:
                segments.append(encode_segment(SegmentKind.MASK, self.mask_codec.encode(seg.mask), digital))
            if "prompt" in self.parts:
                segments.append(self._background_segment(prompt, stream_id, (height, width), digital))

        region, important, ranked_by = None, 0, ""
        bbox = mask_bbox(seg.mask) if "key" in self.parts else None
        if bbox is not None:
            with clock.stage("key"):
                code, important, ranked_by = self._key_code(image, seg.mask, bbox, plan, budget, segments)
            if code is None:
                log.warning("frame %s: the symbol budget %d leaves no room for the key region", frame_id, budget)
            else:
                ratio = code.bandwidth_ratio or self.key_codec.bandwidth_ratio
                region = KeyRegion(*bbox, ratio, code.params, code.side, code.block_power)
                segments.append(Segment(SegmentKind.KEY_JSCC, Modulation.ANALOG, ChannelCode.NONE, code.symbols))
        with clock.stage("assemble"):
            segments = self._with_pilots(segments)

        header = Header(
            frame_id=frame_id,
            stream_id=stream_id,
            seq=seq,
            height=height,
            width=width,
            key_codec=Codec(self.key_codec.id, self.key_codec.version),
            mask_codec=Codec(self.mask_codec.id, self.mask_codec.version),
            prompt_codec=PROMPT_CODEC,
            key_region=region,
            alpha=float(seg.alpha),
            segmenter=seg.source if seg.method == "backend" else f"{seg.source}/{seg.method}",
            describer=self.describer.name,
            pilot_spacing=self.pilots.spacing,
            pilot_length=self.pilots.length,
            rate_plan=None if plan is None else RatePlan(
                plan.mode, plan.snr_db, plan.snr_source, self.rate.table.metric, self.rate.target, plan.predicted,
                budget, important, ranked_by),
        )
        frame = Frame(header, segments, clock.timings)
        if budget and frame.n_symbols > budget:
            raise ValueError(f"frame budget of {budget} symbols cannot hold the pilots and digital segments "
                             f"({frame.n_symbols} symbols without a key region); raise max_symbols")
        log.debug("frame %s: %d symbols, alpha %.3f", frame_id, frame.n_symbols, seg.alpha)
        return frame

    def _segment(self, image: np.ndarray, alpha: float | None) -> Segmentation:
        """The key region; an empty one when the frame carries neither mask nor key (the prompt then
        describes the whole image, as DirectlyGen's does)."""
        if "mask" not in self.parts and "key" not in self.parts:
            return Segmentation(mask=np.zeros(image.shape[:2], bool), source="none", labels=())
        if alpha is None:
            return self.segmenter(image)
        base = self.segmenter.segmenter if isinstance(self.segmenter, AlphaControl) else self.segmenter
        if not hasattr(base, "propose"):
            raise ValueError(f"segmenter {self.segmenter.name!r} cannot resize its key region to α = {alpha}")
        tolerance = self.segmenter.tolerance if isinstance(self.segmenter, AlphaControl) else ALPHA_TOLERANCE
        return AlphaControl(base, alpha, tolerance=tolerance)(image)

    def _plan(self, mode: str | None, link: LinkState | None) -> FramePlan | None:
        """The adaptive plan for this frame, or None for a fixed-rate one."""
        mode = check_mode(mode) if mode else (self.rate.mode if self.rate is not None else "fixed")
        if mode == "fixed":
            return None
        if self.rate is None:
            raise ValueError(f"rate mode {mode!r} needs a transmitter with a rate table (--rate-mode, docs/adapt.md)")
        return self.rate.plan(mode, link or LinkState(None, "none"))

    def _key_code(self, image: np.ndarray, mask: np.ndarray, bbox: tuple[int, int, int, int],
                  plan: FramePlan | None, budget: int, segments: list[Segment]) -> tuple[KeyCode | None, int, str]:
        """The key region's code (None when the budget leaves no room), how many blocks were boosted as
        important, and what ranked them.

        Under a budget, the key gets what the frame has left after the preamble, the digital segments and
        the pilot bursts that fall into them (:func:`fit_budget`).
        """
        if plan is None and not budget:
            return self.key_codec.encode(image, mask, bbox), 0, ""
        if not hasattr(self.key_codec, "rates"):
            raise ValueError(f"a symbol budget or an adaptive rate needs a key codec with a rate ladder (DeepJSCC); "
                             f"{self.key_codec.id} has none")
        x, y, w, h = bbox
        sent = blocks_of(mask[y : y + h, x : x + w])
        ranking = plan is not None and plan.mode == "importance" and self.rate.importance is not None
        boosting = plan is not None and plan.boost_db > 0
        ranked = self.rate.importance(image, mask, bbox) if ranking and (budget or boosting) else None
        scores = ranked.scores if ranked is not None else centre_first(sent)
        rate = self.key_codec.rate_for(plan.ratio) if plan is not None else self.key_codec.rate
        limit = key_budget(self.pilots, self._stream_end(segments), budget) if budget else None
        fit = fit_budget(sent, scores, rate, self.key_codec.rates, limit)
        if not fit.rate:
            return None, 0, ""
        power, important = None, 0
        if boosting and ranked is not None:
            power = importance_power(fit.sent, ranked.important, plan.boost_db)
            important = int((ranked.important & fit.sent).sum())
        code = self.key_codec.encode(image, mask, bbox, ratio=self.key_codec.ratio_for(fit.rate),
                                     snr_db=None if plan is None else plan.snr_db, sent=fit.sent, power=power)
        return code, important, ranked.source if ranked is not None else "centre" if budget else ""

    def _stream_end(self, data_segments: list[Segment]) -> int:
        """Stream position after the preamble and ``data_segments`` with their pilot bursts."""
        end = self.pilots.preamble
        for segment in data_segments:
            end += self.pilots.span(end, segment.n_symbols)
        return end

    def _background_segment(self, prompt: str, stream_id: str, size: tuple[int, int],
                            digital: DigitalScheme) -> Segment:
        """CONTEXT_REF when the receiver holds this background already, else the PROMPT (remembered).

        Only contexts this transmitter sent as a PROMPT in this stream, of the
        same image size, and still held by its mirror store are referred to; a
        context referred to ``refresh_every`` times is sent as a PROMPT again,
        so a receiver that lost that PROMPT recovers.
        """
        if self.memory is None:
            return encode_segment(SegmentKind.PROMPT, prompt.encode("utf-8"), digital)
        held = self.memory.match(stream_id, prompt, self.context_threshold)
        stale = held is None or held.payload != size or (0 < self.refresh_every <= held.uses)
        if stale:
            self.memory.put(stream_id, prompt, payload=size)
            return encode_segment(SegmentKind.PROMPT, prompt.encode("utf-8"), digital)
        self.memory.get(stream_id, held.context_id)  # counts the reuse, as the receiver will
        log.debug("stream %r: background unchanged, referring to context %s", stream_id, held.context_id.hex())
        return encode_segment(SegmentKind.CONTEXT_REF, held.context_id, digital)

    def _with_pilots(self, data_segments: list[Segment]) -> list[Segment]:
        """The preamble segment, then each data segment with the pilot bursts that fall into it."""
        preamble = Segment(
            SegmentKind.PILOT, Modulation.QPSK, ChannelCode.NONE, modem.pilot_sequence(self.pilots.preamble)
        )
        out, start = [preamble], self.pilots.preamble
        for segment in data_segments:
            iq = self.pilots.insert(segment.iq, start)
            out.append(replace(segment, iq=iq))
            start += iq.size
        return out
