"""Segmenters: split an image into the key region (sent as pixels) and the background.

The key region is what the receiver must reproduce faithfully; everything else is
described in text and regenerated. Three offline backends exist:

- ``MediaPipeSelfieSegmenter`` runs the real MediaPipe selfie (person) model with
  ai-edge-litert, so people are the key region, as in the paper's tests.
- ``SaliencySegmenter`` needs no weights: spectral-residual saliency (Hou & Zhang,
  CVPR 2007) with a centre prior. It covers images without people (most of Kodak).
- ``YoloSegmenter`` (:mod:`.segment_yolo`) runs an ultralytics YOLO segmentation
  model on any COCO classes, when its weights are supplied.

Each backend *proposes* a key region (:class:`Proposal`): its own mask, the object
instances it found (mask, score, label) and, where it has one, a per-pixel
probability map. :mod:`.alpha` uses those to reach a requested share α of pixels;
without a target the backend's own mask is the key region. ``FallbackSegmenter``
chains backends, and every ``Segmentation`` names the backend that produced it, so
a delivery reports honestly which one ran.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from gensemcom.shared.image_io import check_rgb8
from gensemcom.shared.paths import shared_data_dir

logger = logging.getLogger(__name__)

SELFIE_MODEL = Path("mediapipe_selfie_segmentation") / "selfie_segmentation.tflite"
SEGMENTER_NAMES = ("mediapipe", "saliency", "yolo", "whole")


def _check_mask(mask: np.ndarray, what: str) -> None:
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.ndim != 2:
        raise ValueError(f"{what} must be a bool H×W array, got {getattr(mask, 'dtype', type(mask))} "
                         f"{getattr(mask, 'shape', '')}")


@dataclass(frozen=True)
class Segmentation:
    """A key-region mask, where it came from and how it was chosen."""

    mask: np.ndarray
    """bool H×W, True on the key region."""
    source: str
    """Name of the backend that produced the mask."""
    labels: tuple[str, ...]
    """What the key region contains, e.g. ("person",); empty when the mask is empty."""
    alpha_target: float | None = None
    """The share of pixels asked for; None when the backend's own mask was taken."""
    method: str = "backend"
    """How the mask was chosen: "backend", "instances", "threshold", or one of those with "+dilate"/"+erode"."""
    instances: int = 0
    """How many of the backend's instances overlap the key region."""
    note: str = ""
    """Why the target share was not reached; empty when it was (or when there was none)."""

    def __post_init__(self) -> None:
        _check_mask(self.mask, "mask")

    @property
    def alpha(self) -> float:
        """Share of pixels in the key region (the paper's α), measured on the mask itself."""
        return float(self.mask.mean())


@dataclass(frozen=True)
class Instance:
    """One object a backend found: its pixels, its confidence and its class name."""

    mask: np.ndarray
    """bool H×W at image resolution."""
    score: float
    """Confidence in [0, 1]; α control adds instances in falling score order."""
    label: str

    def __post_init__(self) -> None:
        _check_mask(self.mask, "instance mask")
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"instance score must lie in [0, 1], got {self.score}")


@dataclass(frozen=True)
class Proposal:
    """What a backend offers: its own key region, the instances behind it and its probability map.

    The backend's own mask need not be the union of all instances (the saliency
    backend keeps only the large blobs); the instances and the probability map are
    the material from which :mod:`.alpha` builds a key region of another size.
    """

    mask: np.ndarray
    """The backend's own key region, bool H×W."""
    source: str
    instances: tuple[Instance, ...]
    """Sorted by score, highest first."""
    probability: np.ndarray | None
    """float32 H×W in [0, 1], higher = more key-like; None when the backend has no such map."""
    label: str
    """What the probability map marks ("person"): the label of pixels no instance claims."""

    def __post_init__(self) -> None:
        _check_mask(self.mask, "mask")
        for instance in self.instances:
            if instance.mask.shape != self.mask.shape:
                raise ValueError(f"instance mask {instance.mask.shape} differs from the mask {self.mask.shape}")
        if any(a.score < b.score for a, b in zip(self.instances, self.instances[1:])):
            raise ValueError("instances must be sorted by score, highest first")
        if self.probability is not None and self.probability.shape != self.mask.shape:
            raise ValueError(f"probability map {self.probability.shape} differs from the mask {self.mask.shape}")

    @property
    def alpha(self) -> float:
        """Share of pixels in the backend's own key region."""
        return float(self.mask.mean())

    def segmentation(self, mask: np.ndarray | None = None, alpha_target: float | None = None,
                     method: str = "backend", note: str = "") -> Segmentation:
        """A Segmentation of ``mask`` (default: the backend's own), labelled by the instances it overlaps."""
        mask = self.mask if mask is None else mask
        inside = [instance for instance in self.instances if (instance.mask & mask).any()]
        labels = tuple(dict.fromkeys(instance.label for instance in inside)) or (self.label,)
        return Segmentation(mask=mask, source=self.source, labels=labels if mask.any() else (),
                            alpha_target=alpha_target, method=method, instances=len(inside), note=note)


class Segmenter(Protocol):
    """Anything that maps an RGB image to a key-region segmentation."""

    name: str

    def __call__(self, image: np.ndarray) -> Segmentation: ...


class Proposer(Segmenter, Protocol):
    """A segmenter that can also show its instances and probability map (what α control needs)."""

    def propose(self, image: np.ndarray) -> Proposal: ...


def require_rgb(image: np.ndarray) -> None:
    """Raise ValueError unless ``image`` is uint8 RGB and at least 8×8 (smaller has nothing to segment)."""
    check_rgb8(image)
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise ValueError(f"image must be at least 8×8 pixels, got {image.shape[0]}×{image.shape[1]}")


def clean_mask(mask: np.ndarray, min_component_frac: float = 0.002, max_hole_frac: float = 0.05) -> np.ndarray:
    """Open, close, drop specks smaller than ``min_component_frac`` of the image, fill holes.

    Thresholded network or saliency maps carry isolated specks and pinholes; each
    speck would cost mask bits and JSCC symbols while carrying nothing worth keeping.
    Holes (background enclosed by the key region, not touching the image border)
    smaller than ``max_hole_frac`` are filled: on people they are mostly dark
    clothing the model was unsure about (a 2.4 % hole in a suit on yolov5_zidane),
    and a key pixel lost to the background is regenerated as flat colour, while a
    background pixel kept costs only symbols. The kernel scales with the image
    (1 % of the short side) so the clean-up means the same at every resolution.
    """
    height, width = mask.shape
    size = max(3, 2 * round(0.005 * min(height, width)) + 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    opened = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, kernel)
    closed = cv2.morphologyEx(opened, cv2.MORPH_CLOSE, kernel).astype(bool)
    solid = _drop_small_components(closed, min_component_frac * height * width)
    return solid | _enclosed_holes(solid, max_hole_frac * height * width)


def _drop_small_components(mask: np.ndarray, min_area: float) -> np.ndarray:
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False  # label 0 is the background
    return keep[labels]


def _enclosed_holes(mask: np.ndarray, max_area: float) -> np.ndarray:
    """Background components no larger than ``max_area`` that do not touch the image border."""
    height, width = mask.shape
    _, labels, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), connectivity=4)
    left, top = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    right, bottom = left + stats[:, cv2.CC_STAT_WIDTH], top + stats[:, cv2.CC_STAT_HEIGHT]
    hole = (left > 0) & (top > 0) & (right < width) & (bottom < height) & (stats[:, cv2.CC_STAT_AREA] <= max_area)
    hole[0] = False  # label 0 is the key region itself
    return hole[labels]


def component_instances(mask: np.ndarray, score_map: np.ndarray, label: str) -> tuple[Instance, ...]:
    """One instance per 8-connected component of ``mask``, scored by the mean of ``score_map`` over it.

    Maps that give one probability per pixel (no object identities) are split this
    way into objects that α control can keep or drop whole. Sorted by score, highest first.
    """
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    sums = np.bincount(labels.ravel(), weights=score_map.ravel().astype(np.float64), minlength=count)
    areas = np.bincount(labels.ravel(), minlength=count)
    instances = [Instance(mask=labels == index, score=float(np.clip(sums[index] / areas[index], 0.0, 1.0)),
                          label=label) for index in range(1, count)]
    return tuple(sorted(instances, key=lambda instance: -instance.score))


class MediaPipeSelfieSegmenter:
    """Person mask from the MediaPipe selfie segmentation TFLite model.

    Preprocessing follows MediaPipe's own graph: the whole image is resized (not
    letterboxed) to the model input and scaled to [0, 1]. On the people photos this
    gave the cleanest masks; [-1, 1] input lost whole people (yolov5_zidane: 0.8 %
    of pixels instead of 53 %) and letterboxing let background crowd leak in.
    The model's output is already a probability (sigmoid inside the graph). The
    input size is read from the model, so the 144×256 landscape variant runs too.

    The model has no notion of separate people: each connected component of the
    thresholded map is one "person" instance, scored by its mean probability, and
    the map itself lets α control grow or shrink the region by moving the threshold.

    The label is the model's claim, not a verified fact: the selfie model also
    fires on salient non-person objects (clouds in kodim16, hats in kodim03, a
    lighthouse in kodim21), and no probability statistic separated those from the
    people photos.
    """

    name = "mediapipe-selfie"

    def __init__(self, model_path: Path, threshold: float = 0.5) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
        model_path = Path(model_path)
        if not model_path.is_file():
            raise FileNotFoundError(
                f"MediaPipe selfie segmentation model not found at {model_path}. Put "
                f"selfie_segmentation.tflite there (see shared/data/README.md, weights/), "
                f"point the weights directory at it, or choose the 'saliency' segmenter.")
        self.threshold = threshold
        self._interpreter = Interpreter(model_path=str(model_path))
        self._interpreter.allocate_tensors()
        (inp,) = self._interpreter.get_input_details()
        (out,) = self._interpreter.get_output_details()
        if inp["dtype"] != np.float32 or len(inp["shape"]) != 4 or inp["shape"][3] != 3:
            raise ValueError(f"{model_path} is not a float32 N×H×W×3 segmentation model: input {inp['shape']}")
        self._input_index = int(inp["index"])
        self._output_index = int(out["index"])
        self._input_size = (int(inp["shape"][2]), int(inp["shape"][1]))  # (width, height) for cv2
        # A TFLite interpreter owns mutable tensors: one invocation at a time.
        self._lock = threading.Lock()

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """Per-pixel person probability, float32 H×W in [0, 1]."""
        require_rgb(image)
        height, width = image.shape[:2]
        small = cv2.resize(image, self._input_size, interpolation=cv2.INTER_AREA)
        batch = (small.astype(np.float32) / 255.0)[None]
        with self._lock:
            self._interpreter.set_tensor(self._input_index, batch)
            self._interpreter.invoke()
            prob = self._interpreter.get_tensor(self._output_index)[0, :, :, 0].copy()
        return np.clip(cv2.resize(prob, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)

    def propose(self, image: np.ndarray) -> Proposal:
        probability = self.probabilities(image)
        mask = clean_mask(probability > self.threshold)
        return Proposal(mask=mask, source=self.name, instances=component_instances(mask, probability, "person"),
                        probability=probability, label="person")

    def __call__(self, image: np.ndarray) -> Segmentation:
        return self.propose(image).segmentation()


def spectral_residual_saliency(image: np.ndarray, width: int = 64) -> np.ndarray:
    """Spectral-residual saliency (Hou & Zhang 2007), float32 at the analysis size (``width`` wide).

    The log amplitude spectrum of natural images is smooth; what sticks out of its
    local average (the residual) belongs to unexpected structure. Transforming the
    residual back with the original phase gives a map that is high on such structure.
    The analysis runs at ``width`` pixels wide, as in the paper (64), so the result
    describes objects rather than fine texture.
    """
    height = max(1, round(width * image.shape[0] / image.shape[1]))
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA).astype(np.float64) / 255.0
    spectrum = np.fft.fft2(small)
    log_amplitude = np.log(np.abs(spectrum) + 1e-9)
    residual = log_amplitude - cv2.blur(log_amplitude, (3, 3))
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    return cv2.GaussianBlur(saliency.astype(np.float32), (0, 0), sigmaX=2.5)


class SaliencySegmenter:
    """Key region = the most salient blob(s); works on any image, needs no weights.

    Steps: spectral-residual saliency, multiplied by a Gaussian centre prior (photographers
    frame their subject near the centre), resized to full resolution, Otsu threshold,
    clean-up; each blob is an instance scored by its mean saliency, and the backend's
    own mask keeps the blobs at least ``keep_ratio`` as large as the largest.
    An image with (almost) no contrast has nothing salient: the mask is empty.
    Deterministic: no random draws anywhere.
    """

    name = "saliency"
    label = "salient region"

    def __init__(self, centre_sigma: float = 0.3, keep_ratio: float = 0.3, min_contrast: int = 4) -> None:
        if centre_sigma <= 0 or not 0 < keep_ratio <= 1 or min_contrast < 0:
            raise ValueError("centre_sigma must be > 0, keep_ratio in (0, 1], min_contrast >= 0")
        self.centre_sigma = centre_sigma
        self.keep_ratio = keep_ratio
        self.min_contrast = min_contrast

    def saliency_map(self, image: np.ndarray) -> np.ndarray:
        """Saliency times centre prior, float32 H×W in [0, 1]; all zeros for a flat image."""
        require_rgb(image)
        height, width = image.shape[:2]
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if int(gray.max()) - int(gray.min()) < self.min_contrast:
            return np.zeros((height, width), dtype=np.float32)
        saliency = spectral_residual_saliency(image)
        rows, cols = saliency.shape
        y = (np.arange(rows) + 0.5) / rows - 0.5
        x = (np.arange(cols) + 0.5) / cols - 0.5
        prior = np.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2 * self.centre_sigma ** 2))
        weighted = (saliency * prior).astype(np.float32)
        weighted /= max(float(weighted.max()), 1e-12)
        return np.clip(cv2.resize(weighted, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)

    def propose(self, image: np.ndarray) -> Proposal:
        saliency = self.saliency_map(image)
        level = np.round(saliency * 255).astype(np.uint8)
        if level.max() == 0:
            return Proposal(mask=np.zeros(level.shape, dtype=bool), source=self.name, instances=(),
                            probability=saliency, label=self.label)
        _, binary = cv2.threshold(level, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        instances = component_instances(clean_mask(binary.astype(bool)), saliency, self.label)
        largest = max((int(instance.mask.sum()) for instance in instances), default=0)
        mask = np.zeros(level.shape, dtype=bool)
        for instance in instances:
            if instance.mask.sum() >= self.keep_ratio * largest:
                mask |= instance.mask
        return Proposal(mask=mask, source=self.name, instances=instances, probability=saliency, label=self.label)

    def __call__(self, image: np.ndarray) -> Segmentation:
        return self.propose(image).segmentation()


class WholeImageSegmenter:
    """The whole image as key region: what a scheme that codes every pixel (DeepJSCC on the image) segments."""

    name = "whole-image"

    def __call__(self, image: np.ndarray) -> Segmentation:
        require_rgb(image)
        return Segmentation(mask=np.ones(image.shape[:2], bool), source=self.name, labels=("image",))


class FallbackSegmenter:
    """Use ``primary``; when its mask covers less than ``min_alpha`` of the image, use ``fallback``.

    A person model finds nothing in a landscape; sending an empty key region would
    leave the whole image to the text prompt, so the salient region stands in.
    ``propose`` makes the same choice on proposals, so α control works on the chain.
    """

    def __init__(self, primary: Proposer, fallback: Proposer, min_alpha: float = 0.01) -> None:
        if not 0.0 <= min_alpha < 1.0:
            raise ValueError(f"min_alpha must lie in [0, 1), got {min_alpha}")
        self.primary = primary
        self.fallback = fallback
        self.min_alpha = min_alpha
        self.name = f"{primary.name}|{fallback.name}"

    def __call__(self, image: np.ndarray) -> Segmentation:
        first = self.primary(image)
        if first.alpha >= self.min_alpha:
            return first
        self._log_switch(first.alpha)
        return self.fallback(image)

    def propose(self, image: np.ndarray) -> Proposal:
        first = self.primary.propose(image)
        if first.alpha >= self.min_alpha:
            return first
        self._log_switch(first.alpha)
        return self.fallback.propose(image)

    def _log_switch(self, alpha: float) -> None:
        logger.info("%s covered %.4f < %.4f of the image; using %s",
                    self.primary.name, alpha, self.min_alpha, self.fallback.name)


def make_segmenter(
    name: str,
    weights_dir: Path | None = None,
    *,
    alpha: float | None = None,
    alpha_tolerance: float = 0.02,
    yolo_weights: str = "yolo11n-seg.pt",
    classes: str | int | Sequence[str | int] | None = "person",
    confidence: float = 0.25,
    device: str = "cpu",
) -> Segmenter:
    """Build a segmenter by config name: "mediapipe", "saliency", "yolo" or "whole" (every pixel is key).

    "mediapipe" and "yolo" fall back to saliency on images where they find (almost)
    nothing. ``weights_dir`` defaults to the shared data's weights folder. Missing
    MediaPipe weights degrade to saliency with a warning rather than failing: every
    ``Segmentation`` names its ``source``, so the downgrade is visible downstream.
    YOLO weights are never shipped, so asking for YOLO without them is an error
    (:class:`FileNotFoundError` saying where to put them), not a silent downgrade.

    ``alpha`` (a share of pixels in (0, 1)) wraps the segmenter in α control
    (:class:`.alpha.AlphaControl`); None keeps each backend's own mask.
    ``yolo_weights``, ``classes``, ``confidence`` and ``device`` configure "yolo" only.
    """
    weights = Path(weights_dir) if weights_dir is not None else shared_data_dir() / "weights"
    segmenter: Proposer
    if name == "whole":
        if alpha is not None:
            raise ValueError(f"the whole-image segmenter has α = 1 by definition; it cannot take an α target ({alpha})")
        return WholeImageSegmenter()
    if name == "saliency":
        segmenter = SaliencySegmenter()
    elif name == "mediapipe":
        model_path = weights / SELFIE_MODEL
        if model_path.is_file():
            segmenter = FallbackSegmenter(MediaPipeSelfieSegmenter(model_path), SaliencySegmenter())
        else:
            logger.warning("MediaPipe model missing at %s; using the saliency segmenter instead", model_path)
            segmenter = SaliencySegmenter()
    elif name == "yolo":
        from gensemcom.transmitter.segment_yolo import YoloSegmenter  # ultralytics takes seconds to import

        yolo = YoloSegmenter(yolo_weights, weights_dir=weights, classes=classes, confidence=confidence, device=device)
        segmenter = FallbackSegmenter(yolo, SaliencySegmenter())
    else:
        raise ValueError(f"unknown segmenter {name!r}; choose one of {', '.join(SEGMENTER_NAMES)}")
    if alpha is None:
        return segmenter
    from gensemcom.transmitter.alpha import AlphaControl  # alpha.py builds on this module: import it late

    return AlphaControl(segmenter, alpha, tolerance=alpha_tolerance)
