"""Gray-mapped QAM from BPSK to 256-QAM, with exact (APP) soft demapping.

Sionna's ``Constellation``, ``Mapper`` and ``Demapper`` do the work: the
constellations are those of 3GPP TS 38.211 §5.1 (Gray labels, unit average
power; the first bit of a label picks the sign of the real part). This module
only fixes the project's conventions at the boundary:

- numpy in, numpy out (``complex64`` symbols, ``float32`` LLRs, ``uint8`` bits);
- LLR = log P(b=0 | y) / P(b=1 | y). Sionna returns logits, log P(b=1)/P(b=0),
  so the sign is flipped here;
- BPSK is the real pair ±1 (Sionna's 1-bit PAM), so only the real part of
  the received symbol carries information.

QPSK here is the same constellation and labelling as
:class:`gensemcom.shared.modem.QPSKMapper`.
"""

import functools

import numpy as np
import torch
from sionna.phy.mapping import Constellation, Demapper, Mapper

from gensemcom.shared.modem import as_bits, as_noise_variance, as_symbol_array
from gensemcom.shared.phy.device import compute_device
from gensemcom.shared.phy.mcs import bits_per_symbol

# The APP demapper holds one distance per (symbol, constellation point); cap that
# table at 4 Mi entries (about 50 MB with its temporaries) by demapping in chunks.
_DEMAP_CHUNK_ENTRIES = 1 << 22


@functools.cache
def _constellation(modulation: str) -> Constellation:
    n_bits = bits_per_symbol(modulation)
    kind = "pam" if n_bits == 1 else "qam"
    return Constellation(kind, n_bits, device=str(compute_device()))


def constellation_points(modulation: str) -> np.ndarray:
    """The 2**m points of ``modulation``; point ``i`` carries the m-bit label ``i`` (MSB first)."""
    return _constellation(modulation)().cpu().numpy().astype(np.complex64)


class QamMapper:
    """Bits -> Gray-mapped symbols of unit average power.

    A bit count that is not a multiple of the bits per symbol is padded with
    0 bits; the receiver drops the extra LLRs because it knows the true count.
    """

    def __init__(self, modulation: str) -> None:
        self.modulation = modulation
        self.bits_per_symbol = bits_per_symbol(modulation)
        self._mapper = Mapper(constellation=_constellation(modulation), device=str(compute_device()))

    def __call__(self, bits: np.ndarray) -> np.ndarray:
        bits = as_bits(bits)
        pad = -bits.size % self.bits_per_symbol
        if pad:
            bits = np.concatenate([bits, np.zeros(pad, np.uint8)])
        if bits.size == 0:
            return np.zeros(0, np.complex64)
        symbols = self._mapper(torch.from_numpy(bits).to(compute_device()))
        return symbols.cpu().numpy().astype(np.complex64, copy=False)


class QamDemapper:
    """Exact bit LLRs of received symbols, given the noise variance of each.

    ``no`` is the complex noise variance, a scalar or one value per symbol
    (after equalising a fading channel each symbol has its own). The output
    holds ``bits_per_symbol`` LLRs per symbol, in the mapper's bit order.
    ``method="maxlog"`` trades exactness for speed at high order.
    """

    def __init__(self, modulation: str, method: str = "app") -> None:
        if method not in ("app", "maxlog"):
            raise ValueError(f"demapping method must be 'app' or 'maxlog', got {method!r}")
        self.modulation = modulation
        self.bits_per_symbol = bits_per_symbol(modulation)
        self._demapper = Demapper(method, constellation=_constellation(modulation), device=str(compute_device()))
        self._chunk = max(1, _DEMAP_CHUNK_ENTRIES >> self.bits_per_symbol)

    def __call__(self, y: np.ndarray, no: float | np.ndarray) -> np.ndarray:
        y = as_symbol_array(y)
        no = as_noise_variance(no, y.size)
        per_symbol = np.ndim(no) == 1
        device = compute_device()
        llr = np.empty(y.size * self.bits_per_symbol, np.float32)
        for start in range(0, y.size, self._chunk):
            stop = min(start + self._chunk, y.size)
            y_t = torch.from_numpy(y[start:stop]).to(device)
            no_t = torch.as_tensor(no[start:stop] if per_symbol else no, dtype=torch.float32, device=device)
            logits = self._demapper(y_t, no_t)  # Sionna: log P(b=1)/P(b=0)
            llr[start * self.bits_per_symbol : stop * self.bits_per_symbol] = -logits.cpu().numpy()
        return llr
