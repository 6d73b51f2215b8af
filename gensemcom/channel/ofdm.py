"""OFDM modulation: symbols onto subcarriers, a unitary IFFT and a cyclic prefix, and back.

Symbols fill the N subcarriers of one OFDM symbol after another (subcarrier
k of OFDM symbol r carries x[r·N + k]); the last OFDM symbol is padded with
zeros. Every subcarrier carries data (no guard band or DC null: this is a
channel emulator, not a standard's resource grid). The transforms are
unitary, so a unit-power symbol stream gives unit-power time samples, and
noise of variance ``no`` per time sample is noise of variance ``no`` per
subcarrier: the SNR convention (Es/N0 per data symbol) carries over. The
cyclic prefix is overhead on top: its energy is not counted in Es.

With a cyclic prefix at least as long as the channel's largest tap delay,
the linear convolution of the channel becomes circular on each OFDM symbol,
and subcarrier k sees the flat gain H[k] = Σ_l h_l·exp(−j2πkl/N).
"""

import numpy as np

from gensemcom.shared.modem import as_symbol_array

MAX_SUBCARRIERS = 65536


def check_ofdm_shape(n_subcarriers: int, cp_length: int) -> tuple[int, int]:
    """(n_subcarriers, cp_length) as ints, or ValueError if they do not describe an OFDM symbol."""
    if not (_is_whole(n_subcarriers) and 1 <= n_subcarriers <= MAX_SUBCARRIERS):
        raise ValueError(f"number of subcarriers must be an integer in [1, {MAX_SUBCARRIERS}], got {n_subcarriers}")
    if not (_is_whole(cp_length) and 0 <= cp_length <= n_subcarriers):
        raise ValueError(
            f"cyclic prefix must be an integer in [0, {int(n_subcarriers)}] samples, got {cp_length}"
        )
    return int(n_subcarriers), int(cp_length)


def _is_whole(value: float) -> bool:
    return bool(np.isfinite(value)) and int(value) == value


class OFDMModulator:
    """Data symbols → time samples, (N + cp) per OFDM symbol."""

    def __init__(self, n_subcarriers: int, cp_length: int) -> None:
        self.n_subcarriers, self.cp_length = check_ofdm_shape(n_subcarriers, cp_length)

    def n_ofdm_symbols(self, n: int) -> int:
        """OFDM symbols needed to carry ``n`` data symbols."""
        return -(-n // self.n_subcarriers)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = as_symbol_array(x, "x")
        grid = np.zeros((self.n_ofdm_symbols(x.size), self.n_subcarriers), dtype=np.complex64)
        grid.reshape(-1)[: x.size] = x
        time = np.fft.ifft(grid, axis=1, norm="ortho")
        return np.concatenate([time[:, self.n_subcarriers - self.cp_length :], time], axis=1).ravel()


class OFDMDemodulator:
    """Time samples → data symbols: drop each cyclic prefix, unitary FFT, keep the first ``n``."""

    def __init__(self, n_subcarriers: int, cp_length: int) -> None:
        self.n_subcarriers, self.cp_length = check_ofdm_shape(n_subcarriers, cp_length)

    def __call__(self, samples: np.ndarray, n: int) -> np.ndarray:
        samples = as_symbol_array(samples, "samples")
        length = self.n_subcarriers + self.cp_length
        rows = -(-n // self.n_subcarriers)
        if samples.size != rows * length:
            raise ValueError(f"{samples.size} samples are not the {rows} OFDM symbols of {length} that carry {n}")
        useful = samples.reshape(rows, length)[:, self.cp_length :]
        return np.fft.fft(useful, axis=1, norm="ortho").ravel()[:n]
