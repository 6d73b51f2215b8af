"""Classical inpainter and compositor: key pixels kept exactly, background follows the prompt."""

import logging

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from gensemcom.receiver.composite import composite
from gensemcom.receiver.inpaint import NOISE_SIGMA, ClassicalInpainter
from gensemcom.transmitter.describe import Description, StructuredDescriptor, cell_edges, render
from gensemcom.transmitter.segment import Segmentation

H, W = 120, 160


@pytest.fixture
def inpainter() -> ClassicalInpainter:
    return ClassicalInpainter(StructuredDescriptor())


def key_square(colour=(200, 0, 0)) -> tuple[np.ndarray, np.ndarray]:
    known = np.zeros((H, W, 3), dtype=np.uint8)
    mask = np.zeros((H, W), dtype=bool)
    mask[40:80, 60:100] = True
    known[mask] = colour
    return known, mask


def prompt_for(grid: np.ndarray, texture: str = "smooth") -> str:
    return render(Description(labels=["thing centre far small"], grid=grid, texture=texture, brightness="medium"))


def test_output_is_an_rgb_image_with_the_key_region_intact(inpainter):
    rng = np.random.default_rng(0)
    known, mask = key_square()
    known[mask] = rng.integers(0, 256, (mask.sum(), 3), dtype=np.uint8)
    for prompt in (prompt_for(rng.integers(0, 256, (3, 4, 3), dtype=np.uint8), "busy"), None, "garbage"):
        out = inpainter(prompt, known, mask)
        assert out.dtype == np.uint8 and out.shape == (H, W, 3)
        assert np.array_equal(out[mask], known[mask])


def test_cell_centres_carry_the_grid_colours(inpainter):
    # Bicubic interpolation passes through its samples, which sit at the cell centres.
    # Odd 41-pixel cells put each centre on a pixel (41 * index + 20).
    grid = np.random.default_rng(1).integers(0, 256, (3, 4, 3), dtype=np.uint8)
    out = inpainter(prompt_for(grid), np.zeros((123, 164, 3), np.uint8), np.zeros((123, 164), bool))
    for r in range(3):
        for c in range(4):
            assert np.abs(out[41 * r + 20, 41 * c + 20].astype(int) - grid[r, c]).max() <= 1


def test_background_follows_the_description_of_a_synthetic_image(inpainter):
    # A gently varying scene of 3×4 flat cells: describe it, regenerate it, compare per cell.
    rows, cols = cell_edges(H, 3), cell_edges(W, 4)
    colours = (np.array([90, 120, 60]) + 12 * np.arange(3)[:, None, None] - 9 * np.arange(4)[None, :, None])
    scene = np.zeros((H, W, 3), dtype=np.uint8)
    for r in range(3):
        for c in range(4):
            scene[rows[r]:rows[r + 1], cols[c]:cols[c + 1]] = colours[r, c]
    empty = np.zeros((H, W), dtype=bool)
    prompt = inpainter.descriptor(scene, Segmentation(mask=empty, source="test", labels=()))
    out = inpainter(prompt, np.zeros_like(scene), empty)
    for r in range(3):
        for c in range(4):
            cell_mean = out[rows[r]:rows[r + 1], cols[c]:cols[c + 1]].reshape(-1, 3).mean(axis=0)
            assert np.abs(cell_mean - colours[r, c]).max() < 4


def test_texture_noise_is_mild_and_seeded_by_the_prompt(inpainter):
    grid = np.full((3, 4, 3), 128, dtype=np.uint8)
    empty = np.zeros((H, W), dtype=bool)
    blank = np.zeros((H, W, 3), dtype=np.uint8)
    smooth = inpainter(prompt_for(grid, "smooth"), blank, empty)
    assert np.all(smooth == 128)
    for texture in ("textured", "busy"):
        first = inpainter(prompt_for(grid, texture), blank, empty)
        assert np.array_equal(first, inpainter(prompt_for(grid, texture), blank, empty))
        noise = first.astype(float) - 128
        assert noise.std() == pytest.approx(NOISE_SIGMA[texture], rel=0.1)
        assert np.array_equal(noise[..., 0], noise[..., 2])  # luma noise: no colour speckle
    other = render(Description(labels=["other"], grid=grid, texture="busy", brightness="medium"))
    assert not np.array_equal(inpainter(other, blank, empty), inpainter(prompt_for(grid, "busy"), blank, empty))


def test_seam_band_is_inpainted_smoothly(inpainter):
    grid = np.tile(np.array([0, 0, 200], dtype=np.uint8), (3, 4, 1))
    known, mask = key_square((200, 0, 0))
    smooth = inpainter(prompt_for(grid), known, mask)
    hard = ClassicalInpainter(inpainter.descriptor, band_px=0)(prompt_for(grid), known, mask)
    row = 60  # crosses the key square's left and right edges
    assert np.abs(np.diff(hard[row, :, 0].astype(int))).max() == 200
    assert np.abs(np.diff(smooth[row, :, 0].astype(int))).max() < 100
    far = distance_transform_edt(~mask) > inpainter.band_px + 1
    assert np.array_equal(smooth[far], hard[far])


def test_without_a_prompt_the_background_takes_the_key_border_colour(inpainter, caplog):
    known, mask = key_square((10, 150, 220))
    known[50:70, 70:90] = (255, 255, 255)  # the interior does not count, only the border
    far = distance_transform_edt(~mask) > inpainter.band_px + 1
    out = inpainter(None, known, mask)
    assert np.all(out[far] == (10, 150, 220))
    with caplog.at_level(logging.WARNING):
        out = inpainter("background 3x4: nonsense", known, mask)
    assert "unparseable prompt" in caplog.text
    assert np.all(out[far] == (10, 150, 220))


def test_without_prompt_or_key_region_the_background_is_mid_grey(inpainter):
    out = inpainter(None, np.zeros((H, W, 3), np.uint8), np.zeros((H, W), bool))
    assert np.all(out == 128)


def test_inpainter_rejects_bad_input(inpainter):
    known, mask = key_square()
    with pytest.raises(ValueError):
        inpainter(None, known.astype(np.float32), mask)
    with pytest.raises(ValueError):
        inpainter(None, known, mask[:, :-1])
    with pytest.raises(ValueError):
        inpainter(None, known, mask.astype(np.uint8))


def blob_mask() -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    mask = (yy - 60) ** 2 / 40**2 + (xx - 70) ** 2 / 55**2 < 1
    mask[:, 140:] = True  # a second region touching the image border
    return mask


@pytest.mark.parametrize("feather_px", [0, 1, 3, 6])
def test_composite_keeps_deep_key_pixels_and_background_exactly(feather_px):
    rng = np.random.default_rng(feather_px)
    background = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    key = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    mask = blob_mask()
    out = composite(background, key, mask, feather_px)
    assert out.dtype == np.uint8 and out.shape == (H, W, 3)
    # Second implementation of "deeper than feather_px": scipy's exact Euclidean distance.
    # The image border does not count as an edge, so depth is measured on a padded mask.
    depth = distance_transform_edt(np.pad(mask, 1, mode="edge"))[1:-1, 1:-1]
    deep = depth > feather_px
    assert np.array_equal(out[deep], key[deep])
    assert np.array_equal(out[~mask], background[~mask])
    band = mask & ~deep
    low = np.minimum(key, background)[band]
    high = np.maximum(key, background)[band]
    assert np.all((out[band] >= low) & (out[band] <= high))


def test_composite_feather_blends_the_edge_band():
    background = np.zeros((H, W, 3), dtype=np.uint8)
    key = np.full((H, W, 3), 200, dtype=np.uint8)
    mask = blob_mask()
    out = composite(background, key, mask, feather_px=3)
    edge = mask & (distance_transform_edt(np.pad(mask, 1, mode="edge"))[1:-1, 1:-1] <= 1)
    assert 0 < out[edge].mean() < 200  # the outermost key pixels are blended, not pasted
    assert np.array_equal(composite(background, key, mask, feather_px=0)[mask], key[mask])


def test_composite_rejects_mismatched_input():
    image = np.zeros((H, W, 3), dtype=np.uint8)
    mask = np.zeros((H, W), dtype=bool)
    with pytest.raises(ValueError):
        composite(image, image[:-1], mask)
    with pytest.raises(ValueError):
        composite(image, image, mask.astype(np.uint8))
    with pytest.raises(ValueError):
        composite(image.astype(np.float32), image, mask)
    with pytest.raises(ValueError):
        composite(image, image, mask, feather_px=-1)
