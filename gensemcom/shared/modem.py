"""Digital modem for the short payloads of a frame: prompt, mask and side data.

The chain is CRC32 -> bits -> repetition code -> Gray QPSK, and back through
soft demapping (exact LLRs), soft combining of the repeats, hard decision and
the CRC check. It is the first honest physical layer: simple enough to verify
against closed-form bit error rates, and shaped like Sionna blocks (small
callables) so that LDPC and QAM can replace the pieces later.

Conventions shared by every signal-processing module of the project:

- symbol arrays are 1-D ``numpy.complex64`` with unit average power;
- ``no`` is the complex noise variance, noise ~ CN(0, no), so each real
  component has variance ``no / 2`` and SNR = Es/N0 = 1/no;
- an LLR is ``log P(b=0 | y) / P(b=1 | y)``: positive means bit 0.
"""

import zlib

import numpy as np

CRC_BYTES = 4
_BITS_PER_SYMBOL = 2
_AMPLITUDE = np.float32(1 / np.sqrt(2))  # per real component: |(±1±j)/√2|² = 1
_PILOT_ROOT = 1  # Zadoff-Chu root; 1 is coprime with every length


def as_symbol_array(x: np.ndarray, name: str = "symbols") -> np.ndarray:
    """Check that ``x`` is a 1-D complex array and return it as complex64.

    Real arrays are refused rather than silently promoted: a real input almost
    always means a caller passed LLRs, bits or pixels where symbols belong.
    """
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {x.shape}")
    if not np.iscomplexobj(x):
        raise ValueError(f"{name} must be complex, got dtype {x.dtype}")
    return x.astype(np.complex64, copy=False)


def as_noise_variance(no: float | np.ndarray, n: int) -> float | np.ndarray:
    """Validate a noise variance: a scalar or one value per symbol, finite and > 0."""
    arr = np.asarray(no, dtype=np.float64)
    if arr.ndim == 0:
        if not np.isfinite(arr) or arr <= 0:
            raise ValueError(f"noise variance must be finite and > 0, got {float(arr)}")
        return float(arr)
    if arr.shape != (n,):
        raise ValueError(f"per-symbol noise variance has shape {arr.shape}, expected ({n},)")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError("per-symbol noise variances must be finite and > 0")
    return arr


# --- CRC and bit packing ---------------------------------------------------


def crc32_append(payload: bytes) -> bytes:
    """Append zlib's CRC32 of ``payload`` as 4 big-endian bytes."""
    return bytes(payload) + zlib.crc32(payload).to_bytes(CRC_BYTES, "big")


def crc32_check(data: bytes) -> tuple[bytes, bool]:
    """Split ``data`` into (payload, crc_ok); the last 4 bytes are the CRC."""
    if len(data) < CRC_BYTES:
        raise ValueError(f"need at least {CRC_BYTES} bytes to hold a CRC32, got {len(data)}")
    payload, tag = bytes(data[:-CRC_BYTES]), bytes(data[-CRC_BYTES:])
    return payload, zlib.crc32(payload).to_bytes(CRC_BYTES, "big") == tag


def bytes_to_bits(data: bytes) -> np.ndarray:
    """Bytes to a uint8 array of 0/1, most significant bit of each byte first."""
    return np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8))


def as_bits(bits: np.ndarray) -> np.ndarray:
    """``bits`` as a 1-D uint8 array of 0/1; ValueError for anything else."""
    bits = np.asarray(bits)
    if bits.ndim != 1:
        raise ValueError(f"bits must be a 1-D array, got shape {bits.shape}")
    if bits.size and (bits.dtype.kind not in "biu" or bits.min() < 0 or bits.max() > 1):
        raise ValueError("bits must be integers 0 or 1")
    return bits.astype(np.uint8, copy=False)


def bits_to_bytes(bits: np.ndarray) -> bytes:
    """Inverse of :func:`bytes_to_bits`; the bit count must be a multiple of 8."""
    bits = as_bits(bits)
    if bits.size % 8:
        raise ValueError(f"bit count {bits.size} is not a multiple of 8")
    return np.packbits(bits).tobytes()


# --- QPSK ------------------------------------------------------------------


class QPSKMapper:
    """Gray-mapped QPSK: bits (b0, b1) -> ((1 - 2 b0) + j (1 - 2 b1)) / √2.

    The real part carries the first bit and the imaginary part the second, so
    neighbouring points differ in one bit (Gray) and each bit sees its own
    real Gaussian noise. An odd bit count is padded with one 0 bit; the
    receiver drops the extra LLR because it knows the true bit count.
    """

    def __call__(self, bits: np.ndarray) -> np.ndarray:
        bits = as_bits(bits)
        if bits.size % _BITS_PER_SYMBOL:
            bits = np.append(bits, np.uint8(0))
        levels = (1 - 2 * bits.astype(np.float32)) * _AMPLITUDE
        return levels.view(np.complex64)  # interleaved (re, im) pairs -> complex


class QPSKDemapper:
    """Exact bit LLRs for Gray QPSK on an AWGN channel.

    Each bit rides on one real component with amplitude ±1/√2 and noise of
    variance no/2, so LLR = 4·(1/√2)·Re(y)/no = 2√2·Re(y)/no (and Im for the
    second bit). ``no`` may be one value per symbol, as after equalising a
    fading channel. Output is float32, two LLRs per symbol in bit order.
    """

    def __call__(self, y: np.ndarray, no: float | np.ndarray) -> np.ndarray:
        y = as_symbol_array(y)
        scale = np.float32(2 * np.sqrt(2)) / np.asarray(as_noise_variance(no, y.size), np.float32)
        llr = np.empty(2 * y.size, dtype=np.float32)
        np.multiply(y.real, scale, out=llr[0::2])
        np.multiply(y.imag, scale, out=llr[1::2])
        return llr


# --- repetition code -------------------------------------------------------


class RepetitionCode:
    """Rate-1/n repetition code with soft combining.

    Encoding is bit-major (b0 b0 b0 b1 b1 b1 ...). Decoding sums the n LLRs of
    each bit, which is the exact LLR when the repeats see independent noise:
    on AWGN it gives the bit error rate of an n-times higher SNR.
    """

    def __init__(self, n: int) -> None:
        if int(n) != n or n < 1:
            raise ValueError(f"repetition factor must be an integer >= 1, got {n}")
        self.n = int(n)

    def encode(self, bits: np.ndarray) -> np.ndarray:
        return np.repeat(as_bits(bits), self.n)

    def decode(self, llr: np.ndarray) -> np.ndarray:
        llr = np.asarray(llr, dtype=np.float32)
        if llr.ndim != 1 or llr.size % self.n:
            raise ValueError(f"LLR count {llr.size} is not a multiple of the repetition factor {self.n}")
        return llr.reshape(-1, self.n).sum(axis=1, dtype=np.float32)


def hard_decision(llr: np.ndarray) -> np.ndarray:
    """Bits from LLRs: negative LLR means 1 (a tie decides 0)."""
    return (np.asarray(llr) < 0).astype(np.uint8)


# --- pilots ----------------------------------------------------------------


def pilot_sequence(n: int) -> np.ndarray:
    """Zadoff-Chu sequence of length ``n`` (root 1): unit modulus, known to both ends.

    x[k] = exp(-jπ·u·k·(k + n mod 2)/n). Its periodic autocorrelation is zero
    at every non-zero shift, so least-squares channel estimates from it have
    the smallest variance, no/n. The phase is reduced modulo 2π in integers
    so that long sequences stay exact in floating point.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"pilot length must be an integer >= 1, got {n}")
    n = int(n)
    k = np.arange(n, dtype=np.int64)
    phase_units = (_PILOT_ROOT * k * (k + n % 2)) % (2 * n)  # phase = -π·units/n
    return np.exp(-1j * np.pi * phase_units / n).astype(np.complex64)


# --- payload helpers used by the pipelines ---------------------------------


def _coded_bits(n_payload_bits: int, repetition: int) -> int:
    if int(n_payload_bits) != n_payload_bits or n_payload_bits < 0 or n_payload_bits % 8:
        raise ValueError(f"n_payload_bits must be a non-negative multiple of 8, got {n_payload_bits}")
    return (int(n_payload_bits) + 8 * CRC_BYTES) * RepetitionCode(repetition).n


def symbols_for_payload(n_payload_bits: int, repetition: int) -> int:
    """QPSK symbols that :func:`encode_payload` emits for ``n_payload_bits`` payload bits.

    ``n_payload_bits`` counts the payload only (8 per byte); the 32 CRC bits
    are added here, then the repetition, then QPSK padding to an even count.
    """
    return -(-_coded_bits(n_payload_bits, repetition) // _BITS_PER_SYMBOL)


def encode_payload(payload: bytes, repetition: int = 3) -> tuple[np.ndarray, int]:
    """CRC32, repetition-code and QPSK-map ``payload``.

    Returns (symbols, n_payload_bits); the receiver needs n_payload_bits
    (from the error-free frame header) to undo the padding and the CRC.
    """
    bits = bytes_to_bits(crc32_append(payload))
    symbols = QPSKMapper()(RepetitionCode(repetition).encode(bits))
    return symbols, 8 * len(payload)


def decode_payload(
    symbols: np.ndarray,
    no: float | np.ndarray,
    n_payload_bits: int,
    repetition: int = 3,
) -> tuple[bytes, bool]:
    """Demap, soft-combine and CRC-check; returns (payload without CRC, crc_ok).

    ``symbols`` are equalised symbols and ``no`` their (per-symbol) effective
    noise variance. A failed CRC still returns the best-guess payload.
    """
    symbols = as_symbol_array(symbols)
    expected = symbols_for_payload(n_payload_bits, repetition)
    if symbols.size != expected:
        raise ValueError(
            f"got {symbols.size} symbols, but {n_payload_bits} payload bits at repetition "
            f"{repetition} need {expected}"
        )
    llr = QPSKDemapper()(symbols, no)[: _coded_bits(n_payload_bits, repetition)]
    bits = hard_decision(RepetitionCode(repetition).decode(llr))
    return crc32_check(bits_to_bytes(bits))
