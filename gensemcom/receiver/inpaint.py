"""Classical, prompt-driven background regeneration: the offline inpainter.

The receiver knows the key region's pixels and the text prompt. This backend needs
no learned model: it parses the structured description (see
``gensemcom.transmitter.describe``), paints its colour grid smoothly over the frame,
adds mild texture noise where the description says the background is textured, and
then repairs a thin band around the key region with Telea inpainting so that the
key region's border flows into the painted background without a seam.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Protocol

import cv2
import numpy as np

from gensemcom.shared.image_io import check_rgb8
from gensemcom.transmitter.describe import Description, StructuredDescriptor

logger = logging.getLogger(__name__)

NOISE_SIGMA = {"smooth": 0.0, "textured": 3.0, "busy": 6.0}
"""Luma noise (grey levels) per texture word: enough to look less flat, too little to invent detail."""


def prompt_rng(prompt: str) -> np.random.Generator:
    """A generator seeded from the prompt's SHA-256: the same prompt always gets the same texture."""
    return np.random.default_rng(int.from_bytes(hashlib.sha256(prompt.encode("utf-8")).digest()[:8], "little"))


class Inpainter(Protocol):
    """Anything that regenerates the background around the known key region (classical, diffusion, ...)."""

    name: str

    @property
    def settings(self) -> Mapping[str, object]:
        """What produced the output (model, steps, seed, ...), for the Delivery."""
        ...

    def __call__(self, prompt: str | None, known: np.ndarray, known_mask: np.ndarray) -> np.ndarray: ...


class ClassicalInpainter:
    """Fill everything outside ``known_mask`` from the prompt; keep ``known`` inside it exactly."""

    name = "classical-descriptor"

    @property
    def settings(self) -> dict[str, object]:
        return {"band_px": self.band_px}

    def __init__(self, descriptor: StructuredDescriptor, band_px: int = 4) -> None:
        if band_px < 0:
            raise ValueError(f"band_px must be >= 0, got {band_px}")
        self.descriptor = descriptor
        self.band_px = band_px

    def __call__(self, prompt: str | None, known: np.ndarray, known_mask: np.ndarray) -> np.ndarray:
        """uint8 H×W×3: ``known`` where ``known_mask``, regenerated background elsewhere."""
        check_rgb8(known, "known")
        if known_mask.dtype != np.bool_ or known_mask.shape != known.shape[:2]:
            raise ValueError(f"known_mask must be a bool {known.shape[:2]} array, got {known_mask.dtype} "
                             f"{known_mask.shape}")
        height, width = known_mask.shape
        description = self._parse(prompt)
        if description is not None:
            background = self.render(description, height, width, prompt_rng(prompt))
        else:
            background = np.broadcast_to(self._border_colour(known, known_mask), known.shape)
        canvas = np.where(known_mask[..., None], known, background)
        if self.band_px == 0 or not known_mask.any():
            return canvas
        size = 2 * self.band_px + 1
        ring = cv2.dilate(known_mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
        band = ring.astype(bool) & ~known_mask
        if not band.any():
            return canvas
        return cv2.inpaint(canvas, band.astype(np.uint8), self.band_px, cv2.INPAINT_TELEA)

    def _parse(self, prompt: str | None) -> Description | None:
        if prompt is None:
            logger.info("no prompt: filling the background with the key region's border colour")
            return None
        try:
            return self.descriptor.parse(prompt)
        except ValueError as error:
            logger.warning("unparseable prompt (%s): filling the background with the key region's border colour",
                           error)
            return None

    @staticmethod
    def render(description: Description, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        """The described background at ``height``×``width``, uint8 RGB.

        Bicubic upsampling treats each grid colour as a sample at its cell centre
        (the interpolant passes through it) and gives smooth gradients between cells.
        On Kodak24 it scored the same background PSNR as piecewise-constant cells with
        blurred edges (17.3 dB at 3×4), and looks more natural on skies.
        """
        painted = cv2.resize(description.grid.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
        sigma = NOISE_SIGMA[description.texture]
        if sigma > 0:
            painted += rng.normal(0.0, sigma, size=(height, width, 1)).astype(np.float32)
        return np.clip(np.round(painted), 0, 255).astype(np.uint8)

    @staticmethod
    def _border_colour(known: np.ndarray, known_mask: np.ndarray) -> np.ndarray:
        """Mean colour of the key region's outermost pixels; mid grey when there is no key region."""
        inner = cv2.erode(known_mask.astype(np.uint8), np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
        border = known_mask & ~inner.astype(bool)
        if not border.any():
            return np.full(3, 128, dtype=np.uint8)
        return np.round(known[border].mean(axis=0)).astype(np.uint8)
