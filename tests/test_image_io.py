"""Bad and unusual image files: each is converted to 8-bit RGB or refused with a clear ImageError.

Expected pixels come from an independent route: OpenCV encodes the 16-bit files,
and compositing, palette lookup and 16-to-8-bit scaling are recomputed here in
floating point from the source arrays.
"""

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from gensemcom.shared.image_io import MAX_PIXELS, ImageError, check_rgb8, decode_image

RNG = np.random.default_rng(7)
SOURCE = RNG.integers(0, 256, (40, 56, 3), dtype=np.uint8)


def pillow_bytes(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def opencv_png(array: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", array)
    assert ok
    return encoded.tobytes()


def smooth_rgb(height: int = 48, width: int = 64) -> np.ndarray:
    """Gradients: JPEG keeps them almost exactly, unlike noise."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) * 255 // (width + height - 2)],
                    axis=2).astype(np.uint8)


def decoded(data: bytes) -> np.ndarray:
    image = decode_image(data)
    check_rgb8(image)
    return image


def test_cmyk_jpeg_is_converted_to_rgb():
    original = smooth_rgb()
    data = pillow_bytes(Image.fromarray(original).convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"  # the file really is CMYK
    image = decoded(data)
    assert image.shape == original.shape
    assert np.abs(image.astype(int) - original).mean() < 3


def test_16_bit_colour_png_keeps_the_high_byte():
    samples = RNG.integers(0, 65536, (40, 56, 3), dtype=np.uint16)
    image = decoded(opencv_png(samples[..., ::-1]))  # OpenCV writes BGR
    assert np.abs(image.astype(float) - samples / 257.0).max() <= 1.0
    assert np.array_equal(image, (samples >> 8).astype(np.uint8))


def test_16_bit_grey_png_is_scaled_to_8_bits():
    samples = RNG.integers(0, 65536, (40, 56), dtype=np.uint16)
    samples[0, :3] = (0, 65535, 257 * 100)
    image = decoded(opencv_png(samples))
    expected = np.round(samples * 255.0 / 65535.0)
    assert np.array_equal(image[..., 0], expected.astype(np.uint8))
    assert np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])
    assert tuple(image[0, :3, 0]) == (0, 255, 100)


def composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None] / 255.0
    return rgb * a + 255.0 * (1 - a)


def test_rgba_png_is_composited_on_white():
    alpha = RNG.integers(0, 256, SOURCE.shape[:2], dtype=np.uint8)
    alpha[0, 0], alpha[0, 1] = 0, 255
    image = decoded(pillow_bytes(Image.fromarray(np.dstack([SOURCE, alpha])), "PNG"))
    assert np.abs(image - composite_on_white(SOURCE, alpha)).max() <= 0.5 + 1e-9
    assert tuple(image[0, 0]) == (255, 255, 255)  # fully transparent: white, whatever colour was stored
    assert tuple(image[0, 1]) == tuple(SOURCE[0, 1])  # fully opaque: unchanged


def test_16_bit_rgba_png_is_composited_on_white():
    samples = RNG.integers(0, 65536, (40, 56, 4), dtype=np.uint16)
    image = decoded(opencv_png(samples[..., [2, 1, 0, 3]]))
    high = (samples >> 8).astype(float)  # 16-bit samples keep their high byte, alpha included
    assert np.abs(image - composite_on_white(high[..., :3], high[..., 3])).max() <= 0.5 + 1e-9


def test_greyscale_with_alpha_is_composited_on_white():
    grey, alpha = SOURCE[..., 0], SOURCE[..., 1]
    image = decoded(pillow_bytes(Image.fromarray(np.dstack([grey, alpha]), "LA"), "PNG"))
    assert np.abs(image - composite_on_white(np.repeat(grey[..., None], 3, axis=2), alpha)).max() <= 0.5 + 1e-9


def test_palette_png_is_looked_up():
    palette_image = Image.fromarray(SOURCE).quantize(colors=16)
    indices = np.asarray(palette_image)
    palette = np.array(palette_image.getpalette()[: 3 * 16], dtype=np.uint8).reshape(16, 3)
    image = decoded(pillow_bytes(palette_image, "PNG"))
    assert np.array_equal(image, palette[indices])


def test_palette_png_with_a_transparent_entry_shows_white_there():
    palette_image = Image.fromarray(SOURCE).quantize(colors=16)
    indices = np.asarray(palette_image)
    clear = int(indices[0, 0])
    palette = np.array(palette_image.getpalette()[: 3 * 16], dtype=np.uint8).reshape(16, 3)
    image = decoded(pillow_bytes(palette_image, "PNG", transparency=clear))
    expected = palette[indices]
    expected[indices == clear] = 255
    assert np.array_equal(image, expected)


@pytest.mark.parametrize("mode", ["L", "1"])
def test_greyscale_is_repeated_into_three_channels(mode):
    grey = Image.fromarray(SOURCE[..., 0]).convert(mode)
    image = decoded(pillow_bytes(grey, "PNG"))
    expected = np.asarray(grey.convert("L"))
    for channel in range(3):
        assert np.array_equal(image[..., channel], expected)


def test_opaque_rgba_decodes_exactly_like_rgb():
    rgba = pillow_bytes(Image.fromarray(np.dstack([SOURCE, np.full(SOURCE.shape[:2], 255, np.uint8)])), "PNG")
    assert np.array_equal(decoded(rgba), decoded(pillow_bytes(Image.fromarray(SOURCE), "PNG")))


@pytest.mark.parametrize("size", [(1, 1), (15, 200), (200, 15)])
def test_too_small_images_are_refused(size):
    with pytest.raises(ImageError, match="at least 16 pixels"):
        decode_image(pillow_bytes(Image.new("RGB", size), "PNG"))


def test_more_pixels_than_the_limit_are_refused():
    data = pillow_bytes(Image.new("L", (8000, 6000)), "PNG")  # 48 Mpx compresses to a few kB
    with pytest.raises(ImageError, match=f"8000x6000 = 48000000 pixels; the limit is {MAX_PIXELS}"):
        decode_image(data)
    with pytest.raises(ImageError, match="the limit is 1000"):
        decode_image(pillow_bytes(Image.fromarray(SOURCE), "PNG"), max_pixels=1000)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG claiming ``width``×``height`` RGB whose pixel data is one short row: a bomb if decoded blindly."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))


@pytest.mark.parametrize(("width", "height", "message"), [
    (7000, 7000, "49000000 pixels; the limit"),  # our limit, read from the header alone
    (100_000, 100_000, "size limit"),  # Pillow's bomb guard fires first
])
def test_huge_claims_are_refused_from_the_header(width, height, message):
    with pytest.raises(ImageError, match=message):
        decode_image(png_header_only(width, height))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files_are_refused(fmt):
    data = pillow_bytes(Image.fromarray(SOURCE), fmt)
    with pytest.raises(ImageError, match="truncated"):
        decode_image(data[: len(data) // 2])


@pytest.mark.parametrize(("data", "message"), [(b"", "empty"), (b"GIF89a not really", "not a readable image"),
                                               (b"\x00" * 64, "not a readable image")])
def test_non_images_are_refused(data, message):
    with pytest.raises(ImageError, match=message):
        decode_image(data)


def test_image_error_is_a_value_error():
    assert issubclass(ImageError, ValueError)  # the gRPC adapter maps ValueError to INVALID_ARGUMENT
