"""The structured descriptor: the background as a short, exact, machine-readable text.

This is the offline stand-in for a captioner. It is not a caption: it never says
what the scene *is*, only what can be measured without a learned model:

- the key region's labels with position words ("person centre near large"),
- a coarse grid of dominant background colours,
- how textured and how bright the background is.

Example (a 3×4 grid)::

    person centre near large; background 3x4: 6a7f3c 8899aa ...; texture textured; brightness dark

The text is both readable by people (and by a text-to-image model later) and
parseable: ``parse(render(d)) == d`` exactly, which is what lets the classical
inpainter at the receiver rebuild the background from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from gensemcom.shared.image_io import check_rgb8
from gensemcom.transmitter.segment import Segmentation

TEXTURES = ("smooth", "textured", "busy")
BRIGHTNESS = ("dark", "medium", "bright")

_LABEL = re.compile(r"[^;,\s](?:[^;,\n]*[^;,\s])?")
_TEXT = re.compile(
    r"(?:(?P<labels>[^;]+); )?"
    r"background (?P<rows>[1-9][0-9]{0,2})x(?P<cols>[1-9][0-9]{0,2}): "
    r"(?P<cells>[0-9a-f]{6}(?: [0-9a-f]{6})*); "
    rf"texture (?P<texture>{'|'.join(TEXTURES)}); "
    rf"brightness (?P<brightness>{'|'.join(BRIGHTNESS)})")


@dataclass(eq=False)
class Description:
    """What the descriptor says about one image; the parsed form of its text."""

    labels: list[str]
    """Key-region labels with position words, e.g. "person centre near large"."""
    grid: np.ndarray
    """rows×cols×3 uint8: dominant background colour of each cell (RGB)."""
    texture: str
    """One of TEXTURES, from the background's mean gradient magnitude."""
    brightness: str
    """One of BRIGHTNESS, from the background's mean luma."""

    def __post_init__(self) -> None:
        if self.grid.dtype != np.uint8 or self.grid.ndim != 3 or self.grid.shape[2] != 3 or self.grid.size == 0:
            raise ValueError(f"grid must be a non-empty uint8 rows×cols×3 array, got {self.grid.dtype} "
                             f"{self.grid.shape}")
        if self.texture not in TEXTURES:
            raise ValueError(f"texture must be one of {TEXTURES}, got {self.texture!r}")
        if self.brightness not in BRIGHTNESS:
            raise ValueError(f"brightness must be one of {BRIGHTNESS}, got {self.brightness!r}")
        for label in self.labels:
            if not _LABEL.fullmatch(label):
                raise ValueError(f"label {label!r} must be non-empty, without ';' ',' or newlines, "
                                 f"and without surrounding spaces")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Description):
            return NotImplemented
        return (self.labels == other.labels and self.texture == other.texture
                and self.brightness == other.brightness and self.grid.shape == other.grid.shape
                and bool(np.array_equal(self.grid, other.grid)))


def cell_edges(length: int, parts: int) -> np.ndarray:
    """Integer cell boundaries splitting ``length`` pixels into ``parts`` near-equal cells.

    Shared with the receiver so that both ends agree on which pixels a cell covers.
    """
    return (np.arange(parts + 1) * length) // parts


def render(description: Description) -> str:
    """The text form of a description (no length limit; see StructuredDescriptor.render)."""
    rows, cols, _ = description.grid.shape
    cells = " ".join(f"{r:02x}{g:02x}{b:02x}" for r, g, b in description.grid.reshape(-1, 3).tolist())
    body = (f"background {rows}x{cols}: {cells}; texture {description.texture}; "
            f"brightness {description.brightness}")
    return f"{', '.join(description.labels)}; {body}" if description.labels else body


def parse(text: str) -> Description:
    """Inverse of ``render``; raises ValueError on anything ``render`` cannot produce."""
    match = _TEXT.fullmatch(text)
    if match is None:
        raise ValueError(f"not a structured description: {text[:80]!r}")
    rows, cols = int(match["rows"]), int(match["cols"])
    cells = match["cells"].split(" ")
    if len(cells) != rows * cols:
        raise ValueError(f"background {rows}x{cols} needs {rows * cols} colours, got {len(cells)}")
    grid = np.frombuffer(bytes.fromhex("".join(cells)), dtype=np.uint8).reshape(rows, cols, 3).copy()
    labels = match["labels"].split(", ") if match["labels"] is not None else []
    return Description(labels=labels, grid=grid, texture=match["texture"], brightness=match["brightness"])


def _lower_median(pixels: np.ndarray) -> np.ndarray:
    """Per-channel lower median of N×3 uint8 pixels: always a value that occurs in the data."""
    return np.quantile(pixels, 0.5, axis=0, method="lower").astype(np.uint8)


class Describer(Protocol):
    """Anything that turns an image and its key-region segmentation into the PROMPT text."""

    name: str

    def __call__(self, image: np.ndarray, segmentation: Segmentation) -> str: ...


class StructuredDescriptor:
    """Image + key-region segmentation → structured description text.

    Dominant colour per cell is the per-channel lower median of the cell's
    background pixels, not k-means: it draws no random numbers (cv2.kmeans seeds
    from OpenCV's global RNG), ignores a minority of stray pixels (key-region edges),
    and returns a colour exactly when it covers more than half of the cell.
    Cells wholly inside the key region take the colour of the nearest cell that has
    background (ties: first in row-major order).

    Texture is the mean Sobel gradient magnitude of the background luma, in grey
    levels per pixel; the default thresholds (5, 10) split Kodak24 roughly in thirds
    (its images range 4–17). The measure depends on resolution: downscaling an image
    raises it.
    """

    name = "structured-descriptor"

    def __init__(self, grid: tuple[int, int] = (3, 4), max_chars: int = 256,
                 texture_thresholds: tuple[float, float] = (5.0, 10.0)) -> None:
        rows, cols = grid
        if not (1 <= rows <= 999 and 1 <= cols <= 999):
            raise ValueError(f"grid must be between 1x1 and 999x999 cells, got {rows}x{cols}")
        if not 0 < texture_thresholds[0] < texture_thresholds[1]:
            raise ValueError(f"texture thresholds must be increasing and positive, got {texture_thresholds}")
        longest = Description(labels=[], grid=np.zeros((rows, cols, 3), np.uint8),
                              texture=max(TEXTURES, key=len), brightness=max(BRIGHTNESS, key=len))
        if len(render(longest)) > max_chars:
            raise ValueError(f"a {rows}x{cols} grid needs {len(render(longest))} characters, "
                             f"more than max_chars={max_chars}")
        self.grid = (rows, cols)
        self.max_chars = max_chars
        self.texture_thresholds = texture_thresholds

    def __call__(self, image: np.ndarray, segmentation: Segmentation) -> str:
        return self.render(self.describe(image, segmentation))

    def render(self, description: Description) -> str:
        """Text of ``description``, dropping trailing labels until it fits ``max_chars``; never the grid."""
        labels = list(description.labels)
        while True:
            text = render(Description(labels, description.grid, description.texture, description.brightness))
            if len(text) <= self.max_chars:
                return text
            labels.pop()

    @staticmethod
    def parse(text: str) -> Description:
        """Inverse of ``render``; raises ValueError on malformed text."""
        return parse(text)

    def describe(self, image: np.ndarray, segmentation: Segmentation) -> Description:
        """Measure labels, colour grid, texture and brightness of ``image``'s background."""
        check_rgb8(image)
        if segmentation.mask.shape != image.shape[:2]:
            raise ValueError(f"mask {segmentation.mask.shape} does not match image {image.shape[:2]}")
        background = ~segmentation.mask
        if not background.any():  # all key region: describe the whole image instead
            background = np.ones_like(background)
        luma = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return Description(labels=self._labels(segmentation), grid=self._colour_grid(image, background),
                           texture=self._texture(luma, background), brightness=self._brightness(luma, background))

    @staticmethod
    def _labels(segmentation: Segmentation) -> list[str]:
        mask = segmentation.mask
        if not mask.any():
            return []
        height, width = mask.shape
        ys, xs = np.nonzero(mask)
        centre_x = (xs.mean() + 0.5) / width
        horizontal = "left" if centre_x < 1 / 3 else "right" if centre_x > 2 / 3 else "centre"
        depth = "near" if (ys.max() - ys.min() + 1) / height >= 0.5 else "far"
        alpha = segmentation.alpha
        size = "small" if alpha < 0.05 else "medium" if alpha < 0.25 else "large"
        return [f"{label} {horizontal} {depth} {size}" for label in segmentation.labels]

    def _colour_grid(self, image: np.ndarray, background: np.ndarray) -> np.ndarray:
        rows, cols = self.grid
        row_edges = cell_edges(image.shape[0], rows)
        col_edges = cell_edges(image.shape[1], cols)
        grid = np.zeros((rows, cols, 3), dtype=np.uint8)
        known = np.zeros((rows, cols), dtype=bool)
        for r in range(rows):
            for c in range(cols):
                cell = (slice(row_edges[r], row_edges[r + 1]), slice(col_edges[c], col_edges[c + 1]))
                pixels = image[cell][background[cell]]
                if len(pixels):
                    grid[r, c] = _lower_median(pixels)
                    known[r, c] = True
        known_cells = np.argwhere(known)
        for r, c in np.argwhere(~known):
            nearest = np.argmin(((known_cells - (r, c)) ** 2).sum(axis=1))
            grid[r, c] = grid[tuple(known_cells[nearest])]
        return grid

    def _texture(self, luma: np.ndarray, background: np.ndarray) -> str:
        gx = cv2.Sobel(luma, cv2.CV_32F, 1, 0, ksize=3) / 8
        gy = cv2.Sobel(luma, cv2.CV_32F, 0, 1, ksize=3) / 8
        energy = float(np.hypot(gx, gy)[background].mean())
        low, high = self.texture_thresholds
        return "smooth" if energy < low else "textured" if energy < high else "busy"

    @staticmethod
    def _brightness(luma: np.ndarray, background: np.ndarray) -> str:
        level = float(luma[background].mean())
        return "dark" if level < 85 else "medium" if level < 170 else "bright"
