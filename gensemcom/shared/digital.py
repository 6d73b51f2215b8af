"""Digital segments (prompt, mask, side data): payload bytes <-> a Segment of symbols, and back.

Two schemes, both ending in a CRC so the receiver knows whether a payload arrived:

- ``"ldpc"`` (default): the 5G NR link of :mod:`gensemcom.shared.phy.link`,
  CRC24A + LDPC + scrambling + QAM at one MCS of the table. The segment carries
  the MCS index; the receiver re-derives the code from it and the payload size.
- ``"repetition"``: CRC32 + repetition code + QPSK (:mod:`gensemcom.shared.modem`).
  Far weaker, but a thousand times cheaper to decode on a CPU; kept as the
  uncoded-style baseline for ablations and for very long payloads on slow hosts.

Both ends call this module, so the frame layout of a digital segment is
defined in one place. Pilots are not inserted here: the frame assembler puts
them into the symbol stream afterwards (:mod:`gensemcom.shared.pilots`).
"""

from dataclasses import dataclass

import numpy as np

from gensemcom.shared import modem
from gensemcom.shared.frame import ChannelCode, Modulation, Segment, SegmentKind
from gensemcom.shared.phy.mcs import MCS_TABLE, Mcs, mcs_from_index

SCHEMES = ("ldpc", "repetition")

_MODULATION = {
    "bpsk": Modulation.BPSK,
    "qpsk": Modulation.QPSK,
    "16qam": Modulation.QAM16,
    "64qam": Modulation.QAM64,
    "256qam": Modulation.QAM256,
}


@dataclass(frozen=True)
class DigitalScheme:
    """How the transmitter codes digital payloads."""

    code: str = "ldpc"
    mcs: int = 2  # LDPC: index into MCS_TABLE (2 = QPSK, rate 0.25: robust down to about -2.7 dB on AWGN)
    repetition: int = 3  # repetition scheme: copies of every bit

    def __post_init__(self) -> None:
        if self.code not in SCHEMES:
            raise ValueError(f"unknown digital scheme {self.code!r}; choose one of {', '.join(SCHEMES)}")
        mcs_from_index(self.mcs)
        if int(self.repetition) != self.repetition or not 1 <= self.repetition <= 15:
            raise ValueError(f"repetition must be an integer in [1, 15], got {self.repetition}")

    @property
    def entry(self) -> Mcs:
        return MCS_TABLE[self.mcs]


def encode_segment(kind: SegmentKind, payload: bytes, scheme: DigitalScheme) -> Segment:
    """The data symbols of one digital segment (no pilots yet)."""
    if scheme.code == "ldpc":
        from gensemcom.shared.phy import link  # Sionna and torch load only when LDPC is used

        symbols, n_bits, plan = link.encode_payload(payload, scheme.entry)
        return Segment(
            kind,
            _MODULATION[scheme.entry.modulation],
            ChannelCode.LDPC,
            symbols,
            code_rate=plan.effective_rate,
            n_payload_bits=n_bits,
            mcs=scheme.mcs,
        )
    symbols, n_bits = modem.encode_payload(payload, repetition=scheme.repetition)
    return Segment(
        kind,
        Modulation.QPSK,
        ChannelCode.REPETITION if scheme.repetition > 1 else ChannelCode.NONE,
        symbols,
        repetition=scheme.repetition,
        code_rate=1.0 / scheme.repetition,
        n_payload_bits=n_bits,
    )


def warm_up(scheme: DigitalScheme) -> None:
    """Code and decode one short payload, so that the first real frame does not pay for loading the LDPC stack.

    Sionna builds its code tables and torch its kernels on first use: several seconds on a CPU.
    """
    segment = encode_segment(SegmentKind.PROMPT, b"warm-up", scheme)
    decode_segment(segment, segment.iq, np.full(segment.n_symbols, 1e-3, np.float32))


def decode_segment(segment: Segment, x_hat: np.ndarray, no_eff: np.ndarray) -> tuple[bytes, bool]:
    """Payload and CRC verdict from the segment's equalised data symbols.

    ``x_hat`` must be unbiased (zero-forcing form, x̂ = x + e) with ``no_eff``
    the per-symbol variance of e: the exact LLRs of QAM above QPSK depend on
    the amplitude, so a shrunk MMSE output would mislead the demapper.
    """
    if segment.code == ChannelCode.LDPC:
        from gensemcom.shared.phy import link

        if segment.mcs is None:
            raise ValueError(f"LDPC-coded {segment.kind.name} segment carries no MCS index")
        return link.decode_payload(x_hat, no_eff, segment.n_payload_bits, mcs_from_index(segment.mcs))
    if segment.code in (ChannelCode.REPETITION, ChannelCode.NONE) and segment.modulation == Modulation.QPSK:
        return modem.decode_payload(x_hat, no_eff, segment.n_payload_bits, repetition=segment.repetition)
    raise ValueError(
        f"{segment.kind.name} segment uses {segment.code.name} with {segment.modulation.name}, "
        "which this receiver cannot decode"
    )
