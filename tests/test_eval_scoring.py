"""Tests for gensemcom.eval.scoring: the per-pair Scorer and the set-level KID on VGG16 features."""

import json
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from PIL import Image

from gensemcom.eval import metrics
from gensemcom.eval.scoring import METRICS, PSNR_CAP_DB, Scorer, kid_vgg16, vgg16_kid_features
from gensemcom.shared.paths import shared_data_dir

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIDE = 176  # the smallest side torchmetrics' 5-scale MS-SSIM accepts: every metric applies, cheaply


def kodak_crop(index: int, size: int = SIDE) -> np.ndarray:
    img = Image.open(shared_data_dir() / "kodak24" / f"kodim{index:02d}.png").convert("RGB")
    return np.asarray(img)[100 : 100 + size, 200 : 200 + size].copy()


def noisy(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def bright_segmenter(img: np.ndarray) -> np.ndarray:
    """A stand-in segmenter: the key region is whatever is brighter than mid-grey."""
    return img.mean(axis=2) > 128


# --- Scorer -------------------------------------------------------------------------------------

# The best value each metric can take (docs/metrics.md), PSNR at its JSON-safe cap.
IDEAL = {"mse": 0.0, "psnr": PSNR_CAP_DB, "ssim": 1.0, "ms_ssim": 1.0, "lpips_alex": 0.0, "lpips_vgg": 0.0,
         "vsi": 1.0, "mask_iou": 1.0, "colour_hist": 1.0, "keypoints": 1.0, "perceptual": 0.0,
         "style": 0.0, "content": 0.0}


def test_ideal_table_covers_the_registry() -> None:
    assert set(IDEAL) == set(METRICS)


def test_identical_images_give_the_ideal_value_of_every_metric() -> None:
    img = kodak_crop(1)
    scores = Scorer(segment=bright_segmenter)(img, img.copy())
    assert list(scores) == list(METRICS)
    for name, value in scores.items():
        assert value == pytest.approx(IDEAL[name], abs=1e-6), name


def test_every_score_agrees_with_a_direct_call_of_its_metric() -> None:
    # 96 px keeps the VGG passes cheap; it is below MS-SSIM's minimum side, so that metric must be
    # left out (it is checked at full size in the next test).
    original = kodak_crop(3, size=96)
    reconstruction = noisy(original, sigma=20.0, seed=1)
    scores = Scorer(segment=bright_segmenter)(original, reconstruction)
    direct = {
        "mse": metrics.mse(original, reconstruction),
        "psnr": metrics.psnr(original, reconstruction),
        "ssim": metrics.ssim(original, reconstruction),
        "lpips_alex": metrics.lpips_distance(original, reconstruction, net="alex"),
        "lpips_vgg": metrics.lpips_distance(original, reconstruction, net="vgg"),
        "vsi": metrics.vsi(original, reconstruction),
        "mask_iou": metrics.mask_iou(bright_segmenter(reconstruction), bright_segmenter(original)),
        "colour_hist": metrics.colour_histogram_similarity(original, reconstruction),
        "keypoints": metrics.keypoint_similarity(original, reconstruction),
        "perceptual": metrics.perceptual_loss(original, reconstruction),
        "style": metrics.style_loss(original, reconstruction),
        "content": metrics.content_loss(original, reconstruction),
    }
    assert direct["psnr"] < PSNR_CAP_DB  # a real distortion: the cap must not touch it
    assert list(scores) == [name for name in METRICS if name != "ms_ssim"]
    assert scores == pytest.approx(direct, rel=1e-6)
    assert all(type(value) is float for value in scores.values())
    json.dumps(scores, allow_nan=False)  # a results.jsonl row must be strict JSON


def test_ms_ssim_score_agrees_with_a_direct_call() -> None:
    original = kodak_crop(3)
    reconstruction = noisy(original, sigma=20.0, seed=1)
    score = Scorer(["ms_ssim"])(original, reconstruction)["ms_ssim"]
    assert score == pytest.approx(metrics.ms_ssim(original, reconstruction), rel=1e-9)
    assert score < 0.99


def test_psnr_of_identical_images_is_capped_for_json() -> None:
    img = kodak_crop(2, size=64)
    scores = Scorer(["psnr", "mse"])(img, img.copy())
    assert scores == {"psnr": PSNR_CAP_DB, "mse": 0.0}
    json.dumps(scores, allow_nan=False)


def _rectangle(rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros((SIDE, SIDE), dtype=bool)
    mask[rows, cols] = True
    return mask


def _white_where(mask: np.ndarray) -> np.ndarray:
    return np.where(mask[..., None], 255, 0).astype(np.uint8).repeat(3, axis=2)


def test_mask_iou_segments_the_reconstruction_against_the_given_original_mask() -> None:
    sender_mask = _rectangle(slice(50, 110), slice(20, 100))
    seen_by_receiver = _rectangle(slice(20, 80), slice(20, 100))
    expected = (30 * 80) / (90 * 80)  # rows 50..80 overlap; rows 20..110 in the union
    scorer = Scorer(["mask_iou"], segment=bright_segmenter)
    # The original is black, so segmenting it would give an empty mask: the given mask must be used.
    black = np.zeros((SIDE, SIDE, 3), dtype=np.uint8)
    assert scorer(black, _white_where(seen_by_receiver), sender_mask)["mask_iou"] == pytest.approx(expected)
    # Without a mask, the original is segmented instead.
    scores = scorer(_white_where(sender_mask), _white_where(seen_by_receiver))
    assert scores["mask_iou"] == pytest.approx(expected)


def test_unknown_metrics_are_named_and_valid_ones_listed() -> None:
    with pytest.raises(ValueError, match="fid.*valid metrics are.*'psnr'"):
        Scorer(["psnr", "fid"])


@pytest.mark.parametrize("selection", [(), ("ssim", "mask_iou")])
def test_empty_selection_or_mask_iou_without_segmenter_is_refused(selection: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        Scorer(selection)


@pytest.mark.parametrize("reconstruction", [np.zeros((SIDE, SIDE - 1, 3), np.uint8),
                                            np.zeros((SIDE, SIDE, 3), np.float32)])
def test_mismatched_or_non_uint8_images_are_refused(reconstruction: np.ndarray) -> None:
    with pytest.raises(ValueError):
        Scorer(["mse"])(np.zeros((SIDE, SIDE, 3), np.uint8), reconstruction)


# --- KID (VGG16 features) -----------------------------------------------------------------------

# Three images per side keeps the 12 VGG16 passes under ~10 s; KID needs at least two.
REAL = [kodak_crop(i) for i in (1, 2, 3)]
NOISY = [noisy(img, sigma=40.0, seed=i) for i, img in enumerate(REAL)]


@pytest.fixture(scope="module")
def kid_runs() -> Iterator[dict[str, tuple[tuple[float, float], np.ndarray, np.ndarray]]]:
    """KID of REAL against itself and against NOISY, with the features KID saw (captured by a hook)."""
    threads = torch.get_num_threads()  # built before the function-scoped one_torch_thread, so set here
    torch.set_num_threads(1)
    captured: list[torch.Tensor] = []
    hook = vgg16_kid_features().register_forward_hook(lambda module, args, out: captured.append(out))
    runs = {}
    try:
        for name, fake in (("identical", REAL), ("noisy", NOISY)):
            captured.clear()
            rng_before = torch.random.get_rng_state()
            kid = kid_vgg16(REAL, fake)  # default subset size min(50, 3) = 3: one subset, all images
            assert torch.equal(torch.random.get_rng_state(), rng_before)  # the caller's RNG is untouched
            features = torch.cat(captured).numpy()
            runs[name] = (kid, features[: len(REAL)], features[len(REAL) :])
    finally:
        hook.remove()
        torch.set_num_threads(threads)
    yield runs


def unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² of Bińkowski et al. (2018), polynomial kernel (xᵀy/d + 1)³, written out in numpy."""
    m, d = x.shape

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a @ b.T / d + 1.0) ** 3

    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


@pytest.mark.parametrize("name", ["identical", "noisy"])
def test_kid_matches_a_numpy_unbiased_mmd_on_the_same_features(kid_runs, name: str) -> None:
    (mean, std), real_features, fake_features = kid_runs[name]
    assert real_features.shape == (3, 512)
    assert mean == pytest.approx(unbiased_mmd2(real_features, fake_features), rel=1e-4)
    assert std == pytest.approx(0.0, abs=1e-12)  # every subset is the whole set


def test_kid_of_a_set_against_itself_is_its_small_non_positive_closed_form(kid_runs) -> None:
    # With y = x the estimator reduces to (2/n)(mean off-diagonal k - mean diagonal k): at most 0 by
    # Cauchy-Schwarz, and it vanishes only as n grows. "Identical sets give 0" holds only for large sets.
    (mean, _), features, _ = kid_runs["identical"]
    n, d = features.shape
    k = (features @ features.T / d + 1.0) ** 3
    off_diagonal = (k.sum() - np.trace(k)) / (n * (n - 1))
    assert mean == pytest.approx(2.0 / n * (off_diagonal - np.trace(k) / n), rel=1e-9)
    assert mean < 0.0


def test_noisy_copies_score_higher_than_the_set_itself(kid_runs) -> None:
    assert kid_runs["noisy"][0][0] > kid_runs["identical"][0][0]


@pytest.mark.parametrize(("real", "fake", "subset_size"), [
    (REAL[:1], REAL, None),   # one real image
    (REAL, REAL[:1], None),   # one fake image
    (REAL, REAL[:2], 3),      # subset larger than the smaller set
    (REAL, REAL, 1),          # the unbiased estimator needs two per subset
])
def test_kid_refuses_sets_too_small_for_the_unbiased_estimator(real, fake, subset_size) -> None:
    with pytest.raises(ValueError):
        kid_vgg16(real, fake, subset_size=subset_size)
