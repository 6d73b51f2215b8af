"""Adaptive and importance-aware rate: table, feedback, budget, importance power, and the live feedback loop."""

import math
import time

import grpc
import numpy as np
import pytest
from PIL import Image

from gensemcom.adapt.allocate import centre_first, fit_budget, importance_power, key_budget
from gensemcom.adapt.control import LinkState, RateControl
from gensemcom.adapt.feedback import SnrTracker
from gensemcom.adapt.importance import ImportanceRanker
from gensemcom.adapt.measure import key_psnr, measure_curves, send_key
from gensemcom.adapt.table import RateTable
from gensemcom.services import build_receiver, build_transmitter, start_channel, start_receiver, start_transmitter
from gensemcom.shared.blocks import blocks_of
from gensemcom.shared.config import ChannelSettings, ReceiverSettings, TransmitterSettings
from gensemcom.shared.frame import SegmentKind
from gensemcom.shared.pb import semcom_pb2 as pb
from gensemcom.shared.pb import semcom_pb2_grpc as pb_grpc
from gensemcom.shared.phy.mcs import choose_mcs
from gensemcom.shared.pilots import PilotPattern
from gensemcom.transmitter.faces import FACE_MODEL, FaceDetector
from tests.conftest import kodak_crops, png_bytes

RATIOS = [1 / 24, 1 / 12, 1 / 6]


def synthetic_table(psnr: list[list[float]], snr=(0.0, 10.0, 20.0)) -> dict:
    return {"codec": "test", "snr_db": list(snr), "ratios": RATIOS, "channels": {"awgn": {"psnr": psnr}}}


# -- the table -----------------------------------------------------------------------------------------
def test_table_enforces_monotone_quality_and_picks_the_smallest_ratio_that_meets_the_target():
    # A dip at 20 dB for 1/24 and 1/12 below 1/24 at 0 dB: both physically impossible, both repaired.
    table = RateTable(synthetic_table([[24.0, 27.0, 26.0], [23.0, 29.0, 30.0], [26.0, 30.0, 31.0]]))
    assert table.predict(1 / 24, 20.0) == 27.0  # running max over SNR
    assert table.predict(1 / 12, 0.0) == 24.0  # running max over ratio
    assert table.predict(1 / 12, 5.0) == pytest.approx(26.5)  # linear in between
    assert table.predict(1 / 6, -10.0) == pytest.approx(22.0)  # first slope extended below the grid
    assert table.choose(10.0, 28.0).ratio == pytest.approx(1 / 12)
    assert table.choose(20.0, 27.0).ratio == pytest.approx(1 / 24)
    miss = table.choose(0.0, 40.0)
    assert miss.ratio == pytest.approx(1 / 6) and not miss.met


def test_shipped_table_asks_for_more_symbols_at_lower_snr_for_every_target():
    for channel in ("awgn", "rayleigh"):
        for metric, targets in (("psnr", (24.0, 26.0, 28.0, 30.0)), ("lpips", (0.05, 0.1, 0.2))):
            table = RateTable.shipped("deepjscc-afgdn", metric, channel)
            for target in targets:
                ratios = [table.choose(snr, target).ratio for snr in np.linspace(-10, 30, 161)]
                assert all(a >= b for a, b in zip(ratios, ratios[1:])), (channel, metric, target)


def test_table_refuses_unusable_input(tmp_path):
    with pytest.raises(ValueError, match="no lpips curves"):
        RateTable(synthetic_table([[1, 2, 3]] * 3), metric="lpips")
    with pytest.raises(ValueError, match="strictly increasing"):
        RateTable(synthetic_table([[1, 2, 3]] * 3, snr=(0.0, 0.0, 1.0)))
    with pytest.raises(FileNotFoundError, match="semcom adapt table --measure"):
        RateTable.load(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="no rate table ships"):
        RateTable.shipped("linear-dct")


def test_table_measured_on_some_images_predicts_held_out_images(data_dir, codec, one_torch_thread):
    """Calibrate on 12 Kodak crops, predict 12 others (a seeded random split).

    Key-region PSNR varies from image to image by several dB (texture), so the held-out mean can
    only be predicted up to sampling error: the tolerance is two standard errors of the difference
    of two means (pooled per-image spread) plus 0.5 dB, and the test also demands it be below 3 dB.
    """
    names = [f"kodim{i:02d}" for i in np.random.default_rng(7).permutation(np.arange(1, 25))]
    calibration, held_out = kodak_crops(data_dir, names[:12]), kodak_crops(data_dir, names[12:])
    snrs = [0.0, 10.0, 20.0]
    fitted = measure_curves(calibration, codec, snrs, channels=("awgn",), lpips=False, progress=False)
    table = RateTable(fitted)
    truth = measure_curves(held_out, codec, snrs, channels=("awgn",), lpips=False, progress=False, seed=1)
    measured = np.asarray(truth["channels"]["awgn"]["psnr"])
    predicted = np.array([[table.predict(r, s) for s in snrs] for r in table.ratios])
    spread = np.sqrt((np.asarray(fitted["channels"]["awgn"]["psnr_std"]) ** 2 + np.asarray(
        truth["channels"]["awgn"]["psnr_std"]) ** 2) / 2)
    tolerance = 2 * spread * math.sqrt(1 / 12 + 1 / 12) + 0.5
    assert tolerance.max() < 3.0
    assert (np.abs(predicted - measured) < tolerance).all(), (predicted, measured, tolerance)
    assert (np.diff(measured, axis=1) > 0).all()  # the measurement itself: quality grows with SNR


# -- feedback ------------------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_tracker_averages_linear_snr_per_stream_and_goes_stale():
    clock = FakeClock()
    tracker = SnrTracker(smoothing=0.25, stale_after_s=5.0, max_streams=2, clock=clock)
    assert tracker.estimate("a") is None
    tracker.report("a", 10.0)
    tracker.report("a", 20.0)
    expected = 10 * math.log10(0.75 * 10 + 0.25 * 100)  # exponential average of linear SNR
    assert tracker.estimate("a").snr_db == pytest.approx(expected)
    assert tracker.report("a", float("nan")) is None and tracker.estimate("a").snr_db == pytest.approx(expected)
    clock.now = 6.0
    assert not tracker.is_fresh(tracker.estimate("a"))
    assert tracker.link("a") == LinkState(None, "stale") and tracker.link("never") == LinkState(None, "none")
    tracker.report("a", 3.0)  # after a stale spell, the old average says nothing: start over
    assert tracker.estimate("a").snr_db == pytest.approx(3.0) and tracker.estimate("a").reports == 1
    assert tracker.link("a").source == "feedback" and tracker.link("a").snr_db == pytest.approx(3.0)
    tracker.report("b", 1.0)
    tracker.report("c", 2.0)
    assert tracker.estimate("a") is None  # least recently updated stream dropped beyond max_streams


def test_tracker_measures_how_much_the_snr_moves_between_reports():
    tracker = SnrTracker(smoothing=1.0, spread_smoothing=0.5)
    tracker.report("s", 10.0)
    assert tracker.link("s").spread_db == 0.0  # one report: no change seen yet
    tracker.report("s", 12.0)
    assert tracker.link("s").spread_db == pytest.approx(2.0)  # the first change seeds the average
    tracker.report("s", 18.0)
    assert tracker.link("s").spread_db == pytest.approx(math.sqrt(0.5 * 2.0**2 + 0.5 * 6.0**2))
    steady = SnrTracker(smoothing=1.0)
    for _ in range(5):
        steady.report("s", 7.0)
    assert steady.link("s").spread_db == 0.0


def test_rate_control_widens_the_mcs_margin_with_the_spread():
    table = RateTable(synthetic_table([[20.0, 25.0, 27.0], [22.0, 27.0, 29.0], [24.0, 29.0, 31.0]]))
    control = RateControl(table, target=27.0, mcs_margin_db=1.0, mcs_spread_factor=1.0, fallback_snr_db=0.0)
    calm, moving = (control.plan("adaptive", LinkState(15.0, "feedback", spread)) for spread in (0.0, 3.0))
    assert calm.mcs == choose_mcs(15.0, 1.0).index and moving.mcs == choose_mcs(15.0, 4.0).index
    assert moving.mcs < calm.mcs and moving.ratio == calm.ratio  # the key ratio follows the estimate alone
    floor = choose_mcs(0.0, 1.0).index  # what the transmitter sends knowing nothing
    wild = control.plan("adaptive", LinkState(15.0, "feedback", 20.0))
    assert choose_mcs(15.0, 21.0).index < floor == wild.mcs  # a noisy report is no worse than none
    low = control.plan("adaptive", LinkState(-3.0, "feedback", 5.0))
    assert low.mcs == choose_mcs(-3.0, 1.0).index < floor  # below the fallback SNR the estimate rules
    with pytest.raises(ValueError, match="mcs_spread_factor"):
        RateControl(table, target=27.0, mcs_spread_factor=-1.0)


def test_rate_control_plans_from_the_snr_and_falls_back_without_one():
    table = RateTable(synthetic_table([[20.0, 25.0, 27.0], [22.0, 27.0, 29.0], [24.0, 29.0, 31.0]]))
    control = RateControl(table, target=27.0, fallback_snr_db=0.0, boost_db=3.0)
    good, bad = control.plan("adaptive", LinkState(20.0, "feedback")), control.plan("adaptive", LinkState(5.0, "request"))
    assert good.ratio < bad.ratio and good.mcs > bad.mcs and good.snr_source == "feedback"
    stale = control.plan("adaptive", LinkState(None, "stale"))
    assert (stale.snr_db, stale.snr_source, stale.ratio) == (0.0, "stale", pytest.approx(1 / 6))
    boosted = control.plan("importance", LinkState(12.0, "feedback"))
    plain = control.plan("adaptive", LinkState(12.0, "feedback"))
    assert boosted.boost_db == 3.0 and boosted.ratio <= plain.ratio
    with pytest.raises(ValueError, match="unknown rate mode"):
        control.plan("turbo", LinkState(None))


# -- budget and importance --------------------------------------------------------------------------------
def test_budget_is_never_exceeded_and_cuts_the_least_important_blocks_last():
    rng = np.random.default_rng(0)
    for _ in range(300):
        shape = tuple(rng.integers(1, 12, size=2))
        sent = rng.random(shape) < 0.7
        importance = rng.random(shape)
        rate = int(rng.choice([64, 128, 256]))
        budget = int(rng.integers(0, 3000))
        fit = fit_budget(sent, importance, rate, [64, 128, 256], budget)
        assert fit.n_symbols <= budget and fit.rate <= rate
        assert not (fit.sent & ~sent).any()
        if int(sent.sum()) * rate // 2 <= budget:
            assert fit.rate == rate and (fit.sent == sent).all()
        if fit.sent.sum() < sent.sum() and fit.sent.any():  # blocks dropped: only the least important ones
            assert importance[fit.sent].min() >= importance[sent & ~fit.sent].max()


def test_centre_first_keeps_the_blocks_nearest_the_centroid():
    sent = np.zeros((9, 12), bool)
    sent[1:8, 2:11] = True  # a 7x9 block region, centroid at block (4, 6)
    sent[1, 2] = False
    scores = centre_first(sent)
    fit = fit_budget(sent, scores, 64, [64, 128], budget=9 * 32)  # room for 9 blocks at the lowest rate
    assert fit.sent.sum() == 9
    rows, cols = np.nonzero(fit.sent)
    centre = np.argwhere(sent).mean(axis=0)
    kept = np.hypot(rows - centre[0], cols - centre[1])
    dropped = np.hypot(*(np.argwhere(sent & ~fit.sent) - centre).T)
    assert kept.max() <= dropped.min() and fit.sent[4, 6]
    assert not centre_first(np.zeros((3, 3), bool)).any()


def test_key_budget_matches_a_brute_force_count_of_pilots():
    pattern = PilotPattern(preamble=64, spacing=32, length=4)
    for start in (64, 70, 95, 96, 200):
        for frame_budget in (start - 1, start, start + 3, start + 40, start + 1000):
            n = key_budget(pattern, start, frame_budget)
            assert n == max([k for k in range(0, 1200) if start + pattern.span(start, k) <= frame_budget], default=0)


def test_importance_power_keeps_mean_power_one_and_boosts_important_blocks():
    sent = np.ones((4, 5), bool)
    sent[0, 0] = False
    important = np.zeros((4, 5), bool)
    important[1:3, 1:3] = True
    power = importance_power(sent, important, boost_db=3.0)
    assert power[sent].mean() == pytest.approx(1.0)
    assert power[important].max() / power[sent & ~important].max() == pytest.approx(10**0.3)
    assert power[0, 0] == 0
    floor = importance_power(sent, np.ones((4, 5), bool) & (np.arange(20).reshape(4, 5) < 18), boost_db=12.0)
    assert floor[sent].mean() == pytest.approx(1.0) and floor[sent].min() == pytest.approx(0.25)


def test_unequal_block_power_keeps_unit_power_and_decodes_to_the_same_image_without_noise(
        data_dir, codec, one_torch_thread):
    """The power map travels in the header and the receiver undoes it: near noise-free, boosted and flat
    frames decode alike, with the same symbols and unit mean power."""
    (item,) = kodak_crops(data_dir, ["kodim04"], size=128)
    x, y, w, h = item.bbox
    sent = blocks_of(item.mask[y : y + h, x : x + w])
    important = np.zeros_like(sent)
    important[: sent.shape[0] // 2, : sent.shape[1] // 2] = True
    power = importance_power(sent, important & sent, 3.0)
    code = codec.encode(item.image, item.mask, item.bbox, ratio=1 / 12, snr_db=20.0, power=power)
    assert np.mean(np.abs(code.symbols) ** 2) == pytest.approx(1.0, abs=0.05)
    levels = np.frombuffer(code.block_power, np.uint8)
    assert levels.size == sent.sum() and levels.max() / levels.min() == pytest.approx(10**0.3, rel=0.1)
    flat, n_flat = send_key(codec, item, 1 / 12, 40.0, "awgn", 40.0, np.random.default_rng(0))
    boosted, n_boosted = send_key(codec, item, 1 / 12, 40.0, "awgn", 40.0, np.random.default_rng(0), power=power)
    assert n_flat == n_boosted == int(sent.sum()) * 64
    assert abs(key_psnr(item, flat) - key_psnr(item, boosted)) < 0.3


def test_face_detector_finds_the_faces_in_the_people_photos(data_dir):
    detector = FaceDetector(data_dir / "weights" / FACE_MODEL)
    two = np.asarray(Image.open(data_dir / "people" / "face_recognition_two_people.jpg").convert("RGB"))
    faces = detector(two)
    assert len(faces) == 2
    mirrored = detector(np.ascontiguousarray(two[:, ::-1]))  # a mirrored photo: mirrored boxes
    centre = lambda f: (f.x + f.width / 2, f.y + f.height / 2)  # noqa: E731
    for face in faces:
        twin = min(mirrored, key=lambda m: abs(two.shape[1] - centre(m)[0] - centre(face)[0]))
        assert abs(two.shape[1] - centre(twin)[0] - centre(face)[0]) < 0.25 * face.width
        assert abs(centre(twin)[1] - centre(face)[1]) < 0.25 * face.height
    doors = np.asarray(Image.open(data_dir / "kodak24" / "kodim01.png").convert("RGB"))
    assert detector(doors) == []
    ranker = ImportanceRanker(detector)
    mask = np.ones(two.shape[:2], bool)
    ranked = ranker(two, mask, (0, 0, two.shape[1], two.shape[0]))
    assert ranked.source == "faces" and 0 < ranked.important.mean() < 0.5


# -- transmitter and receiver in process ------------------------------------------------------------------
@pytest.fixture(scope="module")
def people_image(data_dir):
    image = Image.open(data_dir / "people" / "face_recognition_two_people.jpg").convert("RGB")
    return np.asarray(image.resize((384, 224)))


def test_receiver_decodes_every_allocation_within_the_frame_budget(people_image, one_torch_thread):
    tx = build_transmitter(TransmitterSettings(digital="repetition", rate_mode="importance", importance_boost_db=3.0))
    rx = build_receiver(ReceiverSettings())
    full = tx.encode(people_image, "full", mode="fixed")
    key = full.segment(SegmentKind.KEY_JSCC).n_symbols
    region = full.header.key_region
    bbox, full_blocks = (region.x, region.y, region.width, region.height), tx.key_codec.sent_blocks(region)
    mask = tx.segmenter(people_image).mask
    half_blocks = full.n_symbols - key + int(full_blocks.sum()) * 64 // 4  # about half the blocks at rate 64
    budgets = [full.n_symbols, full.n_symbols - key // 3, full.n_symbols - key // 2 - 50, half_blocks,
               full.n_symbols - key + 40]
    trimmed = {mode: 0 for mode in ("fixed", "adaptive", "importance")}
    for mode in ("fixed", "adaptive", "importance"):
        for budget in budgets:
            frame = tx.encode(people_image, f"{mode}-{budget}", mode=mode, link=LinkState(6.0, "request"),
                              max_symbols=budget)
            assert frame.n_symbols <= budget
            rec = rx.decode(frame)
            assert rec.image.shape == people_image.shape
            region = frame.header.key_region
            if mode == "importance" and region is not None:
                assert frame.header.rate_plan.important_blocks > 0 and region.block_power
            kept = tx.key_codec.sent_blocks(region) if region is not None else None
            if kept is not None and kept.sum() < full_blocks.sum():  # blocks were dropped: who chose them
                trimmed[mode] += 1
                if mode == "importance":
                    assert frame.header.rate_plan.importance == "faces"
                    faces = tx.rate.importance(people_image, mask, bbox).important
                    assert kept[faces].all() if kept.sum() >= faces.sum() else faces[kept].all()
                else:  # fixed and adaptive trim the region from its rim inwards
                    if mode == "adaptive":
                        assert frame.header.rate_plan.importance == "centre"
                    distance = -centre_first(full_blocks)
                    assert distance[kept].max() <= distance[full_blocks & ~kept].min()
    assert all(count >= 2 for count in trimmed.values()), trimmed
    with pytest.raises(ValueError, match="cannot hold the pilots and digital segments"):
        tx.encode(people_image, "tiny", max_symbols=100)


# -- the live loop -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def adaptive_chain():
    rx = start_receiver(ReceiverSettings(port=0))
    ch = start_channel(ChannelSettings(port=0, next_hop=f"127.0.0.1:{rx.port}", seed=3))
    tx = start_transmitter(TransmitterSettings(port=0, next_hop=f"127.0.0.1:{ch.port}", digital="repetition",
                                               rate_mode="adaptive", feedback_stale_s=1.0, feedback_smoothing=0.7,
                                               target_quality=27.0))
    channel = grpc.insecure_channel(f"127.0.0.1:{tx.port}")
    yield pb_grpc.TransmitterStub(channel)
    channel.close()
    for server in (tx, ch, rx):
        server.stop(grace_s=1)


def test_feedback_lowers_the_symbols_when_the_channel_improves_and_stale_feedback_falls_back(
        adaptive_chain, people_image):
    image = png_bytes(people_image)
    snrs = [0.0] * 4 + [20.0] * 4

    def requests(stream, values, mode=""):
        for seq, snr in enumerate(values):
            yield pb.ImageRequest(image=image, stream_id=stream, seq=seq, rate_mode=mode,
                                  channel=pb.ChannelConfig(snr_db=snr))

    deliveries = list(adaptive_chain.Send(requests("s1", snrs)))
    assert all(d.status.code == 0 for d in deliveries)
    sources = [d.rate_plan.snr_source for d in deliveries]
    assert sources[0] == "none" and set(sources[1:]) == {"feedback"}
    symbols = [d.n_symbols for d in deliveries]
    assert symbols[-1] < symbols[3]  # the channel got better: fewer symbols per frame
    assert deliveries[-1].rate_plan.snr_db > 15 and deliveries[3].rate_plan.snr_db < 5
    time.sleep(1.2)  # longer than feedback_stale_s
    (late,) = adaptive_chain.Send(requests("s1", [20.0]))
    assert late.rate_plan.snr_source == "stale" and late.rate_plan.snr_db == 0.0
    assert late.n_symbols > symbols[-1]  # back to the safe rate
    (fixed,) = adaptive_chain.Send(requests("s2", [20.0], mode="fixed"))  # per-stream choice of mode
    assert not fixed.HasField("rate_plan")
    (told,) = adaptive_chain.Send(
        pb.ImageRequest(image=image, stream_id="s3", snr_db=18.0, channel=pb.ChannelConfig(snr_db=18.0))
        for _ in range(1))
    assert told.rate_plan.snr_source == "request" and told.rate_plan.snr_db == pytest.approx(18.0)
    (bad,) = adaptive_chain.Send(requests("s4", [10.0], mode="turbo"))
    assert bad.status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and "rate mode" in bad.status.message
