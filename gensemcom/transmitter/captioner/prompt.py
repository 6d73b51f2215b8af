"""The structured prompt: a BLIP caption on top of the structured description, in a form the receiver parses.

The text keeps the StructuredDescriptor's grammar (``gensemcom.transmitter.describe``),
so the receiver's parser and the ClassicalInpainter read it unchanged. Everything new
goes into the labels field, before the machine fields:

    caption a man riding a horse on a beach with a dog, person centre near large,
    colours blue grey brown, style vivid photo; background 3x4: ...; texture smooth; brightness medium

- ``caption ...``: the merged BLIP caption (:func:`generate.merge_captions`), the
  global description the paper gets from BLIP;
- the key region's labels with position and size ("person centre near large"), as
  measured by the StructuredDescriptor from the mask;
- ``colours ...``: up to three colour names, the most frequent among the grid cells;
- ``style ...``: how saturated the background is (monochrome / muted / vivid) + "photo".

Budget: the labels field (the words a text-to-image model reads) holds at most
``max_tokens`` tokens, counted with the BLIP tokenizer (no special tokens). The
machine fields after it have a fixed size set by the grid. When over budget the
caption is cut first to fit alone, then labels, colours and style are added while
they fit, then the other beams' noun phrases fill what is left.

Labels may not contain ``,`` ``;`` or newlines (the parser splits on them), so the
caption is stripped of those. Without captioner weights the StructuredDescriptor's
own text is sent unchanged and ``name`` says "structured".
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import cv2
import numpy as np

from gensemcom.transmitter.captioner.generate import (
    Candidate,
    Decoding,
    best_first,
    generate_captions,
    merge_captions,
    truncate_to_fit,
)
from gensemcom.transmitter.captioner.load import (
    Captioner,
    CaptionerNotFound,
    ComputeDtype,
    Precision,
    QuantType,
    load_captioner,
)
from gensemcom.transmitter.describe import Description, StructuredDescriptor, parse, render
from gensemcom.transmitter.segment import Segmentation

log = logging.getLogger(__name__)

COLOUR_NAMES: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0), "grey": (128, 128, 128), "white": (245, 245, 245), "red": (200, 35, 35),
    "orange": (235, 135, 35), "yellow": (235, 215, 50), "green": (60, 150, 60), "blue": (40, 90, 200),
    "brown": (125, 85, 45), "pink": (240, 150, 185), "purple": (125, 60, 165), "dark green": (35, 95, 45),
    "navy": (25, 35, 100), "beige": (225, 205, 165), "light grey": (192, 192, 192),
}
"""Basic colour words and a typical sRGB value of each; a cell takes the nearest in CIELAB."""
SATURATION = ((0.04, "monochrome"), (0.20, "muted"), (1.01, "vivid"))
"""Style word by the grid's mean chroma, (max - min) / 255 per cell: upper bound, word."""


def colour_names(grid: np.ndarray, count: int = 3) -> list[str]:
    """Up to ``count`` colour words, the most frequent among the grid's cells first (ties: COLOUR_NAMES order)."""
    names = list(COLOUR_NAMES)
    palette = cv2.cvtColor(np.array([list(COLOUR_NAMES.values())], np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    cells = cv2.cvtColor(grid.reshape(1, -1, 3), cv2.COLOR_RGB2LAB).astype(np.float32)
    nearest = np.argmin(((cells[0, :, None, :] - palette[0, None, :, :]) ** 2).sum(axis=2), axis=1)
    tally = np.bincount(nearest, minlength=len(names))
    order = sorted(np.flatnonzero(tally), key=lambda index: (-tally[index], index))
    return [names[index] for index in order[:count]]


def style_words(grid: np.ndarray) -> str:
    """"<saturation> photo", the saturation word from the grid's mean chroma (SATURATION)."""
    chroma = float((grid.max(axis=2).astype(np.float32) - grid.min(axis=2)).mean() / 255.0)
    word = next(name for bound, name in SATURATION if chroma < bound)
    return f"{word} photo"


def as_label(text: str) -> str:
    """``text`` made safe for the labels field: no , ; or line breaks, single spaces, lower case."""
    return " ".join(re.sub(r"[,;]", " ", text).lower().split())


class CaptionedDescriptor:
    """Image + segmentation → structured prompt; same call signature as StructuredDescriptor.

    With ``captioner`` None it is the StructuredDescriptor alone (name "structured").
    """

    def __init__(self, captioner: Captioner | None, structured: StructuredDescriptor | None = None,
                 max_tokens: int = 60, decoding: Decoding = Decoding()) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        self.captioner = captioner
        self.structured = structured if structured is not None else StructuredDescriptor()
        self.max_tokens = max_tokens
        self.decoding = decoding

    @property
    def name(self) -> str:
        """"blip-<precision>+structured" with a captioner, else "structured"."""
        return f"{self.captioner.name}+structured" if self.captioner is not None else "structured"

    def count_tokens(self, text: str) -> int:
        """BLIP tokenizer tokens (no special tokens) with a captioner, else whitespace-separated words."""
        if self.captioner is None:
            return len(text.split())
        return len(self.captioner.processor.tokenizer(text, add_special_tokens=False)["input_ids"])

    @staticmethod
    def parse(text: str) -> Description:
        """The receiver's parser, which reads this prompt unchanged."""
        return parse(text)

    def __call__(self, image: np.ndarray, segmentation: Segmentation) -> str:
        if self.captioner is None:
            return self.structured(image, segmentation)
        description = self.structured.describe(image, segmentation)
        candidates = generate_captions(self.captioner, image, self.decoding)
        labels = self.labels(candidates, description)
        return render(Description(labels, description.grid, description.texture, description.brightness))

    def labels(self, candidates: list[Candidate], description: Description) -> list[str]:
        """The labels field within ``max_tokens``: caption, key-region labels, colours, style (module docstring)."""
        cleaned = [Candidate(as_label(candidate.text), candidate.score) for candidate in candidates]

        def fits(caption: str, others: list[str]) -> bool:
            return self.count_tokens(", ".join(_with_caption(caption, others))) <= self.max_tokens

        base = truncate_to_fit(best_first(cleaned)[0].text, lambda text: fits(text, [])) if cleaned else ""
        others: list[str] = []
        for extra in [*description.labels, f"colours {' '.join(colour_names(description.grid))}",
                      f"style {style_words(description.grid)}"]:
            if fits(base, [*others, extra]):
                others.append(extra)
        caption = merge_captions(cleaned, lambda text: fits(text, others)) if base else ""
        return _with_caption(caption, others)


def _with_caption(caption: str, others: list[str]) -> list[str]:
    return ([f"caption {caption}"] if caption else []) + others


def make_describer(model: str | Path | None, precision: Precision = "int4-mixed", quant_type: QuantType = "nf4",
                   compute_dtype: ComputeDtype = "float32", device: str | None = None, max_tokens: int = 60,
                   structured: StructuredDescriptor | None = None) -> CaptionedDescriptor:
    """The describer for the transmitter: BLIP + structured when ``model`` loads, else structured alone.

    A configured model that cannot be found is logged as a warning, not raised: the
    link still works with the structured description, and the frame header's
    describer name records which one was used.
    """
    captioner = None
    if model is not None:
        try:
            captioner = load_captioner(model, precision, quant_type, compute_dtype, device)
        except CaptionerNotFound as error:
            log.warning("captioner unavailable, sending the structured description alone: %s", error)
    return CaptionedDescriptor(captioner, structured, max_tokens)
