"""Mask codec: exact on the factor grid, a bounded superset elsewhere, small, strict on bad bytes."""

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from skimage.measure import block_reduce

from gensemcom.shared.maskcodec import MaskCodec
from gensemcom.shared.paths import shared_data_dir
from gensemcom.transmitter.segment import make_segmenter

factors = st.integers(1, 6)
low_res = st.tuples(st.integers(1, 24), st.integers(1, 24)).flatmap(lambda shape: arrays(np.bool_, shape))


@settings(max_examples=150, deadline=None)
@given(low_res, factors)
def test_masks_on_the_factor_grid_round_trip_exactly(cells, factor):
    mask = np.kron(cells, np.ones((factor, factor), dtype=bool))
    codec = MaskCodec(factor)
    decoded = codec.decode(codec.encode(mask), *mask.shape)
    assert decoded.dtype == np.bool_
    assert np.array_equal(decoded, mask)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 70), st.integers(1, 70), factors, st.integers(0, 2**32 - 1), st.floats(0.0, 1.0))
def test_other_masks_decode_to_the_any_pixel_superset(height, width, factor, seed, density):
    mask = np.random.default_rng(seed).random((height, width)) < density
    codec = MaskCodec(factor)
    decoded = codec.decode(codec.encode(mask), height, width)

    # Second implementation: skimage's block reduction (pads with False), then nearest upsampling.
    blocks = block_reduce(mask, (factor, factor), np.any, cval=False)
    expected = np.kron(blocks, np.ones((factor, factor), dtype=bool))[:height, :width]
    assert np.array_equal(decoded, expected)
    assert np.all(decoded[mask])
    # Error bound: only blocks that hold both key and non-key pixels can change.
    mixed = block_reduce(mask, (factor, factor), np.any, cval=False) & ~block_reduce(
        mask, (factor, factor), np.all, cval=True)
    assert (decoded & ~mask).sum() <= mixed.sum() * (factor * factor - 1)


def test_person_mask_compresses_far_below_raw_bits():
    image = np.asarray(Image.open(shared_data_dir() / "people" / "yolov5_zidane.jpg").convert("RGB"))
    mask = make_segmenter("mediapipe", None)(image).mask
    data = MaskCodec(4).encode(mask)
    raw_bits = mask.size
    assert 8 * len(data) < 0.02 * raw_bits
    assert 8 * len(data) < 0.25 * raw_bits / 16  # well below even the downsampled bitmap


def test_encoding_is_deterministic_and_names_itself():
    mask = np.zeros((33, 47), dtype=bool)
    mask[5:20, 9:40] = True
    assert MaskCodec().encode(mask) == MaskCodec().encode(mask)
    assert (MaskCodec.id, MaskCodec.version) == ("zlib-bitmap", "1")
    assert MaskCodec(4).low_res_shape(33, 47) == (9, 12)


def payload(bits: np.ndarray) -> bytes:
    return zlib.compress(np.packbits(bits).tobytes())


@pytest.mark.parametrize("data", [
    b"",
    b"not zlib at all",
    zlib.compress(bytes(14))[:-3],  # truncated stream
    zlib.compress(bytes(14)) + b"x",  # trailing bytes
    zlib.compress(bytes(13)),  # one byte short: 9×12 cells need 14 bytes
    zlib.compress(bytes(15)),  # one byte long
    zlib.compress(bytes(10**7)),  # a decompression bomb
    payload(np.r_[np.zeros(108, bool), np.ones(4, bool)]),  # padding bits set
])
def test_corrupt_payloads_raise_value_error(data):
    with pytest.raises(ValueError):
        MaskCodec(4).decode(data, 33, 47)


def test_hand_built_payload_of_the_right_length_decodes():
    # The reference the corrupt payloads above are built from: 14 zero bytes are an empty 33×47 mask.
    assert not MaskCodec(4).decode(zlib.compress(bytes(14)), 33, 47).any()


def test_payload_for_another_size_is_rejected():
    data = MaskCodec(4).encode(np.ones((64, 64), dtype=bool))
    with pytest.raises(ValueError):
        MaskCodec(4).decode(data, 128, 64)


@pytest.mark.parametrize("mask", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 1), bool), [[True]]])
def test_bad_masks_are_rejected(mask):
    with pytest.raises(ValueError):
        MaskCodec().encode(mask)


@pytest.mark.parametrize("factor", [0, -2, 2.0])
def test_bad_factors_are_rejected(factor):
    with pytest.raises(ValueError):
        MaskCodec(factor)


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError):
        MaskCodec().decode(MaskCodec().encode(np.ones((4, 4), bool)), 0, 4)
