"""The context memory: the store's update rules, and CONTEXT_REF from transmitter to receiver.

The store is checked against hand-worked eviction orders; the pipeline is
checked on real photos, with a memory-less transmitter and receiver as the
truth for what a PROMPT frame costs and what the receiver would have made.
"""

import threading
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from gensemcom.receiver.pipeline import Receiver, Reconstruction
from gensemcom.receiver.service import delivery_from
from gensemcom.services import build_receiver, build_transmitter
from gensemcom.shared.config import ReceiverSettings, TransmitterSettings
from gensemcom.shared.context import ID_BYTES, ContextStore, UnknownContext, context_id
from gensemcom.shared.digital import encode_segment
from gensemcom.shared.frame import ChannelCode, Frame, Segment, SegmentKind
from gensemcom.shared.pilots import PilotPattern
from gensemcom.shared.wire import frame_to_pb
from gensemcom.transmitter.pipeline import Transmitter

# --- the store ---------------------------------------------------------------------------------------------------


def ids(stream: str, *prompts: str) -> list[bytes]:
    return [context_id(stream, p) for p in prompts]


def test_fifo_evicts_the_oldest_inserted_whatever_its_use() -> None:
    store = ContextStore(capacity=3, rule="fifo")
    for p in "abc":
        store.put("s", p, None)
    store.get("s", context_id("s", "a"))  # reuse does not protect an entry from FIFO
    store.put("s", "d", None)
    assert store.ids("s") == ids("s", "b", "c", "d")
    store.put("s", "e", None)
    assert store.ids("s") == ids("s", "c", "d", "e")


def test_value_evicts_the_least_reused_and_the_oldest_among_ties() -> None:
    store = ContextStore(capacity=3, rule="value")
    for p in "abc":
        store.put("s", p, None)
    for p in "aac":
        store.get("s", context_id("s", p))
    store.put("s", "d", None)  # uses a=2, b=0, c=1: b goes
    assert store.ids("s") == ids("s", "a", "c", "d")
    store.put("s", "e", None)  # a=2, c=1, d=0: d goes
    assert store.ids("s") == ids("s", "a", "c", "e")
    store.get("s", context_id("s", "e"))
    store.put("s", "f", None)  # a=2, c=1, e=1: c and e tie, c is older
    assert store.ids("s") == ids("s", "a", "e", "f")


def test_correlation_evicts_the_entry_least_similar_to_the_incoming_one() -> None:
    store = ContextStore(capacity=3, rule="correlation")
    store.put("s", "east", None, features=np.array([1.0, 0.0, 0.0]))
    store.put("s", "north", None, features=np.array([0.0, 1.0, 0.0]))
    store.put("s", "north-east", None, features=np.array([1.0, 1.0, 0.0]))
    store.put("s", "east-ish", None, features=np.array([1.0, 0.1, 0.0]))  # north is least similar (cos 0.1)
    assert store.ids("s") == ids("s", "east", "north-east", "east-ish")
    store.put("s", "up", None, features=np.array([0.0, 0.0, 1.0]))  # all at cos 0: the oldest (east) goes
    assert store.ids("s") == ids("s", "north-east", "east-ish", "up")


def test_putting_a_held_prompt_again_is_a_fresh_insertion() -> None:
    store = ContextStore(capacity=2, rule="fifo")
    store.put("s", "a", 1)
    store.put("s", "b", 2)
    store.get("s", context_id("s", "a"))
    entry = store.put("s", "a", 3)
    assert (entry.payload, entry.uses) == (3, 0)
    store.put("s", "c", 4)  # a was re-inserted after b, so b is now the oldest
    assert store.ids("s") == ids("s", "a", "c")


def test_unknown_and_evicted_ids_raise_a_key_error_naming_id_and_stream() -> None:
    store = ContextStore(capacity=1)
    first = store.put("cam", "a", None).context_id
    store.put("cam", "b", None)
    for cid in (first, b"\x00" * ID_BYTES):
        with pytest.raises(KeyError) as caught:
            store.get("cam", cid)
        assert isinstance(caught.value, UnknownContext)
        assert cid.hex() in str(caught.value) and "'cam'" in str(caught.value) and "evicted" in str(caught.value)


def test_streams_are_isolated_and_the_least_recently_used_is_dropped() -> None:
    store = ContextStore(capacity=1, max_streams=2)
    a = store.put("s1", "same", "one").context_id
    b = store.put("s2", "same", "two").context_id
    assert a != b and len(a) == ID_BYTES, "the id depends on the stream"
    assert store.get("s1", a).payload == "one" and store.get("s2", b).payload == "two"
    store.touch("s1")
    store.put("s3", "other", None)
    assert store.streams() == ["s1", "s3"]
    with pytest.raises(UnknownContext):
        store.get("s2", b)
    assert store.get("s1", a).payload == "one"


def test_match_finds_the_identical_prompt_or_a_similar_one_above_the_threshold() -> None:
    store = ContextStore(capacity=4)
    held = "background 1x2: 102030 405060; texture smooth; brightness dark"
    close = "background 1x2: 102030 405061; texture smooth; brightness dark"
    far = "person left far small; background 1x1: ffffff; texture busy; brightness bright"
    store.put("s", held, None)
    assert store.match("s", held).prompt == held
    assert store.match("s", close) is None, "threshold 1 asks for the identical prompt"
    assert store.match("s", close, threshold=0.8).prompt == held
    assert store.match("s", far, threshold=0.8) is None
    assert store.get("s", context_id("s", held)).uses == 1, "match counts no use"


def test_concurrent_reuses_are_all_counted() -> None:
    store = ContextStore(capacity=2)
    cid = store.put("s", "a", None).context_id

    def reuse() -> None:
        for _ in range(500):
            store.get("s", cid)

    threads = [threading.Thread(target=reuse) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get("s", cid).uses == 8 * 500 + 1


@pytest.mark.parametrize("kwargs", [{"capacity": 0}, {"max_streams": 0}, {"rule": "lru"}])
def test_bad_store_settings_are_value_errors(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ContextStore(**kwargs)


# --- transmitter -> receiver ---------------------------------------------------------------------------------------


def photo(path: Path, flip: bool = False) -> np.ndarray:
    image = np.asarray(Image.open(path).convert("RGB").resize((256, 256)))
    return np.ascontiguousarray(image[:, ::-1]) if flip else image


@pytest.fixture(scope="module")
def images(data_dir: Path) -> dict[str, np.ndarray]:
    astronaut = data_dir / "people" / "skimage_astronaut.png"
    return {"A": photo(astronaut), "B": photo(astronaut, flip=True), "C": photo(data_dir / "kodak24" / "kodim23.png")}


@pytest.fixture(scope="module")
def plain() -> tuple[Transmitter, Receiver]:
    """The memory-less pair: the truth for what a PROMPT frame costs and what the receiver makes of it."""
    settings = TransmitterSettings(key_codec="linear-dct", segmenter="saliency")
    return build_transmitter(settings), build_receiver(ReceiverSettings(device="cpu", context_memory=False))


def pair(plain: tuple[Transmitter, Receiver], tx_capacity: int = 4, rx_capacity: int = 4, rule: str = "fifo",
         **transmitter) -> tuple[Transmitter, Receiver]:
    tx, rx = plain
    return (replace(tx, memory=ContextStore(tx_capacity, rule), **transmitter),
            replace(rx, memory=ContextStore(rx_capacity, rule)))


class CountingInpainter:
    """The receiver's inpainter, counting its calls."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.settings, self.calls = inner, inner.name, inner.settings, 0

    def __call__(self, *args):
        self.calls += 1
        return self.inner(*args)


def kinds(frame: Frame) -> list[SegmentKind]:
    return [s.kind for s in frame.segments[1:]]


def ref_outcome(rec: Reconstruction):
    return next(o for o in rec.outcomes if o.kind == SegmentKind.CONTEXT_REF)


def test_an_unchanged_background_is_sent_once_then_referred_to(plain, images) -> None:
    tx, rx = pair(plain)
    rx = replace(rx, inpainter=CountingInpainter(rx.inpainter))
    frames = [tx.encode(images["A"], f"f{i}", "cam") for i in range(3)]
    recs = [rx.decode(f) for f in frames]

    assert [kinds(f) for f in frames] == [[SegmentKind.MASK, SegmentKind.PROMPT, SegmentKind.KEY_JSCC]] + 2 * [
        [SegmentKind.MASK, SegmentKind.CONTEXT_REF, SegmentKind.KEY_JSCC]]
    ref, prompt = frames[1].segment(SegmentKind.CONTEXT_REF), frames[0].segment(SegmentKind.PROMPT)
    assert ref.n_payload_bits < prompt.n_payload_bits
    assert rx.inpainter.calls == 1, "references skip the inpainter"
    assert [r.context_reused for r in recs] == [False, True, True]
    for rec in recs[1:]:
        assert np.array_equal(rec.image, recs[0].image), "the stored background is reused pixel for pixel"
        assert rec.prompt == recs[0].prompt
        assert ref_outcome(rec).decoded and "reused" in ref_outcome(rec).detail

    truth = plain[0].encode(images["A"], "p", "cam").n_symbols - frames[1].n_symbols
    assert recs[1].symbols_saved == truth > 0
    assert recs[0].image.shape == plain[1].decode(frames[0]).image.shape
    assert np.array_equal(recs[0].image, plain[1].decode(frames[0]).image), "memory does not change a PROMPT frame"

    delivery = delivery_from(frame_to_pb(frames[1]), recs[1], "linear-dct/1")
    assert delivery.context_reused and delivery.symbols_saved == truth


def test_a_changed_background_sends_the_prompt_again(plain, images) -> None:
    tx, rx = pair(plain)
    frames = [tx.encode(images[name], name, "cam") for name in "AABBA"]
    assert [kinds(f)[1] for f in frames] == [SegmentKind.PROMPT, SegmentKind.CONTEXT_REF, SegmentKind.PROMPT,
                                             SegmentKind.CONTEXT_REF, SegmentKind.CONTEXT_REF]
    recs = [rx.decode(f) for f in frames]
    assert all(r.context_reused for r in recs[3:])
    assert np.array_equal(recs[3].image, plain[1].decode(plain[0].encode(images["B"], "p")).image)
    assert np.array_equal(recs[4].image, recs[0].image)


def test_an_evicted_reference_is_reported_and_inpainted_without_a_prompt(plain, images) -> None:
    # Mismatched stores: the transmitter still holds A, the receiver (capacity 1) has dropped it for C.
    tx, rx = pair(plain, tx_capacity=2, rx_capacity=1)
    frames = [tx.encode(images[name], name, "cam") for name in "ACA"]
    assert kinds(frames[2])[1] == SegmentKind.CONTEXT_REF
    recs = [rx.decode(f) for f in frames]
    outcome = ref_outcome(recs[2])
    assert not outcome.decoded and outcome.crc_ok
    assert context_id("cam", recs[0].prompt).hex() in outcome.detail and "'cam'" in outcome.detail
    assert "evicted" in outcome.detail and "inpainting without a prompt" in outcome.detail
    assert recs[2].prompt is None and not recs[2].context_reused and recs[2].symbols_saved == 0
    # Without a prompt the classical inpainter fills one flat colour away from the key region.
    far = ~cv2.dilate(recs[2].mask.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool)
    assert len(np.unique(recs[2].image[far], axis=0)) == 1
    assert len(np.unique(recs[0].image[far], axis=0)) > 1


def test_a_receiver_without_memory_says_so_and_inpaints_without_a_prompt(plain, images) -> None:
    tx, _ = pair(plain)
    frames = [tx.encode(images["A"], f"f{i}", "cam") for i in range(2)]
    rec = plain[1].decode(frames[1])
    assert "keeps no context memory; inpainting without a prompt" in ref_outcome(rec).detail
    assert rec.prompt is None and not rec.context_reused


def with_extra_ref(frame: Frame, pattern: PilotPattern, ref: Segment) -> Frame:
    """``frame`` with ``ref`` right after its PROMPT, pilot bursts laid out afresh."""
    data, start = [], pattern.preamble
    for segment in frame.segments[1:]:
        data.append(replace(segment, iq=segment.iq[pattern.data_positions(start, segment.n_symbols)]))
        start += segment.n_symbols
        if segment.kind == SegmentKind.PROMPT:
            data.append(ref)
    segments, start = [frame.segments[0]], pattern.preamble
    for segment in data:
        segments.append(replace(segment, iq=pattern.insert(segment.iq, start)))
        start += segments[-1].n_symbols
    return Frame(frame.header, segments)


def test_an_unknown_reference_falls_back_to_the_prompt_the_frame_carries(plain, images) -> None:
    tx, rx = pair(plain)
    prompt_frame = tx.encode(images["A"], "a", "cam")
    unknown = encode_segment(SegmentKind.CONTEXT_REF, b"\x07" * ID_BYTES, tx.digital)
    rec = rx.decode(with_extra_ref(prompt_frame, tx.pilots, unknown))
    outcome = ref_outcome(rec)
    assert not outcome.decoded and "0707070707070707" in outcome.detail
    assert "falling back to the frame's prompt" in outcome.detail
    expected = plain[1].decode(prompt_frame)
    assert rec.prompt == expected.prompt and not rec.context_reused
    assert np.abs(rec.image.astype(int) - expected.image).max() <= 1
    # The fallback prompt's background was stored: the transmitter's next reference is honoured.
    assert rx.decode(tx.encode(images["A"], "a2", "cam")).context_reused


def test_a_receiver_that_lost_the_prompt_recovers_at_the_refresh(plain, images) -> None:
    tx, rx = pair(plain, refresh_every=2)
    frames = [tx.encode(images["A"], f"f{i}", "cam") for i in range(5)]
    assert [kinds(f)[1] for f in frames] == [SegmentKind.PROMPT, SegmentKind.CONTEXT_REF, SegmentKind.CONTEXT_REF,
                                             SegmentKind.PROMPT, SegmentKind.CONTEXT_REF]
    recs = [rx.decode(f) for f in frames[1:]]  # the first PROMPT never arrives
    assert [r.context_reused for r in recs] == [False, False, False, True]


# A is reused twice before B and C arrive: FIFO then drops A, the value rule drops B (never reused).
@pytest.mark.parametrize("rule, refs", [("fifo", "-RR----"), ("value", "-RR--R-"), ("correlation", None)])
def test_both_ends_hold_the_same_contexts_under_every_rule(plain, images, rule: str, refs: str | None) -> None:
    tx, rx = pair(plain, tx_capacity=2, rx_capacity=2, rule=rule)
    tx = replace(tx, digital=replace(tx.digital, code="repetition"))
    sent = ""
    for i, name in enumerate("AAABCAB"):
        frame = tx.encode(images[name], f"f{i}", "cam")
        rec = rx.decode(frame)
        is_ref = frame.segment(SegmentKind.CONTEXT_REF) is not None
        sent += "R" if is_ref else "-"
        assert rec.context_reused == is_ref, f"frame {i}: every reference the transmitter sends is honoured"
        if is_ref:
            assert frame.segment(SegmentKind.CONTEXT_REF).code == ChannelCode.REPETITION
            with_prompt = replace(plain[0], digital=tx.digital).encode(images[name], "p").n_symbols
            assert rec.symbols_saved == with_prompt - frame.n_symbols > 0
        assert tx.memory.ids("cam") == rx.memory.ids("cam")
    assert refs is None or sent == refs
