"""`semcom jscc` commands, the Kodak metrics (MS-SSIM, LPIPS) and the HEVC + LDPC digital reference."""

import io
import json
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gensemcom.shared.jscc import DeepJSCC, JsccConfig, save_weights
from gensemcom.shared.jscc.cli import app
from gensemcom.shared.jscc.digital import (
    DigitalSettings,
    HevcSearch,
    code_block_payloads,
    evaluate_digital,
    hevc_decode,
    max_payload_bytes,
    send_code_blocks,
)
from gensemcom.eval.metrics.backbones import load_features
from gensemcom.shared.jscc.evaluate import Lpips, ms_ssim_8bit, to_tensor
from gensemcom.shared.jscc.models import symbols_for_mask
from gensemcom.shared.paths import shared_data_dir
from gensemcom.shared.phy.link import symbols_for_payload
from gensemcom.shared.phy.mcs import choose_mcs, mcs_from_index

TINY = JsccConfig(channels=8, latent_channels=16, rates=(4, 8, 16))
SIDE = 176  # MS-SSIM's five scales need at least 161 pixels a side


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Two real 176×176 photo crops (HEVC on noise would not behave like on images)."""
    kodak = shared_data_dir() / "kodak24"
    return [np.array(Image.open(kodak / name).convert("RGB"))[100 : 100 + SIDE, 200 : 200 + SIDE] for name in
            ("kodim23.png", "kodim05.png")]


@pytest.fixture(scope="module")
def folder(photos: list[np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photos")
    for index, photo in enumerate(photos):
        Image.fromarray(photo).save(path / f"photo{index}.png")
    return path


# -- command line ---------------------------------------------------------------------------
def test_help_lists_the_commands_and_their_options() -> None:
    runner = CliRunner()
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0 and "train" in top.output and "eval" in top.output
    train = runner.invoke(app, ["train", "--help"])
    assert train.exit_code == 0
    for option in ("--steps", "--resume", "--init-weights", "--snr-min-db", "--weights-out", "--rates"):
        assert option in train.output
    evaluate = runner.invoke(app, ["eval", "--help"])
    assert evaluate.exit_code == 0
    for option in ("--weights", "--kodak", "--snrs", "--rayleigh-draws", "--lpips", "--digital-rates"):
        assert option in evaluate.output


def test_train_rejects_contradictory_settings(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--out", str(tmp_path), "--crop", "40", "--steps", "1"])
    assert isinstance(result.exception, ValueError) and "multiple of 16" in str(result.exception)
    result = CliRunner().invoke(app, ["train", "--out", str(tmp_path)])
    assert isinstance(result.exception, ValueError) and "steps is required" in str(result.exception)


def test_eval_checks_the_digital_rate_before_the_sweep(folder: Path, tmp_path: Path) -> None:
    weights = tmp_path / "tiny.safetensors"
    save_weights(DeepJSCC(TINY), weights, "tiny", "1", dtype=torch.float32)
    args = ["eval", "--weights", str(weights), "--kodak", str(folder), "--out", str(tmp_path / "r.json")]
    result = CliRunner().invoke(app, [*args, "--device", "cpu", "--digital-rates", "128"])
    assert isinstance(result.exception, ValueError) and "not one of this model's rates" in str(result.exception)
    assert not (tmp_path / "r.json").exists()


def test_eval_writes_every_metric_the_digital_reference_and_a_figure(folder: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    weights = tmp_path / "tiny.safetensors"
    save_weights(DeepJSCC(TINY), weights, "tiny", "1", dtype=torch.float32)
    out, figure = tmp_path / "report.json", tmp_path / "report.png"
    args = ["eval", "--weights", str(weights), "--kodak", str(folder), "--out", str(out), "--device", "cpu"]
    args += ["--snrs", "1,10", "--rayleigh-rates", "8", "--digital-rates", "16", "--code-blocks", "2"]
    args += ["--figure", str(figure)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["images"] == 2 and report["snr_db"] == [1.0, 10.0] and report["model"] == "tiny"
    for metric, low, high in (("psnr", 3.0, 60.0), ("ms_ssim", -1.0, 1.0), ("lpips", 0.0, 2.0)):
        assert set(report[metric]) == {"awgn", "rayleigh"}
        assert set(report[metric]["awgn"]) == {"4", "8", "16"} and set(report[metric]["rayleigh"]) == {"8"}
        values = [v for by_rate in report[metric].values() for series in by_rate.values() for v in series]
        assert len(values) == 2 * 4 and all(low <= v <= high for v in values)
    digital = report["digital"]["16"]
    assert digital["n_symbols"] == symbols_for_mask(np.ones((SIDE, SIDE), bool), 16)
    for channel in ("awgn", "rayleigh"):
        assert len(digital[channel]["psnr"]) == 2 and all(0 <= p <= 1 for p in digital[channel]["loss_rate"])
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "HEVC+LDPC" in result.output


# -- metrics ------------------------------------------------------------------------------------
def test_ms_ssim_is_one_for_identical_images_and_falls_with_noise(photos: list[np.ndarray]) -> None:
    image = to_tensor(photos[0], "cpu")
    assert float(ms_ssim_8bit(image, image)) == pytest.approx(1.0, abs=1e-6)
    generator = torch.Generator().manual_seed(0)
    noisy = [image + sigma * torch.randn(image.shape, generator=generator) for sigma in (0.02, 0.1)]
    scores = [float(ms_ssim_8bit(x, image)) for x in noisy]
    assert 1.0 > scores[0] > scores[1]
    with pytest.raises(ValueError, match="161"):
        ms_ssim_8bit(image[..., :100, :100], image[..., :100, :100])


def test_lpips_is_zero_for_identical_images_and_taps_torchvisions_alexnet(photos: list[np.ndarray]) -> None:
    metric = Lpips("cpu")
    image = to_tensor(photos[0], "cpu")
    assert float(metric(image, image)) == pytest.approx(0.0, abs=1e-7)
    assert float(metric(to_tensor(photos[1], "cpu"), image)) > 0.05
    # Independent check of the layer mapping: LPIPS's five taps are torchvision's ReLUs 1, 4, 7, 9, 11.
    features = load_features("alex")
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        taps = metric.model.net(x)
        expected, h = [], x
        for index, layer in enumerate(features):
            h = layer(h)
            if index in (1, 4, 7, 9, 11):
                expected.append(h)
    for tap, reference in zip(taps, expected, strict=True):
        torch.testing.assert_close(tap, reference)


# -- digital reference ----------------------------------------------------------------------
def test_quality_search_never_exceeds_the_budget_and_is_the_highest_that_fits(photos: list[np.ndarray]) -> None:
    search = HevcSearch(photos[0])
    sizes = {}
    for budget in (900, 2500, 6000, 15000):
        quality = search.best_fit(budget)
        assert quality is not None and len(search.encode(quality)) <= budget
        if quality < 100:  # the next quality, encoded afresh, does not fit
            buffer = io.BytesIO()
            heif = pillow_heif.from_bytes(mode="RGB", size=(SIDE, SIDE), data=photos[0].tobytes())
            heif.save(buffer, quality=quality + 1, chroma=444)
            assert len(buffer.getvalue()) > budget
        sizes[budget] = quality
    assert list(sizes.values()) == sorted(sizes.values())
    assert search.best_fit(10) is None


def test_payload_budget_is_the_largest_that_fits_the_symbols() -> None:
    for index, n_symbols in ((3, 5000), (8, 98304), (13, 2000)):
        mcs = mcs_from_index(index)
        payload = max_payload_bytes(n_symbols, mcs)
        assert symbols_for_payload(8 * payload, mcs) <= n_symbols < symbols_for_payload(8 * (payload + 1), mcs)
        assert payload <= n_symbols * mcs.spectral_efficiency / 8


def test_code_blocks_reassemble_the_payload_and_decode_only_above_threshold() -> None:
    rng = np.random.default_rng(0)
    payload = rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()  # 24 kbit: several code blocks
    mcs = mcs_from_index(8)
    parts = code_block_payloads(payload, mcs)
    assert parts.shape[0] > 1
    assert np.array_equal(parts.reshape(-1)[: 8 * len(payload)], np.unpackbits(np.frombuffer(payload, np.uint8)))
    assert send_code_blocks(payload, mcs, 2, mcs.snr_threshold_db + 6, False, rng) == (0, 2, parts.shape[0])
    errors, sent, _ = send_code_blocks(payload, mcs, 2, mcs.snr_threshold_db - 6, False, rng)
    assert errors == sent == 2


def test_at_high_snr_the_digital_psnr_is_the_hevc_psnr(folder: Path, photos: list[np.ndarray]) -> None:
    rate, snr = 32, 14.0  # 64-QAM 0.60, 1.3 dB above its threshold; one code block
    report = evaluate_digital(folder, rate, DigitalSettings((snr,), rayleigh_draws=0, code_blocks=2, ms_ssim=False),
                              progress=False)
    assert report["awgn"]["loss_rate"] == [0.0]
    # Independent: the highest quality that fits by a linear scan, decoded by PIL's HEIF plugin.
    budget = max_payload_bytes(symbols_for_mask(np.ones((SIDE, SIDE), bool), rate), choose_mcs(snr, margin_db=0.0))
    pillow_heif.register_heif_opener()
    psnrs = []
    for photo in photos:
        heif = pillow_heif.from_bytes(mode="RGB", size=(SIDE, SIDE), data=photo.tobytes())
        files = []
        for quality in range(101):
            buffer = io.BytesIO()
            heif.save(buffer, quality=quality, chroma=444)
            if len(buffer.getvalue()) > budget:
                break
            files.append(buffer.getvalue())
        decoded = np.array(Image.open(io.BytesIO(files[-1])).convert("RGB")).astype(float)
        assert np.array_equal(decoded, hevc_decode(files[-1]))
        psnrs.append(10 * np.log10(255.0**2 / np.mean((decoded - photo) ** 2)))
    assert report["awgn"]["psnr"][0] == pytest.approx(np.mean(psnrs), abs=1e-3)
    assert report["awgn"]["psnr_if_delivered"] == report["awgn"]["psnr"]
