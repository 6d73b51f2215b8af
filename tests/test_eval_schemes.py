"""The evaluation's schemes: what each frame carries, what the receiver makes of it, how symbols are counted.

The schemes are the project's transmitter with parts left out (its built-in
profiles); the checks compare each frame with an independent account of what
it must hold (segment kinds, the descriptor of the whole image, symbol sums).
"""

from pathlib import Path

import cv2
import numpy as np
import pytest

from gensemcom.eval.schemes import (
    PROFILE, RATIO_FREE, SCHEMES, Condition, InProcessChain, alpha_target, check_schemes, scheme_settings,
)
from gensemcom.receiver.inpaint import ClassicalInpainter
from gensemcom.services import build_receiver, build_transmitter
from gensemcom.shared.config import ReceiverSettings, TransmitterSettings
from gensemcom.shared.frame import SegmentKind, check_parts
from gensemcom.shared.image_io import decode_image
from gensemcom.transmitter.describe import StructuredDescriptor
from gensemcom.transmitter.segment import Segmentation, make_segmenter

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BASE = TransmitterSettings(key_codec="linear-dct")  # fast; deepjscc-image pins DeepJSCC itself
KINDS = {
    "ours": {SegmentKind.MASK, SegmentKind.PROMPT, SegmentKind.KEY_JSCC},
    "directlygen": {SegmentKind.PROMPT},
    "alledge": {SegmentKind.MASK, SegmentKind.PROMPT},
    "humanonly": {SegmentKind.MASK, SegmentKind.KEY_JSCC},
    "deepjscc-image": {SegmentKind.KEY_JSCC},
}


@pytest.fixture(scope="module")
def photo(data_dir: Path) -> np.ndarray:
    """A person photo at 256×192: big enough for MediaPipe, small enough to code fast."""
    image = decode_image((data_dir / "people" / "mediapipe_sergey.png").read_bytes())
    return cv2.resize(image, (192, 256), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def chain() -> InProcessChain:
    return InProcessChain(BASE, build_transmitter, build_receiver(ReceiverSettings()))


@pytest.mark.parametrize("scheme", list(KINDS))
def test_each_scheme_sends_exactly_its_parts(chain: InProcessChain, photo: np.ndarray, scheme: str) -> None:
    frame = chain.transmitter(scheme).encode(photo, frame_id="f", alpha=alpha_target(scheme, Condition("awgn", 10, 0.7)))
    kinds = {s.kind for s in frame.segments} - {SegmentKind.PILOT}
    assert kinds == KINDS[scheme]
    assert frame.segments[0].kind == SegmentKind.PILOT


def test_directlygen_prompt_describes_the_whole_image(chain: InProcessChain, photo: np.ndarray) -> None:
    frame = chain.transmitter("directlygen").encode(photo, frame_id="f")
    nothing = Segmentation(mask=np.zeros(photo.shape[:2], bool), source="none", labels=())
    expected = StructuredDescriptor()(photo, nothing)
    sent = chain.transmitter("ours").encode(photo, frame_id="f")
    assert frame.header.key_region is None and frame.header.alpha == 0.0
    assert _prompt_payload(frame) == expected.encode()
    assert _prompt_payload(sent) != expected.encode()  # ours describes only the background


def _prompt_payload(frame) -> bytes:
    """The PROMPT segment's bytes, decoded from its noiseless symbols (the receiver's own digital path)."""
    from gensemcom.shared.digital import decode_segment
    from gensemcom.shared.pilots import PilotPattern

    pattern = PilotPattern(frame.segments[0].n_symbols, frame.header.pilot_spacing, frame.header.pilot_length)
    start = 0
    for segment in frame.segments:
        if segment.kind == SegmentKind.PROMPT:
            data = segment.iq[pattern.data_positions(start, segment.n_symbols)]
            payload, ok = decode_segment(segment, data, 1e-4)
            assert ok
            return payload
        start += segment.n_symbols
    raise AssertionError("no PROMPT segment")


def test_deepjscc_image_codes_every_pixel(chain: InProcessChain, photo: np.ndarray) -> None:
    frame = chain.transmitter("deepjscc-image").encode(photo, frame_id="f")
    h, w = photo.shape[:2]
    assert frame.header.key_region.bbox == (0, 0, w, h)
    assert frame.header.key_codec.id == "deepjscc-afgdn"
    out = chain.send(photo, "p", "deepjscc-image", Condition("awgn", 30.0, None))
    assert out.alpha == 1.0
    assert cv2.PSNR(out.image, photo) > 20  # every pixel arrives through DeepJSCC, not from a prompt


def test_humanonly_background_is_the_key_regions_border_colour(chain: InProcessChain, photo: np.ndarray) -> None:
    """Without a prompt the classical inpainter has nothing but the key region's edge to go on."""
    out = chain.send(photo, "p", "humanonly", Condition("awgn", 30.0, 0.7))
    assert out.detail["crc"] == {"mask": True, "prompt": False}
    frame = chain.transmitter("humanonly").encode(photo, frame_id="p", alpha=0.3)
    far = cv2.dilate(_mask_of(frame, photo).astype(np.uint8), np.ones((31, 31), np.uint8)) == 0
    background = out.image[far]
    assert far.any() and (background == background[0]).all()


def _mask_of(frame, photo: np.ndarray) -> np.ndarray:
    x, y, w, h = frame.header.key_region.bbox
    mask = np.zeros(photo.shape[:2], bool)
    mask[y:y + h, x:x + w] = True
    return mask


def test_symbols_are_the_frame_length_and_order_as_the_parts(chain: InProcessChain, photo: np.ndarray) -> None:
    condition = Condition("awgn", 10.0, 0.7)
    sent = {s: chain.send(photo, "p", s, condition) for s in KINDS}
    for scheme, result in sent.items():
        frame = chain.transmitter(scheme).encode(photo, frame_id=condition.frame_id("p"),
                                                 alpha=alpha_target(scheme, condition))
        assert result.symbols == frame.iq().size == sum(s.n_symbols for s in frame.segments)
        assert result.image.shape == photo.shape and result.image.dtype == np.uint8
    assert sent["directlygen"].symbols < sent["alledge"].symbols < sent["ours"].symbols
    assert sent["humanonly"].symbols < sent["ours"].symbols
    assert sent["directlygen"].alpha is None and abs(sent["ours"].alpha - 0.3) <= 0.02 + 1e-9


def test_per_image_alpha_overrides_the_setting(chain: InProcessChain, photo: np.ndarray) -> None:
    tx = chain.transmitter("ours")
    alphas = [tx.encode(photo, frame_id="f", alpha=a).header.alpha for a in (0.2, 0.5)]
    assert abs(alphas[0] - 0.2) <= 0.02 + 1e-9 and abs(alphas[1] - 0.5) <= 0.02 + 1e-9
    assert tx.encode(photo, frame_id="f").header.alpha == make_segmenter("mediapipe")(photo).alpha
    with pytest.raises(ValueError, match="cannot resize"):
        chain.transmitter("deepjscc-image").encode(photo, frame_id="f", alpha=0.3)


def test_same_image_and_condition_share_the_channel_draw() -> None:
    a, b = Condition("rayleigh", 5.0, 0.5, seed=3), Condition("rayleigh", 5.0, 0.5, seed=3)
    assert a.frame_id("x.png") == b.frame_id("x.png")
    assert alpha_target("directlygen", a) is None and alpha_target("ours", a) == pytest.approx(0.5)
    assert Condition("rician", 5.0, None).channel_params().k_factor > 0


def test_scheme_names_and_settings_are_checked() -> None:
    assert check_schemes(["bpg-ldpc"]) == ("ours", "bpg-ldpc")  # its budget comes from ours
    assert set(PROFILE) | {"bpg-ldpc"} == set(SCHEMES) and RATIO_FREE < set(SCHEMES)
    with pytest.raises(ValueError, match="unknown scheme"):
        check_schemes(["ours", "jpeg"])
    with pytest.raises(ValueError, match="strictly between"):
        Condition("awgn", 10.0, 1.0)
    assert scheme_settings(BASE, "humanonly").parts == "mask,key"
    with pytest.raises(ValueError, match="parts must be"):
        check_parts(["mask", "mask"])
    with pytest.raises(ValueError):
        TransmitterSettings(parts="prompt,pixels")
    with pytest.raises(ValueError, match="α = 1"):
        make_segmenter("whole", alpha=0.5)


def test_classical_inpainter_without_prompt_is_what_humanonly_shows() -> None:
    """The border-colour rule the HumanOnly test relies on, checked on a constructed key region."""
    known = np.zeros((40, 40, 3), np.uint8)
    mask = np.zeros((40, 40), bool)
    mask[10:20, 10:20] = True
    known[mask] = (200, 10, 30)
    out = ClassicalInpainter(StructuredDescriptor(), band_px=0)(None, known, mask)
    assert (out[~mask] == (200, 10, 30)).all()
