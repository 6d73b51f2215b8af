"""The digital link: payload bytes <-> complex symbols at a chosen MCS.

Transmit chain: payload -> CRC24A, segmentation, 5G LDPC (:mod:`.transport`)
-> scrambling -> Gray QAM (:mod:`.qam`). The receive chain inverts it from
equalised symbols and their per-symbol noise variance: exact LLRs,
descrambling, BP decoding, CRC check.

Scrambling is the Gold sequence of TS 38.211 §5.2.1 added to the coded bits,
as 5G does before modulation. It makes the symbols look random whatever the
payload, so an all-zero mask still has unit average power and no spectral
line, which the pilot-based channel and SNR estimates assume.

The receiver needs ``n_payload_bits`` and the MCS from the error-free frame
header; with them it re-derives the whole :class:`.transport.TransportPlan`.
"""

import functools

import numpy as np
from sionna.phy.nr.utils import generate_prng_seq

from gensemcom.shared.modem import as_noise_variance, as_symbol_array, bits_to_bytes, bytes_to_bits
from gensemcom.shared.phy.ldpc import DEFAULT_BP_ITERATIONS
from gensemcom.shared.phy.mcs import Mcs
from gensemcom.shared.phy.qam import QamDemapper, QamMapper
from gensemcom.shared.phy.transport import TransportPlan, decode_transport, encode_transport, plan_transport

# 38.211 §6.3.1.1: c_init = n_RNTI·2^15 + n_ID for PUSCH; one link, so RNTI 1, cell 1.
_SCRAMBLING_INIT = (1 << 15) + 1


def _scrambling_sequence(n_bits: int) -> np.ndarray:
    """The first ``n_bits`` of the Gold sequence (uint8).

    Sionna generates it bit by bit (~0.5 s per 10⁶ bits), and a shorter sequence is a prefix
    of a longer one, so one sequence of the next power of two is generated and sliced.
    """
    return _gold_prefix(1 << max(10, (n_bits - 1).bit_length()))[:n_bits]


@functools.lru_cache(maxsize=8)
def _gold_prefix(n_bits: int) -> np.ndarray:
    sequence = generate_prng_seq(n_bits, _SCRAMBLING_INIT).astype(np.uint8)
    sequence.setflags(write=False)
    return sequence


def link_plan(n_payload_bits: int, mcs: Mcs) -> TransportPlan:
    """How ``n_payload_bits`` are coded at ``mcs``: code blocks, coded bits, symbols."""
    return plan_transport(n_payload_bits, mcs.code_rate, mcs.bits_per_symbol)


def symbols_for_payload(n_payload_bits: int, mcs: Mcs) -> int:
    """Symbols that ``n_payload_bits`` occupy at ``mcs``."""
    return link_plan(n_payload_bits, mcs).n_symbols


def encode_bits(bits: np.ndarray, mcs: Mcs) -> np.ndarray:
    """[..., n_payload_bits] bits -> [..., n_symbols] complex64 symbols; leading axes are independent blocks."""
    bits = np.asarray(bits)
    if bits.ndim < 1:
        raise ValueError("bits must have at least one dimension")
    plan = link_plan(bits.shape[-1], mcs)
    coded = encode_transport(bits, plan) ^ _scrambling_sequence(plan.n_coded_bits)
    symbols = QamMapper(mcs.modulation)(coded.reshape(-1))
    return symbols.reshape(*bits.shape[:-1], plan.n_symbols)


def decode_bits(
    symbols: np.ndarray,
    no: float | np.ndarray,
    n_payload_bits: int,
    mcs: Mcs,
    num_iter: int = DEFAULT_BP_ITERATIONS,
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`encode_bits`: (bits [..., n_payload_bits], crc_ok [...]).

    ``no`` is a scalar or has the shape of ``symbols`` (per-symbol effective
    noise variance after equalisation).
    """
    plan = link_plan(n_payload_bits, mcs)
    symbols = np.asarray(symbols)
    if symbols.ndim < 1 or symbols.shape[-1] != plan.n_symbols:
        raise ValueError(
            f"got {symbols.shape[-1] if symbols.ndim else 0} symbols per block, but {n_payload_bits} "
            f"payload bits at MCS {mcs.index} need {plan.n_symbols}"
        )
    flat = as_symbol_array(symbols.reshape(-1))
    no = np.asarray(no, dtype=np.float64)
    if no.ndim and no.shape != symbols.shape:
        raise ValueError(f"per-symbol noise variance has shape {no.shape}, expected {symbols.shape}")
    llr = QamDemapper(mcs.modulation)(flat, as_noise_variance(no.reshape(-1) if no.ndim else float(no), flat.size))
    llr = llr.reshape(*symbols.shape[:-1], plan.n_coded_bits)
    llr *= 1 - 2 * _scrambling_sequence(plan.n_coded_bits).astype(np.float32)  # a scrambled 1 flips the sign
    return decode_transport(llr, plan, num_iter)


def encode_payload(payload: bytes, mcs: Mcs) -> tuple[np.ndarray, int, TransportPlan]:
    """Code and modulate ``payload``: (symbols, n_payload_bits, plan).

    The receiver needs ``n_payload_bits`` (from the header) to re-derive the
    plan; the plan itself is returned for reporting (code blocks, rate).
    """
    bits = bytes_to_bits(payload)
    return encode_bits(bits, mcs), bits.size, link_plan(bits.size, mcs)


def decode_payload(
    symbols: np.ndarray,
    no: float | np.ndarray,
    n_payload_bits: int,
    mcs: Mcs,
    num_iter: int = DEFAULT_BP_ITERATIONS,
) -> tuple[bytes, bool]:
    """Demap, decode and CRC-check: (payload, crc_ok). A failed CRC still returns the best guess."""
    if int(n_payload_bits) != n_payload_bits or n_payload_bits < 0 or n_payload_bits % 8:
        raise ValueError(f"n_payload_bits must be a non-negative multiple of 8, got {n_payload_bits}")
    symbols = as_symbol_array(symbols)
    bits, ok = decode_bits(symbols, no, int(n_payload_bits), mcs, num_iter)
    return bits_to_bytes(bits), bool(ok)


class DigitalEncoder:
    """``encode_payload`` bound to one MCS, as a block: ``DigitalEncoder(mcs)(payload)``."""

    def __init__(self, mcs: Mcs) -> None:
        self.mcs = mcs

    def __call__(self, payload: bytes) -> tuple[np.ndarray, int, TransportPlan]:
        return encode_payload(payload, self.mcs)


class DigitalDecoder:
    """``decode_payload`` bound to one MCS and BP iteration count."""

    def __init__(self, mcs: Mcs, num_iter: int = DEFAULT_BP_ITERATIONS) -> None:
        self.mcs = mcs
        self.num_iter = num_iter

    def __call__(self, symbols: np.ndarray, no: float | np.ndarray, n_payload_bits: int) -> tuple[bytes, bool]:
        return decode_payload(symbols, no, n_payload_bits, self.mcs, self.num_iter)
