"""Which blocks of the key region matter most: faces first, then saliency.

The multi-task paper gives more symbols to more important semantics. Inside
a key region of people, the face carries identity and expression; elsewhere
spectral-residual saliency (what draws the eye) ranks the blocks. Every
16×16 block of the key region's box gets a score: its mean saliency over
the key pixels it holds (0…1), plus 1 if it overlaps a detected face box
(widened by ``face_margin`` on each side). The *important* blocks are the
face blocks when a face lies in the key region, otherwise the top
``important_share`` of the key blocks by saliency.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from gensemcom.shared.blocks import BLOCK, block_means, blocks_of
from gensemcom.transmitter.faces import FaceDetector
from gensemcom.transmitter.segment import spectral_residual_saliency

@dataclass(frozen=True)
class Importance:
    scores: np.ndarray  # (rows, cols) float, higher = more important
    important: np.ndarray  # (rows, cols) bool, the blocks planned at the higher rate
    source: str  # "faces" or "saliency"


class ImportanceRanker:
    """Scores the key region's blocks; ``faces=None`` ranks by saliency alone."""

    def __init__(self, faces: FaceDetector | None = None, important_share: float = 0.25,
                 face_margin: float = 0.2) -> None:
        if not 0 < important_share <= 1:
            raise ValueError(f"important_share must be in (0, 1], got {important_share}")
        if not 0 <= face_margin <= 1:
            raise ValueError(f"face_margin must be in [0, 1], got {face_margin}")
        self.faces, self.important_share, self.face_margin = faces, important_share, face_margin

    def __call__(self, image: np.ndarray, mask: np.ndarray, bbox: tuple[int, int, int, int]) -> Importance:
        x, y, w, h = bbox
        height, width = image.shape[:2]
        crop_mask = mask[y : y + h, x : x + w]
        sent = blocks_of(crop_mask)
        saliency = cv2.resize(spectral_residual_saliency(image), (width, height), interpolation=cv2.INTER_LINEAR)
        crop = saliency[y : y + h, x : x + w].astype(np.float64)
        peak = crop[crop_mask].max() if crop_mask.any() else 0.0
        scores = block_means(crop / peak if peak > 0 else crop, crop_mask)
        face_blocks = self._face_blocks(image, bbox, sent.shape) & sent
        if face_blocks.any():
            return Importance(np.where(face_blocks, scores + 1.0, scores), face_blocks, "faces")
        n_sent = int(sent.sum())
        n_top = max(1, round(self.important_share * n_sent)) if n_sent else 0
        order = np.argsort(-np.where(sent, scores, -np.inf).ravel(), kind="stable")[:n_top]
        important = np.zeros(sent.size, bool)
        important[order] = True
        return Importance(scores, important.reshape(sent.shape), "saliency")

    def _face_blocks(self, image: np.ndarray, bbox: tuple[int, int, int, int], grid: tuple[int, int]) -> np.ndarray:
        """Blocks of the box's grid that overlap a (widened) face box."""
        out = np.zeros(grid, bool)
        if self.faces is None:
            return out
        x, y, _, _ = bbox
        for face in self.faces(image):
            mx, my = self.face_margin * face.width, self.face_margin * face.height
            c0 = int(np.floor((face.x - mx - x) / BLOCK))
            c1 = int(np.ceil((face.x + face.width + mx - x) / BLOCK))
            r0 = int(np.floor((face.y - my - y) / BLOCK))
            r1 = int(np.ceil((face.y + face.height + my - y) / BLOCK))
            out[max(r0, 0) : max(r1, 0), max(c0, 0) : max(c1, 0)] = True
        return out
