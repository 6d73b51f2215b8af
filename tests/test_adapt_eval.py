"""The adaptive-rate evaluations: equal-quality savings, fixed vs adaptive over channels, importance trimming."""

import json

import numpy as np
import pytest
from PIL import Image

from gensemcom.adapt.evaluate import EvalSettings, digital_symbols, run_eval, write
from gensemcom.adapt.evaluate_importance import ImportanceSettings, fill_dropped, run_importance
from gensemcom.adapt.importance import ImportanceRanker
from gensemcom.adapt.measure import KeyImage, digital_bits
from gensemcom.adapt.report import from_table
from gensemcom.adapt.saving import saving, symbols_at
from gensemcom.adapt.table import RateTable
from gensemcom.shared.phy.mcs import mcs_from_index
from gensemcom.transmitter.faces import FACE_MODEL, FaceDetector
from tests.conftest import kodak_crops


def test_symbols_at_equal_quality_reads_the_first_crossing_in_log_symbols():
    assert symbols_at([(100, 20.0), (400, 30.0)], 25.0) == pytest.approx(200.0)  # geometric midpoint
    assert symbols_at([(400, 30.0), (100, 20.0)], 20.0) == pytest.approx(100.0)  # order does not matter
    dip = [(100, 20.0), (200, 30.0), (400, 25.0)]  # the largest setting does worse: cheapest crossing wins
    assert symbols_at(dip, 25.0) == pytest.approx(100 * 2**0.5)
    assert symbols_at([(100, 0.5), (200, 1.0), (400, 1.0)], 1.0) == pytest.approx(200.0)  # plateau
    assert symbols_at([(100, 20.0), (400, 30.0)], 19.0) is None  # cheapest already better: unknown
    assert symbols_at([(100, 20.0), (400, 30.0)], 31.0) is None  # never reached
    assert saving(100.0, [(100, 20.0), (400, 30.0)], 25.0) == pytest.approx(0.5)
    assert saving(300.0, [(100, 20.0), (400, 30.0)], 25.0) == pytest.approx(-0.5)


def test_digital_symbols_carry_the_payload_at_the_mcs_efficiency(data_dir):
    item = kodak_crops(data_dir, ["kodim05"])[0]
    bits = digital_bits(item)
    assert len(bits) == 2 and all(b > 0 for b in bits)
    for mcs in (0, 2, 9, 15):
        efficiency = mcs_from_index(mcs).spectral_efficiency
        n = digital_symbols(bits, mcs)
        assert sum(bits) / efficiency <= n <= 1.15 * sum(bits) / efficiency + 2 * 64  # code-block rounding
    assert digital_symbols(bits, 0) > digital_symbols(bits, 9)


@pytest.fixture(scope="module")
def rate_result(data_dir, codec):
    items = kodak_crops(data_dir, ["kodim03", "kodim15"])
    settings = EvalSettings(awgn_snr_db=(0.0, 20.0), targets=(24.0, 28.0), frame_doppler=(0.05,), seed=1)
    return run_eval(items, codec, RateTable.shipped("deepjscc-afgdn", "psnr", "awgn"),
                    RateTable.shipped("deepjscc-afgdn", "psnr", "rayleigh"), settings, progress=False), settings


def test_fixed_vs_adaptive_follows_the_channel(rate_result, one_torch_thread):
    result, settings = rate_result
    cond = result["conditions"]
    low, high = cond["awgn 0 dB"], cond["awgn 20 dB"]
    for ratio in ("1/24", "1/12", "1/6"):
        assert high[f"fixed {ratio}"]["psnr"] > low[f"fixed {ratio}"]["psnr"] + 3  # noise hurts every fixed ratio
        assert high[f"fixed {ratio}"]["symbols"] == low[f"fixed {ratio}"]["symbols"]  # fixed does not adapt
    for target in ("24", "28"):
        assert high[f"adaptive {target} dB"]["symbols"] < low[f"adaptive {target} dB"]["symbols"]
    # MCS 2's threshold (-2.7 dB) is below 0 dB: prompt and mask arrive; fading has no single-SNR model
    assert low["fixed 1/6"]["digital_lost"] == 0.0 and cond["rayleigh 10 dB"]["fixed 1/6"]["digital_lost"] is None
    for scheme in high.values():
        assert 0 <= scheme["meets"]["28"] <= scheme["meets"]["24"] <= 1
        assert scheme["symbols"] == pytest.approx(scheme["key_symbols"] + scheme["digital_symbols"], abs=0.2)


def test_the_pools_and_the_stream_are_built_from_the_sends(rate_result, tmp_path):
    result, settings = rate_result
    write(result, tmp_path)
    assert json.loads((tmp_path / "adapt_eval.json").read_text()) == json.loads(json.dumps(result))
    assert all((tmp_path / name).stat().st_size > 10_000 for name in ("adapt_eval.png", "adapt_eval_streams.png"))
    rows = from_table(result["sends"])
    assert result["sends"]["columns"] == ["condition", "scheme", "image", "psnr", "key_symbols", "digital_symbols",
                                          "digital_lost"]
    assert len(rows) == 2 * 5 * (3 + 2)  # images x conditions x schemes
    awgn_pool = next(v for k, v in result["pools"].items() if k.startswith("awgn"))
    mine = [r for r in rows if r["scheme"] == "fixed 1/12" and r["condition"].startswith("awgn")]
    assert awgn_pool["fixed 1/12"]["sends"] == 4
    assert awgn_pool["fixed 1/12"]["psnr"] == pytest.approx(np.mean([r["psnr"] for r in mine]), abs=2e-3)
    stream = [r for r in rows if r["condition"].startswith("doppler")]
    first = {r["scheme"]: r for r in stream if r["image"] == 0}
    # no feedback before the first frame: the fallback SNR (0 dB) plans the largest ratio
    assert first["adaptive 24 dB"]["key_symbols"] == first["fixed 1/6"]["key_symbols"]
    for scheme, entry in awgn_pool.items():
        assert ("saving_at_equal_hit_rate" in entry) == scheme.startswith("adaptive")
        if entry.get("dominated_by"):
            better = awgn_pool[entry["dominated_by"]]
            assert better["symbols"] <= entry["symbols"] and better["psnr"] >= entry["psnr"]


def test_fill_dropped_keeps_known_pixels_and_fills_from_them():
    crop = np.full((40, 40, 3), 77, np.uint8)
    known = np.zeros((40, 40), bool)
    known[:, :20] = True
    crop[~known] = 0
    filled = fill_dropped(crop, known)
    assert (filled[known] == 77).all() and np.abs(filled[~known].astype(int) - 77).max() <= 5  # Telea drifts a little
    assert fill_dropped(crop, np.ones((40, 40), bool)) is crop


def test_importance_keeps_the_faces_that_centre_first_drops(data_dir, codec, one_torch_thread):
    image = np.asarray(Image.open(data_dir / "people" / "face_recognition_two_people.jpg").convert("RGB")
                       .resize((384, 224)))
    mask = np.zeros(image.shape[:2], bool)
    mask[8:216, 8:376] = True  # the whole picture is the key region: faces sit off-centre in it
    items = [KeyImage("two_people", image, mask, (8, 8, 368, 208))]
    ranker = ImportanceRanker(FaceDetector(data_dir / "weights" / FACE_MODEL))
    settings = ImportanceSettings(shares=(0.25, 0.5), channels=(("awgn", 10.0), ("rayleigh", 10.0)))
    result = run_importance(items, codec, ranker, settings, progress=False)
    assert list(result["summary"]) == ["awgn 10 dB", "rayleigh 10 dB"] and len(result["sends"]["rows"]) == 2 * 5
    faces = result["summary"]["awgn 10 dB"]["faces"]
    for share in ("0.25", "0.5"):
        centre, importance = faces[f"centre {share}"], faces[f"importance {share}"]
        assert centre["symbols"] == importance["symbols"]  # the same budget
        assert importance["important_kept"] == 1.0 > centre["important_kept"]
        assert importance["important_psnr"] > centre["important_psnr"] + 1
    assert faces["centre 1"]["important_kept"] == 1.0
    assert faces["centre 0.25"]["symbols"] < faces["centre 0.5"]["symbols"] < faces["centre 1"]["symbols"]


@pytest.mark.parametrize("argv, message", [
    (["--experiments", "speed"], "--experiments: choose from rate, importance"),
    (["--shares", "0.5,1.5"], "--shares: each budget share must be between 0 and 1"),
    (["--targets", "high"], "--targets: expected comma-separated numbers"),
])
def test_eval_refuses_bad_options_before_any_work(argv, message):
    from typer.testing import CliRunner

    from gensemcom.adapt.cli import app

    result = CliRunner().invoke(app, ["eval", *argv], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and message in result.output
