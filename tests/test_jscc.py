"""DeepJSCC codec: shapes, power, channel statistics, masked mode, training, checkpoints, shipped weights."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gensemcom.shared.jscc import (
    STRIDE,
    DeepJSCC,
    JsccConfig,
    JsccSymbols,
    WeightsError,
    latent_positions,
    load_pretrained,
    load_weights,
    save_weights,
    symbols_for_mask,
)
from gensemcom.shared.jscc.data import GpuImageBank, read_folder, read_rgb
from gensemcom.shared.jscc.evaluate import crop, noiseless_crop_psnr, psnr_8bit, to_tensor, transmit
from gensemcom.shared.jscc.cli import app
from gensemcom.shared.jscc.layers import BlockFadingChannel
from gensemcom.shared.jscc.train import (
    Progress,
    batch_loss,
    build_optimizer,
    learning_rate,
    TrainSettings,
    load_checkpoint,
    sample_batch,
)
from gensemcom.shared.jscc.zoo import PRETRAINED, WEIGHTS_DIR
from gensemcom.shared.paths import shared_data_dir

TINY = JsccConfig(channels=8, latent_channels=16, rates=(4, 8, 16))
TINY_ARGS = ["--channels", "8", "--latent-channels", "16", "--rates", "4,8,16"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny() -> DeepJSCC:
    torch.manual_seed(0)
    return DeepJSCC(TINY).eval()


@pytest.fixture(scope="module")
def shipped() -> DeepJSCC:
    return load_pretrained()


@pytest.fixture(scope="module")
def shipped_eval() -> dict:
    return json.loads((WEIGHTS_DIR / "deepjscc-afgdn.eval.json").read_text())


@pytest.fixture(scope="module")
def kodim23() -> torch.Tensor:
    return to_tensor(read_rgb(shared_data_dir() / "kodak24" / "kodim23.png"), "cpu")


# -- shapes and power ---------------------------------------------------------------------
@pytest.mark.parametrize("height, width", [(37, 53), (16, 16), (5, 7), (33, 17)])
def test_any_image_size_round_trips_with_the_stride_symbol_count(tiny: DeepJSCC, height: int, width: int) -> None:
    x = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        code = tiny.encode(x, 10.0, 8)
        y = tiny.decode(code, 10.0)
    blocks = math.ceil(height / STRIDE) * math.ceil(width / STRIDE)
    assert code.symbols.shape == (2, blocks * 8 // 2)
    assert code.symbols.dtype == torch.complex64
    assert y.shape == x.shape and float(y.min()) >= 0.0 and float(y.max()) <= 1.0


@pytest.mark.parametrize("rate", TINY.rates)
def test_each_image_gets_unit_average_symbol_power(tiny: DeepJSCC, rate: int) -> None:
    x = torch.rand(3, 3, 48, 40, generator=torch.Generator().manual_seed(2)) * torch.tensor([0.1, 1.0, 3.0])[:, None, None, None]
    mask = np.zeros((48, 40), dtype=bool)
    mask[3:20, 30:39] = True
    for code in (tiny.encode(x, 5.0, rate), tiny.encode(x, 5.0, rate, mask)):
        power = code.symbols.abs().square().mean(dim=1)
        torch.testing.assert_close(power, torch.ones(3), rtol=1e-5, atol=1e-5)


def test_awgn_noise_power_and_mmse_gain_match_theory() -> None:
    snr_db = torch.tensor([0.0, 10.0])
    symbols = torch.exp(2j * math.pi * torch.rand(2, 200_000, generator=torch.Generator().manual_seed(3)))
    received, effective = BlockFadingChannel()(symbols, snr_db, torch.tensor([False, False]), torch.Generator().manual_seed(4))
    noise_var = 10 ** (-snr_db / 10)
    # MMSE with h = 1: ŝ = y / (1 + σ²), so (1 + σ²) ŝ − s is the channel noise.
    noise = (1 + noise_var[:, None]) * received - symbols
    torch.testing.assert_close(noise.abs().square().mean(dim=1), noise_var, rtol=0.02, atol=0)
    torch.testing.assert_close(effective, snr_db)


def test_rayleigh_fades_are_unit_power_on_average() -> None:
    batch = 4000
    snr_db = torch.full((batch,), 7.0)
    symbols = torch.ones(batch, 4, dtype=torch.complex64)
    _, effective = BlockFadingChannel()(symbols, snr_db, torch.ones(batch, dtype=torch.bool), torch.Generator().manual_seed(5))
    gains = 10 ** (effective / 10) * 10 ** (-7.0 / 10)  # |h|² ~ Exp(1)
    assert abs(float(gains.mean()) - 1.0) < 0.06
    assert abs(float((gains < 1.0).float().mean()) - (1 - math.exp(-1))) < 0.03


# -- masked mode ----------------------------------------------------------------------------
def test_masked_symbol_count_grows_with_the_key_area(tiny: DeepJSCC) -> None:
    x = torch.rand(1, 3, 64, 80, generator=torch.Generator().manual_seed(6))
    previous = 0
    for side in (1, 10, 17, 33, 64):
        mask = np.zeros((64, 80), dtype=bool)
        mask[:side, :side] = True
        blocks = math.ceil(side / STRIDE) ** 2
        count = symbols_for_mask(mask, 8)
        assert count == blocks * 4
        assert tiny.encode(x, 3.0, 8, mask).symbols.shape[1] == count
        assert count >= previous
        previous = count
    unaligned = np.zeros((64, 80), dtype=bool)
    unaligned[15:17, 31:33] = True  # touches 2 × 2 blocks
    assert int(latent_positions(unaligned).sum()) == 4


def test_training_path_equals_encode_channel_decode(tiny: DeepJSCC) -> None:
    """The dense training forward and the packed deployed path are two implementations of one codec."""
    x = torch.rand(2, 3, 40, 50, generator=torch.Generator().manual_seed(7))
    mask = np.zeros((40, 50), dtype=bool)
    mask[5:20, 18:40] = True
    positions = latent_positions(mask)
    with torch.no_grad():
        code = tiny.encode(x, math.inf, 8, mask)
        deployed = tiny.decode(code, math.inf)
        dense = tiny(
            x,
            torch.full((2,), math.inf),
            torch.tensor([8, 8]),
            torch.tensor([False, True]),  # a fade with no noise is undone exactly
            torch.Generator().manual_seed(8),
            positions[None].expand(2, -1, -1),
        )
    torch.testing.assert_close(dense.clamp(0, 1), deployed, rtol=0, atol=1e-5)


def test_masked_mode_reconstructs_the_key_region_only(shipped: DeepJSCC, kodim23: torch.Tensor) -> None:
    image = kodim23[..., 128:256, 256:384]
    mask = np.zeros((128, 128), dtype=bool)
    mask[40:90, 30:100] = True
    with torch.no_grad():
        output = shipped.decode(shipped.encode(image, 10.0, 128, mask), 10.0)
    covered = latent_positions(mask).repeat_interleave(STRIDE, 0).repeat_interleave(STRIDE, 1)

    def region_psnr(region: torch.Tensor) -> float:
        error = (output - image)[..., region]
        return 10 * math.log10(1 / float(error.square().mean()))

    assert region_psnr(covered) > region_psnr(~covered) + 10.0


def test_bad_inputs_raise_value_error(tiny: DeepJSCC) -> None:
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match="rate"):
        tiny.encode(x, 10.0, 6)
    with pytest.raises(ValueError, match="mask shape"):
        tiny.encode(x, 10.0, 8, np.ones((16, 32), dtype=bool))
    with pytest.raises(ValueError, match="no pixels"):
        tiny.encode(x, 10.0, 8, np.zeros((32, 32), dtype=bool))
    with pytest.raises(ValueError, match="shape"):
        tiny.encode(torch.rand(1, 32, 32), 10.0, 8)
    code = tiny.encode(x, 10.0, 8)
    with pytest.raises(ValueError, match="symbols per image"):
        tiny.decode(JsccSymbols(code.symbols[:, :-1], 8, (32, 32), code.positions), 10.0)


# -- data and training ----------------------------------------------------------------------
def test_crops_are_flipped_or_transposed_windows_of_the_photos() -> None:
    rng = np.random.default_rng(9)
    photos = [rng.integers(0, 256, (20, 30, 3), dtype=np.uint8), rng.integers(0, 256, (30, 20, 3), dtype=np.uint8)]
    bank = GpuImageBank.from_arrays(photos, "cpu")
    crops = (bank.sample(16, 8, torch.Generator().manual_seed(10)) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    for patch in crops:
        variants = [np.rot90(patch, k) for k in range(4)] + [np.rot90(patch[::-1], k) for k in range(4)]
        found = any(
            (np.lib.stride_tricks.sliding_window_view(photo, v.shape) == v).all(axis=(-3, -2, -1)).any()
            for photo in photos
            for v in variants
        )
        assert found


def test_learning_rate_warms_up_then_decays_to_the_floor(tmp_path: Path) -> None:
    settings = TrainSettings(data=tmp_path, out=tmp_path, steps=100, warmup=10, lr=1e-3, min_lr=1e-5)
    rates = [learning_rate(Progress(step, 0, 100), settings) for step in range(101)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:], strict=False))
    assert rates[100] == pytest.approx(1e-5)


def test_a_few_cpu_training_steps_lower_the_loss(tmp_path: Path) -> None:
    photos = read_folder(shared_data_dir() / "train" / "bsds500", limit=4)
    bank = GpuImageBank.from_arrays(photos, "cpu")
    settings = TrainSettings(data=tmp_path, out=tmp_path, steps=40, batch=8, crop=32, lr=3e-3, config=TINY)
    torch.manual_seed(0)
    model = DeepJSCC(settings.config)
    optimizer = build_optimizer(model, settings)
    held_out = sample_batch(bank, settings, torch.Generator().manual_seed(11))

    def held_out_loss() -> float:
        with torch.no_grad():
            return float(batch_loss(model, held_out, torch.Generator().manual_seed(12), bf16=False))

    before = held_out_loss()
    generator = torch.Generator().manual_seed(13)
    for _ in range(40):
        loss = batch_loss(model, sample_batch(bank, settings, generator), generator, bf16=False)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = held_out_loss()
    assert after < 0.7 * before


def test_training_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    data = tmp_path / "photos"
    data.mkdir()
    for index, photo in enumerate(read_folder(shared_data_dir() / "train" / "bsds500", limit=2)):
        Image.fromarray(photo).save(data / f"{index}.png")
    common = ["--data", str(data), "--out", str(tmp_path / "run"), "--batch", "2", "--crop", "32", "--device", "cpu"]
    common += ["--log-every", "2", *TINY_ARGS]
    train = CliRunner().invoke(app, ["train", *common, "--steps", "6", "--time-budget-s", "0"])  # stops at the first log point
    assert train.exit_code == 0, train.output
    first = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert first["progress"]["step"] == 2 and not first["cycle_complete"]
    model = DeepJSCC(TINY)
    optimizer = build_optimizer(model, TrainSettings(data=data, out=tmp_path / "run", steps=6, config=TINY))
    restored = load_checkpoint(tmp_path / "run" / "checkpoint", model, optimizer, torch.Generator())
    assert restored == Progress(step=2, cycle_start=0, cycle_steps=6)
    resumed = CliRunner().invoke(app, ["train", *common, "--resume", str(tmp_path / "run" / "checkpoint")])
    assert resumed.exit_code == 0, resumed.output
    second = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert second["progress"] == {"step": 6, "cycle_start": 0, "cycle_steps": 6} and second["cycle_complete"]
    log = (tmp_path / "run" / "train_log.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in log[1:]] == ["2", "4", "6"]


# -- weights files --------------------------------------------------------------------------
def test_weights_round_trip_and_clear_errors(tiny: DeepJSCC, tmp_path: Path) -> None:
    path = tmp_path / "tiny.safetensors"
    save_weights(tiny, path, "tiny", "3", dtype=torch.float32)
    loaded = load_weights(path)
    assert (loaded.name, loaded.version, loaded.config) == ("tiny", "3", TINY)
    for key, value in tiny.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    with pytest.raises(FileNotFoundError, match="missing"):
        load_weights(tmp_path / "absent.safetensors")
    (tmp_path / "garbage.safetensors").write_bytes(b"not a safetensors file" * 10)
    with pytest.raises(WeightsError, match="corrupt"):
        load_weights(tmp_path / "garbage.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(WeightsError, match="corrupt"):
        load_weights(truncated)
    with pytest.raises(WeightsError, match="corrupt or replaced"):
        load_weights(path, tensors_sha256="0" * 64)
    other = DeepJSCC(JsccConfig(channels=8, latent_channels=16, rates=(4, 8, 16)))
    other.encoder.head = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)  # a different kernel than the header's architecture
    save_weights(other, tmp_path / "shape.safetensors", "tiny", "3")
    with pytest.raises(WeightsError, match="shape"):
        load_weights(tmp_path / "shape.safetensors")


def test_shipped_weights_fit_one_file_and_the_registry() -> None:
    entry = PRETRAINED["deepjscc-afgdn"]
    assert entry.path.stat().st_size < 16 * 2**20
    model = load_pretrained(entry.name)
    assert (model.name, model.version, model.digest) == (entry.name, entry.version, entry.tensors_sha256)
    with pytest.raises(ValueError, match="unknown"):
        load_pretrained("no-such-model")


def test_shipped_weights_reach_the_published_noiseless_crop_psnr(
    shipped: DeepJSCC, shipped_eval: dict, kodim23: torch.Tensor
) -> None:
    reference = shipped_eval["noiseless_crop"]
    assert reference["image"] == "kodim23.png"
    image = crop(kodim23, reference["box_top_left_height_width"])
    for rate, published in reference["psnr"].items():
        assert noiseless_crop_psnr(shipped, image, int(rate)) >= published - 0.1


def test_shipped_weights_psnr_rises_with_snr(shipped: DeepJSCC, kodim23: torch.Tensor) -> None:
    image = crop(kodim23, (192, 320, 128, 128))
    snr = torch.tensor([1.0, 7.0, 13.0, 19.0])
    output = transmit(shipped, image, snr, 128, False, torch.Generator().manual_seed(14))
    psnr = psnr_8bit(output, image.expand(4, -1, -1, -1))
    assert bool((psnr[1:] > psnr[:-1]).all()), psnr
