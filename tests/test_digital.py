"""Digital segments: both schemes round-trip through a faded, noisy link and report their CRC honestly."""

import numpy as np
import pytest

from gensemcom.receiver.equalise import equalise
from gensemcom.shared.digital import DigitalScheme, decode_segment, encode_segment
from gensemcom.shared.frame import ChannelCode, Modulation, SegmentKind
from gensemcom.shared.phy.mcs import MCS_TABLE

PAYLOAD = "a person in a red coat, left third; sky above, grass below".encode()
GAIN = 0.6 * np.exp(0.7j)


def through_link(iq: np.ndarray, snr_db: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """y = g·x + n at the given Es/N0, then zero-forcing with the true gain (this is about coding, not estimation)."""
    no = 10 ** (-snr_db / 10)
    noise = np.sqrt(no / 2) * (rng.standard_normal(iq.size) + 1j * rng.standard_normal(iq.size))
    return equalise((GAIN * iq + noise).astype(np.complex64), GAIN, no, method="zf")


@pytest.mark.parametrize("mcs", [0, 2, 6, 9, 13])
def test_ldpc_segment_round_trips_above_its_threshold(mcs: int) -> None:
    entry = MCS_TABLE[mcs]
    segment = encode_segment(SegmentKind.PROMPT, PAYLOAD, DigitalScheme("ldpc", mcs=mcs))
    assert segment.code == ChannelCode.LDPC and segment.mcs == mcs
    assert segment.modulation.name.lower().replace("qam", "") in entry.modulation.replace("qam", "")
    assert segment.code_rate <= entry.code_rate + 1e-9
    assert np.mean(np.abs(segment.iq) ** 2) == pytest.approx(1.0, rel=0.1)
    # |g|² = 0.36 costs 4.4 dB; 4 dB above the AWGN threshold on top of that decodes with near certainty.
    snr_db = entry.snr_threshold_db + 4.4 + 4.0
    payload, ok = decode_segment(segment, *through_link(segment.iq, snr_db, np.random.default_rng(mcs)))
    assert ok and payload == PAYLOAD


def test_ldpc_segment_far_below_threshold_fails_its_crc() -> None:
    segment = encode_segment(SegmentKind.MASK, PAYLOAD, DigitalScheme("ldpc", mcs=9))
    _, ok = decode_segment(segment, *through_link(segment.iq, 0.0, np.random.default_rng(1)))
    assert not ok


def test_repetition_segment_round_trips() -> None:
    segment = encode_segment(SegmentKind.PROMPT, PAYLOAD, DigitalScheme("repetition", repetition=5))
    assert (segment.code, segment.modulation, segment.repetition) == (ChannelCode.REPETITION, Modulation.QPSK, 5)
    assert segment.mcs is None
    payload, ok = decode_segment(segment, *through_link(segment.iq, 10.0, np.random.default_rng(2)))
    assert ok and payload == PAYLOAD


def test_ldpc_decodes_where_repetition_of_similar_rate_fails() -> None:
    """MCS 2 (QPSK, R≈1/4) needs about -2.7 dB on AWGN; repetition-3 QPSK (R=1/3) gains only 4.8 dB over uncoded."""
    ldpc = encode_segment(SegmentKind.PROMPT, PAYLOAD * 10, DigitalScheme("ldpc", mcs=2))
    repetition = encode_segment(SegmentKind.PROMPT, PAYLOAD * 10, DigitalScheme("repetition", repetition=3))
    rng = np.random.default_rng(3)
    snr_db = 1.0 + 4.4  # 1 dB after the fade: LDPC decodes, repetition-3 mostly does not
    ldpc_ok = sum(decode_segment(ldpc, *through_link(ldpc.iq, snr_db, rng))[1] for _ in range(5))
    rep_ok = sum(decode_segment(repetition, *through_link(repetition.iq, snr_db, rng))[1] for _ in range(5))
    assert ldpc_ok == 5 and rep_ok < 5


@pytest.mark.parametrize(
    "kwargs, message",
    [({"code": "turbo"}, "unknown digital scheme"), ({"mcs": 16}, "MCS index"), ({"repetition": 0}, "repetition")],
)
def test_bad_schemes_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DigitalScheme(**kwargs)


def test_ldpc_segment_without_mcs_cannot_be_decoded() -> None:
    segment = encode_segment(SegmentKind.PROMPT, PAYLOAD, DigitalScheme("ldpc", mcs=2))
    segment.mcs = None
    with pytest.raises(ValueError, match="no MCS"):
        decode_segment(segment, segment.iq, np.full(segment.n_symbols, 0.01, np.float32))
