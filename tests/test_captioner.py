"""BLIP captioner: INT4-mixed loading, Table II decoding, the merge rule, the structured prompt.

No model hub is reachable, so a tiny BLIP with random weights is built from BlipConfig,
written with save_pretrained and loaded back through the real loading path.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from bitsandbytes.nn import Linear4bit
from transformers import (
    BertTokenizer,
    BlipConfig,
    BlipForConditionalGeneration,
    BlipImageProcessor,
    BlipProcessor,
)

from gensemcom.receiver.inpaint import ClassicalInpainter
from gensemcom.transmitter.captioner.generate import (
    Candidate,
    Decoding,
    generate_captions,
    merge_captions,
    noun_phrases,
)
from gensemcom.transmitter.captioner.load import (
    HEAD_FP32_MODULES,
    Captioner,
    CaptionerNotFound,
    load_captioner,
    quantization_config,
)
from gensemcom.transmitter.captioner.prompt import CaptionedDescriptor, colour_names, make_describer, style_words
from gensemcom.transmitter.describe import Description, StructuredDescriptor, parse
from gensemcom.transmitter.segment import Segmentation

WORDS = ("a an the man woman person dog horse tree sky grass road car house beach sea water riding sitting "
         "standing on in of with and red blue green photo").split()
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
LAYERS = 2


def words(text: str) -> int:
    return len(text.split())


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BLIP captioner with its processor, saved as a model folder."""
    folder = tmp_path_factory.mktemp("tiny-blip")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(SPECIAL + WORDS) + "\n")
    tokenizer = BertTokenizer(str(vocab), bos_token="[DEC]")
    processor = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}),
                              tokenizer=tokenizer)
    size = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=LAYERS, num_attention_heads=2)
    config = BlipConfig(
        vision_config=dict(size, image_size=32, patch_size=8),
        text_config=dict(size, vocab_size=len(SPECIAL) + len(WORDS), encoder_hidden_size=32,
                         bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id,
                         sep_token_id=tokenizer.sep_token_id, eos_token_id=tokenizer.sep_token_id))
    torch.manual_seed(0)
    BlipForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def int4(model_dir: Path) -> Captioner:
    return load_captioner(model_dir, "int4-mixed", device="cpu")


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, Segmentation]:
    """A smooth two-tone background (no texture noise at the receiver) with a key block left of centre."""
    image = np.zeros((48, 64, 3), np.uint8)
    image[:24] = (70, 110, 200)
    image[24:] = (60, 150, 60)
    mask = np.zeros((48, 64), bool)
    mask[10:40, 8:24] = True
    image[mask] = (200, 40, 40)
    return image, Segmentation(mask=mask, source="test", labels=("person",))


def linears(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    return {name: module for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}


def test_int4_mixed_keeps_the_papers_modules_fp32_and_quantizes_the_rest(model_dir: Path, int4: Captioner) -> None:
    for name, module in linears(int4.model).items():
        if name.startswith("text_decoder"):
            assert type(module) is torch.nn.Linear and module.weight.dtype == torch.float32, name
        else:
            assert name.startswith("vision_model.encoder.layers.") and isinstance(module, Linear4bit), name
    assert int4.model.vision_model.embeddings.patch_embedding.weight.dtype == torch.float32
    quantized = [module for module in linears(int4.model).values() if isinstance(module, Linear4bit)]
    assert len(quantized) == 4 * LAYERS  # qkv, projection, fc1, fc2 per vision layer

    full = load_captioner(model_dir, "fp32", device="cpu").model
    packed = sum(module.weight.numel() for name, module in linears(full).items()
                 if name.startswith("vision_model.encoder"))
    # bitsandbytes packs two 4-bit weights per uint8 element: the count Table I reports drops by half of them.
    assert sum(p.numel() for p in int4.model.parameters()) == sum(p.numel() for p in full.parameters()) - packed // 2


def test_head_only_split_quantizes_the_text_transformer_but_not_the_vocabulary_head(model_dir: Path) -> None:
    captioner = load_captioner(model_dir, "int4-mixed", quant_type="fp4", device="cpu", keep_fp32=HEAD_FP32_MODULES)
    for name, module in linears(captioner.model).items():
        assert (type(module) is torch.nn.Linear) == name.startswith("text_decoder.cls"), name
    with pytest.raises(ValueError, match="text_decoder.cls"):
        quantization_config("int4-mixed", keep_fp32=("vision_model.embeddings",))
    with pytest.raises(ValueError, match="precision"):
        quantization_config("int3")


def test_table_ii_beams_are_ranked_by_length_normalised_log_probability(int4: Captioner) -> None:
    image = np.random.default_rng(3).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    decoding = Decoding(max_new_tokens=6)
    candidates = generate_captions(int4, image, decoding)
    assert len(candidates) == 3
    assert [c.score for c in candidates] == sorted((c.score for c in candidates), reverse=True)
    # Re-score each beam with one forward pass: sum of token log-probs / length ** 0.5 (Table II's penalty).
    pixels = int4.processor(images=image, return_tensors="pt")["pixel_values"]
    tokenizer = int4.processor.tokenizer
    for candidate in candidates:
        assert tokenizer.decode(candidate.token_ids, skip_special_tokens=True) == candidate.text
        ids = torch.tensor([[tokenizer.bos_token_id, *candidate.token_ids]])
        with torch.inference_mode():
            logits = int4.model(pixel_values=pixels, input_ids=ids).logits
        logprobs = torch.log_softmax(logits[0, :-1].float(), dim=-1).gather(1, ids[0, 1:, None]).sum()
        assert float(logprobs) / len(candidate.token_ids) ** 0.5 == pytest.approx(candidate.score, abs=1e-4)


def test_noun_phrases_start_at_determiners_and_stop_at_connectors_and_verbs() -> None:
    assert noun_phrases("a man riding a brown horse on the beach") == ["a man", "a brown horse", "the beach"]
    assert noun_phrases("two people standing in front of a tall building") == ["two people", "a tall building"]
    assert noun_phrases("people in a park") == ["a park"]


def test_merge_takes_the_best_beam_and_adds_new_noun_phrases_within_the_budget() -> None:
    beams = [Candidate("a man riding a brown horse in the ocean", -1.3),
             Candidate("a man riding a horse on a beach", -1.0),
             Candidate("a man riding a horse on the beach with a dog", -1.2)]
    assert merge_captions(beams, lambda text: words(text) <= 30) == \
        "a man riding a horse on a beach with a dog and the ocean"
    # "with a dog" fits in 12 words, "and the ocean" would not and is skipped.
    assert merge_captions(beams, lambda text: words(text) <= 12) == "a man riding a horse on a beach with a dog"
    assert merge_captions(beams, lambda text: words(text) <= 5) == "a man riding a horse"
    with pytest.raises(ValueError):
        merge_captions([], lambda text: True)


def test_labels_field_order_and_budget_with_word_counts(scene: tuple[np.ndarray, Segmentation]) -> None:
    description = Description(labels=["person left near large"], grid=np.full((1, 2, 3), 128, np.uint8),
                              texture="smooth", brightness="medium")
    beams = [Candidate("A man, on a beach; at dusk", -1.0), Candidate("a man on a beach with a dog", -1.5)]
    full = CaptionedDescriptor(None, max_tokens=100).labels(beams, description)
    assert full == ["caption a man on a beach at dusk with a dog", "person left near large", "colours grey",
                    "style monochrome photo"]
    # 15 words: caption (8) + person label (4) fit; colours (2) fits; style (3) does not; no room for "with a dog".
    assert CaptionedDescriptor(None, max_tokens=15).labels(beams, description) == \
        ["caption a man on a beach at dusk", "person left near large", "colours grey"]
    assert CaptionedDescriptor(None, max_tokens=4).labels(beams, description) == ["caption a man on"]


def test_structured_prompt_respects_the_token_budget_and_the_receiver_parses_it(
        int4: Captioner, scene: tuple[np.ndarray, Segmentation]) -> None:
    image, segmentation = scene
    structured = StructuredDescriptor()
    plain = structured(image, segmentation)
    for budget in (12, 40):
        describer = CaptionedDescriptor(int4, structured, max_tokens=budget, decoding=Decoding(max_new_tokens=8))
        assert describer.name == "blip-int4-mixed+structured"
        prompt = describer(image, segmentation)
        description = parse(prompt)
        words_part = ", ".join(description.labels)
        assert len(int4.processor.tokenizer(words_part, add_special_tokens=False)["input_ids"]) <= budget
        assert description.grid.tobytes() == parse(plain).grid.tobytes()
        # The receiver paints the same smooth background from either prompt: it read the new one fully.
        inpainter = ClassicalInpainter(structured)
        known = np.where(segmentation.mask[..., None], image, 0).astype(np.uint8)
        assert np.array_equal(inpainter(prompt, known, segmentation.mask), inpainter(plain, known, segmentation.mask))
    assert description.labels[0].startswith("caption ")
    assert "person left near medium" in description.labels


def test_colour_and_style_words_from_the_grid() -> None:
    grid = np.array([[[40, 90, 200], [30, 80, 190], [60, 150, 60]]], np.uint8)
    assert colour_names(grid) == ["blue", "green"]
    assert style_words(grid) == "vivid photo"
    assert style_words(np.full((2, 2, 3), 90, np.uint8)) == "monochrome photo"


def test_missing_model_gives_a_clear_error_and_the_describer_falls_back(
        tmp_path: Path, scene: tuple[np.ndarray, Segmentation]) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(CaptionerNotFound, match="put the model folder"):
        load_captioner(missing, "int4-mixed", device="cpu")
    describer = make_describer(missing, device="cpu")
    assert describer.name == "structured"
    image, segmentation = scene
    assert describer(image, segmentation) == StructuredDescriptor()(image, segmentation)


def test_the_transmitter_service_sends_the_blip_prompt_and_names_its_describer(model_dir: Path,
                                                                                astronaut_png: bytes) -> None:
    """Built from settings by the composition root, through the real 4-bit loading path."""
    from gensemcom.services import build_transmitter
    from gensemcom.shared.config import TransmitterSettings
    from gensemcom.shared.image_io import decode_image

    settings = TransmitterSettings(captioner=str(model_dir), key_codec="linear-dct", segmenter="saliency",
                                   device="cpu", digital="repetition")
    frame = build_transmitter(settings).encode(decode_image(astronaut_png), "caption")
    assert frame.header.describer == "blip-int4-mixed+structured"
    missing = build_transmitter(settings.model_copy(update={"captioner": str(model_dir / "absent")}))
    assert missing.describer.name == "structured"
