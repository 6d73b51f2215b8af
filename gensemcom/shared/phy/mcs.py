"""Modulation and coding schemes, and the choice of one from the SNR.

The table is a ladder of 5G NR entries: the QPSK to 256-QAM code rates
(R x 1024) are rows of TS 38.214 Table 5.1.3.1-1 and -2, the BPSK rows come
from Table 6.1.4.1-1 (pi/2-BPSK there, plain BPSK here). Rates below 1/5
are left out: Sionna's LDPC rate matching does not repeat bits.

``snr_threshold_db`` is the Es/N0 at which the block error rate is 10 % on
AWGN for a 1024-bit payload, 20 BP iterations. It was measured by
simulation of this package's own link, 300 blocks per 0.25 dB step
(``python -m gensemcom.channel.curves --thresholds --frames 300``, seed 0,
see docs/phy.md); it sits 1.2 to 2.6 dB above the Shannon limit. Shorter
payloads need a little more SNR, longer ones a little less, and a fading
channel far more (add a margin).
"""

from dataclasses import dataclass

import numpy as np


#: Bits per symbol of each modulation the link speaks (Gray-mapped QAM, :mod:`.qam`).
MODULATIONS: dict[str, int] = {"bpsk": 1, "qpsk": 2, "16qam": 4, "64qam": 6, "256qam": 8}


def bits_per_symbol(modulation: str) -> int:
    """Bits carried by one symbol of ``modulation`` (a key of :data:`MODULATIONS`)."""
    if modulation not in MODULATIONS:
        raise ValueError(f"unknown modulation {modulation!r}; choose one of {', '.join(MODULATIONS)}")
    return MODULATIONS[modulation]


@dataclass(frozen=True)
class Mcs:
    index: int
    modulation: str
    rate_x1024: float  # code rate x 1024, as 38.214 tabulates it
    snr_threshold_db: float  # Es/N0 for BLER = 10 % on AWGN (1024-bit payload)

    @property
    def code_rate(self) -> float:
        return self.rate_x1024 / 1024

    @property
    def bits_per_symbol(self) -> int:
        return bits_per_symbol(self.modulation)

    @property
    def spectral_efficiency(self) -> float:
        """Information bits per symbol."""
        return self.code_rate * self.bits_per_symbol


MCS_TABLE: tuple[Mcs, ...] = (
    Mcs(0, "bpsk", 240, -5.93),
    Mcs(1, "bpsk", 314, -4.56),
    Mcs(2, "qpsk", 251, -2.68),
    Mcs(3, "qpsk", 379, -0.47),
    Mcs(4, "qpsk", 526, 1.40),
    Mcs(5, "qpsk", 679, 3.29),
    Mcs(6, "16qam", 434, 5.11),
    Mcs(7, "16qam", 553, 7.13),
    Mcs(8, "16qam", 658, 8.76),
    Mcs(9, "64qam", 517, 10.83),
    Mcs(10, "64qam", 616, 12.68),
    Mcs(11, "64qam", 719, 14.67),
    Mcs(12, "64qam", 822, 16.59),
    Mcs(13, "256qam", 711, 19.20),
    Mcs(14, "256qam", 797, 21.14),
    Mcs(15, "256qam", 885, 23.36),
)


def mcs_from_index(index: int) -> Mcs:
    """The table entry ``index`` (what a frame header carries)."""
    if int(index) != index or not 0 <= index < len(MCS_TABLE):
        raise ValueError(f"MCS index must be an integer in [0, {len(MCS_TABLE) - 1}], got {index}")
    return MCS_TABLE[int(index)]


def choose_mcs(snr_db: float, margin_db: float = 1.0) -> Mcs:
    """The most efficient MCS whose threshold plus ``margin_db`` is at most ``snr_db``.

    The margin covers SNR estimation error, fading and a payload shorter than
    the threshold's. Below every threshold the most robust entry (index 0)
    is returned rather than nothing: the frame is still sent and its CRC
    tells the receiver whether it arrived.
    """
    if not np.isfinite(snr_db):
        raise ValueError(f"SNR must be finite, got {snr_db}")
    if not np.isfinite(margin_db) or margin_db < 0:
        raise ValueError(f"margin must be finite and >= 0 dB, got {margin_db}")
    usable = [m for m in MCS_TABLE if m.snr_threshold_db + margin_db <= snr_db]
    return usable[-1] if usable else MCS_TABLE[0]
