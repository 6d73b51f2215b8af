"""3GPP cyclic redundancy checks (TS 38.212 §5.1), computed by Sionna.

CRC24A protects a whole transport block and CRC24B each code block of a
segmented one, as in 5G NR: 24 bits make an undetected error after a failed
LDPC decoding (about 2**-24) far rarer than any error the pipelines could
notice otherwise. These CRCs have no initial value, so the all-zero word
passes; the scrambler in :mod:`.link` keeps an all-zero payload from
producing an all-zero signal.
"""

import functools

import numpy as np
import torch
from sionna.phy.fec.crc import CRCDecoder, CRCEncoder

CRC_LENGTH = 24
CRC_NAMES = ("CRC24A", "CRC24B")


@functools.lru_cache(maxsize=128)  # one entry per payload size in use: bounded for a long-lived service
def _codec(name: str, k: int) -> tuple[CRCEncoder, CRCDecoder]:
    """Sionna's CRC blocks for ``k`` information bits (their generator matrix depends on k)."""
    if name not in CRC_NAMES:
        raise ValueError(f"unknown CRC {name!r}; choose one of {', '.join(CRC_NAMES)}")
    encoder = CRCEncoder(name, k=k, device="cpu")
    return encoder, CRCDecoder(encoder, device="cpu")


def _as_bit_rows(bits: np.ndarray) -> np.ndarray:
    bits = np.asarray(bits)
    if bits.ndim < 1:
        raise ValueError("bits must have at least one dimension")
    if bits.size and (bits.dtype.kind not in "biu" or bits.min() < 0 or bits.max() > 1):
        raise ValueError("bits must be integers 0 or 1")
    return bits.astype(np.uint8, copy=False)


def crc_attach(bits: np.ndarray, name: str = "CRC24A") -> np.ndarray:
    """Append the 24-bit CRC ``name`` along the last axis: [..., k] -> [..., k + 24]."""
    bits = _as_bit_rows(bits)
    encoder, _ = _codec(name, bits.shape[-1])
    coded = encoder(torch.from_numpy(bits).to(torch.float32))
    return coded.numpy().astype(np.uint8)


def crc_check(bits: np.ndarray, name: str = "CRC24A") -> tuple[np.ndarray, np.ndarray]:
    """Split [..., k + 24] into (information bits [..., k], crc_ok [...] as bool)."""
    bits = _as_bit_rows(bits)
    if bits.shape[-1] < CRC_LENGTH:
        raise ValueError(f"need at least {CRC_LENGTH} bits to hold a {name}, got {bits.shape[-1]}")
    _, decoder = _codec(name, bits.shape[-1] - CRC_LENGTH)
    info, ok = decoder(torch.from_numpy(bits).to(torch.float32))
    return info.numpy().astype(np.uint8), ok[..., 0].numpy()
