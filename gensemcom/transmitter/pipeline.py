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

from gensemcom.shared import modem
from gensemcom.shared.context import ContextStore
from gensemcom.shared.digital import DigitalScheme, encode_segment
from gensemcom.shared.frame import (
    PARTS, ChannelCode, Codec, Frame, Header, KeyRegion, Modulation, Segment, SegmentKind, check_parts,
)
from gensemcom.shared.pilots import PilotPattern
from gensemcom.shared.image_io import check_rgb8
from gensemcom.shared.keycodecs import KeyCodec
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

    def __post_init__(self) -> None:
        self.parts = check_parts(self.parts)
        if not 0.0 < self.context_threshold <= 1.0:
            raise ValueError(f"context_threshold must be in (0, 1], got {self.context_threshold}")
        if int(self.refresh_every) != self.refresh_every or self.refresh_every < 0:
            raise ValueError(f"refresh_every must be an integer >= 0, got {self.refresh_every}")

    def encode(self, image: np.ndarray, frame_id: str, stream_id: str = "", seq: int = 0,
               alpha: float | None = None) -> Frame:
        """Build the frame for one uint8 H×W×3 RGB image; ``alpha`` asks for a key-region share for this image
        only (α control around the segmenter's own proposal), None keeps the transmitter's setting."""
        check_rgb8(image)
        clock = StageClock("transmitter")
        height, width = image.shape[:2]

        with clock.stage("segment"):
            seg = self._segment(image, alpha)
        segments = []
        if "prompt" in self.parts:
            with clock.stage("describe"):
                prompt = self.describer(image, seg)
        with clock.stage("digital"):
            if "mask" in self.parts:
                segments.append(encode_segment(SegmentKind.MASK, self.mask_codec.encode(seg.mask), self.digital))
            if "prompt" in self.parts:
                segments.append(self._background_segment(prompt, stream_id, (height, width)))

        region = None
        bbox = mask_bbox(seg.mask) if "key" in self.parts else None
        if bbox is not None:
            with clock.stage("key"):
                code = self.key_codec.encode(image, seg.mask, bbox)
            region = KeyRegion(*bbox, self.key_codec.bandwidth_ratio, code.params, code.side)
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
        )
        frame = Frame(header, segments, clock.timings)
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

    def _background_segment(self, prompt: str, stream_id: str, size: tuple[int, int]) -> Segment:
        """CONTEXT_REF when the receiver holds this background already, else the PROMPT (remembered).

        Only contexts this transmitter sent as a PROMPT in this stream, of the
        same image size, and still held by its mirror store are referred to; a
        context referred to ``refresh_every`` times is sent as a PROMPT again,
        so a receiver that lost that PROMPT recovers.
        """
        if self.memory is None:
            return encode_segment(SegmentKind.PROMPT, prompt.encode("utf-8"), self.digital)
        held = self.memory.match(stream_id, prompt, self.context_threshold)
        stale = held is None or held.payload != size or (0 < self.refresh_every <= held.uses)
        if stale:
            self.memory.put(stream_id, prompt, payload=size)
            return encode_segment(SegmentKind.PROMPT, prompt.encode("utf-8"), self.digital)
        self.memory.get(stream_id, held.context_id)  # counts the reuse, as the receiver will
        log.debug("stream %r: background unchanged, referring to context %s", stream_id, held.context_id.hex())
        return encode_segment(SegmentKind.CONTEXT_REF, held.context_id, self.digital)

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
