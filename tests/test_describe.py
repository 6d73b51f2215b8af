"""Structured descriptor: exact text round trip, measured grid colours, words, limits."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from gensemcom.shared.paths import shared_data_dir
from gensemcom.transmitter.describe import (
    BRIGHTNESS,
    TEXTURES,
    Description,
    StructuredDescriptor,
    cell_edges,
    parse,
    render,
)
from gensemcom.transmitter.segment import Segmentation, make_segmenter

label = st.text(st.characters(blacklist_characters=";,\n", blacklist_categories=("Cs",)), min_size=1, max_size=24)
labels = st.lists(label.map(str.strip).filter(bool), max_size=4)
grids = st.tuples(st.integers(1, 6), st.integers(1, 6)).flatmap(
    lambda shape: arrays(np.uint8, (*shape, 3)))
descriptions = st.builds(Description, labels=labels, grid=grids,
                         texture=st.sampled_from(TEXTURES), brightness=st.sampled_from(BRIGHTNESS))


def segmentation(mask: np.ndarray, *names: str) -> Segmentation:
    return Segmentation(mask=mask, source="test", labels=names)


def cell_image(colours: np.ndarray, cell: int = 30) -> np.ndarray:
    """An image whose grid cells (cell×cell pixels each) are painted in ``colours``."""
    return np.repeat(np.repeat(colours, cell, axis=0), cell, axis=1)


@settings(max_examples=200, deadline=None)
@given(descriptions)
def test_parse_inverts_render_exactly(description):
    text = render(description)
    assert parse(text) == description
    assert render(parse(text)) == text


def test_two_colour_cells_are_recovered_exactly():
    rng = np.random.default_rng(7)
    palette = np.array([[12, 200, 90], [250, 3, 128]], dtype=np.uint8)
    colours = palette[rng.integers(0, 2, size=(3, 4))]
    image = cell_image(colours)
    empty = np.zeros(image.shape[:2], dtype=bool)
    description = StructuredDescriptor().describe(image, segmentation(empty))
    assert np.array_equal(description.grid, colours)
    assert description.labels == []


def test_majority_colour_wins_and_key_pixels_are_ignored():
    colours = np.tile(np.array([40, 80, 120], dtype=np.uint8), (3, 4, 1))
    image = cell_image(colours)
    image[:10, :30] = (200, 10, 10)  # a third of cell (0, 0): a minority colour
    image[40:60, 40:60] = (0, 255, 0)  # most of cell (1, 1), but inside the key region
    mask = np.zeros(image.shape[:2], dtype=bool)
    mask[40:60, 40:60] = True
    description = StructuredDescriptor().describe(image, segmentation(mask, "thing"))
    assert np.array_equal(description.grid, colours)


def test_cell_inside_the_key_region_takes_the_nearest_background_colour():
    colours = np.arange(36, dtype=np.uint8).reshape(3, 4, 3) * 7
    image = cell_image(colours)
    mask = np.zeros(image.shape[:2], dtype=bool)
    mask[30:60, 30:60] = True  # exactly cell (1, 1)
    grid = StructuredDescriptor().describe(image, segmentation(mask, "thing")).grid
    # Four cells at distance 1; row-major order puts (0, 1) first.
    assert np.array_equal(grid[1, 1], colours[0, 1])
    others = np.ones((3, 4), dtype=bool)
    others[1, 1] = False
    assert np.array_equal(grid[others], colours[others])


def test_position_words_follow_the_mask():
    image = np.full((300, 300, 3), 100, dtype=np.uint8)
    mask = np.zeros((300, 300), dtype=bool)
    mask[20:280, 10:60] = True  # left, tall, 14 % of the image
    assert StructuredDescriptor().describe(image, segmentation(mask, "person")).labels == ["person left near medium"]
    mask = np.zeros((300, 300), dtype=bool)
    mask[100:140, 250:290] = True  # right, short, 1.8 %
    assert StructuredDescriptor().describe(image, segmentation(mask, "dog", "cat")).labels == [
        "dog right far small", "cat right far small"]
    mask = np.zeros((300, 300), dtype=bool)
    mask[:, 60:240] = True  # centre, full height, 60 %
    assert StructuredDescriptor().describe(image, segmentation(mask, "person")).labels == ["person centre near large"]


def test_texture_and_brightness_words():
    rng = np.random.default_rng(3)
    empty = np.zeros((90, 120), dtype=bool)
    descriptor = StructuredDescriptor()
    flat_dark = np.full((90, 120, 3), 20, dtype=np.uint8)
    noisy_bright = np.clip(220 + rng.normal(0, 30, (90, 120, 1)), 0, 255).astype(np.uint8).repeat(3, axis=2)
    ramp = np.tile(np.linspace(60, 160, 120, dtype=np.uint8)[None, :, None], (90, 1, 3))
    stripes = np.tile((np.arange(120) // 6 % 2 * 40 + 100).astype(np.uint8)[None, :, None], (90, 1, 3))

    dark = descriptor.describe(flat_dark, segmentation(empty))
    assert (dark.texture, dark.brightness) == ("smooth", "dark")
    bright = descriptor.describe(noisy_bright, segmentation(empty))
    assert (bright.texture, bright.brightness) == ("busy", "bright")
    assert descriptor.describe(ramp, segmentation(empty)).texture == "smooth"
    # A 40-level step every 6 px: the two pixels beside each step read 40 * 4 / 8 = 20 (normalised
    # Sobel), the others 0, so the mean is 2 * 20 / 6 ≈ 6.7 grey levels per pixel: between 5 and 10.
    middle = descriptor.describe(stripes, segmentation(empty))
    assert (middle.texture, middle.brightness) == ("textured", "medium")


def test_max_chars_truncates_labels_never_the_grid():
    descriptor = StructuredDescriptor(grid=(3, 4), max_chars=200)
    rng = np.random.default_rng(1)
    description = Description(labels=[f"object number {i} centre far small" for i in range(10)],
                              grid=rng.integers(0, 256, (3, 4, 3), dtype=np.uint8),
                              texture="textured", brightness="medium")
    text = descriptor.render(description)
    assert len(text) <= 200
    parsed = descriptor.parse(text)
    assert np.array_equal(parsed.grid, description.grid)
    assert 0 < len(parsed.labels) < 10
    assert parsed.labels == description.labels[: len(parsed.labels)]
    assert len(render(Description(description.labels[: len(parsed.labels) + 1], description.grid,
                                  "textured", "medium"))) > 200


def test_grid_that_cannot_fit_is_rejected_up_front():
    with pytest.raises(ValueError, match="max_chars"):
        StructuredDescriptor(grid=(8, 8), max_chars=256)


@pytest.mark.parametrize("text", [
    "",
    "person centre near large",
    "background 1x2: 000000; texture smooth; brightness dark",
    "background 1x1: 00000G; texture smooth; brightness dark",
    "background 1x1: 0000AA; texture smooth; brightness dark",
    "background 1x1: 000000; texture rough; brightness dark",
    "background 1x1: 000000; texture smooth; brightness dim",
    "background 01x1: 000000; texture smooth; brightness dark",
    "background 1x1: 000000; texture smooth; brightness dark; ",
    "background 1x1: 000000;  texture smooth; brightness dark",
    ", person; background 1x1: 000000; texture smooth; brightness dark",
    "a,  b; background 1x1: 000000; texture smooth; brightness dark",
    " person; background 1x1: 000000; texture smooth; brightness dark",
])
def test_malformed_text_is_rejected(text):
    with pytest.raises(ValueError):
        parse(text)


def test_descriptions_validate_their_fields():
    grid = np.zeros((1, 1, 3), dtype=np.uint8)
    for bad in (dict(labels=["a;b"]), dict(labels=[" a"]), dict(texture="rough"),
                dict(brightness="dim"), dict(grid=grid.astype(np.int16)), dict(grid=np.zeros((2, 2), np.uint8))):
        fields = dict(labels=[], grid=grid, texture="smooth", brightness="dark") | bad
        with pytest.raises(ValueError):
            Description(**fields)


def test_cell_edges_cover_every_pixel_once():
    for length, parts in [(512, 3), (768, 4), (7, 7), (100, 6)]:
        edges = cell_edges(length, parts)
        assert edges[0] == 0 and edges[-1] == length
        assert np.all(np.diff(edges) >= length // parts)


def test_real_photo_description_round_trips():
    image = np.asarray(Image.open(shared_data_dir() / "people" / "skimage_astronaut.png").convert("RGB"))
    descriptor = StructuredDescriptor()
    text = descriptor(image, make_segmenter("mediapipe", None)(image))
    assert len(text) <= descriptor.max_chars
    assert text.startswith("person centre near large; background 3x4: ")
    assert descriptor.render(descriptor.parse(text)) == text
