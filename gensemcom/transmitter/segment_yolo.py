"""YOLO instance segmentation (ultralytics) as a key-region backend.

The MediaPipe model knows only "person" and cannot tell two people apart; a YOLO
segmentation model finds separate instances of any of the 80 COCO classes, each
with a confidence, which is what α control (:mod:`.alpha`) adds or drops in score
order. The paper's key regions are "specified objects or foreground elements",
so the class filter chooses which objects count (people by default, as in its tests).

Nothing is ever downloaded: importing this module sets ``YOLO_OFFLINE=1`` for
the process (ultralytics then skips its connectivity checks), URLs are refused,
and a weights file that is not on disk raises :class:`FileNotFoundError` saying
where to put it. A model YAML such as
``yolo11n-seg.yaml`` builds the architecture with random weights (seeded, so
repeatable): it exercises the whole path without real weights but finds nothing
meaningful. ultralytics (AGPL-3.0) is imported only when a YoloSegmenter is built,
since the import alone takes seconds.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gensemcom.transmitter.segment import Instance, Proposal, Segmentation, require_rgb

# ultralytics reads this once, at its import, wherever that happens: set it before anything can import it,
# so it never probes the network or fetches an asset.
os.environ["YOLO_OFFLINE"] = "1"

if TYPE_CHECKING:
    import torch
    from ultralytics import YOLO

YOLO_SUBDIR = "yolo"
"""Bare weight names are looked up in this folder of the weights directory."""

COCO_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)
"""The 80 COCO detection classes in YOLO's index order (ultralytics cfg/datasets/coco.yaml)."""

ClassSpec = str | int | Sequence[str | int] | None


def parse_classes(spec: ClassSpec, names: Sequence[str] = COCO_NAMES) -> tuple[int, ...] | None:
    """Class ids from names and/or ids: "person", "person, car", 0, ["person", 2]; None or "all": every class.

    Names match case-insensitively; a comma-separated string is split, so a config
    value or a command-line flag can list several. An unknown name or an id out of
    range raises ValueError listing what is valid.
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return None
    if isinstance(spec, str):
        items = spec.split(",")
    elif isinstance(spec, (int, np.integer)):
        items = [spec]
    else:
        items = list(spec)
    by_name = {name.lower(): index for index, name in enumerate(names)}
    ids: list[int] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int, np.integer)):
            raise ValueError(f"a class is a name or an id, got {item!r}")
        token = item.strip().lower() if isinstance(item, str) else int(item)
        if isinstance(token, str) and token.isdigit():
            token = int(token)
        if isinstance(token, str) and token not in by_name:
            raise ValueError(f"unknown class {item!r}; valid names: {', '.join(names)}")
        index = by_name[token] if isinstance(token, str) else token
        if not 0 <= index < len(names):
            raise ValueError(f"class id {index} out of range: the model has {len(names)} classes (0..{len(names) - 1})")
        if index not in ids:
            ids.append(index)
    if not ids:
        raise ValueError("no classes given; pass None for every class")
    return tuple(ids)


def resolve_weights(weights: str | Path, weights_dir: Path | None) -> str:
    """What to hand to ``YOLO()``: a model YAML as given, or a weights file that exists on disk.

    A bare name ("yolo11n-seg.pt") is looked for as given (relative to the working
    directory) and then in ``weights_dir/yolo/``. Never a download: a URL is a
    ValueError, a missing file a FileNotFoundError naming where to put it.
    """
    text = str(weights).strip()
    if "://" in text:
        raise ValueError(f"YOLO weights must be a local file or a model YAML, not a URL: {text!r} (nothing is "
                         f"downloaded)")
    if text.endswith((".yaml", ".yml")):
        return text  # ultralytics finds its own architecture files (yolo11n-seg.yaml) or the given path
    path = Path(text)
    candidates = [path]
    if weights_dir is not None and not path.is_absolute():
        candidates.append(Path(weights_dir) / YOLO_SUBDIR / path)
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    home = Path(weights_dir) / YOLO_SUBDIR / path.name if weights_dir is not None else path
    raise FileNotFoundError(
        f"YOLO segmentation weights {text!r} not found (looked at {', '.join(map(str, candidates))}). Nothing is "
        f"downloaded: copy the file (e.g. yolo11n-seg.pt from the ultralytics releases) to {home}, pass its full "
        f"path, or pass a model YAML such as yolo11n-seg.yaml for random weights (testing only).")


def model_class_names(model_names: dict[int, str]) -> tuple[str, ...]:
    """The model's class names; COCO's when the model carries only placeholders ("0", "1", ...).

    A model built from a YAML has no dataset attached and names its classes by
    number; an 80-class head is the COCO head, so COCO names make the class filter
    and the labels mean something.
    """
    names = tuple(model_names[index] for index in range(len(model_names)))
    if len(names) == len(COCO_NAMES) and all(name == str(index) for index, name in enumerate(names)):
        return COCO_NAMES
    return names


class YoloSegmenter:
    """Instance masks from an ultralytics YOLO segmentation model, at image resolution.

    Each detection of a kept class with confidence >= ``confidence`` becomes an
    :class:`Instance` (mask, score, class name), the ``max_instances`` most confident
    at most; the backend's own key region is their union. Masks are held at image
    resolution, max_instances × H × W bytes at most. YOLO gives no per-pixel
    probability map, so α control resizes its key region by instances first and
    morphology second. Runs on CPU unless ``device`` names another torch device
    ("cuda", "cuda:1", "mps").
    """

    def __init__(self, weights: str | Path = "yolo11n-seg.pt", weights_dir: Path | None = None,
                 classes: ClassSpec = "person", confidence: float = 0.25, device: str = "cpu",
                 image_size: int = 640, max_instances: int = 50, seed: int = 0) -> None:
        if not 0.0 <= confidence <= 1.0:
            raise ValueError(f"confidence must lie in [0, 1], got {confidence}")
        if max_instances < 1:
            raise ValueError(f"max_instances must be at least 1, got {max_instances}")
        if image_size < 32 or image_size % 32:
            raise ValueError(f"image_size must be a positive multiple of 32, got {image_size}")
        source = resolve_weights(weights, weights_dir)
        self.model = _load_model(source, seed)  # the ultralytics YOLO object, public for inspection
        if self.model.task != "segment":
            raise ValueError(f"{source} is a {self.model.task!r} model, not a segmentation ('segment') model")
        self.names = model_class_names(self.model.names)
        self.classes = parse_classes(classes, self.names)
        self.confidence = confidence
        self.device = device
        self.image_size = image_size
        self.max_instances = max_instances
        self.name = f"yolo:{Path(source).name}"
        # An ultralytics predictor keeps per-call state: one prediction at a time.
        self._lock = threading.Lock()

    def propose(self, image: np.ndarray) -> Proposal:
        require_rgb(image)
        bgr = np.ascontiguousarray(image[..., ::-1])  # ultralytics reads numpy arrays as OpenCV BGR
        with self._lock:
            (result,) = self.model.predict(
                bgr, device=self.device, conf=self.confidence, imgsz=self.image_size, retina_masks=False,
                max_det=self.max_instances, classes=None if self.classes is None else list(self.classes),
                verbose=False)
        instances = []
        if result.masks is not None:
            scores = result.boxes.conf.cpu().numpy()
            class_ids = result.boxes.cls.cpu().numpy().astype(int)
            for small, score, class_id in zip(result.masks.data, scores, class_ids):
                mask = _to_image(small, image.shape[:2])
                if mask.any():
                    instances.append(Instance(mask=mask, score=float(score), label=self.names[class_id]))
        instances.sort(key=lambda instance: -instance.score)
        mask = np.zeros(image.shape[:2], dtype=bool)
        for instance in instances:
            mask |= instance.mask
        wanted = self.names if self.classes is None else [self.names[index] for index in self.classes]
        return Proposal(mask=mask, source=self.name, instances=tuple(instances), probability=None,
                        label=", ".join(wanted))

    def __call__(self, image: np.ndarray) -> Segmentation:
        return self.propose(image).segmentation()


def _to_image(small: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """One mask from YOLO's letterboxed input size to the image's pixels, bilinear then cut at 0.5.

    ultralytics' own full-resolution path (retina_masks) scales every mask at once
    in float32, N × H × W × 4 bytes; one at a time, the peak is one float mask.
    """
    from ultralytics.utils.ops import scale_masks

    return scale_masks(small[None, None].float(), shape)[0, 0].cpu().numpy() > 0.5


def _load_model(source: str, seed: int) -> YOLO:
    """``YOLO(source)`` offline; a YAML's random weights come from a torch generator seeded with ``seed``."""
    import torch
    from PIL import Image
    from ultralytics import YOLO
    from ultralytics.utils import patches

    # Importing ultralytics replaces PIL's Image.open for the whole process with one that, on a file Pillow
    # cannot identify, tries to pip-install a HEIF plugin and then raises ModuleNotFoundError. Restore
    # Pillow's own, so decode_image keeps refusing a non-image with an ImageError (we pass YOLO arrays).
    Image.open = getattr(patches, "_image_open", Image.open)

    if not source.endswith((".yaml", ".yml")):
        return YOLO(source)
    # Layer initialisers draw from torch's global generator; fork it so the seed neither leaks nor is disturbed.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return YOLO(source)
