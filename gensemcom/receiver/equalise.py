"""Single-tap equalisation: undo a known (or estimated) flat gain per symbol.

The receiver sees y = h·x + n, n ~ CN(0, no), one h per symbol (a block
fading channel repeats it; Doppler, CFO or OFDM change it symbol by symbol).
:mod:`gensemcom.receiver.estimate` gives h and no from the pilots; with an
imperfect estimate the caller adds the estimation error to ``no``.
"""

import numpy as np

from gensemcom.shared.modem import as_symbol_array

EQUALISERS = ("mmse", "zf")


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
