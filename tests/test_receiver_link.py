"""The receiver's link stage on whole frames: pilot bursts, per-block/Doppler estimates, perfect CSI.

Frames come from the real transmitter, pass the real channel models, and the
receiver must decode the digital segments (CRC) where the channel changes
within the frame, provided its prior and the pilot pattern can follow the
change. The truth it is measured against is the channel's own per-symbol
gain (ChannelState), not anything the receiver computes.
"""

import numpy as np
import pytest

from gensemcom.channel.link import ChannelParams, apply_channel
from gensemcom.receiver.estimate import ChannelPrior
from gensemcom.receiver.inpaint import ClassicalInpainter
from gensemcom.receiver.pipeline import Receiver
from gensemcom.services import build_transmitter
from gensemcom.shared.config import TransmitterSettings
from gensemcom.shared.frame import ChannelTruth, Frame, SegmentKind
from gensemcom.shared.image_io import decode_image
from gensemcom.shared.keycodecs import LinearKey
from gensemcom.shared.maskcodec import MaskCodec
from gensemcom.shared.rpc import FailedPrecondition
from gensemcom.transmitter.describe import StructuredDescriptor


@pytest.fixture(scope="module")
def frame(astronaut_png: bytes) -> Frame:
    """A 256×256 photo with dense pilots: a burst of 2 every 32 symbols (6 % overhead)."""
    settings = TransmitterSettings(key_codec="linear-dct", segmenter="saliency", pilot_spacing=32, pilot_length=2)
    return build_transmitter(settings).encode(decode_image(astronaut_png), "link-test")


def receiver(**kwargs) -> Receiver:
    return Receiver([LinearKey()], MaskCodec(), ClassicalInpainter(StructuredDescriptor()), **kwargs)


def through(frame: Frame, attach_truth: bool = False, **channel) -> tuple[Frame, np.ndarray]:
    """The frame after the channel, and the true gain of every symbol."""
    y, report = apply_channel(frame.iq(), ChannelParams(seed=3, **channel), frame.header.frame_id)
    gains = report.state.per_symbol(y.size)
    out = frame.with_iq(y)
    if attach_truth:
        out.truth = ChannelTruth(gains, report.state.no)
    return out, gains


def digital_ok(rx: Receiver, frame: Frame) -> bool:
    outcomes = rx.decode(frame).outcomes
    return all(o.crc_ok for o in outcomes if o.kind in (SegmentKind.MASK, SegmentKind.PROMPT))


def test_pilot_bursts_are_spread_through_every_segment(frame: Frame) -> None:
    h = frame.header
    assert (h.pilot_spacing, h.pilot_length) == (32, 2)
    assert frame.segments[0].kind == SegmentKind.PILOT
    stream = frame.iq()
    positions = np.arange(64, stream.size)
    bursts = positions[(positions - 64) % 32 < 2]
    assert np.allclose(np.abs(stream[bursts]), 1.0), "burst positions carry unit-modulus pilots"


def test_doppler_is_tracked_with_a_doppler_prior_and_lost_without(frame: Frame) -> None:
    received, _ = through(frame, model="rayleigh", snr_db=15.0, doppler=0.005)
    assert digital_ok(receiver(prior=ChannelPrior(doppler=0.005)), received)
    assert not digital_ok(receiver(), received), "one gain per frame cannot follow a Doppler-faded frame"


def test_estimated_gain_error_matches_what_the_estimator_reports(frame: Frame) -> None:
    received, gains = through(frame, model="rayleigh", snr_db=15.0, doppler=0.005)
    link = receiver(prior=ChannelPrior(doppler=0.005)).decode(received).link
    empirical = float(np.mean(np.abs(link.estimate.gain - gains) ** 2))
    reported = float(np.mean(link.estimate.error))
    assert 0.5 * reported < empirical < 2.0 * reported, (empirical, reported)
    after_preamble = np.arange(received.n_symbols - 64)
    assert link.n_pilots == 64 + np.count_nonzero(after_preamble % 32 < 2)


def test_block_fading_is_estimated_per_block(frame: Frame) -> None:
    received, gains = through(frame, model="rayleigh", snr_db=20.0, coherence_symbols=512)
    per_block = receiver(prior=ChannelPrior(coherence=512)).decode(received)
    assert all(o.crc_ok for o in per_block.outcomes)
    assert np.mean(np.abs(per_block.link.estimate.gain - gains) ** 2) < 0.01
    assert not digital_ok(receiver(), received)


def test_perfect_csi_uses_the_channel_truth_and_needs_it(frame: Frame) -> None:
    received, gains = through(frame, attach_truth=True, model="rayleigh", snr_db=15.0, doppler=0.005)
    rec = receiver(estimator="perfect").decode(received)
    np.testing.assert_array_equal(rec.link.estimate.gain, gains)
    assert rec.link.estimate.method == "perfect" and all(o.crc_ok for o in rec.outcomes)
    received.truth = None
    with pytest.raises(FailedPrecondition, match="attach_truth"):
        receiver(estimator="perfect").decode(received)


def test_snr_estimate_tracks_the_channel_snr_on_awgn(frame: Frame) -> None:
    for snr_db in (5.0, 20.0):
        received, _ = through(frame, model="awgn", snr_db=snr_db)
        assert receiver().decode(received).link.estimate.snr_db == pytest.approx(snr_db, abs=0.5)


def test_bad_receiver_options_are_refused() -> None:
    with pytest.raises(ValueError, match="estimator"):
        receiver(estimator="genie")
    with pytest.raises(ValueError, match="equaliser"):
        receiver(equaliser="ml")
