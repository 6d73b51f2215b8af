"""The evaluation report: synthetic runs with known values in, figures, tables and sentences checked out.

Every metric of the synthetic run is a closed-form function of scheme, condition and image, so the
expected means, standard errors, winners, radar ranking and symbol savings are worked out by hand
below, independently of the code under test.
"""

import csv
import json
import math
import statistics
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gensemcom.eval import figures
from gensemcom.eval.report import load_run, write_report

IMAGES = ["kodim01.png", "kodim02.png", "kodim03.png", "kodim04.png"]
OFFSETS = [-0.5, 0.0, 0.5, 1.0]  # per-image PSNR offset: mean 0.25, sample s.d. sqrt(5/12)
SCHEMES = ["ours", "alledge", "directlygen", "deepjscc-image", "bpg-ldpc"]
BIAS = {"ours": 1.0, "alledge": -2.0, "directlygen": -4.0, "deepjscc-image": -1.0, "bpg-ldpc": 0.0}
CHANNEL_PENALTY = {"awgn": 0.0, "rayleigh": 3.0, "rician": 1.5}
SNRS = [0.0, 5.0, 10.0, 15.0, 20.0]
TARGETS = [0.1, 0.3, 0.5, 0.7, 0.9]
CHANNELS = ["awgn", "rayleigh", "rician"]
BASE = {"channel": "awgn", "snr_db": 10.0, "nonkey_target": 0.5}
ERROR_MESSAGE = "inpainter ran out of memory"  # written with a line break inside; listed on one line


def conditions(sweeps: set[str]) -> list[tuple[str, float, float]]:
    """The union of the requested 1-D sweeps around the base point (the base point always included)."""
    points = {(BASE["channel"], BASE["snr_db"], BASE["nonkey_target"])}
    if "snr" in sweeps:
        points |= {("awgn", s, 0.5) for s in SNRS}
    if "ratio" in sweeps:
        points |= {("awgn", 10.0, t) for t in TARGETS}
    if "channel" in sweeps:
        points |= {(c, 10.0, 0.5) for c in CHANNELS}
    return sorted(points)


def psnr(scheme: str, channel: str, snr: float, i: int) -> float:
    return snr + BIAS[scheme] + OFFSETS[i] - CHANNEL_PENALTY[channel]


def lpips(scheme: str, channel: str, snr: float, target: float, i: int) -> float:
    """Worse with a larger non-key share for the schemes that send a key region."""
    ratio_term = 0.0 if scheme in figures.WHOLE_IMAGE_SCHEMES else 0.25 * (target - 0.3)
    return 0.6 - 0.01 * psnr(scheme, channel, snr, i) + ratio_term


def row(scheme: str, channel: str, snr: float, target: float, i: int, **changes: object) -> dict:
    p = psnr(scheme, channel, snr, i)
    keyed = scheme not in figures.WHOLE_IMAGE_SCHEMES and scheme != "bpg-ldpc"
    base = {
        "image": IMAGES[i], "dataset": "kodak24", "scheme": scheme, "channel": channel, "snr_db": snr,
        "nonkey_target": target, "seed": 0,
        "alpha": 1 - target - 0.02 if keyed else None, "nonkey_ratio": target + 0.02 if keyed else None,
        "symbols": 1000 * (i + 1), "budget": None, "status": "ok", "error": "", "detail": {},
        "metrics": {"psnr": p, "ssim": p / 40, "vsi": 0.8 + p / 200,
                    "lpips_alex": lpips(scheme, channel, snr, target, i), "mask_iou": 0.7},
        "seconds": 0.1, "via": "in-process",
    }
    return base | changes


def equal_quality_rows() -> list[dict]:
    """BPG needs (1.1 + snr/100) times ours' symbols; on kodim04 at 0 dB it cannot reach ours' quality.

    Rows of the ratio sweep (10 dB, other targets, BPG needing 5x) must stay out of the per-SNR table.
    """
    points = [(snr, 0.5) for snr in SNRS] + [(10.0, t) for t in TARGETS if t != 0.5]
    rows = []
    for snr, target in points:
        for i, image in enumerate(IMAGES):
            ours = 1000 * (i + 1)
            bpg = None if (snr == 0.0 and i == 3) else ours * (1.1 + snr / 100 if target == 0.5 else 5.0)
            rows.append({"image": image, "snr_db": snr, "channel": "awgn", "nonkey_target": target,
                         "metric": "lpips_alex",
                         "ours_symbols": ours, "ours_value": 0.4, "bpg_symbols": bpg, "bpg_value": 0.39,
                         "bpg_quality": None if bpg is None else 30, "bpg_mcs": None if bpg is None else 5,
                         "saved": None if bpg is None else 1 - ours / bpg})
    return rows


def write_run(out: Path, sweeps: set[str], *, samples: bool = True, equal_quality: bool = True) -> Path:
    out.mkdir(parents=True)
    rows = [row(s, c, snr, t, i) for c, snr, t in conditions(sweeps) for s in SCHEMES for i in range(len(IMAGES))]
    # bpg-ldpc lost kodim04 at the base point: it still counts, with the metrics it has.
    rows = [r | {"status": "lost"} if (r["scheme"] == "bpg-ldpc" and r["image"] == "kodim04.png"
                                        and figures.matches(r, **BASE)) else r for r in rows]
    # ours failed on a fifth image; its bogus PSNR must not reach any mean.
    traceback_like = ERROR_MESSAGE.replace(" out ", "\n  out ")
    rows.append(row("ours", "awgn", 10.0, 0.5, 0, image="kodim05.png", status="error", error=traceback_like,
                    metrics={"psnr": 999.0}))
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if equal_quality:
        (out / "equal_quality.jsonl").write_text("".join(json.dumps(r) + "\n" for r in equal_quality_rows()))
    settings = {"schemes": SCHEMES, "base": BASE, "dataset": "kodak24", "images": len(IMAGES),
                "inpainter": "telea", "seed": 0, "metrics": ["psnr", "ssim", "vsi", "lpips_alex", "mask_iou"],
                "grid": {"snr_db": SNRS if "snr" in sweeps else [10.0],
                         "nonkey_target": TARGETS if "ratio" in sweeps else [0.5],
                         "channel": CHANNELS if "channel" in sweeps else ["awgn"], "base": BASE}}
    (out / "run.json").write_text(json.dumps(settings))
    if samples:
        rng = np.random.default_rng(0)
        for image in IMAGES[:3]:
            folder = out / "samples" / Path(image).stem
            folder.mkdir(parents=True)
            for name in ["original", *SCHEMES]:
                Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    return out


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with all three sweeps, samples and the equal-quality table, reported once."""
    out = write_run(tmp_path_factory.mktemp("eval") / "full", {"snr", "ratio", "channel"})
    write_report(out)
    return out


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
    with Image.open(path) as img:
        assert img.format == "PNG" and min(img.size) > 200


def test_every_figure_is_a_real_png(full: Path) -> None:
    for name in figures.FIGURE_FILES:
        assert_png(full / "report" / name)
    md = (full / "report" / "report.md").read_text()
    assert "Not drawn" not in md
    for name in figures.FIGURE_FILES:
        assert f"]({name})" in md


def test_summary_means_and_standard_errors(full: Path) -> None:
    records = {r["scheme"]: r for r in read_csv(full / "report" / "summary.csv")}
    assert list(records) == SCHEMES
    se = statistics.stdev(OFFSETS) / math.sqrt(len(OFFSETS))
    mean_offset = statistics.fmean(OFFSETS)
    for scheme in SCHEMES:
        r = records[scheme]
        assert float(r["psnr_mean"]) == pytest.approx(10.0 + BIAS[scheme] + mean_offset)
        assert float(r["psnr_se"]) == pytest.approx(se)
        assert float(r["symbols_mean"]) == pytest.approx(2500.0)
        assert float(r["mask_iou_mean"]) == pytest.approx(0.7)
        # whole-image schemes were written once per non-key target: still four images, not twenty
        assert r["images"] == "4"
    lpips_se = 0.01 * se  # LPIPS is affine in PSNR with slope -0.01
    assert float(records["ours"]["lpips_alex_mean"]) == pytest.approx(0.6 - 0.01 * 11.25 + 0.25 * 0.2)
    assert float(records["ours"]["lpips_alex_se"]) == pytest.approx(lpips_se)


def test_error_rows_are_left_out_and_listed_lost_rows_count(full: Path) -> None:
    records = {r["scheme"]: r for r in read_csv(full / "report" / "summary.csv")}
    assert records["ours"]["errors"] == "1" and records["ours"]["images"] == "4"
    assert float(records["ours"]["psnr_mean"]) < 20  # the failed row's 999 dB stayed out
    assert records["bpg-ldpc"]["lost"] == "1" and records["bpg-ldpc"]["images"] == "4"
    md = (full / "report" / "report.md").read_text()
    assert f"ours on kodim05.png (awgn, 10 dB, non-key target 0.5): {ERROR_MESSAGE}" in md
    n_rows = len((full / "results.jsonl").read_text().splitlines())
    assert f"1 of {n_rows} rows failed; they are left out" in md


def test_sentences_name_the_best_scheme(full: Path) -> None:
    md = (full / "report" / "report.md").read_text()
    assert "by PSNR (dB), ours is best (11.2; next: bpg-ldpc, 10.2)" in md  # summary at the base condition
    assert "by key-mask IoU, all schemes tie (0.7)" in md
    # LPIPS at 10 dB: deepjscc-image has no non-key penalty, so it wins there (0.6 - 0.0925)
    assert "by LPIPS (AlexNet) deepjscc-image is best (0.507" in md
    # LPIPS vs ratio: ours wins at target 0.1 (0.6 - 0.1125 - 0.05), deepjscc-image at 0.9
    assert "at the smallest non-key target (0.1) ours is best (0.438" in md
    assert "at the largest (0.9) deepjscc-image is best" in md


def test_radar_ranking_from_normalised_scores(full: Path) -> None:
    # At the base point, psnr/ssim/vsi scale linearly over 6.25..11.25 dB (ours 1, bpg 0.8, deepjscc 0.6,
    # alledge 0.4, directlygen 0); LPIPS spans 0.5075 (deepjscc, 1) .. 0.5675 (alledge, 0), ours and
    # directlygen 0.5375 -> 0.5, bpg 0.5475 -> 1/3; mask_iou ties at 0.7 -> 1 for all. Means over 5 metrics:
    expected = "ours (0.90) > deepjscc-image (0.76) > bpg-ldpc (0.75) > alledge (0.44) > directlygen (0.30)"
    assert expected in (full / "report" / "report.md").read_text()


def test_normalise_respects_direction() -> None:
    means = {"a": {"psnr": 30.0, "lpips_alex": 0.2, "ssim": 0.5},
             "b": {"psnr": 20.0, "lpips_alex": 0.4, "ssim": 0.5},
             "c": {"psnr": 25.0, "lpips_alex": 0.1, "ssim": 0.5}}
    scores = figures.normalise(means, ["psnr", "lpips_alex", "ssim"])
    assert scores["a"] == pytest.approx({"psnr": 1.0, "lpips_alex": 2 / 3, "ssim": 1.0})
    assert scores["b"] == pytest.approx({"psnr": 0.0, "lpips_alex": 0.0, "ssim": 1.0})
    assert scores["c"] == pytest.approx({"psnr": 0.5, "lpips_alex": 1.0, "ssim": 1.0})
    assert [s for s, _ in figures.ranking(scores)] == ["a", "c", "b"]


def test_symbols_vs_bpg_saving(full: Path) -> None:
    table = {float(r["snr_db"]): r for r in read_csv(full / "report" / "symbols_vs_bpg.csv")}
    assert sorted(table) == SNRS
    for snr, r in table.items():
        # BPG = (1.1 + snr/100) x ours on every matched image, so the saving is 1 - 1 / factor
        assert float(r["saving"]) == pytest.approx(1 - 1 / (1.1 + snr / 100))
    assert table[0.0]["bpg_unmatched"] == "1"
    assert float(table[0.0]["ours_symbols"]) == pytest.approx(2000.0)  # kodim01..03 only
    assert float(table[0.0]["bpg_symbols"]) == pytest.approx(2200.0)
    assert float(table[10.0]["ours_symbols"]) == pytest.approx(2500.0)
    md = (full / "report" / "report.md").read_text()
    assert "The paper reports 11–12 %" in md
    assert "savings from 9.1 % to 23.1 % across 5 SNR points" in md
    assert "ours needed fewer symbols than BPG + LDPC at every SNR measured" in md
    assert "on 1 of 20 image–SNR pairs" in md


def test_html_embeds_figures_and_tables_without_external_assets(full: Path) -> None:
    page = (full / "report" / "report.html").read_text()
    for name in figures.FIGURE_FILES:
        assert f'<img src="{name}"' in page
    assert page.count("<table>") == 3  # settings, summary, symbols
    assert "<script" not in page and "<link" not in page and "http" not in page
    assert "ours is best" in page and "kodak24" in page


def test_partial_run_skips_figures_and_says_why(tmp_path: Path) -> None:
    out = write_run(tmp_path / "snr_only", {"snr"}, samples=False, equal_quality=False)
    md = write_report(out).read_text()
    report = out / "report"
    assert_png(report / figures.METRICS_VS_SNR)
    assert_png(report / figures.RADAR)
    for name in (figures.LPIPS_VS_NONKEY, figures.CHANNELS, figures.SAMPLES, "symbols_vs_bpg.csv"):
        assert not (report / name).exists()
    assert "Not drawn: The run has 1 non-key target(s)" in md
    assert "Not drawn: The run has 1 channel model(s)" in md
    assert "Not drawn: No saved originals" in md
    assert "Not measured: the run has no equal-quality rows at non-key target 0.5" in md
    assert "grid: base" not in md and "| grid: snr_db | 0, 5, 10, 15, 20 |" in md


def test_rerun_removes_figures_that_are_now_skipped(full: Path, tmp_path: Path) -> None:
    out = write_run(tmp_path / "again", {"channel"}, samples=False)
    write_report(out)
    assert (out / "report" / figures.CHANNELS).exists()
    (out / "results.jsonl").write_text("".join(
        line + "\n" for line in (out / "results.jsonl").read_text().splitlines() if '"awgn"' in line))
    write_report(out)
    assert not (out / "report" / figures.CHANNELS).exists()


def test_run_with_base_point_only_and_no_lpips_draws_nothing_and_does_not_crash(tmp_path: Path) -> None:
    out = write_run(tmp_path / "bare", set(), samples=False)
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    for r in lines:
        r["metrics"] = {k: v for k, v in r["metrics"].items() if k == "psnr"}
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    md = write_report(out).read_text()
    assert md.count("Not drawn:") == len(figures.FIGURE_FILES)
    assert not any((out / "report" / name).exists() for name in figures.FIGURE_FILES)
    assert "No LPIPS values" in md and "a radar chart needs three or more axes" in md
    assert (out / "report" / "report.html").is_file()


def test_corrupt_line_is_named(tmp_path: Path) -> None:
    out = write_run(tmp_path / "bad", set(), samples=False)
    lines = (out / "results.jsonl").read_text().splitlines()
    lines[2] = '{"image": "kodim01.png", "scheme": '
    (out / "results.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"results\.jsonl: line 3 is not valid JSON"):
        load_run(out)
    lines[2] = json.dumps(row("ours", "awgn", 10.0, 0.5, 0, status="finished"))
    (out / "results.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"results\.jsonl: line 3: status 'finished'"):
        load_run(out)
    lines[2] = json.dumps({k: v for k, v in row("ours", "awgn", 10.0, 0.5, 0).items() if k != "channel"})
    (out / "results.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"line 3: lacks channel"):
        load_run(out)
    lines[2] = json.dumps(row("ours", "awgn", 10.0, 0.5, 0, snr_db="ten"))
    (out / "results.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"line 3: snr_db must be a number"):
        load_run(out)


def test_missing_folder_or_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_run(tmp_path / "nowhere")
    out = write_run(tmp_path / "partial", set(), samples=False)
    (out / "run.json").write_text("{broken")
    with pytest.raises(ValueError, match=r"run\.json"):
        load_run(out)
    (out / "run.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"run\.json"):
        load_run(out)
