"""Keypoint-matching similarity: how much of one image's local structure is found again in the other.

ORB features (Rublee et al., 2011) with Lowe's ratio test (2004): a match counts only when the best
descriptor distance is clearly below the second best, so repeated texture does not inflate the score.
"""

import cv2
import numpy as np

ORB_FEATURES = 500
RATIO = 0.75


def _orb_descriptors(img: np.ndarray) -> np.ndarray | None:
    """ORB descriptors of a uint8 RGB image (None when the image has no corners, e.g. flat)."""
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected a uint8 HxWx3 image, got {img.dtype} {img.shape}")
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    _, descriptors = cv2.ORB_create(nfeatures=ORB_FEATURES).detectAndCompute(gray, None)
    return descriptors


def _good_fraction(query: np.ndarray, train: np.ndarray) -> float:
    """Fraction of ``query`` descriptors whose match in ``train`` passes the ratio test."""
    if len(train) < 2:
        return 0.0
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(query, train, k=2)
    good = sum(1 for best, second in pairs if best.distance < RATIO * second.distance)
    return good / len(query)


def keypoint_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Mean of the good-match fractions a->b and b->a, in [0, 1]; 0 when either image has no keypoints.

    Matching is done in both directions and averaged so the score is symmetric.
    """
    da, db = _orb_descriptors(a), _orb_descriptors(b)
    if da is None or db is None:
        return 0.0
    return (_good_fraction(da, db) + _good_fraction(db, da)) / 2
