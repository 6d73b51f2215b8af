"""Image bytes <-> RGB arrays, with the checks a service needs before decoding.

Untrusted bytes are size-checked from the header before pixels are decoded,
so a tiny file that claims a gigapixel image is refused without allocating it.
Every mode Pillow reads (L, P, RGBA, CMYK, 16-bit, ...) is converted to 8-bit
RGB; anything that is not an image is rejected with a message that says why.
"""

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

MIN_SIDE = 16
MAX_PIXELS = 40_000_000


class ImageError(ValueError):
    """Bytes that are not an acceptable image."""


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS, min_side: int = MIN_SIDE) -> np.ndarray:
    """Decode file bytes (PNG, JPEG, ...) into a uint8 H×W×3 RGB array."""
    if not data:
        raise ImageError("image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}")
            if min(width, height) < min_side:
                raise ImageError(f"image is {width}x{height}; each side must be at least {min_side} pixels")
            img.load()
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"not a readable image: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"image could not be decoded: {exc}") from None
    return to_rgb8(img)


def check_rgb8(image: np.ndarray, name: str = "image") -> None:
    """Raise ValueError unless ``image`` is a uint8 H×W×3 RGB array, the form every stage takes."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must be a uint8 H×W×3 RGB array, got {getattr(image, 'dtype', type(image))} "
                         f"{getattr(image, 'shape', '')}")


def to_rgb8(img: Image.Image) -> np.ndarray:
    """Any Pillow image as uint8 RGB; 16-bit greyscale is scaled, alpha is dropped."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        grey = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode == "F":
        grey = np.clip(np.asarray(img, dtype=np.float64), 0, 1) * 255.0 + 0.5
        return np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def read_image(path) -> np.ndarray:
    """Read an image file as uint8 RGB."""
    with open(path, "rb") as f:
        return decode_image(f.read())


def encode_png(array: np.ndarray) -> bytes:
    """uint8 H×W, H×W×3 or H×W×4 array (bool masks become 0/255) -> PNG bytes."""
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
