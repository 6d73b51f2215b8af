"""Face boxes from the MediaPipe short-range face detector (BlazeFace, TFLite).

Used to rank the key region's blocks by importance: a face is what a viewer
of a person looks at first. The post-processing follows MediaPipe's own
graph for this model (face_detection_short_range.pbtxt): the image is
letterboxed to 128×128 and scaled to [-1, 1]; the 896 SSD anchors are the
centres of a 16×16 grid (2 per cell) and an 8×8 grid (6 per cell) with unit
size; box = anchor centre + regressor / 128; score = sigmoid of the logit;
detections above ``min_score`` are merged by non-maximum suppression. The
model finds faces that fill roughly 1/10 or more of the image side (selfie
and portrait distance); smaller faces are simply not found.
"""

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gensemcom.transmitter.segment import Interpreter, require_rgb

INPUT_SIZE = 128
FACE_MODEL = "mediapipe_face_detection/face_detection_short_range.tflite"  # under the weights folder


@dataclass(frozen=True)
class Face:
    """A face box in pixels of the original image, and the detector's confidence."""

    x: float
    y: float
    width: float
    height: float
    score: float


def ssd_anchor_centres() -> np.ndarray:
    """(896, 2) anchor centres (x, y) in [0, 1] of the short-range model, in its output order."""
    centres = []
    for grid, per_cell in ((16, 2), (8, 6)):
        ys, xs = np.meshgrid((np.arange(grid) + 0.5) / grid, (np.arange(grid) + 0.5) / grid, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cells, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one (x0, y0, x1, y1) box with each row of ``boxes``."""
    x0, y0 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x1, y1 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


class FaceDetector:
    """MediaPipe short-range face detection on an RGB image."""

    name = "mediapipe-face-short-range"

    def __init__(self, model_path: Path, min_score: float = 0.5, nms_iou: float = 0.3) -> None:
        model_path = Path(model_path)
        if not model_path.is_file():
            raise FileNotFoundError(
                f"MediaPipe face detection model not found at {model_path}. Put face_detection_short_range.tflite "
                "there (shared/data/README.md, weights/), or rank blocks by saliency (--importance saliency).")
        if not 0 < min_score < 1 or not 0 < nms_iou < 1:
            raise ValueError(f"min_score and nms_iou must lie in (0, 1), got {min_score}, {nms_iou}")
        self.min_score, self.nms_iou = min_score, nms_iou
        self._interpreter = Interpreter(model_path=str(model_path))
        self._interpreter.allocate_tensors()
        (inp,) = self._interpreter.get_input_details()
        outputs = {d["name"]: int(d["index"]) for d in self._interpreter.get_output_details()}
        if tuple(inp["shape"]) != (1, INPUT_SIZE, INPUT_SIZE, 3) or set(outputs) != {"regressors", "classificators"}:
            raise ValueError(f"{model_path} is not the short-range face detector (input {tuple(inp['shape'])}, "
                             f"outputs {sorted(outputs)})")
        self._input = int(inp["index"])
        self._regressors, self._scores = outputs["regressors"], outputs["classificators"]
        self._anchors = ssd_anchor_centres()
        self._lock = threading.Lock()  # one invocation at a time per interpreter

    def __call__(self, image: np.ndarray) -> list[Face]:
        """Faces in ``image`` (uint8 H×W×3 RGB), most confident first."""
        require_rgb(image)
        height, width = image.shape[:2]
        scale = INPUT_SIZE / max(height, width)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        pad_x, pad_y = (INPUT_SIZE - new_w) // 2, (INPUT_SIZE - new_h) // 2
        canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.float32)
        small = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA).astype(np.float32)
        canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = small / 127.5 - 1.0
        with self._lock:
            self._interpreter.set_tensor(self._input, canvas[None])
            self._interpreter.invoke()
            raw = self._interpreter.get_tensor(self._regressors)[0].copy()
            logits = self._interpreter.get_tensor(self._scores)[0, :, 0].copy()
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -100, 100)))
        keep = scores >= self.min_score
        centre = self._anchors[keep] + raw[keep, :2] / INPUT_SIZE
        size = raw[keep, 2:4] / INPUT_SIZE
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)  # letterbox units, [0, 1]
        faces = []
        for index in self._suppress(boxes, scores[keep]):
            x0, y0, x1, y1 = boxes[index] * INPUT_SIZE - [pad_x, pad_y, pad_x, pad_y]
            x0, x1 = np.clip([x0 / scale, x1 / scale], 0, width)
            y0, y1 = np.clip([y0 / scale, y1 / scale], 0, height)
            if x1 > x0 and y1 > y0:
                faces.append(Face(float(x0), float(y0), float(x1 - x0), float(y1 - y0), float(scores[keep][index])))
        return faces

    def _suppress(self, boxes: np.ndarray, scores: np.ndarray) -> list[int]:
        """Indices kept by greedy non-maximum suppression, most confident first."""
        kept: list[int] = []
        for index in np.argsort(-scores, kind="stable"):
            if not kept or np.all(_iou(boxes[index], boxes[kept]) <= self.nms_iou):
                kept.append(int(index))
        return kept
