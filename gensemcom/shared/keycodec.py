"""Linear key-region codec: block DCT with SoftCast-style power allocation.

A placeholder for the trained deep JSCC, named for what it is. It maps the
key-region crop linearly to analog channel symbols, so the received image
degrades gracefully with the SNR, and its noise behaviour is known in closed
form (:meth:`LinearKeyCodec.expected_mse`), which lets tests check the whole
chain against theory.

Pipeline (encoder; the decoder runs it backwards):

1. crop the bbox and rotate RGB into an orthonormal opponent colour space
   (luma (R+G+B)/√3, red-blue (R-B)/√2, green-magenta (R-2G+B)/√6). Like
   YCbCr it decorrelates the colours and concentrates energy in luma, but
   unlike YCbCr it is orthonormal, so channel noise keeps its power all the
   way back to RGB pixels and the MSE model stays exact;
2. subtract each channel's mean (side information), pad the crop to a
   multiple of ``block`` by edge replication and take the orthonormal 2-D DCT
   of each ``block``×``block`` tile;
3. keep the same leading zig-zag coefficients in every tile, twice as many
   for luma as for each chroma channel, so that the symbol count follows
   from the bbox alone;
4. scale each group of coefficients (one group per channel and zig-zag
   diagonal, whose coefficients share a spatial frequency u+v and hence
   roughly a variance λ) by g ∝ λ^(-1/4), SoftCast's MSE-optimal linear
   power allocation, normalised so that the symbols have unit average power;
5. pair the scaled reals into complex symbols.

Bandwidth ratio follows the deep-JSCC convention (CBR): complex channel uses
per source dimension (pixel × colour), so a w×h crop costs about
``bandwidth_ratio·w·h·3`` symbols (exactly that when w and h are multiples of
``block``; padding adds the rest).

Side information ``params`` (float32 on the wire, so the encoder rounds them
the same way before use): the 3 channel means followed by one variance λ per
coefficient group, at most 3 + 3·(2·block - 1) = 48 floats.
"""

from collections.abc import Sequence

import numpy as np
from scipy.fft import dctn, idctn

from gensemcom.shared.modem import as_symbol_array

# Rows: orthonormal opponent colour axes (luma, red-blue, green-magenta).
_COLOUR = np.array(
    [
        np.array([1.0, 1.0, 1.0]) / np.sqrt(3),
        np.array([1.0, 0.0, -1.0]) / np.sqrt(2),
        np.array([1.0, -2.0, 1.0]) / np.sqrt(6),
    ]
)
_CHANNEL_WEIGHTS = (2.0, 1.0, 1.0)  # share of kept coefficients: luma gets twice a chroma channel
_N_CHANNELS = 3
_N_MEANS = 3
_MIN_VARIANCE = 1e-12  # groups quieter than this (amplitude 1e-6, far below 8-bit steps) are not sent

BBox = tuple[int, int, int, int]


def _zigzag(block: int) -> list[tuple[int, int]]:
    """JPEG zig-zag scan of a block×block tile: by diagonal u+v, alternating direction."""
    cells = [(u, v) for u in range(block) for v in range(block)]
    return sorted(cells, key=lambda uv: (uv[0] + uv[1], uv[0] if (uv[0] + uv[1]) % 2 else -uv[0]))


def _check_bbox(bbox: Sequence[int]) -> BBox:
    if len(bbox) != 4:
        raise ValueError(f"bbox must be (x, y, w, h), got {bbox!r}")
    if any(int(v) != v for v in bbox):
        raise ValueError(f"bbox entries must be integers, got {bbox!r}")
    x, y, w, h = (int(v) for v in bbox)
    if w < 1 or h < 1:
        raise ValueError(f"bbox is empty: width {w}, height {h}")
    if x < 0 or y < 0:
        raise ValueError(f"bbox origin ({x}, {y}) is negative")
    return x, y, w, h


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.float32:
        raise ValueError(f"image must be a float32 numpy array, got {getattr(image, 'dtype', type(image))}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H×W×3, got shape {image.shape}")
    if not np.all(np.isfinite(image)) or image.min() < 0 or image.max() > 1:
        raise ValueError("image values must lie in [0, 1]")
    return image


def _crop(image: np.ndarray, bbox: Sequence[int]) -> np.ndarray:
    """The bbox of a validated image, as float64 RGB."""
    image = _check_image(image)
    x, y, w, h = _check_bbox(bbox)
    if x + w > image.shape[1] or y + h > image.shape[0]:
        raise ValueError(f"bbox {bbox} reaches outside the {image.shape[1]}×{image.shape[0]} image")
    return image[y : y + h, x : x + w].astype(np.float64)


class LinearKeyCodec:
    """Analog key-region codec: block DCT, zig-zag truncation, SoftCast power allocation."""

    id = "linear-dct"
    version = "1"
    #: Its decoder does its own LMMSE weighting, so it wants unbiased (zero-forced) symbols.
    equaliser = "zf"

    def __init__(self, bandwidth_ratio: float = 1 / 6, block: int = 8) -> None:
        if int(block) != block or not 2 <= block <= 8:
            raise ValueError(f"block must be an integer in [2, 8] (keeps params <= 48 floats), got {block}")
        if not np.isfinite(bandwidth_ratio) or bandwidth_ratio <= 0:
            raise ValueError(f"bandwidth_ratio must be > 0, got {bandwidth_ratio}")
        self.block = int(block)
        self.bandwidth_ratio = float(bandwidth_ratio)
        tile_dims = _N_CHANNELS * self.block**2
        self.symbols_per_tile = round(self.bandwidth_ratio * tile_dims)
        if not 1 <= self.symbols_per_tile <= tile_dims // 2:
            raise ValueError(
                f"bandwidth_ratio {bandwidth_ratio} gives {self.symbols_per_tile} symbols per "
                f"{self.block}×{self.block} tile; it must give 1 to {tile_dims // 2} (ratio <= 0.5)"
            )
        self._layout_slots(2 * self.symbols_per_tile)

    def _layout_slots(self, n_reals: int) -> None:
        """Choose the kept coefficients and their groups (fixed by the settings alone).

        Coefficient i (zig-zag) of channel c gets the rank (i + ½)/weight_c;
        the ``n_reals`` lowest ranks are kept, then laid out channel by channel
        in zig-zag order. With weights (2, 1, 1) luma keeps twice as many.
        """
        scan = _zigzag(self.block)
        candidates = sorted(
            ((i + 0.5) / _CHANNEL_WEIGHTS[c], c, i) for c in range(_N_CHANNELS) for i in range(len(scan))
        )
        kept = sorted((c, i) for _, c, i in candidates[:n_reals])
        self._slot_channel = np.array([c for c, _ in kept])
        self._slot_index = np.array([scan[i][0] * self.block + scan[i][1] for _, i in kept])
        diagonals = [(c, sum(scan[i])) for c, i in kept]
        groups = sorted(set(diagonals))
        self._slot_group = np.array([groups.index(d) for d in diagonals])
        self._group_size = np.bincount(self._slot_group).astype(np.float64)

    @property
    def n_params(self) -> int:
        """Length of the side-information list: 3 means + one variance per group."""
        return _N_MEANS + self._group_size.size

    def _n_tiles(self, w: int, h: int) -> int:
        return -(-w // self.block) * -(-h // self.block)

    def n_symbols(self, bbox: Sequence[int]) -> int:
        """Symbols that :meth:`encode` emits for ``bbox``; the receiver checks segment lengths with it."""
        _, _, w, h = _check_bbox(bbox)
        return self._n_tiles(w, h) * self.symbols_per_tile

    def _gains(self, variances: np.ndarray) -> np.ndarray:
        """Per-group amplitude gains g = α·λ^(-1/4) that make the mean symbol power exactly 1.

        With λ the mean square of a group's coefficients, the energy per tile
        is Σ n_g·g²·λ = α²·Σ n_g·√λ, which must equal symbols_per_tile.
        """
        sent = variances > _MIN_VARIANCE
        gains = np.zeros_like(variances)
        if sent.any():
            alpha2 = self.symbols_per_tile / np.sum(self._group_size[sent] * np.sqrt(variances[sent]))
            gains[sent] = np.sqrt(alpha2) * variances[sent] ** -0.25
        return gains

    def _coefficients(self, crop: np.ndarray, means: np.ndarray) -> np.ndarray:
        """Kept DCT coefficients of a mean-removed opponent-colour crop, shape (tiles, reals per tile)."""
        b = self.block
        h, w, _ = crop.shape
        opponent = crop @ _COLOUR.T - means
        padded = np.pad(opponent, ((0, -h % b), (0, -w % b), (0, 0)), mode="edge")
        ty, tx = padded.shape[0] // b, padded.shape[1] // b
        tiles = padded.reshape(ty, b, tx, b, _N_CHANNELS).transpose(0, 2, 4, 1, 3)
        spectra = dctn(tiles, axes=(-2, -1), norm="ortho").reshape(ty * tx, _N_CHANNELS, b * b)
        return spectra[:, self._slot_channel, self._slot_index]

    def _pixels(self, coefficients: np.ndarray, means: np.ndarray, w: int, h: int) -> np.ndarray:
        """Inverse of :meth:`_coefficients` (dropped coefficients taken as 0), RGB float64 h×w×3."""
        b = self.block
        ty, tx = -(-h // b), -(-w // b)
        spectra = np.zeros((ty * tx, _N_CHANNELS, b * b))
        spectra[:, self._slot_channel, self._slot_index] = coefficients
        tiles = idctn(spectra.reshape(ty, tx, _N_CHANNELS, b, b), axes=(-2, -1), norm="ortho")
        padded = tiles.transpose(0, 3, 1, 4, 2).reshape(ty * b, tx * b, _N_CHANNELS)
        return (padded[:h, :w] + means) @ _COLOUR

    def encode(self, image: np.ndarray, bbox: Sequence[int]) -> tuple[np.ndarray, list[float]]:
        """Key region of ``image`` (float32 H×W×3 in [0, 1]) -> (unit-power complex64 symbols, params).

        A perfectly flat crop has nothing to send beyond its means: its
        symbols are all zero.
        """
        crop = _crop(image, bbox)
        means = (crop @ _COLOUR.T).mean(axis=(0, 1)).astype(np.float32).astype(np.float64)
        coefficients = self._coefficients(crop, means)
        group_sums = np.bincount(self._slot_group, weights=np.sum(coefficients**2, axis=0))
        variances = group_sums / (self._group_size * coefficients.shape[0])
        params = np.concatenate([means, variances]).astype(np.float32).astype(np.float64)
        reals = coefficients * self._gains(params[_N_MEANS:])[self._slot_group]
        symbols = reals.astype(np.float32).reshape(-1).view(np.complex64)
        return symbols, params.tolist()

    def decode(
        self,
        symbols: np.ndarray,
        params: Sequence[float],
        bbox: Sequence[int],
        no: float | np.ndarray | None = None,
    ) -> np.ndarray:
        """Received symbols -> float32 h×w×3 crop clipped to [0, 1].

        ``symbols`` must be unbiased, y = s + n with n ~ CN(0, no) (e.g. the
        zero-forcing equaliser output). Without ``no`` each coefficient is
        divided by its gain (plain inversion, the case :meth:`expected_mse`
        models). With ``no`` (scalar or per symbol) each coefficient gets the
        LMMSE estimate g·λ/(g²·λ + no/2)·r, which shrinks noisy, weak
        coefficients towards zero and lowers the MSE at low SNR.
        """
        _, _, w, h = _check_bbox(bbox)
        symbols = as_symbol_array(symbols)
        expected = self.n_symbols(bbox)
        if symbols.size != expected:
            raise ValueError(f"got {symbols.size} key symbols, a {w}×{h} bbox needs {expected}")
        params = np.asarray(params, dtype=np.float64)
        if params.shape != (self.n_params,) or not np.all(np.isfinite(params)):
            raise ValueError(f"params must be {self.n_params} finite floats, got shape {params.shape}")
        means, variances = params[:_N_MEANS], params[_N_MEANS:]
        if np.any(variances < 0):
            raise ValueError("coefficient variances in params must be >= 0")
        gains = self._gains(variances)[self._slot_group]
        received = symbols.view(np.float32).astype(np.float64).reshape(-1, gains.size)
        if no is None:
            scale = np.divide(1.0, gains, out=np.zeros_like(gains), where=gains > 0)
        else:
            no = np.asarray(no, dtype=np.float64)
            if no.shape not in ((), symbols.shape) or not np.all(np.isfinite(no)) or np.any(no < 0):
                raise ValueError("no must be finite and >= 0, a scalar or one value per symbol")
            real_noise = np.broadcast_to(no / 2, symbols.shape).repeat(2).reshape(received.shape)
            signal = gains * variances[self._slot_group]
            denominator = gains * signal + real_noise
            scale = np.divide(signal, denominator, out=np.zeros_like(denominator), where=denominator > 0)
        pixels = self._pixels(received * scale, means, w, h)
        return np.clip(pixels, 0.0, 1.0).astype(np.float32)

    def expected_mse(self, image: np.ndarray, bbox: Sequence[int], no: float) -> float:
        """Theoretical pixel MSE of plain decoding (``no=None``) after an AWGN of variance ``no``.

        MSE = truncation error (measured by a noiseless round trip) + noise
        error. Each kept coefficient receives real noise of variance
        (no/2)/g²; the orthonormal DCT spreads it over the tile's pixels with
        weights equal to the squared basis functions, and the orthonormal
        colour rotation preserves it, so averaging the per-pixel variance
        over the crop (padding excluded) and the 3 colours gives the exact
        expectation. Clipping to [0, 1] is ignored; it can only lower the
        error.
        """
        if not np.isfinite(no) or no < 0:
            raise ValueError(f"noise variance must be finite and >= 0, got {no}")
        crop = _crop(image, bbox)
        _, _, w, h = _check_bbox(bbox)
        symbols, params = self.encode(image, bbox)
        truncation = float(np.mean((self.decode(symbols, params, bbox).astype(np.float64) - crop) ** 2))

        gains = self._gains(np.asarray(params[_N_MEANS:]))[self._slot_group]
        coef_noise = np.divide(no / 2, gains**2, out=np.zeros_like(gains), where=gains > 0)
        b = self.block
        basis = dctn(np.eye(b * b).reshape(b * b, b, b), axes=(-2, -1), norm="ortho")
        # basis[p] is the DCT of pixel p's impulse, i.e. basis function k evaluated at p.
        pixel_noise = (basis.reshape(b * b, b * b)[:, self._slot_index] ** 2) @ coef_noise  # all channels
        pixel_noise = pixel_noise.reshape(b, b) / _N_CHANNELS
        rows, cols = np.arange(h) % b, np.arange(w) % b
        noise = float(np.mean(pixel_noise[np.ix_(rows, cols)]))
        return truncation + noise
