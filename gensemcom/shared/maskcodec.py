"""Key-region mask ↔ bytes: the payload of the digital MASK segment.

Both ends need it: the transmitter encodes the mask it used, the receiver decodes
it to know where the key pixels go. The format is a ``factor``× downsampled bitmap,
bit-packed and zlib-compressed. The low-resolution size follows from the image size
(sent in the frame header) and the factor, so the payload carries no side info.

Downsampling is "any pixel": a low-resolution cell is set when any of its pixels is.
The decoded mask is therefore a superset of the original, and never hands a true
key pixel to the background generator; it grows by less than one cell
(``factor`` pixels) along the key-region border.
"""

from __future__ import annotations

import zlib

import numpy as np


class MaskCodec:
    """Encode a bool H×W mask to bytes and back (``id`` "zlib-bitmap", ``version`` "1")."""

    id = "zlib-bitmap"
    version = "1"

    def __init__(self, factor: int = 4) -> None:
        if not isinstance(factor, int) or factor < 1:
            raise ValueError(f"factor must be a positive integer, got {factor!r}")
        self.factor = factor

    def low_res_shape(self, height: int, width: int) -> tuple[int, int]:
        """Size of the transmitted bitmap for an image of ``height``×``width``."""
        if height < 1 or width < 1:
            raise ValueError(f"image size must be positive, got {height}×{width}")
        return -(-height // self.factor), -(-width // self.factor)

    def encode(self, mask: np.ndarray) -> bytes:
        """Any-pixel downsample by ``factor``, pack 8 cells per byte, zlib level 9."""
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.ndim != 2:
            raise ValueError(f"mask must be a bool H×W array, got {getattr(mask, 'dtype', type(mask))} "
                             f"{getattr(mask, 'shape', '')}")
        rows, cols = self.low_res_shape(*mask.shape)
        f = self.factor
        padded = np.zeros((rows * f, cols * f), dtype=bool)
        padded[: mask.shape[0], : mask.shape[1]] = mask
        low = padded.reshape(rows, f, cols, f).any(axis=(1, 3))
        return zlib.compress(np.packbits(low, axis=None).tobytes(), level=9)

    def decode(self, data: bytes, height: int, width: int) -> np.ndarray:
        """Inverse of ``encode`` up to the any-pixel downsampling: nearest upsampling, then crop.

        Raises ValueError when ``data`` is not a complete zlib stream of exactly the
        expected length with zero padding bits.
        """
        rows, cols = self.low_res_shape(height, width)
        cells = rows * cols
        expected = -(-cells // 8)
        inflater = zlib.decompressobj()
        try:
            packed = inflater.decompress(data, expected + 1)
        except zlib.error as error:
            raise ValueError(f"mask payload is not valid zlib data: {error}") from error
        if not inflater.eof or inflater.unused_data or len(packed) != expected:
            raise ValueError(f"mask payload must inflate to exactly {expected} bytes for a "
                             f"{height}×{width} image at factor {self.factor}")
        bits = np.unpackbits(np.frombuffer(packed, dtype=np.uint8))
        if bits[cells:].any():
            raise ValueError("mask payload has non-zero padding bits")
        low = bits[:cells].astype(bool).reshape(rows, cols)
        full = np.repeat(np.repeat(low, self.factor, axis=0), self.factor, axis=1)
        return np.ascontiguousarray(full[:height, :width])
