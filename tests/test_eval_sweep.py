"""`semcom eval run`: a small sweep end to end, resuming, parallel workers, and the live services.

Checks against independent truth where there is one: the grid's conditions are
the union of three one-dimensional sweeps; a resumed run does only what is
missing; two workers give the rows one worker gives; the services, reached over
gRPC, give the very images the in-process chain gives (same code, same seeds).
"""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from gensemcom.eval.cli import app
from gensemcom.eval.schemes import Condition
from gensemcom.eval.sweep import Grid, SweepSettings, plan, ratio_copies, read_rows, row_key, run_sweep
from gensemcom.shared.image_io import decode_image

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

FAST_METRICS = ("psnr", "ssim", "lpips_alex", "mask_iou")
GRID = Grid(snr_db=(5.0, 15.0), nonkey_target=(0.5, 0.7), channel=("awgn", "rayleigh"),
            base=Condition("awgn", 15.0, 0.5))


@pytest.fixture(scope="module")
def images(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two small photos (a person, a landscape) so that every scheme runs in seconds."""
    folder = tmp_path_factory.mktemp("images")
    for name in ("people/mediapipe_sergey.png", "kodak24/kodim23.png"):
        image = decode_image((data_dir / name).read_bytes())
        small = cv2.resize(image, (192, 160) if image.shape[1] > image.shape[0] else (160, 192),
                           interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / Path(name).with_suffix(".png").name), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    return folder


@pytest.fixture(scope="module")
def small_run(images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    result = CliRunner().invoke(app, [
        "run", "--input", str(images), "--out", str(out), "--schemes", "bpg-ldpc,directlygen",
        "--snr", "5,15", "--ratios", "0.5,0.7", "--channels", "awgn,rayleigh", "--base-snr", "15",
        "--metrics", ",".join(FAST_METRICS), "--samples", "1", "--workers", "1", "--tx", "key_codec=linear-dct",
    ])
    assert result.exit_code == 0, result.output
    return out


def test_grid_is_three_sweeps_through_the_base() -> None:
    conditions = GRID.conditions()
    expected = {("awgn", 5.0, 0.5), ("awgn", 15.0, 0.5), ("awgn", 15.0, 0.7), ("rayleigh", 15.0, 0.5)}
    assert {(c.channel, c.snr_db, c.nonkey_target) for c in conditions} == expected
    assert len(conditions) == len(expected)
    with pytest.raises(ValueError, match="unknown channel"):
        Grid(channel=("awgn", "tdl-x"))


def test_ratio_free_schemes_run_once_and_are_copied_to_other_ratios(tmp_path: Path) -> None:
    tasks = plan([(tmp_path / "a.png", "d")], GRID, ("ours", "directlygen"), n_samples=1)
    by_ratio = {t.condition.nonkey_target: t.schemes for t in tasks if t.condition.snr_db == 15.0
                and t.condition.channel == "awgn"}
    assert by_ratio == {0.5: ("ours", "directlygen"), 0.7: ("ours",)}
    assert sum(t.sample for t in tasks) == 1 and next(t for t in tasks if t.sample).condition == GRID.base
    row = {"image": "a.png", "scheme": "directlygen", "channel": "awgn", "snr_db": 15.0, "nonkey_target": 0.5,
           "seed": 0, "detail": {}}
    assert [c["nonkey_target"] for c in ratio_copies(row, GRID)] == [0.7]
    assert ratio_copies({**row, "scheme": "ours"}, GRID) == []


def test_small_sweep_writes_rows_for_every_scheme_and_condition(small_run: Path) -> None:
    rows = read_rows(small_run / "results.jsonl")
    schemes = {"ours", "bpg-ldpc", "directlygen"}  # bpg-ldpc brings ours, its budget
    assert {r["scheme"] for r in rows} == schemes
    keys = [row_key(r) for r in rows]
    assert len(keys) == len(set(keys)) == 2 * 4 * 3  # images × conditions × schemes (copies included)
    assert all(r["status"] in ("ok", "lost") for r in rows), [r["error"] for r in rows if r["status"] == "error"]
    for row in rows:
        assert set(row["metrics"]) == set(FAST_METRICS)
        if row["scheme"] == "bpg-ldpc":
            ours = next(r for r in rows if r["scheme"] == "ours" and row_key(r)[2:] == row_key(row)[2:]
                        and r["image"] == row["image"])
            assert row["budget"] == ours["symbols"] and row["symbols"] <= row["budget"]
    ours_high = [r for r in rows if r["scheme"] == "ours" and r["snr_db"] == 15.0 and r["channel"] == "awgn"]
    assert all(abs(r["alpha"] - (1 - r["nonkey_target"])) <= 0.1 for r in ours_high)
    settings = json.loads((small_run / "run.json").read_text())
    assert settings["schemes"] == ["ours", "directlygen", "bpg-ldpc"] and settings["images"] == 2


def test_samples_and_equal_quality_rows(small_run: Path) -> None:
    (sample,) = (small_run / "samples").iterdir()
    assert {p.stem for p in sample.iterdir()} == {"original", "ours", "directlygen", "bpg-ldpc"}
    equal = read_rows(small_run / "equal_quality.jsonl")
    assert {(r["image"], r["snr_db"], r["nonkey_target"]) for r in equal} == {
        (name, snr, ratio) for name in ("mediapipe_sergey.png", "kodim23.png")
        for snr, ratio in ((5.0, 0.5), (15.0, 0.5), (15.0, 0.7))}
    for row in equal:
        if row["bpg_symbols"] is not None:
            assert row["saved"] == pytest.approx(1 - row["ours_symbols"] / row["bpg_symbols"], abs=1e-6)
            assert row["bpg_value"] <= row["ours_value"]  # LPIPS: BPG reached ours' quality


def test_report_writes_every_figure(small_run: Path) -> None:
    report = small_run / "report"
    for name in ("lpips_vs_nonkey.png", "metrics_vs_snr.png", "channels.png", "radar.png", "samples.png",
                 "report.md", "report.html", "summary.csv", "symbols_vs_bpg.csv"):
        assert (report / name).stat().st_size > 0, name
    assert (report / "radar.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_does_only_what_is_missing(small_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    out.mkdir()
    for name in ("run.json", "results.jsonl", "equal_quality.jsonl"):
        (out / name).write_bytes((small_run / name).read_bytes())
    lines = (out / "results.jsonl").read_text().splitlines()
    dropped = json.loads(lines[-1])
    (out / "results.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])  # a cut-off write
    held = json.loads((out / "run.json").read_text())
    paths = [(Path(p), d) for p, d in held["image_paths"]]
    same = dict(schemes=("bpg-ldpc", "directlygen"), grid=GRID, metrics=FAST_METRICS,
                transmitter={"key_codec": "linear-dct"})
    with pytest.raises(ValueError, match="other settings"):
        run_sweep(paths, out, SweepSettings(**same, samples=0))
    summary = run_sweep(paths, out, SweepSettings(**same, samples=1), progress=False)
    assert summary["tasks"] == 1 and summary["skipped_tasks"] == 2 * 4 - 1
    rows = read_rows(out / "results.jsonl")
    assert len(rows) == len(lines) and len({row_key(r) for r in rows}) == len(rows)
    again = next(r for r in rows if row_key(r) == row_key(dropped))
    assert again["metrics"] == pytest.approx(dropped["metrics"])  # seeded: the same draw, the same result


def test_bad_options_are_refused_before_any_work(images: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    for args, message in ((["--schemes", "ours,jpeg"], "unknown scheme"), (["--ratios", "0.5,1.5"], "strictly"),
                          (["--via", "http", "x:1"], "grpc HOST:PORT"), (["--tx", "bandwidth_ratio=7"], "bandwidth"),
                          (["--metrics", "fid"], "unknown metric")):
        result = runner.invoke(app, ["run", "--input", str(images), "--out", str(tmp_path / "o"), *args])
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    assert not (tmp_path / "o").exists()


def test_services_over_grpc_give_the_in_process_images(images: Path, tmp_path: Path) -> None:
    """The same sweep through the live services (transmitter profiles, per-image α, seeded channel) and in process."""
    from gensemcom.demo import local_chain

    settings = dict(schemes=("ours", "humanonly", "directlygen"), metrics=("psnr",), samples=0, equal_quality=False,
                    grid=Grid(snr_db=(10.0,), nonkey_target=(0.7,), channel=("rayleigh",),
                              base=Condition("rayleigh", 10.0, 0.7, seed=5)))
    paths = [(images / "mediapipe_sergey.png", "images")]
    run_sweep(paths, tmp_path / "local", SweepSettings(**settings), progress=False)
    with local_chain(tmp_path / "logs") as chain:
        run_sweep(paths, tmp_path / "grpc", SweepSettings(**settings, via=chain.address), progress=False)
    local = {row_key(r): r for r in read_rows(tmp_path / "local" / "results.jsonl")}
    remote = {row_key(r): r for r in read_rows(tmp_path / "grpc" / "results.jsonl")}
    assert local.keys() == remote.keys() and len(local) == 3
    for key, row in local.items():
        assert remote[key]["via"] == "grpc" and row["via"] == "in-process"
        assert remote[key]["symbols"] == row["symbols"], key
        assert remote[key]["metrics"]["psnr"] == pytest.approx(row["metrics"]["psnr"], abs=1e-6), key
