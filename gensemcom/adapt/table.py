"""The SNR → bandwidth-ratio table: which key-region rate reaches a target quality at a given SNR.

The memory-module paper chooses the number of symbols from the channel state
with a table derived beforehand. Ours comes from the key codec's *measured*
quality curves: mean key-region PSNR (or LPIPS) over calibration images for
every (bandwidth ratio, SNR) of a grid, per channel family (AWGN, block
Rayleigh), written by ``semcom adapt table --measure`` (:mod:`.measure`).

Two physical facts make the lookup well defined, so the table enforces them
on the measured means rather than trusting noisy numbers:

- quality never falls as the SNR rises (a receiver could add noise itself),
- quality never falls as the ratio rises (a coder could leave symbols unused).

Means are made monotone in both directions (running max for PSNR, running
min for LPIPS), then interpolated linearly in SNR. Below the grid the first
segment's slope is extended (so a very low SNR predicts less, never more);
above it the curve stays flat (DeepJSCC's conditioning stops at 20 dB).
The chosen ratio is the smallest that meets the target; when none does, the
largest (the safest the codec has), flagged as not met.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

METRICS = {"psnr": True, "lpips": False}  # metric -> higher is better
CHANNELS = ("awgn", "rayleigh")
TABLES_DIR = Path(__file__).parent / "tables"


@dataclass(frozen=True)
class Choice:
    """A table lookup: the ratio, its predicted quality, and whether that meets the target."""

    ratio: float
    predicted: float
    met: bool


class RateTable:
    """Predicted key-region quality of one codec on one channel family, and the ratio for a target."""

    def __init__(self, data: dict, metric: str = "psnr", channel: str = "awgn") -> None:
        if metric not in METRICS:
            raise ValueError(f"unknown quality metric {metric!r}; choose one of {', '.join(METRICS)}")
        curves = data.get("channels", {})
        if channel not in curves or metric not in curves[channel]:
            raise ValueError(f"table {data.get('codec', '?')!r} has no {metric} curves for channel {channel!r}; "
                             f"it has {', '.join(sorted(curves)) or 'none'}")
        self.codec = str(data["codec"])
        self.metric, self.channel = metric, channel
        self.higher_is_better = METRICS[metric]
        self.snr_db = np.asarray(data["snr_db"], np.float64)
        self.ratios = np.asarray(data["ratios"], np.float64)
        measured = np.asarray(curves[channel][metric], np.float64)
        if measured.shape != (self.ratios.size, self.snr_db.size) or self.snr_db.size < 2:
            raise ValueError(f"{metric} curves have shape {measured.shape}; expected (ratios, SNRs) = "
                             f"({self.ratios.size}, {self.snr_db.size}) with at least two SNRs")
        if np.any(np.diff(self.snr_db) <= 0) or np.any(np.diff(self.ratios) <= 0):
            raise ValueError("table SNRs and ratios must be strictly increasing")
        self.measured = measured
        self.values = self._monotone(measured)
        self.source = str(data.get("source", ""))

    def _monotone(self, values: np.ndarray) -> np.ndarray:
        """Non-decreasing quality in SNR (axis 1) and in ratio (axis 0): running max (min for LPIPS)."""
        better = np.maximum if self.higher_is_better else np.minimum
        return better.accumulate(better.accumulate(values, axis=1), axis=0)

    @classmethod
    def load(cls, path: Path, metric: str = "psnr", channel: str = "awgn") -> "RateTable":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"rate table {path} does not exist; make one with `semcom adapt table --measure`")
        return cls(json.loads(path.read_text()), metric, channel)

    @classmethod
    def shipped(cls, codec: str, metric: str = "psnr", channel: str = "awgn") -> "RateTable":
        """The table measured for a shipped key codec (gensemcom/adapt/tables/<codec>.json)."""
        path = TABLES_DIR / f"{codec}.json"
        if not path.is_file():
            have = ", ".join(sorted(p.stem for p in TABLES_DIR.glob("*.json"))) or "none"
            raise ValueError(f"no rate table ships for key codec {codec!r} (tables: {have}); "
                             "adaptive rate needs one (`semcom adapt table --measure`)")
        return cls.load(path, metric, channel)

    def predict(self, ratio: float, snr_db: float) -> float:
        """Mean quality the table expects at ``ratio`` (one of its ratios) and ``snr_db``."""
        matches = np.flatnonzero(np.isclose(self.ratios, ratio, rtol=1e-6))
        if matches.size == 0:
            raise ValueError(f"ratio {ratio:.4g} is not in the table ({', '.join(f'{r:.4g}' for r in self.ratios)})")
        if not np.isfinite(snr_db):
            raise ValueError(f"SNR must be finite, got {snr_db}")
        curve = self.values[matches[0]]
        if snr_db < self.snr_db[0]:
            slope = (curve[1] - curve[0]) / (self.snr_db[1] - self.snr_db[0])
            return float(curve[0] - slope * (self.snr_db[0] - snr_db))
        return float(np.interp(snr_db, self.snr_db, curve))

    def meets(self, value: float, target: float) -> bool:
        return value >= target if self.higher_is_better else value <= target

    def choose(self, snr_db: float, target: float) -> Choice:
        """The smallest ratio whose predicted quality at ``snr_db`` meets ``target``, else the largest."""
        for ratio in self.ratios:
            predicted = self.predict(float(ratio), snr_db)
            if self.meets(predicted, target):
                return Choice(float(ratio), predicted, True)
        ratio = float(self.ratios[-1])
        return Choice(ratio, self.predict(ratio, snr_db), False)
