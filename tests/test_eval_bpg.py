"""BPG + LDPC baseline: bit-exact delivery, an honest cliff, exact symbol accounting and equal-quality budgets.

Truth comes from outside the module under test: HEVC files encoded here with
``hevc_encode``, pilot positions and frame lengths counted by hand from the
pattern's definition, the channel's own reported fade, Rayleigh's closed-form
outage and a Monte Carlo Rician draw, and brute-force scans over HEVC qualities.
"""

import functools
import json
import math

import numpy as np
import pytest
from PIL import Image

import gensemcom.eval.bpg_ldpc as bpg
from gensemcom.channel.link import ChannelParams, apply_channel
from gensemcom.eval.bpg_ldpc import BpgLdpc, arrival_probability, data_capacity, frame_symbols, symbols_at_quality
from gensemcom.shared.jscc.digital import hevc_decode, hevc_encode, max_payload_bytes
from gensemcom.shared.metrics import mse, psnr
from gensemcom.shared.modem import pilot_sequence
from gensemcom.shared.phy.link import symbols_for_payload
from gensemcom.shared.phy.mcs import MCS_TABLE, choose_mcs
from gensemcom.shared.pilots import PilotPattern

PREAMBLE, SPACING, BURST = 64, 128, 4  # BpgLdpc's default pilots, spelled out for counting by hand
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # LDPC decoding runs on torch


@pytest.fixture(scope="module")
def crop(data_dir) -> np.ndarray:
    """A textured 128×96 piece of kodim01: HEVC files from 440 bytes (quality 0) to 12 kB (100)."""
    image = np.array(Image.open(data_dir / "kodak24" / "kodim01.png").convert("RGB"))
    return np.ascontiguousarray(image[200:296, 300:428])


@pytest.fixture(scope="module")
def hevc(crop):
    """This crop's HEVC file at a quality, encoded here (independently of the module's cache)."""
    return functools.lru_cache(maxsize=None)(lambda quality: hevc_encode(crop, quality))


def mean_colour_of(image: np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.round(image.reshape(-1, 3).mean(axis=0)).astype(np.uint8), image.shape)


def frame_length_by_hand(n_data: int) -> int:
    """Preamble, the data, and a burst before every started run of SPACING − BURST data symbols."""
    return PREAMBLE + n_data + BURST * math.ceil(n_data / (SPACING - BURST))


def largest_fitting_quality(hevc, payload_bytes: int) -> int:
    """Scan up from quality 0 (files grow with quality) to the last file that fits."""
    quality = 0
    while quality < 100 and len(hevc(quality + 1)) <= payload_bytes:
        quality += 1
    return quality


# --- delivery ---------------------------------------------------------------


def test_high_snr_delivers_the_largest_fitting_hevc_file_bit_exact(crop, hevc) -> None:
    budget = 3000
    result = BpgLdpc()(crop, budget, ChannelParams("awgn", 30.0, seed=1), "clean")
    quality = result.detail["hevc_quality"]
    assert result.status == "ok"
    assert result.image.shape == crop.shape and result.image.dtype == np.uint8
    np.testing.assert_array_equal(result.image, hevc_decode(hevc(quality)))
    assert result.detail["mcs"] == choose_mcs(30.0, margin_db=0.0).index
    assert result.detail["file_bytes"] == len(hevc(quality)) <= result.detail["payload_bytes"]
    assert 0 < quality < 100 and len(hevc(quality + 1)) > result.detail["payload_bytes"]
    assert 0 < result.symbols <= budget
    json.dumps(result.detail, allow_nan=False)  # result rows must serialise


@pytest.mark.parametrize("budget, snr_db", [(1000, 30.0), (2345, 12.0), (5000, 3.0)])
def test_frame_length_and_pilots_are_counted_exactly(crop, monkeypatch, budget: int, snr_db: float) -> None:
    sent: list[np.ndarray] = []

    def recording_channel(iq, params, frame_id=""):
        sent.append(np.array(iq))
        return apply_channel(iq, params, frame_id)

    monkeypatch.setattr(bpg, "apply_channel", recording_channel)
    result = BpgLdpc()(crop, budget, ChannelParams("awgn", snr_db, seed=2), "count")
    (frame,) = sent
    assert result.symbols == frame.size <= budget

    position = np.arange(frame.size)
    after = position - PREAMBLE
    burst = (after >= 0) & (after % SPACING < BURST)
    np.testing.assert_array_equal(frame[:PREAMBLE], pilot_sequence(PREAMBLE))
    np.testing.assert_array_equal(frame[burst], np.resize(pilot_sequence(BURST), burst.sum()))
    assert result.detail["pilots"] == PREAMBLE + burst.sum()

    mcs = MCS_TABLE[result.detail["mcs"]]
    n_data = symbols_for_payload(8 * result.detail["payload_bytes"], mcs)
    assert frame.size == frame_length_by_hand(n_data)
    # The payload is the largest the budget holds: one byte more would overflow it.
    assert frame_length_by_hand(symbols_for_payload(8 * (result.detail["payload_bytes"] + 1), mcs)) > budget


@pytest.mark.parametrize("pattern", [PilotPattern(64, 128, 4), PilotPattern(16), PilotPattern(8, 10, 3)])
def test_data_capacity_is_every_data_position_within_the_budget(pattern: PilotPattern) -> None:
    for budget in range(1, 700):
        capacity = data_capacity(pattern, budget)
        assert capacity == int((~pattern.is_pilot(np.arange(budget))).sum())
        if capacity:
            assert frame_symbols(pattern, capacity) <= budget < frame_symbols(pattern, capacity + 1)


# --- the cliff ----------------------------------------------------------------


def deep_fade(params: ChannelParams, below: float) -> str:
    """A frame id whose Rayleigh block gain (one per frame, drawn before any noise sample) has |h|² < ``below``."""
    for k in range(5000):
        _, report = apply_channel(np.ones(8, np.complex64), params, f"fade{k}")
        if abs(report.state.gains[0]) ** 2 < below:
            return f"fade{k}"
    raise AssertionError("no deep fade in 5000 frames")


def test_a_deep_fade_loses_the_file_and_shows_the_mean_colour(crop) -> None:
    params = ChannelParams("rayleigh", 10.0, seed=3)
    frame_id = deep_fade(params, below=0.01)
    result = BpgLdpc()(crop, 3000, params, frame_id)

    _, report = apply_channel(np.zeros(result.symbols, np.complex64), params, frame_id)  # the same draw
    faded_snr_db = params.snr_db + 10 * math.log10(abs(report.state.gains[0]) ** 2)
    assert faded_snr_db < MCS_TABLE[result.detail["mcs"]].snr_threshold_db - 3.0  # far below the cliff
    assert result.status == "lost"
    np.testing.assert_array_equal(result.image, mean_colour_of(crop))
    assert result.symbols > 0 and "CRC failed" in result.detail["reason"]
    json.dumps(result.detail, allow_nan=False)


def test_a_seeded_frame_is_repeatable(crop) -> None:
    params = ChannelParams("rayleigh", 4.0, seed=5)
    first, second = (BpgLdpc()(crop, 2500, params, "again") for _ in range(2))
    np.testing.assert_array_equal(first.image, second.image)
    assert (first.status, first.symbols, first.detail) == (second.status, second.symbols, second.detail)


@pytest.mark.parametrize("budget", [50, 200])
def test_a_budget_too_small_for_quality_0_sends_nothing(crop, hevc, monkeypatch, budget: int) -> None:
    def no_channel(*args, **kwargs):
        raise AssertionError("nothing should be sent")

    monkeypatch.setattr(bpg, "apply_channel", no_channel)
    result = BpgLdpc()(crop, budget, ChannelParams("awgn", 30.0, seed=0), "small")
    assert result.status == "lost" and result.symbols == 0
    assert result.detail["reason"].startswith("budget too small")
    assert result.detail["payload_bytes"] < len(hevc(0))
    np.testing.assert_array_equal(result.image, mean_colour_of(crop))


# --- MCS choice on faded channels ----------------------------------------------


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_rayleigh_arrival_is_the_exponential_outage(snr_db: float) -> None:
    for mcs in MCS_TABLE:
        needed = 10 ** ((mcs.snr_threshold_db + 1.0 - snr_db) / 10)
        assert arrival_probability(mcs, snr_db, 0.0, margin_db=1.0) == pytest.approx(math.exp(-needed), rel=1e-9)


def test_rician_arrival_matches_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    k_factor, n = 3.0, 400_000
    scatter = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) * math.sqrt(1 / (2 * (k_factor + 1)))
    power = np.abs(math.sqrt(k_factor / (k_factor + 1)) + scatter) ** 2
    for mcs in MCS_TABLE[4:10]:
        drawn = np.mean(power * 10 ** (10.0 / 10) >= 10 ** (mcs.snr_threshold_db / 10))
        assert arrival_probability(mcs, 10.0, k_factor) == pytest.approx(drawn, abs=0.004)


def test_rayleigh_mcs_maximises_expected_psnr(crop, hevc) -> None:
    budget, snr_db = 3000, 10.0
    result = BpgLdpc()(crop, budget, ChannelParams("rayleigh", snr_db, seed=0), "choose")
    n_data = int((~PilotPattern(PREAMBLE, SPACING, BURST).is_pilot(np.arange(budget))).sum())
    lost_psnr = psnr(mean_colour_of(crop), crop)
    expected = {}
    for mcs in MCS_TABLE[: choose_mcs(snr_db, margin_db=0.0).index + 1]:
        payload = max_payload_bytes(n_data, mcs)
        quality = largest_fitting_quality(hevc, payload)
        if len(hevc(quality)) <= payload:
            arrives = math.exp(-(10 ** ((mcs.snr_threshold_db - snr_db) / 10)))  # Rayleigh: P(|h|² ≥ x) = e^−x
            delivered = psnr(hevc_decode(hevc(quality)), crop)
            expected[mcs.index] = (arrives * delivered + (1 - arrives) * lost_psnr, quality)
    best = max(expected, key=lambda index: expected[index][0])
    assert (result.detail["mcs"], result.detail["hevc_quality"]) == (best, expected[best][1])
    assert best < choose_mcs(snr_db, margin_db=0.0).index  # the fade makes it back off


def test_a_strong_line_of_sight_picks_the_awgn_mcs(crop) -> None:
    result = BpgLdpc()(crop, 3000, ChannelParams("rician", 10.0, seed=0, k_factor=1e4), "los")
    assert result.detail["mcs"] == choose_mcs(10.0, margin_db=0.0).index


# --- symbols at equal quality --------------------------------------------------


def test_symbols_at_quality_is_the_frame_of_the_lowest_quality_reaching_the_target(crop, hevc) -> None:
    score = functools.partial(psnr, b=crop)
    target = score(hevc_decode(hevc(40))) - 1e-6
    lowest = next(q for q in range(41) if score(hevc_decode(hevc(q))) >= target)  # brute force
    match = symbols_at_quality(crop, 30.0, "awgn", score, target, higher_is_better=True)

    mcs = choose_mcs(30.0, margin_db=0.0)
    assert match.mcs == mcs.index
    assert match.symbols == frame_length_by_hand(symbols_for_payload(8 * len(hevc(lowest)), mcs))
    assert match.quality >= lowest and match.value == score(hevc_decode(hevc(match.quality))) >= target

    # Given exactly that budget the scheme delivers that file; one symbol less and it misses the target.
    channel = ChannelParams("awgn", 30.0, seed=4)
    enough = BpgLdpc()(crop, match.symbols, channel, "enough")
    assert (enough.status, enough.symbols, enough.detail["hevc_quality"]) == ("ok", match.symbols, match.quality)
    assert score(enough.image) == match.value
    short = BpgLdpc()(crop, match.symbols - 1, channel, "short")
    assert short.status == "ok" and score(short.image) < target


def test_symbols_at_quality_lower_is_better_and_unreachable(crop, hevc) -> None:
    score = functools.partial(mse, b=crop)
    target = score(hevc_decode(hevc(25)))
    lowest = next(q for q in range(26) if score(hevc_decode(hevc(q))) <= target)  # brute force
    match = symbols_at_quality(crop, 8.0, "awgn", score, target, higher_is_better=False)
    mcs = choose_mcs(8.0, margin_db=0.0)
    assert match.symbols == frame_length_by_hand(symbols_for_payload(8 * len(hevc(lowest)), mcs))
    assert match.value == score(hevc_decode(hevc(match.quality))) <= target
    assert symbols_at_quality(crop, 8.0, "awgn", score, score(hevc_decode(hevc(100))) / 2, False) is None


def test_symbols_at_quality_on_rayleigh_is_what_the_scheme_picks_for_that_budget(crop) -> None:
    score = functools.partial(psnr, b=crop)
    match = symbols_at_quality(crop, 10.0, "rayleigh", score, 26.0, higher_is_better=True)
    result = BpgLdpc()(crop, match.symbols, ChannelParams("rayleigh", 10.0, seed=6), "eq")
    assert (result.symbols, result.detail["mcs"], result.detail["hevc_quality"]) == (
        match.symbols, match.mcs, match.quality)
    assert match.value >= 26.0 and match.mcs <= choose_mcs(10.0, margin_db=0.0).index


# --- bad input ------------------------------------------------------------------


@pytest.mark.parametrize("image", [np.zeros((96, 128, 3), np.float32), np.zeros((96, 128), np.uint8),
                                   np.zeros((96, 128, 4), np.uint8), np.zeros((0, 128, 3), np.uint8), [[0, 0, 0]]])
def test_bad_images_are_refused(image) -> None:
    with pytest.raises(ValueError, match="image"):
        BpgLdpc()(image, 3000, ChannelParams("awgn", 10.0))


@pytest.mark.parametrize("budget", [0, -5, 2.5, True])
def test_bad_budgets_are_refused(crop, budget) -> None:
    with pytest.raises(ValueError, match="budget"):
        BpgLdpc()(crop, budget, ChannelParams("awgn", 10.0))


def test_bad_settings_are_refused(crop) -> None:
    with pytest.raises(ValueError, match="estimator"):
        BpgLdpc(estimator="magic")
    with pytest.raises(ValueError, match="margin"):
        BpgLdpc(margin_db=-1.0)
    with pytest.raises(ValueError, match="channel model"):
        BpgLdpc()(crop, 3000, ChannelParams("ether", 10.0))
    with pytest.raises(ValueError, match="channel model"):
        symbols_at_quality(crop, 10.0, "ether", np.mean, 1.0, True)
    with pytest.raises(ValueError, match="target"):
        symbols_at_quality(crop, 10.0, "awgn", np.mean, math.nan, True)
