"""The key codec's block grid: 16×16-pixel blocks, one DeepJSCC latent position each.

One place for the mapping between pixel masks and block grids, so that the transmitter's
allocation, the importance ranking, the codec and the model agree on which blocks are sent.
Plain numpy: the transmitter's planning code does not need torch.
"""

import numpy as np

BLOCK = 16  # pixels per side of a block (the DeepJSCC model's stride)


def blocks_of(mask: np.ndarray) -> np.ndarray:
    """(rows, cols) bool: the blocks of a (H, W) pixel mask that hold at least one True pixel."""
    mask = np.asarray(mask, bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be a 2-D (H, W) pixel mask, got shape {mask.shape}")
    height, width = mask.shape
    padded = np.pad(mask, ((0, -height % BLOCK), (0, -width % BLOCK)))
    return padded.reshape(padded.shape[0] // BLOCK, BLOCK, -1, BLOCK).any(axis=(1, 3))


def block_pixels(blocks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The (H, W) pixels of the blocks marked in ``blocks``: the inverse of :func:`blocks_of` up to coverage."""
    return np.kron(np.asarray(blocks, bool), np.ones((BLOCK, BLOCK), bool)).astype(bool)[: size[0], : size[1]]


def block_means(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of ``values`` over the True pixels of ``mask`` in each block (0 where none)."""
    height, width = mask.shape
    pad = ((0, -height % BLOCK), (0, -width % BLOCK))
    weights = np.pad(mask.astype(np.float64), pad)
    sums = np.pad(values * mask, pad).reshape(weights.shape[0] // BLOCK, BLOCK, -1, BLOCK).sum(axis=(1, 3))
    counts = weights.reshape(weights.shape[0] // BLOCK, BLOCK, -1, BLOCK).sum(axis=(1, 3))
    return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
