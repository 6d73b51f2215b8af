"""Pilot-based channel estimation and single-tap equalisation.

A frame is laid out as [pilots][data...]. Within one fading block the
receiver sees y = h·x + n, n ~ CN(0, no); it estimates h and no from the
known pilots and equalises the data. Everything here works on one block at a
time; for block fading a caller estimates each block from its own pilots and
passes per-symbol arrays of gains and noise variances to :func:`equalise`.
"""

from dataclasses import dataclass

import numpy as np

from gensemcom.shared.modem import as_symbol_array

EQUALISERS = ("mmse", "zf")


def _pilot_pair(rx_pilots: np.ndarray, tx_pilots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rx = as_symbol_array(rx_pilots, "rx_pilots")
    tx = as_symbol_array(tx_pilots, "tx_pilots")
    if rx.size != tx.size:
        raise ValueError(f"{rx.size} received pilots for {tx.size} transmitted ones")
    if rx.size == 0:
        raise ValueError("need at least one pilot")
    return rx, tx


def estimate_ls(rx_pilots: np.ndarray, tx_pilots: np.ndarray) -> complex:
    """Least-squares gain h = <p, y> / <p, p>; its error variance is no / Σ|p|²."""
    rx, tx = _pilot_pair(rx_pilots, tx_pilots)
    energy = np.vdot(tx, tx).real
    if energy <= 0:
        raise ValueError("transmitted pilots have zero energy")
    return complex(np.vdot(tx, rx) / energy)


def estimate_noise(rx_pilots: np.ndarray, tx_pilots: np.ndarray, h: complex) -> float:
    """Unbiased noise variance from the pilot residuals y - h·p.

    ``h`` must be the least-squares estimate from these same pilots: fitting
    it uses up one complex degree of freedom, so the residual energy is
    divided by n - 1 (dividing by n would underestimate no by a factor
    (n - 1)/n).
    """
    rx, tx = _pilot_pair(rx_pilots, tx_pilots)
    if rx.size < 2:
        raise ValueError("estimating the noise needs at least two pilots")
    residual = rx.astype(np.complex128) - complex(h) * tx.astype(np.complex128)
    return float(np.vdot(residual, residual).real / (rx.size - 1))


def equalise(
    y: np.ndarray,
    h: complex | np.ndarray,
    no: float | np.ndarray,
    method: str = "mmse",
) -> tuple[np.ndarray, np.ndarray]:
    """Undo a flat gain; returns (x_hat, effective noise variance per symbol).

    ``h`` and ``no`` are scalars or one value per symbol. For unit-power x:

    - ``"zf"``:   x̂ = y / h,                    effective noise  no / |h|²
    - ``"mmse"``: x̂ = conj(h)·y / (|h|² + no),  effective noise  no / (|h|² + no)

    The MMSE output is shrunk towards zero (x̂ = β·x + e with
    β = |h|²/(|h|² + no)); its reported noise is the MMSE itself,
    E|x̂ - x|² = 1 - β. That same number is what the QPSK demapper needs:
    the exact LLR for the shrunk symbol is 2√2·β·Re(x̂)/var(e), and
    var(e)/β = no/(|h|² + no). Amplitude-dependent constellations (16-QAM and
    up) must instead be demapped from the unbiased ZF form. Analog symbols
    use x̂ directly: the MMSE output is the best linear estimate of x.
    """
    if method not in EQUALISERS:
        raise ValueError(f"unknown equaliser {method!r}; choose one of {', '.join(EQUALISERS)}")
    y = as_symbol_array(y, "y")
    h_arr = np.asarray(h, dtype=np.complex128)
    no_arr = np.asarray(no, dtype=np.float64)
    for name, arr in (("h", h_arr), ("no", no_arr)):
        if arr.ndim != 0 and arr.shape != y.shape:
            raise ValueError(f"{name} must be a scalar or have one value per symbol ({y.size})")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite")
    if np.any(no_arr < 0):
        raise ValueError("noise variance must be >= 0")
    gain_power = np.abs(h_arr) ** 2
    if method == "zf":
        if np.any(gain_power == 0):
            raise ValueError("zero-forcing needs a non-zero channel gain")
        x_hat = y / h_arr
        no_eff = no_arr / gain_power
    else:
        denominator = gain_power + no_arr
        if np.any(denominator == 0):
            raise ValueError("MMSE needs |h|² + no > 0")
        x_hat = np.conj(h_arr) * y / denominator
        no_eff = no_arr / denominator
    no_eff = np.broadcast_to(no_eff, y.shape).astype(np.float32)
    return x_hat.astype(np.complex64), no_eff


NOISE_FLOOR = 1e-12  # relative to |h|²: far below complex64 rounding of unit-power symbols


@dataclass(frozen=True)
class LinkEstimate:
    """What the receiver learnt about one fading block from its pilots.

    ``snr_db`` is 10·log10(|h|²/no): the instantaneous SNR after fading, i.e.
    what this block actually delivered, not the channel's average SNR.
    """

    gain: complex
    no: float
    snr_db: float
    estimator: str
    equaliser: str


def estimate_link(rx_pilots: np.ndarray, tx_pilots: np.ndarray, equaliser: str = "mmse") -> LinkEstimate:
    """LS gain and unbiased noise estimate from one block's pilots (at least two)."""
    if equaliser not in EQUALISERS:
        raise ValueError(f"unknown equaliser {equaliser!r}; choose one of {', '.join(EQUALISERS)}")
    h = estimate_ls(rx_pilots, tx_pilots)
    # Noiseless pilots (a frame sent straight to the receiver) still leave complex64 rounding
    # noise; flooring the estimate there keeps the equaliser and demapper finite.
    no = max(estimate_noise(rx_pilots, tx_pilots, h), NOISE_FLOOR * max(abs(h) ** 2, NOISE_FLOOR))
    snr_db = float(10 * np.log10(np.float64(abs(h) ** 2 + NOISE_FLOOR**2) / np.float64(no)))
    return LinkEstimate(gain=h, no=no, snr_db=snr_db, estimator="ls", equaliser=equaliser)
