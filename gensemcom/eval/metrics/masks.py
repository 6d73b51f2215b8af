"""Agreement of segmentation masks: does the receiver see the same objects where the sender did?"""

import numpy as np


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks; two empty masks agree perfectly (1.0)."""
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    if a.dtype != bool or b.dtype != bool:
        raise ValueError(f"masks must be boolean, got {a.dtype} and {b.dtype}")
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
