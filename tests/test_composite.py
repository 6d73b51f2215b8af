"""Compositing with colour matching: the generator's colour drift is undone, the sent key pixels stay exact."""

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from gensemcom.receiver.composite import GAIN_RANGE, MIN_RING_PIXELS, composite, match_colours

H, W = 96, 128


def depth_of(mask: np.ndarray) -> np.ndarray:
    """Distance to the nearest non-mask pixel by scipy (the compositor uses OpenCV); the frame border is no edge."""
    return distance_transform_edt(np.pad(mask, 1, mode="edge"))[1:-1, 1:-1]


def ellipse() -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return (yy - 50) ** 2 / 30**2 + (xx - 60) ** 2 / 40**2 < 1


def scene() -> np.ndarray:
    """A smooth scene in [40, 200] per channel: no seam of its own, and room for drift without clipping."""
    yy, xx = np.mgrid[:H, :W]
    return np.stack([40 + 160 * xx / (W - 1), 40 + 160 * yy / (H - 1), 120 + 40 * np.sin(xx / 9.0)],
                    axis=-1).round().astype(np.uint8)


def drifted(truth: np.ndarray, gain: np.ndarray, offset: np.ndarray) -> np.ndarray:
    return np.clip(np.round(truth * gain + offset), 0, 255).astype(np.uint8)


def seam_error(image: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Mean error of the steps across the mask border, against the scene's own steps there."""
    errors = []
    for axis in (0, 1):
        inside, outside = np.delete(mask, -1, axis), np.delete(mask, 0, axis)
        crossing = inside != outside
        step = np.diff(image.astype(float), axis=axis)[crossing]
        true_step = np.diff(truth.astype(float), axis=axis)[crossing]
        errors.append(np.abs(step - true_step))
    return float(np.concatenate(errors).mean())


GAIN, OFFSET = np.array([0.9, 1.1, 1.0]), np.array([20.0, -15.0, 12.0])


def test_colour_matching_removes_a_known_drift_that_a_plain_paste_leaves():
    truth, mask = scene(), ellipse()
    key = np.where(mask[..., None], truth, 0).astype(np.uint8)  # the receiver's canvas: black outside the mask
    generated = drifted(truth, GAIN, OFFSET)  # the generator's frame, its rendition of the key included
    plain = composite(generated, key, mask, feather_px=0)
    matched = composite(generated, key, mask, feather_px=0, match_px=4)
    assert seam_error(plain, truth, mask) > 5  # about the mean drift at the border (8 grey levels)
    assert seam_error(matched, truth, mask) < 0.5
    # Feathering alone only spreads the step over its band; matching removes it.
    feathered = seam_error(composite(generated, key, mask, feather_px=3), truth, mask)
    assert seam_error(composite(generated, key, mask, feather_px=3, match_px=4), truth, mask) < feathered / 10
    # The drift is affine per channel, so matching mean and spread inverts it: the background comes back.
    assert np.abs(matched[~mask].astype(int) - truth[~mask]).max() <= 2
    assert np.array_equal(matched[mask], key[mask])


@pytest.mark.parametrize("feather_px", [0, 2, 5])
def test_matched_composite_keeps_deep_key_pixels_exactly(feather_px):
    truth, mask = scene(), ellipse()
    key = np.where(mask[..., None], truth, 0).astype(np.uint8)
    out = composite(drifted(truth, GAIN, OFFSET), key, mask, feather_px=feather_px, match_px=3)
    assert out.shape == truth.shape and out.dtype == np.uint8
    deep = depth_of(mask) > feather_px
    assert np.array_equal(out[deep], key[deep])


def test_no_drift_no_change():
    # The classical inpainter hands back the key region exactly: matching is then the identity.
    rng = np.random.default_rng(0)
    mask = ellipse()
    key = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    background = np.where(mask[..., None], key, rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).astype(np.uint8)
    assert np.array_equal(match_colours(background, key, mask, 4), background)
    assert np.array_equal(composite(background, key, mask, 3, match_px=4), composite(background, key, mask, 3))


def test_the_map_is_the_ring_statistics_match():
    # Second implementation: ring by scipy's distance, statistics by hand, gain clipped to GAIN_RANGE.
    rng = np.random.default_rng(1)
    mask = ellipse()
    key = rng.normal(128, 40, (H, W, 3)).clip(0, 255).astype(np.uint8)
    background = rng.normal([100, 130, 90], [8, 30, 15], (H, W, 3)).clip(0, 255).astype(np.uint8)
    ring = mask & (depth_of(mask) <= 5)
    rendered, sent = background[ring].astype(float), key[ring].astype(float)
    gain = np.clip(sent.std(axis=0) / rendered.std(axis=0), *GAIN_RANGE)
    assert gain[0] == GAIN_RANGE[1] and GAIN_RANGE[0] < gain[1] < GAIN_RANGE[1]  # one clipped, one not
    expected = background * gain + (sent.mean(axis=0) - gain * rendered.mean(axis=0))
    out = match_colours(background, key, mask, 5)
    assert np.abs(out.astype(float) - np.clip(expected, 0, 255)).max() <= 0.5 + 1e-9


def test_a_flat_rendition_gets_only_its_mean_corrected():
    mask = ellipse()
    key = np.random.default_rng(2).integers(0, 256, (H, W, 3), dtype=np.uint8)
    background = np.full((H, W, 3), 100, dtype=np.uint8)
    ring = mask & (depth_of(mask) <= 4)
    shift = np.round(key[ring].mean(axis=0) - 100)
    assert np.array_equal(match_colours(background, key, mask, 4), np.broadcast_to(100 + shift, (H, W, 3)))


def test_too_small_a_ring_changes_nothing():
    mask = np.zeros((H, W), dtype=bool)
    mask[10:15, 10:15] = True  # 25 pixels, fewer than MIN_RING_PIXELS
    assert mask.sum() < MIN_RING_PIXELS
    background = np.full((H, W, 3), 50, dtype=np.uint8)
    key = np.full((H, W, 3), 200, dtype=np.uint8)
    assert np.array_equal(match_colours(background, key, mask, 3), background)
    empty = np.zeros((H, W), dtype=bool)
    assert np.array_equal(composite(background, key, empty, match_px=3), background)


def test_bad_match_widths_are_refused():
    image = np.zeros((H, W, 3), dtype=np.uint8)
    mask = ellipse()
    with pytest.raises(ValueError):
        composite(image, image, mask, match_px=-1)
    with pytest.raises(ValueError):
        match_colours(image, image, mask, 0)
    with pytest.raises(ValueError):
        match_colours(image, image[:-1], mask, 3)
