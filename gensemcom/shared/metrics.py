"""Fidelity metrics used by the demo and tests (the full suite lives in gensemcom.eval)."""

import numpy as np
from skimage.metrics import structural_similarity


def mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error in [0, 1] pixel units, optionally over the pixels where ``mask`` is True."""
    diff = (a.astype(np.float64) - b.astype(np.float64)) / 255.0
    err = (diff**2).mean(axis=-1) if diff.ndim == 3 else diff**2
    if mask is not None:
        if not mask.any():
            raise ValueError("mask selects no pixels")
        err = err[mask]
    return float(err.mean())


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB of uint8 images (peak 255); infinite for identical inputs."""
    e = mse(a, b, mask)
    return float("inf") if e == 0 else float(10 * np.log10(1.0 / e))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of uint8 RGB images (scikit-image, Gaussian window as in Wang et al. 2004)."""
    return float(
        structural_similarity(a, b, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False)
    )


def bbox_ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """SSIM over the bounding box of ``mask`` (SSIM needs a window, not a scattered pixel set)."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        raise ValueError("mask selects no pixels")
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    if min(y1 - y0, x1 - x0) < 7:
        raise ValueError("key region is smaller than the 7x7 SSIM window")
    return ssim(a[y0:y1, x0:x1], b[y0:y1, x0:x1])
