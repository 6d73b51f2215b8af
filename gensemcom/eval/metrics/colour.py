"""Colour-histogram similarity: does the reconstruction keep the palette, wherever the pixels went?

Generative receivers may move texture around but should keep colours; a hue/saturation histogram
ignores position and brightness, so it isolates exactly that.
"""

import cv2
import numpy as np

# 30 hue bins over OpenCV's 0..179 hue and 32 saturation bins over 0..255: both divide their range
# exactly (6 and 8 levels per bin), so no bin is wider than another.
HUE_BINS = 30
SATURATION_BINS = 32


def hs_histogram(img: np.ndarray) -> np.ndarray:
    """2-D hue x saturation histogram (float32 counts) of a uint8 RGB image."""
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected a uint8 HxWx3 image, got {img.dtype} {img.shape}")
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    return cv2.calcHist([hsv], [0, 1], None, [HUE_BINS, SATURATION_BINS], [0, 180, 0, 256])


def colour_histogram_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the hue/saturation histograms (OpenCV HISTCMP_CORREL): 1 = same palette."""
    return float(cv2.compareHist(hs_histogram(a), hs_histogram(b), cv2.HISTCMP_CORREL))
