"""The transmitter as a plain object: RGB image -> Frame of complex baseband symbols.

Stages, each timed: segment (key mask), describe (background prompt), key
(analog symbols for the key region), digital (prompt and mask, LDPC-coded at
one MCS by default: :mod:`gensemcom.shared.digital`), assemble (the pilot
preamble, then MASK, PROMPT, KEY_JSCC, with pilot bursts spread through the
stream: :mod:`gensemcom.shared.pilots`). Any stage can be swapped for another
object with the same call signature.

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
from gensemcom.shared.frame import ChannelCode, Codec, Frame, Header, KeyRegion, Modulation, Segment, SegmentKind
from gensemcom.shared.pilots import PilotPattern
from gensemcom.shared.image_io import check_rgb8
from gensemcom.shared.keycodecs import KeyCodec
from gensemcom.shared.maskcodec import MaskCodec
from gensemcom.shared.timing import StageClock
from gensemcom.transmitter.describe import Describer
from gensemcom.transmitter.segment import Segmenter

log = logging.getLogger(__name__)

PROMPT_CODEC = Codec("utf8", "1")


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

    def __post_init__(self) -> None:
        if not 0.0 < self.context_threshold <= 1.0:
            raise ValueError(f"context_threshold must be in (0, 1], got {self.context_threshold}")
        if int(self.refresh_every) != self.refresh_every or self.refresh_every < 0:
            raise ValueError(f"refresh_every must be an integer >= 0, got {self.refresh_every}")

    def encode(self, image: np.ndarray, frame_id: str, stream_id: str = "", seq: int = 0) -> Frame:
        """Build the frame for one uint8 H×W×3 RGB image."""
        check_rgb8(image)
        clock = StageClock("transmitter")
        height, width = image.shape[:2]

        with clock.stage("segment"):
            seg = self.segmenter(image)
        with clock.stage("describe"):
            prompt = self.describer(image, seg)

        segments = []
        with clock.stage("digital"):
            segments.append(encode_segment(SegmentKind.MASK, self.mask_codec.encode(seg.mask), self.digital))
            segments.append(self._background_segment(prompt, stream_id, (height, width)))

        region = None
        bbox = mask_bbox(seg.mask)
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
