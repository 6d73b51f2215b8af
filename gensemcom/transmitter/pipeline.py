"""The transmitter as a plain object: RGB image -> Frame of complex baseband symbols.

Stages, each timed: segment (key mask), describe (background prompt), key
(analog symbols for the key region), digital (prompt and mask as coded QPSK),
assemble (pilots first, then MASK, PROMPT, KEY_JSCC). Any stage can be swapped
for another object with the same call signature.
"""

import logging
from dataclasses import dataclass

import numpy as np

from gensemcom.shared import modem
from gensemcom.shared.frame import ChannelCode, Codec, Frame, Header, KeyRegion, Modulation, Segment, SegmentKind
from gensemcom.shared.image_io import check_rgb8
from gensemcom.shared.keycodec import LinearKeyCodec
from gensemcom.shared.maskcodec import MaskCodec
from gensemcom.shared.timing import StageClock
from gensemcom.transmitter.describe import StructuredDescriptor
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
    describer: StructuredDescriptor
    key_codec: LinearKeyCodec
    mask_codec: MaskCodec
    n_pilots: int = 64
    repetition: int = 3

    def encode(self, image: np.ndarray, frame_id: str, stream_id: str = "", seq: int = 0) -> Frame:
        """Build the frame for one uint8 H×W×3 RGB image."""
        check_rgb8(image)
        clock = StageClock("transmitter")
        height, width = image.shape[:2]

        with clock.stage("segment"):
            seg = self.segmenter(image)
        with clock.stage("describe"):
            prompt = self.describer(image, seg)

        segments = [Segment(SegmentKind.PILOT, Modulation.QPSK, ChannelCode.NONE, modem.pilot_sequence(self.n_pilots))]
        with clock.stage("digital"):
            segments.append(self._digital(SegmentKind.MASK, self.mask_codec.encode(seg.mask)))
            segments.append(self._digital(SegmentKind.PROMPT, prompt.encode("utf-8")))

        region = None
        bbox = mask_bbox(seg.mask)
        if bbox is not None:
            with clock.stage("key"):
                symbols, params = self.key_codec.encode(image.astype(np.float32) / 255.0, bbox)
            region = KeyRegion(*bbox, bandwidth_ratio=self.key_codec.bandwidth_ratio, params=tuple(params))
            segments.append(Segment(SegmentKind.KEY_JSCC, Modulation.ANALOG, ChannelCode.NONE, symbols))

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
            segmenter=seg.source,
            describer=self.describer.name,
        )
        frame = Frame(header, segments, clock.timings)
        log.debug("frame %s: %d symbols, alpha %.3f", frame_id, frame.n_symbols, seg.alpha)
        return frame

    def _digital(self, kind: SegmentKind, payload: bytes) -> Segment:
        symbols, n_bits = modem.encode_payload(payload, repetition=self.repetition)
        return Segment(
            kind,
            Modulation.QPSK,
            ChannelCode.REPETITION if self.repetition > 1 else ChannelCode.NONE,
            symbols,
            repetition=self.repetition,
            code_rate=1.0 / self.repetition,
            n_payload_bits=n_bits,
        )
