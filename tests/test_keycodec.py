"""Linear key-region codec tests: layout, power, round trips and the analytic MSE model."""

import numpy as np
import pytest
from skimage.data import astronaut

from gensemcom.shared.keycodec import LinearKeyCodec


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A real photograph (bundled with scikit-image), float32 in [0, 1]."""
    return (astronaut() / 255).astype(np.float32)


def add_noise(symbols: np.ndarray, no: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(scale=np.sqrt(no / 2), size=(symbols.size, 2)) @ np.array([1, 1j])
    return (symbols + noise).astype(np.complex64)


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def crop(image: np.ndarray, bbox: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = bbox
    return image[y : y + h, x : x + w]


@pytest.mark.parametrize("bbox", [(10, 20, 13, 7), (0, 0, 1, 1), (500, 3, 9, 17), (100, 100, 64, 48)])
def test_shapes_power_and_symbol_count(image, bbox):
    codec = LinearKeyCodec()
    symbols, params = codec.encode(image, bbox)
    assert symbols.dtype == np.complex64 and symbols.ndim == 1
    assert symbols.size == codec.n_symbols(bbox)
    assert len(params) == codec.n_params <= 64
    out = codec.decode(symbols, params, bbox)
    assert out.shape == (bbox[3], bbox[2], 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    if bbox[2:] != (1, 1):  # a single pixel is flat: nothing but its means to send
        assert np.mean(np.abs(symbols.astype(np.complex128)) ** 2) == pytest.approx(1, abs=1e-3)


def test_flat_region_sends_zeros_and_decodes_exactly():
    flat = np.full((20, 30, 3), [0.2, 0.5, 0.7], dtype=np.float32)
    codec = LinearKeyCodec()
    symbols, params = codec.encode(flat, (3, 4, 17, 11))
    np.testing.assert_array_equal(symbols, 0)
    np.testing.assert_allclose(codec.decode(symbols, params, (3, 4, 17, 11)), flat[:11, :17], atol=1e-6)


@pytest.mark.parametrize("ratio", [1 / 24, 1 / 6, 1 / 2])
def test_symbol_count_follows_the_bandwidth_ratio(ratio):
    codec = LinearKeyCodec(bandwidth_ratio=ratio)
    assert codec.n_symbols((0, 0, 64, 48)) == round(ratio * 64 * 48 * 3)  # multiple of the block: exact
    # Otherwise the crop is padded to whole 8×8 tiles.
    assert codec.n_symbols((0, 0, 65, 41)) == round(ratio * 72 * 48 * 3)


def test_noiseless_quality_rises_with_bandwidth(image):
    bbox = (150, 40, 203, 157)
    psnrs = []
    for ratio in (1 / 24, 1 / 12, 1 / 6, 1 / 3, 1 / 2):
        codec = LinearKeyCodec(bandwidth_ratio=ratio)
        symbols, params = codec.encode(image, bbox)
        psnrs.append(-10 * np.log10(mse(codec.decode(symbols, params, bbox), crop(image, bbox))))
    assert all(b > a + 1 for a, b in zip(psnrs, psnrs[1:])), psnrs
    assert psnrs[-1] > 100  # ratio 1/2 keeps every coefficient: lossless up to float32


@pytest.mark.parametrize("snr_db", [10.0, 20.0, 30.0])
def test_expected_mse_matches_monte_carlo(image, snr_db):
    rng = np.random.default_rng(int(snr_db))
    codec = LinearKeyCodec()
    bbox = (180, 60, 150, 130)  # the astronaut's face and helmet, not a multiple of 8
    no = 10 ** (-snr_db / 10)
    symbols, params = codec.encode(image, bbox)
    measured = np.mean(
        [mse(codec.decode(add_noise(symbols, no, rng), params, bbox), crop(image, bbox)) for _ in range(30)]
    )
    expected = codec.expected_mse(image, bbox, no)
    truncation = codec.expected_mse(image, bbox, 0.0)
    assert measured == pytest.approx(expected, rel=0.10)
    # The noise term alone, too: at 30 dB it is only a few percent of the total.
    assert measured - truncation == pytest.approx(expected - truncation, rel=0.10)


def test_lmmse_decoding_beats_plain_inversion_at_low_snr(image):
    rng = np.random.default_rng(9)
    codec = LinearKeyCodec()
    bbox = (180, 60, 150, 130)
    no = 1.0  # 0 dB
    symbols, params = codec.encode(image, bbox)
    plain, lmmse = [], []
    for _ in range(10):
        y = add_noise(symbols, no, rng)
        plain.append(mse(codec.decode(y, params, bbox), crop(image, bbox)))
        lmmse.append(mse(codec.decode(y, params, bbox, no=np.full(y.size, no)), crop(image, bbox)))
    assert np.mean(lmmse) < 0.9 * np.mean(plain)


def test_codec_identity():
    assert (LinearKeyCodec.id, LinearKeyCodec.version) == ("linear-dct", "1")


def test_invalid_inputs_are_rejected(image):
    codec = LinearKeyCodec()
    with pytest.raises(ValueError, match="empty"):
        codec.encode(image, (0, 0, 0, 5))
    with pytest.raises(ValueError, match="outside"):
        codec.encode(image, (500, 500, 20, 20))
    with pytest.raises(ValueError, match="negative"):
        codec.encode(image, (-1, 0, 5, 5))
    with pytest.raises(ValueError, match="float32"):
        codec.encode(image.astype(np.float64), (0, 0, 5, 5))
    with pytest.raises(ValueError, match="float32"):
        codec.encode((image * 255).astype(np.uint8), (0, 0, 5, 5))
    with pytest.raises(ValueError, match="H×W×3"):
        codec.encode(image[..., 0], (0, 0, 5, 5))
    symbols, params = codec.encode(image, (0, 0, 16, 16))
    with pytest.raises(ValueError, match="key symbols"):
        codec.decode(symbols[:-1], params, (0, 0, 16, 16))
    with pytest.raises(ValueError, match="params"):
        codec.decode(symbols, params[:-1], (0, 0, 16, 16))
    with pytest.raises(ValueError, match="bandwidth_ratio"):
        LinearKeyCodec(bandwidth_ratio=0.6)
    with pytest.raises(ValueError, match="block"):
        LinearKeyCodec(block=16)
