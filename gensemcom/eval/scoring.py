"""Which metrics an evaluation reports, how they are labelled, and which way is better.

The names here are the keys of every result row's ``metrics`` and of every
figure and table; the functions behind them live in :mod:`gensemcom.eval.metrics`.
``Scorer`` turns one (original, reconstruction) pair into such a ``metrics`` dict;
``kid_vgg16`` compares whole sets of images (KID on VGG16 features, not on Inception).
"""

import hashlib
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import torch
from torchmetrics.image.kid import KernelInceptionDistance

from gensemcom.eval.metrics import colour_histogram_similarity, keypoint_similarity, mask_iou, ms_ssim, mse, psnr
from gensemcom.eval.metrics import ssim, vsi
from gensemcom.eval.metrics.lpips_metric import lpips_from_taps, lpips_taps
from gensemcom.eval.metrics.vgg_losses import VGG_LAYERS, content_from, perceptual_from, style_from
from gensemcom.eval.metrics.backbones import load_features
from gensemcom.eval.metrics.structure import MS_SSIM_MIN_SIDE
from gensemcom.eval.registry import METRICS, PSNR_CAP_DB


# --- per-pair scoring ---------------------------------------------------------------------------


def _capped_psnr(a: np.ndarray, b: np.ndarray) -> float:
    return min(psnr(a, b), PSNR_CAP_DB)


# The registry metrics computed from the image pair alone.
_PAIR_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "mse": mse,
    "psnr": _capped_psnr,
    "ssim": ssim,
    "ms_ssim": ms_ssim,
    "vsi": vsi,
    "colour_hist": colour_histogram_similarity,
    "keypoints": keypoint_similarity,
}
# The metrics computed from backbone activations, which the Scorer computes once per image: one
# AlexNet pass for LPIPS-Alex, and one VGG16 pass that serves LPIPS-VGG and the three feature losses
# (LPIPS's input scaling is exactly the ImageNet standardisation the losses use, and its VGG16 taps
# relu1_2 … relu4_3 are the losses' layers).
_ALEX_METRICS = ("lpips_alex",)
_VGG_METRICS = ("lpips_vgg", "perceptual", "style", "content")


def _vgg_scores(a: list[torch.Tensor], b: list[torch.Tensor]) -> dict[str, float]:
    fa, fb = dict(zip(VGG_LAYERS, a)), dict(zip(VGG_LAYERS, b))  # relu1_2 … relu4_3; relu5_3 is LPIPS's only
    return {"lpips_vgg": lpips_from_taps(a, b, "vgg"), "perceptual": perceptual_from(fa, fb),
            "style": style_from(fa, fb), "content": content_from(fa, fb)}


class Scorer:
    """Scores one reconstruction against its original with a chosen set of registry metrics.

    The result is a ``metrics`` dict for a result row: plain floats that JSON can carry, so PSNR is
    capped at ``PSNR_CAP_DB`` and MS-SSIM is left out (not NaN) for images with a side below
    ``MS_SSIM_MIN_SIDE``; such rows simply lack that metric.

    The backbone activations of the last original are kept (found again by a hash of its pixels), so
    scoring many reconstructions of one image runs AlexNet and VGG16 on the original once. On a
    768x512 image and one CPU thread that takes the whole set of metrics from ~41 s to ~6 s per pair.

    ``segment`` maps a uint8 RGB image to its boolean key mask; it is needed only for ``mask_iou``,
    which asks whether the receiver's picture still shows the key objects where the sender saw them.
    """

    def __init__(self, metrics: Sequence[str] = tuple(METRICS),
                 segment: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        unknown = [name for name in metrics if name not in METRICS]
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; valid metrics are {list(METRICS)}")
        if not metrics:
            raise ValueError(f"select at least one metric from {list(METRICS)}")
        if "mask_iou" in metrics and segment is None:
            raise ValueError("mask_iou needs a segment callable (image -> boolean key mask)")
        self.metrics = tuple(dict.fromkeys(metrics))
        self.segment = segment
        self._original: tuple[bytes, dict[str, list[torch.Tensor]]] = (b"", {})

    def __call__(self, original: np.ndarray, reconstruction: np.ndarray,
                 original_mask: np.ndarray | None = None) -> dict[str, float]:
        """Every selected metric of ``reconstruction`` against ``original``, in selection order.

        ``original_mask`` is the sender's key mask; when it is not given, ``segment(original)`` is used.
        """
        _check_image_pair(original, reconstruction)
        small = min(original.shape[:2]) < MS_SSIM_MIN_SIDE
        scores: dict[str, float] = {}
        if any(name in self.metrics for name in _ALEX_METRICS):
            scores["lpips_alex"] = lpips_from_taps(self._taps(original, "alex"), lpips_taps(reconstruction, "alex"))
        if any(name in self.metrics for name in _VGG_METRICS):
            scores.update(_vgg_scores(self._taps(original, "vgg"), lpips_taps(reconstruction, "vgg")))
        for name in self.metrics:
            if name == "ms_ssim" and small:
                continue
            if name == "mask_iou":
                scores[name] = self._mask_iou(original, reconstruction, original_mask)
            elif name in _PAIR_METRICS:
                scores[name] = float(_PAIR_METRICS[name](original, reconstruction))
        return {name: scores[name] for name in self.metrics if name in scores}

    def _taps(self, original: np.ndarray, net: str) -> list[torch.Tensor]:
        """The original's backbone activations, from the cache when it is the same image as last time."""
        digest = hashlib.blake2b(np.ascontiguousarray(original).data, digest_size=16).digest()
        digest += repr(original.shape).encode()
        if self._original[0] != digest:
            self._original = (digest, {})
        cache = self._original[1]
        if net not in cache:
            cache[net] = lpips_taps(original, net)
        return cache[net]

    def _mask_iou(self, original: np.ndarray, reconstruction: np.ndarray,
                  original_mask: np.ndarray | None) -> float:
        reference = self.segment(original) if original_mask is None else original_mask
        return mask_iou(self.segment(reconstruction), reference)


def _check_image_pair(a: np.ndarray, b: np.ndarray) -> None:
    for img in (a, b):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected uint8 HxWx3 images, got {img.dtype} {img.shape}")
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")


# --- set-level KID on VGG16 features ------------------------------------------------------------

KID_LABEL = "KID (VGG16 features)"
KID_INPUT_SIDE = 224  # VGG16's ImageNet training resolution
_RELU5_3 = 29  # index of relu5_3 in torchvision's vgg16().features
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG16PooledFeatures(torch.nn.Module):
    """uint8 Nx3xHxW images -> Nx512 float64: ImageNet VGG16 relu5_3, globally average-pooled.

    This is the feature extractor for ``kid_vgg16``. Images are resized to 224x224 (aspect ratio not
    kept, as FID/KID do with 299x299) and ImageNet-normalised, as VGG16 was trained. Features leave
    in float64 because the unbiased MMD subtracts kernel sums of similar size, and float32 would
    lose digits there.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = load_features("vgg")[: _RELU5_3 + 1]
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        if imgs.dtype != torch.uint8 or imgs.ndim != 4 or imgs.shape[1] != 3:
            raise ValueError(f"expected a uint8 Nx3xHxW batch, got {imgs.dtype} {tuple(imgs.shape)}")
        with torch.no_grad():
            x = torch.nn.functional.interpolate(imgs.float() / 255.0, size=(KID_INPUT_SIDE, KID_INPUT_SIDE),
                                                mode="bilinear", align_corners=False, antialias=True)
            return self.features((x - self.mean) / self.std).mean(dim=(2, 3)).double()


@lru_cache(maxsize=1)
def vgg16_kid_features() -> VGG16PooledFeatures:
    """The KID feature extractor, built once per process."""
    return VGG16PooledFeatures().eval()


def kid_vgg16(real: Sequence[np.ndarray], fake: Sequence[np.ndarray], subset_size: int | None = None,
              subsets: int = 100, seed: int = 0) -> tuple[float, float]:
    """KID (VGG16 features): mean and std over ``subsets`` random subsets of the unbiased MMD².

    This is the Kernel Inception Distance of Bińkowski et al. (2018), polynomial kernel
    ``(xᵀy/d + 1)³``, computed by torchmetrics' ``KernelInceptionDistance``, but on globally pooled
    VGG16 relu5_3 features (512-d) instead of Inception-v3 pool features. The Inception-v3 weights of
    the reference FID/KID implementations cannot be obtained offline; VGG16 is the ImageNet backbone
    this project ships. The values therefore rank sets of images against each other within this
    project but are NOT comparable to published KID (or FID) numbers.

    Each subset draws ``subset_size`` images (default ``min(50, n)``, n the smaller set) from each
    side. torchmetrics draws them from torch's global RNG; that RNG is forked and seeded with
    ``seed`` here, so a result is repeatable and the caller's torch RNG stream is left untouched.
    Images may differ in size from each other. Needs at least 2 images per side.

    The estimator assumes the two sets are independent draws. A set against itself therefore scores
    (2/n)(mean k(xᵢ, xⱼ≠ᵢ) − mean k(xᵢ, xᵢ)) ≤ 0 rather than 0, and reconstructions scored against
    their own originals are biased low in the same way: compare schemes on the same images and n.
    """
    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"KID needs at least 2 images per side, got {len(real)} real and {len(fake)} fake")
    n = min(len(real), len(fake))
    size = min(50, n) if subset_size is None else subset_size
    if not 2 <= size <= n:
        raise ValueError(f"subset_size must be between 2 and {n} (the smaller set), got {size}")
    with warnings.catch_warnings():
        # torchmetrics warns that it keeps every feature in memory; 512 floats per image is nothing.
        warnings.simplefilter("ignore", UserWarning)
        kid = KernelInceptionDistance(feature=vgg16_kid_features(), subsets=subsets, subset_size=size)
    for images, is_real in ((real, True), (fake, False)):
        for img in images:
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise ValueError(f"expected uint8 HxWx3 images, got {img.dtype} {img.shape}")
            # A copy, because images are often read-only views (np.asarray of a PIL image) and torch
            # warns about wrapping those.
            kid.update(torch.from_numpy(img.copy()).permute(2, 0, 1)[None], real=is_real)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = kid.compute()
    return float(mean), float(std)
