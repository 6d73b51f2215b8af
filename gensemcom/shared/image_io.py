"""Image bytes <-> RGB arrays, with the checks a service needs before decoding.

Untrusted bytes are size-checked from the header before pixels are decoded,
so a tiny file that claims a gigapixel image is refused without allocating it.
Every mode Pillow reads is converted to 8-bit RGB:

- greyscale (1, L, 16-bit I;16) is repeated into three channels, 16 bits scaled to 8;
- 16-bit colour PNGs keep the high byte of each sample (Pillow's reading);
- palette images are looked up;
- CMYK (JPEG) uses Pillow's plain formula, without ICC colour management;
- transparency (RGBA, LA, PA, a palette or RGB transparent colour) is composited
  on white, as a viewer shows it: the colour stored under a transparent pixel is
  arbitrary (often black), so dropping alpha would send that instead.

Anything that is not an image, is truncated, or is too small or too large is
rejected with an ImageError (a ValueError) whose message says why.
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
        return to_rgb8(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image is over the decoder's size limit: {exc}") from None
    except UnidentifiedImageError as exc:
        raise ImageError(f"not a readable image: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"image could not be decoded: {exc}") from None


def check_rgb8(image: np.ndarray, name: str = "image") -> None:
    """Raise ValueError unless ``image`` is a uint8 H×W×3 RGB array, the form every stage takes."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must be a uint8 H×W×3 RGB array, got {getattr(image, 'dtype', type(image))} "
                         f"{getattr(image, 'shape', '')}")


def to_rgb8(img: Image.Image) -> np.ndarray:
    """Any Pillow image as uint8 RGB (see the module docstring for how each mode is converted)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        # Mode "I" (32-bit) does not say its range: values above 255 mean 16-bit data.
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        grey = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode == "F":
        grey = np.clip(np.asarray(img, dtype=np.float64), 0, 1) * 255.0 + 0.5
        return np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        return _on_white(np.asarray(img.convert("RGBA"), dtype=np.uint16))
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def _on_white(rgba: np.ndarray) -> np.ndarray:
    """Composite straight (non-premultiplied) RGBA on white, rounded to the nearest level."""
    alpha = rgba[..., 3:]
    return ((rgba[..., :3] * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)


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
