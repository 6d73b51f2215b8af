"""Segmenters: real MediaPipe masks on the people photos, saliency fallback, chaining, errors."""

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from gensemcom.shared.paths import shared_data_dir
from gensemcom.transmitter.segment import (
    SELFIE_MODEL,
    FallbackSegmenter,
    MediaPipeSelfieSegmenter,
    SaliencySegmenter,
    Segmentation,
    clean_mask,
    make_segmenter,
)

DATA = shared_data_dir()
PEOPLE = sorted((DATA / "people").iterdir())

# YOLOv5s person boxes (xmin, ymin, xmax, ymax) on zidane.jpg, as printed in the
# ultralytics PyTorch Hub tutorial: an independent detector's idea of where the people are.
ZIDANE_PERSON_BOXES = [(749.5, 43.5, 1148.0, 704.5), (114.75, 195.75, 1095.0, 708.0)]


def load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def mediapipe() -> MediaPipeSelfieSegmenter:
    return MediaPipeSelfieSegmenter(DATA / "weights" / SELFIE_MODEL)


def centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


@pytest.mark.parametrize("path", PEOPLE, ids=lambda p: p.name)
def test_person_mask_covers_a_plausible_share(mediapipe, path):
    segmentation = mediapipe(load(path))
    assert segmentation.source == "mediapipe-selfie"
    assert segmentation.labels == ("person",)
    assert 0.03 <= segmentation.alpha <= 0.80


def test_zidane_mask_lies_on_the_detected_people(mediapipe):
    mask = mediapipe(load(DATA / "people" / "yolov5_zidane.jpg")).mask
    boxes = np.zeros_like(mask)
    for x0, y0, x1, y1 in ZIDANE_PERSON_BOXES:
        boxes[int(y0): int(np.ceil(y1)), int(x0): int(np.ceil(x1))] = True
    x, y = centroid(mask)
    assert boxes[round(y), round(x)] and mask[round(y), round(x)]
    assert (mask & boxes).sum() / mask.sum() > 0.75


def test_astronaut_mask_holds_the_face_not_the_shuttle(mediapipe):
    # Regions read off the 512×512 image by eye: the face, the shuttle, the flag.
    mask = mediapipe(load(DATA / "people" / "skimage_astronaut.png")).mask
    x, y = centroid(mask)
    assert mask[round(y), round(x)]
    assert mask[40:140, 180:270].mean() > 0.95
    assert mask[10:240, 390:450].mean() < 0.05
    assert mask[0:150, 0:50].mean() < 0.05


def test_same_image_twice_gives_the_same_mask(mediapipe):
    image = load(DATA / "people" / "mmpose_coco_000000000785.jpg")
    assert np.array_equal(mediapipe(image).mask, mediapipe(image).mask)
    saliency = SaliencySegmenter()
    assert np.array_equal(saliency(image).mask, saliency(image).mask)


def test_concurrent_calls_match_sequential_ones(mediapipe):
    images = [load(path) for path in PEOPLE[:4]]
    sequential = [mediapipe(image).mask for image in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda image: mediapipe(image).mask, images * 2))
    for index, mask in enumerate(concurrent):
        assert np.array_equal(mask, sequential[index % len(images)])


def test_saliency_of_a_flat_image_is_empty_and_repeatable():
    flat = np.full((120, 160, 3), 77, dtype=np.uint8)
    first, second = SaliencySegmenter()(flat), SaliencySegmenter()(flat)
    assert first.source == "saliency" and first.labels == ()
    assert not first.mask.any()
    assert np.array_equal(first.mask, second.mask)


@pytest.mark.parametrize(("cx", "cy", "radius"), [(200, 150, 40), (120, 100, 30), (320, 200, 50)])
def test_saliency_finds_a_lone_disc(cx, cy, radius):
    rng = np.random.default_rng(0)
    image = np.full((300, 400, 3), 90.0)
    cv2.circle(image, (cx, cy), radius, (230, 200, 40), -1)
    image = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
    disc = np.zeros((300, 400), dtype=np.uint8)
    cv2.circle(disc, (cx, cy), radius, 1, -1)
    disc = disc.astype(bool)

    segmentation = SaliencySegmenter()(image)
    assert segmentation.labels == ("salient region",)
    assert segmentation.mask[disc].mean() > 0.95
    assert segmentation.mask.sum() < 4 * disc.sum()
    x, y = centroid(segmentation.mask)
    assert np.hypot(x - cx, y - cy) < radius / 2


class Constant:
    """A stand-in segmenter that returns a fixed mask."""

    def __init__(self, name: str, mask: np.ndarray) -> None:
        self.name = name
        self.mask = mask
        self.calls = 0

    def __call__(self, image: np.ndarray) -> Segmentation:
        self.calls += 1
        return Segmentation(mask=self.mask, source=self.name, labels=("thing",) if self.mask.any() else ())


def test_fallback_switches_only_when_primary_finds_too_little():
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    tiny = np.zeros((100, 100), dtype=bool)
    tiny[0, :50] = True  # 0.5 % of the image
    big = np.zeros((100, 100), dtype=bool)
    big[:20] = True

    fallback = Constant("b", big)
    assert FallbackSegmenter(Constant("a", tiny), fallback, min_alpha=0.01)(image).source == "b"
    assert FallbackSegmenter(Constant("a", tiny), fallback, min_alpha=0.004)(image).source == "a"
    assert FallbackSegmenter(Constant("a", big), fallback)(image).source == "a"
    assert fallback.calls == 1


def test_mediapipe_on_a_landscape_falls_back_to_saliency():
    # kodim02 (a red door) holds no person; MediaPipe finds under 1 % there.
    segmenter = make_segmenter("mediapipe", DATA / "weights")
    image = load(DATA / "kodak24" / "kodim02.png")
    assert segmenter.primary(image).alpha < 0.01
    segmentation = segmenter(image)
    assert segmentation.source == "saliency"
    assert segmentation.alpha > 0.01


def test_missing_weights_raise_a_clear_error(tmp_path):
    missing = tmp_path / "selfie_segmentation.tflite"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        MediaPipeSelfieSegmenter(missing)


def test_make_segmenter_degrades_to_saliency_without_weights(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        segmenter = make_segmenter("mediapipe", tmp_path)
    assert isinstance(segmenter, SaliencySegmenter)
    assert "saliency" in caplog.text and str(tmp_path) in caplog.text


def test_make_segmenter_names():
    assert isinstance(make_segmenter("saliency", None), SaliencySegmenter)
    assert isinstance(make_segmenter("mediapipe", None), FallbackSegmenter)
    with pytest.raises(ValueError, match="unknown segmenter"):
        make_segmenter("sam", None)


@pytest.mark.parametrize("bad", [np.zeros((32, 32), np.uint8), np.zeros((32, 32, 3), np.float32),
                                 np.zeros((32, 32, 4), np.uint8), np.zeros((4, 32, 3), np.uint8)])
def test_bad_images_are_rejected(mediapipe, bad):
    with pytest.raises(ValueError):
        mediapipe(bad)
    with pytest.raises(ValueError):
        SaliencySegmenter()(bad)


def test_segmentation_validates_and_measures_alpha():
    mask = np.zeros((10, 10), dtype=bool)
    mask[:3, :5] = True
    assert Segmentation(mask=mask, source="x", labels=()).alpha == pytest.approx(0.15)
    with pytest.raises(ValueError):
        Segmentation(mask=mask.astype(np.uint8), source="x", labels=())


def test_clean_mask_drops_specks_and_fills_enclosed_holes():
    mask = np.zeros((200, 200), dtype=bool)
    mask[40:160, 40:160] = True  # the key region, 36 % of the image
    mask[90:100, 90:100] = False  # a 0.25 % hole inside it
    mask[5:8, 180:183] = True  # a 0.02 % speck
    mask[60:140, 0:40] = True  # joined to the region ...
    mask[90:110, 0:20] = False  # ... with a notch open to the image border
    cleaned = clean_mask(mask)
    assert cleaned[90:100, 90:100].all()
    assert not cleaned[5:8, 180:183].any()
    assert not cleaned[95:105, 0:15].any()
    assert cleaned[42:158, 42:158].all()  # opening only rounds the corners
    assert not cleaned[:30].any() and not cleaned[170:].any()
