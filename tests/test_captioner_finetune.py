"""QLoRA fine-tuning of the captioner: data checks, loss terms, λ/β schedule, training, adapter round trip.

No model hub: a tiny BLIP with random weights is built from a config, written with
save_pretrained and loaded back through load_captioner, the code path real weights take.
"""

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import BertTokenizerFast, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor
from typer.testing import CliRunner

from gensemcom.transmitter.captioner import finetune as ft
from gensemcom.transmitter.captioner.cli import app
from gensemcom.transmitter.captioner.data import CaptionDataset, read_captions
from gensemcom.transmitter.captioner.load import HEAD_FP32_MODULES, load_captioner

WORDS = "a the red blue green cat dog photo of on sky tree person riding".split()
CAPTIONS = ["a red cat on a tree", "the blue sky", "a photo of a dog", "a green person riding a dog"]
CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny BLIP captioner (random weights) and its processor, saved like a real checkpoint."""
    folder = tmp_path_factory.mktemp("tiny_blip")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", *WORDS]) + "\n")
    tokenizer = BertTokenizerFast(str(vocab), bos_token="[DEC]")
    processor = BlipProcessor(BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer)
    text = dict(vocab_size=6 + len(WORDS), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=32, bos_token_id=5, pad_token_id=0, sep_token_id=3,
                eos_token_id=3)
    vision = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, image_size=32,
                  patch_size=8, initializer_range=0.02)
    torch.manual_seed(0)
    BlipForConditionalGeneration(BlipConfig(text_config=text, vision_config=vision,
                                            image_text_hidden_size=32)).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def write_dataset(folder: Path, lines: list[str] | None = None) -> Path:
    """Four small noise images and a captions.jsonl (``lines`` overrides its text)."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, caption in enumerate(CAPTIONS):
        pixels = np.random.default_rng(i).integers(0, 256, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
        entries.append(json.dumps({"image": f"img{i}.png", "caption": caption}))
    (folder / "captions.jsonl").write_text("\n".join(entries if lines is None else lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("captions"))


def settings_for(model_dir: Path, data_dir: Path, out: Path, **changes) -> ft.FinetuneSettings:
    """Small, fast settings; the student is 4-bit with LoRA on 4-bit layers unless changed."""
    base = ft.FinetuneSettings(model=model_dir, data=data_dir, out=out, steps=12, batch_size=4, lr=5e-3,
                               keep_fp32=HEAD_FP32_MODULES, device="cpu", progress=False)
    return replace(base, **changes)


def fixed_batch(models: ft.Models, data_dir: Path) -> ft.CaptionBatch:
    dataset = CaptionDataset(data_dir)
    bos = models.base.config.text_config.bos_token_id
    return ft.make_batch(models.processor, [dataset[i] for i in range(len(dataset))], bos, 40, CPU)


def evaluate(models: ft.Models, batch: ft.CaptionBatch) -> dict[str, float]:
    """The loss terms at λ = β = 0.5 with fixed ITM negatives, no dropout."""
    models.student.eval()
    models.heads.eval()
    with torch.no_grad():
        return ft.compute_losses(models, batch, 0.5, 0.5, 2.0, torch.Generator().manual_seed(0)).as_floats()


def decoder_logits(model: BlipForConditionalGeneration, batch: ft.CaptionBatch) -> torch.Tensor:
    with torch.no_grad():
        states = ft.decoder_states(model, batch.input_ids, batch.attention_mask,
                                   ft.image_states(model, batch.pixel_values))
        return model.text_decoder.cls(states)


# ---------------------------------------------------------------- data

def test_dataset_reads_pairs_in_order(tmp_path):
    folder = write_dataset(tmp_path / "d")
    listing = folder / "captions.jsonl"
    listing.write_text(listing.read_text().replace("\n", "\n\n", 1))  # a blank line is skipped
    dataset = CaptionDataset(folder)
    assert len(dataset) == 4
    image, caption = dataset[2]
    assert caption == CAPTIONS[2] and image.mode == "RGB"
    expected = np.random.default_rng(2).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(image), expected)


@pytest.mark.parametrize("lines, message", [
    (['{"image": "img0.png", "caption": "a cat"}', '{"image": "img1.png", "caption": '],
     r"captions.jsonl:2: not valid JSON"),
    (['{"image": "img0.png"}'], r":1: missing \"caption\""),
    (['{"image": "img0.png", "caption": "   "}'], r":1: \"caption\" must be a non-empty string"),
    (['{"image": "img0.png", "caption": 3}'], r":1: \"caption\" must be a non-empty string"),
    (['{"caption": "a cat"}'], r":1: missing \"image\""),
    (['["img0.png", "a cat"]'], r":1: expected a JSON object"),
    (['{"image": "nope.png", "caption": "a cat"}'], r":1: image file .*nope.png not found"),
    (['{"image": "../img0.png", "caption": "a cat"}'], r"must be relative"),
    ([""], r"holds no captions"),
])
def test_bad_lines_raise_value_error_naming_the_line(tmp_path, lines, message):
    folder = write_dataset(tmp_path / "d", lines)
    with pytest.raises(ValueError, match=message):
        read_captions(folder)


def test_missing_listing_or_folder_or_undecodable_image_raise_value_error(tmp_path):
    folder = write_dataset(tmp_path / "d")
    (folder / "img1.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot decode image .*img1.png"):
        CaptionDataset(folder)[1]
    (folder / "captions.jsonl").unlink()
    with pytest.raises(ValueError, match="has no captions.jsonl"):
        CaptionDataset(folder)
    with pytest.raises(ValueError, match="does not exist"):
        CaptionDataset(tmp_path / "absent")


# ---------------------------------------------------------------- schedule and settings

def test_cosine_schedule_runs_from_start_to_end_flat_at_both_ends():
    steps = 21
    cosine = ft.WeightSchedule(1.0, 0.5, "cosine")
    values = np.array([cosine.at(k, steps) for k in range(steps)])
    t = np.arange(steps) / (steps - 1)
    np.testing.assert_allclose(values, 0.75 + 0.25 * np.cos(np.pi * t), atol=1e-12)
    assert values[0] == 1.0 and values[-1] == 0.5 and values[10] == pytest.approx(0.75)
    assert np.all(np.diff(values) < 0)
    linear = np.array([ft.WeightSchedule(1.0, 0.5, "linear").at(k, steps) for k in range(steps)])
    np.testing.assert_allclose(np.diff(linear), -0.025, atol=1e-12)
    assert abs(values[1] - values[0]) < abs(linear[1] - linear[0]) / 5  # flat start
    assert abs(values[-1] - values[-2]) < abs(linear[-1] - linear[-2]) / 5  # flat end
    assert [ft.WeightSchedule(0.3, 0.3).at(k, 7) for k in range(7)] == pytest.approx([0.3] * 7, rel=1e-15)
    assert ft.WeightSchedule(0.2, 0.9).at(0, 1) == 0.2


@pytest.mark.parametrize("make", [
    lambda: ft.WeightSchedule(1.5, 0.5),
    lambda: ft.WeightSchedule(1.0, -0.1),
    lambda: ft.WeightSchedule(1.0, 0.5, "step"),
    lambda: ft.WeightSchedule().at(5, 5),
])
def test_bad_schedule_raises(make):
    with pytest.raises(ValueError):
        make()


def test_batches_cover_each_epoch_once_and_need_a_full_batch():
    batches = ft.batch_indices(7, 3, torch.Generator().manual_seed(0))
    epoch = next(batches) + next(batches)
    assert len(set(epoch)) == 6 and set(epoch) <= set(range(7))
    with pytest.raises(ValueError, match="fewer than batch_size"):
        ft.batch_indices(4, 8, torch.Generator())


@pytest.mark.parametrize("change", [{"batch_size": 1}, {"precision": "fp16"}, {"lora_dropout": 1.0},
                                    {"steps": 0}, {"quant_type": "int3"}, {"target_modules": ()}])
def test_bad_settings_raise(tmp_path, change):
    with pytest.raises(ValueError):
        ft.FinetuneSettings(model=tmp_path, data=tmp_path, out=tmp_path, **change)


# ---------------------------------------------------------------- loss terms

def test_kl_is_zero_for_an_fp32_student_and_tiny_for_the_4bit_one(model_dir, data_dir, tmp_path):
    """LoRA's B starts at zero: an FP32 student is the teacher exactly; a 4-bit one differs only by quantization."""
    fp32 = ft.load_models(settings_for(model_dir, data_dir, tmp_path, precision="fp32"))
    batch = fixed_batch(fp32, data_dir)
    terms = evaluate(fp32, batch)
    assert terms["kl"] == 0.0
    assert all(math.isfinite(value) for value in terms.values())
    quantized = ft.load_models(settings_for(model_dir, data_dir, tmp_path))
    kl_4bit = evaluate(quantized, batch)["kl"]
    torch.manual_seed(1)
    stranger = BlipForConditionalGeneration(fp32.teacher.config).eval()  # same shape, other random weights
    kl_stranger = ft.distillation_loss(decoder_logits(stranger, batch), decoder_logits(fp32.teacher, batch),
                                       batch.labels, 2.0).item()
    assert 0.0 < kl_4bit < 1e-3 * kl_stranger


def test_caption_loss_is_the_models_own_loss_and_terms_combine_as_eq8(model_dir, data_dir, tmp_path):
    models = ft.load_models(settings_for(model_dir, data_dir, tmp_path))
    batch = fixed_batch(models, data_dir)
    with torch.no_grad():
        reference = models.base(pixel_values=batch.pixel_values, input_ids=batch.input_ids,
                                attention_mask=batch.attention_mask, labels=batch.labels).loss.item()
        terms = ft.compute_losses(models, batch, 0.3, 0.8, 2.0, torch.Generator().manual_seed(0))
    assert terms.ce.item() == pytest.approx(reference, rel=1e-6)
    expected = 0.3 * terms.itc + 0.7 * terms.itm + 0.8 * terms.kl + 0.2 * terms.ce
    assert terms.total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms.itc.item() > 0 and terms.itm.item() > 0


def test_itc_of_indistinguishable_pairs_is_log_batch_size():
    heads = ft.AlignmentHeads(8, 8, 4)
    same = torch.ones(5, 8)
    loss, similarity = ft.contrastive_loss(heads, same, same)
    assert loss.item() == pytest.approx(math.log(5), rel=1e-6)
    assert similarity.shape == (5, 5) and not similarity.requires_grad


def test_hard_negatives_never_pick_the_positive_and_follow_the_similarity():
    generator = torch.Generator().manual_seed(0)
    uniform = torch.zeros(6, 6)
    draws = torch.stack([ft.hard_negatives(uniform, generator) for _ in range(300)])
    assert not torch.any(draws == torch.arange(6))
    assert set(draws[:, 0].tolist()) == {1, 2, 3, 4, 5}
    peaked = torch.zeros(4, 4)
    peaked[:, 2] = 6.0
    peaked[2, 2], peaked[2, 3] = 12.0, 6.0  # row 2's most similar column other than its own is 3
    draws = torch.stack([ft.hard_negatives(peaked, generator) for _ in range(2000)])
    share = (draws == torch.tensor([2, 2, 3, 2])).double().mean(dim=0).numpy()
    rows = np.exp(peaked.double().numpy())
    weights = rows / rows.sum(axis=1, keepdims=True) + 1e-4  # BLIP: softmax, a 1e-4 floor, positive excluded
    np.fill_diagonal(weights, 0.0)
    expected = weights[[0, 1, 2, 3], [2, 2, 3, 2]] / weights.sum(axis=1)
    assert expected.min() > 0.9
    np.testing.assert_allclose(share, expected, atol=4 * np.sqrt(expected * (1 - expected) / 2000).max())


# ---------------------------------------------------------------- training

@pytest.fixture(scope="module")
def trained(model_dir, data_dir, tmp_path_factory):
    """One 12-step QLoRA run with LoRA on 4-bit layers: losses and weights before and after."""
    settings = settings_for(model_dir, data_dir, tmp_path_factory.mktemp("run"))
    models = ft.load_models(settings)
    batch = fixed_batch(models, data_dir)
    before = evaluate(models, batch)
    state = {name: value.detach().clone() for name, value in models.student.state_dict().items()}
    summary = ft.train(models, CaptionDataset(data_dir), settings)
    models.student.save_pretrained(settings.out / ft.ADAPTER_DIR)
    return {"settings": settings, "models": models, "batch": batch, "before": before, "state": state,
            "after": evaluate(models, batch), "summary": summary}


def test_lora_sits_on_4bit_layers_and_a_few_steps_lower_the_loss(trained):
    layer = trained["models"].base.text_decoder.bert.encoder.layer[0].attention.self.query
    assert type(layer.base_layer).__name__ == "Linear4bit"
    before, after = trained["before"], trained["after"]
    assert after["total"] < before["total"] - 0.2
    assert after["ce"] < before["ce"]


def test_only_adapter_weights_change(trained):
    after = trained["models"].student.state_dict()
    lora = [name for name in after if "lora_" in name]
    base = [name for name in after if "lora_" not in name]
    assert len(lora) == 2 * 2 * 2 * 4  # A and B × 2 layers × (self-, cross-attention) × (query, key, value, output)
    assert any(after[name].dtype == torch.uint8 for name in base)  # packed 4-bit weights are among them
    for name in base:
        assert torch.equal(after[name], trained["state"][name]), name
    for name in lora:
        assert not torch.equal(after[name], trained["state"][name]), name


def test_log_has_every_step_with_the_scheduled_weights(trained):
    settings = trained["settings"]
    with trained["summary"].log.open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == ft.LOG_COLUMNS and len(rows) == settings.steps
    for step, row in enumerate(rows):
        values = {key: float(value) for key, value in row.items()}
        assert all(math.isfinite(value) for value in values.values())
        lam, beta = values["lambda"], values["beta"]
        assert lam == pytest.approx(settings.lambda_schedule.at(step, settings.steps), rel=1e-12)
        assert beta == pytest.approx(settings.beta_schedule.at(step, settings.steps), rel=1e-12)
        combined = lam * values["itc"] + (1 - lam) * values["itm"] + beta * values["kl"] + (1 - beta) * values["ce"]
        assert values["total"] == pytest.approx(combined, rel=1e-5)


def test_saved_adapter_reloads_with_the_same_outputs(trained, model_dir):
    models, batch = trained["models"], trained["batch"]
    fresh = load_captioner(model_dir, "int4-mixed", keep_fp32=HEAD_FP32_MODULES, device="cpu").model
    plain = decoder_logits(fresh, batch)
    reloaded = ft.load_adapter(fresh, trained["settings"].out / ft.ADAPTER_DIR)
    expected = decoder_logits(models.base, batch)
    assert torch.equal(decoder_logits(reloaded.get_base_model(), batch), expected)
    assert not torch.allclose(plain, expected)  # the adapter does change the captioner
    generate = dict(pixel_values=batch.pixel_values, num_beams=3, max_new_tokens=6)
    with torch.no_grad():
        assert torch.equal(reloaded.generate(**generate), models.student.generate(**generate))
    with pytest.raises(ValueError, match="no LoRA adapter"):
        ft.load_adapter(fresh, trained["settings"].out)


def test_finetune_is_repeatable_and_the_cli_writes_adapter_and_log(trained, model_dir, data_dir, tmp_path):
    """The CLI run (same seed and settings) repeats the fixture's run bit for bit."""
    settings = trained["settings"]
    args = ["finetune", "--model", str(model_dir), "--data", str(data_dir), "--out", str(tmp_path),
            "--steps", str(settings.steps), "--batch-size", "4", "--lr", str(settings.lr), "--fp32-split", "head",
            "--device", "cpu", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"] == settings.steps
    assert (tmp_path / ft.ADAPTER_DIR / "adapter_config.json").is_file()
    assert json.loads((tmp_path / ft.SUMMARY_FILE).read_text())["settings"]["steps"] == settings.steps

    def losses(path: Path) -> list[dict]:
        with path.open() as f:
            return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]

    assert losses(tmp_path / ft.LOG_FILE) == losses(trained["summary"].log)


def test_accumulation_and_checkpointing_run(model_dir, data_dir, tmp_path):
    """Two micro-batches of 2 per step, activations recomputed in backward: still finite and logged."""
    settings = settings_for(model_dir, data_dir, tmp_path, steps=2, batch_size=2, grad_accum=2,
                            gradient_checkpointing=True)
    summary = ft.finetune(settings)
    assert summary.steps == 2 and math.isfinite(summary.last["total"])
    assert (tmp_path / ft.ADAPTER_DIR / "adapter_model.safetensors").is_file()


def test_cli_help_lists_the_options():
    result = CliRunner().invoke(app, ["finetune", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for option in ("--data", "--lora-rank", "--target-modules", "--lambda-start", "--beta-end", "--temperature",
                   "--grad-accum", "--fp32-split"):
        assert option in result.output
