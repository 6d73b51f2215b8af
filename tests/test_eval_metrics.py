"""Tests for gensemcom.eval.metrics against closed forms, second implementations and known behaviour."""

import warnings

import cv2
import lpips
import numpy as np
import pytest
import torch
from PIL import Image

from gensemcom.eval.metrics import (
    colour_histogram_similarity,
    content_loss,
    keypoint_similarity,
    lpips_distance,
    mask_iou,
    ms_ssim,
    mse,
    perceptual_loss,
    psnr,
    ssim,
    style_loss,
    vsi,
)
from gensemcom.eval.metrics.backbones import FEATURE_CONV_INDICES, load_features
from gensemcom.eval.metrics.colour import HUE_BINS, SATURATION_BINS
from gensemcom.eval.metrics.lpips_metric import _to_tensor, lpips_model
from gensemcom.eval.metrics.vgg_losses import gram_matrix
from gensemcom.shared.paths import shared_data_dir

C1 = (0.01 * 255) ** 2  # SSIM luminance constant for 8-bit images


def kodak_crop(index: int, size: int = 128) -> np.ndarray:
    img = Image.open(shared_data_dir() / "kodak24" / f"kodim{index:02d}.png").convert("RGB")
    return np.asarray(img)[100 : 100 + size, 200 : 200 + size].copy()


def noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


# --- LPIPS ------------------------------------------------------------------------------------


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_heads_are_the_official_v01_release(net: str) -> None:
    # lpips loads heads with strict=False, so a key mismatch would silently leave random heads.
    official = torch.load(shared_data_dir() / "weights" / "lpips_v0.1" / f"{net}.pth", map_location="cpu",
                          weights_only=True)
    model = lpips_model(net)
    for k in range(5):
        assert torch.equal(getattr(model, f"lin{k}").model[1].weight, official[f"lin{k}.model.1.weight"])


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_backbone_is_the_shipped_one(net: str) -> None:
    features = load_features(net)
    model = lpips_model(net)
    for index in FEATURE_CONV_INDICES[net]:
        slice_weight = dict(model.net.named_parameters())
        key = next(k for k in slice_weight if k.endswith(f".{index}.weight"))
        assert torch.equal(slice_weight[key], features[index].weight)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_identity_symmetry_and_monotone_in_noise(net: str) -> None:
    img = kodak_crop(23, 64)
    assert lpips_distance(img, img, net) == pytest.approx(0.0, abs=1e-6)
    dists = [lpips_distance(img, noisy(img, s), net) for s in (4, 12, 36)]
    assert dists[0] < dists[1] < dists[2]
    other = noisy(img, 12)
    assert lpips_distance(img, other, net) == pytest.approx(lpips_distance(other, img, net), rel=1e-5)


def test_lpips_trained_backbone_forgives_a_shift_that_a_random_one_does_not() -> None:
    """LPIPS's defining property: a 2-px shift (large MSE) looks closer than faint noise (small MSE).

    A randomly initialised backbone behaves like a pixel metric and ranks them the other way, so this
    fails if the ImageNet weights were not loaded or were loaded in the wrong layout.
    """
    img = kodak_crop(23)
    faint, shifted = noisy(img, 5), np.roll(img, 2, axis=1)
    assert mse(img, shifted) > 5 * mse(img, faint)
    assert lpips_distance(img, shifted) < lpips_distance(img, faint)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        random_backbone = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False,
                                      model_path=str(shared_data_dir() / "weights" / "lpips_v0.1" / "alex.pth"))
    with torch.no_grad():
        d_faint = random_backbone(_to_tensor(img), _to_tensor(faint)).item()
        d_shift = random_backbone(_to_tensor(img), _to_tensor(shifted)).item()
    assert d_shift > d_faint


def test_lpips_rejects_bad_input() -> None:
    img = kodak_crop(23, 64)
    with pytest.raises(ValueError):
        lpips_distance(img, img[:32])
    with pytest.raises(ValueError):
        lpips_distance(img.astype(np.float32), img.astype(np.float32))
    with pytest.raises(ValueError):
        lpips_distance(img, img, net="squeeze")


# --- pixel and structure ------------------------------------------------------------------------


def test_psnr_of_a_known_mse() -> None:
    a = np.full((16, 16, 3), 100, np.uint8)
    b = a + np.uint8(10)  # every pixel off by 10 levels: MSE = (10/255)^2
    assert mse(a, b) == pytest.approx((10 / 255) ** 2, rel=1e-12)
    assert psnr(a, b) == pytest.approx(20 * np.log10(255 / 10), rel=1e-12)
    assert psnr(a, a) == float("inf")


@pytest.mark.parametrize(("level", "offset"), [(100, 20), (50, 3)])
def test_ssim_and_ms_ssim_of_constant_images_match_the_closed_form(level: int, offset: int) -> None:
    # Flat images: contrast/structure terms are exactly 1 and only the luminance term remains,
    # l = (2 m1 m2 + C1) / (m1^2 + m2^2 + C1); MS-SSIM keeps it only at the coarsest scale (beta 0.1333).
    a = np.full((192, 192, 3), level, np.uint8)
    b = a + np.uint8(offset)
    lum = (2 * level * (level + offset) + C1) / (level**2 + (level + offset) ** 2 + C1)
    assert ssim(a, b) == pytest.approx(lum, rel=1e-9)
    # MS-SSIM runs in float32 (20x faster on a CPU): on flat images the variance E[x²] − E[x]² cancels
    # to within ~1e-3 of 0 in float32, which moves the score by ~1e-4; on photos the error is ~1e-7.
    assert ms_ssim(a, b) == pytest.approx(lum**0.1333, rel=2e-4)


def test_ms_ssim_identity_order_and_size_check() -> None:
    img = kodak_crop(23, 192)
    assert ms_ssim(img, img) == pytest.approx(1.0, abs=1e-6)  # float32
    mild, strong = ms_ssim(img, noisy(img, 5)), ms_ssim(img, noisy(img, 30))
    assert 1.0 > mild > strong
    assert strong == pytest.approx(ms_ssim(noisy(img, 30), img), rel=1e-6)
    with pytest.raises(ValueError):
        ms_ssim(img[:100], img[:100])


# --- masks -------------------------------------------------------------------------------------


def test_mask_iou_of_known_rectangles() -> None:
    a = np.zeros((50, 50), bool)
    b = np.zeros((50, 50), bool)
    a[0:10, 0:10] = True  # 100 px
    b[5:15, 0:10] = True  # 100 px, overlap 5x10 = 50, union 150
    assert mask_iou(a, b) == pytest.approx(50 / 150, rel=1e-15)
    assert mask_iou(b, a) == mask_iou(a, b)
    assert mask_iou(a, a) == 1.0
    assert mask_iou(a, ~a) == 0.0
    assert mask_iou(np.zeros_like(a), np.zeros_like(a)) == 1.0
    with pytest.raises(ValueError):
        mask_iou(a, a.astype(np.uint8))
    with pytest.raises(ValueError):
        mask_iou(a, a[:10])


# --- colour histogram --------------------------------------------------------------------------


def _numpy_hs_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Second implementation: integer binning (bins divide the ranges exactly) and np.corrcoef."""
    def hist(img: np.ndarray) -> np.ndarray:
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.int64)
        idx = (hsv[:, 0] // (180 // HUE_BINS)) * SATURATION_BINS + hsv[:, 1] // (256 // SATURATION_BINS)
        return np.bincount(idx, minlength=HUE_BINS * SATURATION_BINS).astype(np.float64)
    return float(np.corrcoef(hist(a), hist(b))[0, 1])


def test_colour_histogram_matches_numpy_and_ignores_pixel_positions() -> None:
    img, other = kodak_crop(23), kodak_crop(1)
    assert colour_histogram_similarity(img, img) == pytest.approx(1.0, abs=1e-12)
    shuffled = np.random.default_rng(0).permutation(img.reshape(-1, 3)).reshape(img.shape)
    assert colour_histogram_similarity(img, shuffled) == pytest.approx(1.0, abs=1e-12)
    got = colour_histogram_similarity(img, other)
    assert got == pytest.approx(_numpy_hs_correlation(img, other), abs=1e-6)
    assert got == pytest.approx(colour_histogram_similarity(other, img), abs=1e-12)
    assert got < 0.9


# --- keypoints ---------------------------------------------------------------------------------


def test_keypoint_similarity_identity_symmetry_and_ordering() -> None:
    img, other = kodak_crop(23, 256), kodak_crop(1, 256)
    assert keypoint_similarity(img, img) == pytest.approx(1.0)
    assert keypoint_similarity(img, other) == keypoint_similarity(other, img)
    blurred = cv2.GaussianBlur(img, (0, 0), 2)
    assert keypoint_similarity(img, other) < 0.05 < keypoint_similarity(img, blurred) < 1.0
    assert keypoint_similarity(img, np.full_like(img, 128)) == 0.0


# --- VGG16 feature losses ----------------------------------------------------------------------


def test_gram_matrix_matches_its_definition() -> None:
    feats = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4)
    flat = feats[0].reshape(2, 12)
    expected = torch.tensor([[float(flat[i] @ flat[j]) for j in range(2)] for i in range(2)]) / 24
    assert torch.allclose(gram_matrix(feats), expected)


def test_style_ignores_position_but_content_does_not() -> None:
    """Johnson et al.'s premise: a shifted copy keeps the style (Gram) but loses the content match."""
    img, other = kodak_crop(23, 64), kodak_crop(1, 64)
    shifted = np.roll(img, (16, 16), axis=(0, 1))
    assert content_loss(img, img) == 0.0 and style_loss(img, img) == 0.0 and perceptual_loss(img, img) == 0.0
    assert content_loss(img, shifted) > 0.5 * content_loss(img, other)
    assert style_loss(img, shifted) < 0.5 * style_loss(img, other)
    assert style_loss(img, other) == pytest.approx(style_loss(other, img), rel=1e-5)
    assert perceptual_loss(img, other) > content_loss(img, other)
    with pytest.raises(ValueError):
        content_loss(img, img, layer="relu5_3")


# --- VSI ---------------------------------------------------------------------------------------


def test_vsi_identity_symmetry_and_monotone_in_noise() -> None:
    img, other = kodak_crop(23), kodak_crop(1)
    assert vsi(img, img) == pytest.approx(1.0, abs=1e-12)
    scores = [vsi(img, noisy(img, s)) for s in (4, 12, 36)]
    assert 1.0 > scores[0] > scores[1] > scores[2]
    assert vsi(img, other) == pytest.approx(vsi(other, img), rel=1e-12)
