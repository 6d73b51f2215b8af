"""Load a BLIP captioner at one of four precisions, the INT4 one mixed as in the paper.

The paper (Sec. III-A, Table I) keeps "the vision projection layer and text
encoder" in FP32 and quantizes the rest to INT4 with bitsandbytes. The captioning
model ``BlipForConditionalGeneration`` has only two parts, ``vision_model`` (a ViT)
and ``text_decoder`` (a BERT with cross-attention, ``text_decoder.bert``, plus the
vocabulary head ``text_decoder.cls``); it has no ``vision_proj`` and no separate text
encoder (those belong to BLIP's retrieval model). So the paper's split maps to:

- ``vision_model.embeddings``: the patch projection (pixels → image tokens). It is a
  Conv2d and an embedding table, which bitsandbytes never quantizes anyway; it is
  listed so the split is explicit.
- ``text_decoder``: the whole text transformer ("text encoder": it is a BERT encoder
  stack run causally), including its cross-attention key/value layers, which are the
  projection of the image tokens into the text stream, and the head ``text_decoder.cls``.

Everything else, i.e. every nn.Linear of the vision transformer, becomes Linear4bit.
This reproduces Table I's count exactly (247.41 M → 204.95 M, see
docs/captioner_footprint.md). The head ``text_decoder.cls`` must be in the list in
any split: transformers skips the output embedding automatically only when no skip
list is given, and the head's decoder weight is tied to the word-embedding table (a
lookup that bitsandbytes cannot quantize), so quantizing it would store the
vocabulary twice and perturb the very logits that beam search ranks.

No model hub is needed when ``id_or_path`` is a local folder written by
``save_pretrained``; a hub id works where the hub (or its local cache) is reachable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import torch
from transformers import BitsAndBytesConfig, BlipForConditionalGeneration, BlipProcessor

from gensemcom.shared.paths import shared_data_dir
from gensemcom.shared.device import resolve_device

Precision = Literal["fp32", "fp16", "int8", "int4-mixed"]
QuantType = Literal["nf4", "fp4"]
ComputeDtype = Literal["float32", "bfloat16", "float16"]

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8", "int4-mixed")
PAPER_FP32_MODULES: tuple[str, ...] = ("vision_model.embeddings", "text_decoder")
"""Modules the paper's split keeps in FP32 (prefixes of module names; see the module docstring)."""
HEAD_FP32_MODULES: tuple[str, ...] = ("text_decoder.cls",)
"""The smallest split that still works: only the vocabulary head stays in full precision."""

DEFAULT_MODEL = "blip-image-captioning-base"


def default_model_dir() -> Path:
    """Where a captioner folder is looked for by default: <shared data>/models/blip-image-captioning-base."""
    return shared_data_dir() / "models" / DEFAULT_MODEL


class CaptionerNotFound(FileNotFoundError):
    """No captioner weights at the given place (and no hub to fetch them from)."""


@dataclass
class Captioner:
    """A loaded BLIP captioning model with its processor (image preprocessing + tokenizer)."""

    model: BlipForConditionalGeneration
    processor: BlipProcessor
    precision: str
    source: str
    """The id or path it was loaded from."""

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def name(self) -> str:
        """Short tag for frame headers and logs, e.g. "blip-int4-mixed"."""
        return f"blip-{self.precision}"


def quantization_config(precision: Precision, quant_type: QuantType = "nf4", compute_dtype: ComputeDtype = "float32",
                        keep_fp32: Sequence[str] = PAPER_FP32_MODULES) -> BitsAndBytesConfig | None:
    """The bitsandbytes config for ``precision`` (None for fp32/fp16); ``keep_fp32`` are never quantized."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if quant_type not in ("nf4", "fp4"):
        raise ValueError(f"quant_type must be 'nf4' or 'fp4', got {quant_type!r}")
    if compute_dtype not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"compute_dtype must be float32, bfloat16 or float16, got {compute_dtype!r}")
    keep = list(keep_fp32)
    if not any(name == "text_decoder" or name.startswith("text_decoder.cls") for name in keep):
        raise ValueError(f"keep_fp32 must include 'text_decoder.cls' (the tied vocabulary head), got {keep}")
    if precision == "int8":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=keep)
    if precision == "int4-mixed":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant_type,
                                  bnb_4bit_compute_dtype=getattr(torch, compute_dtype), llm_int8_skip_modules=keep)
    return None


def load_captioner(id_or_path: str | Path, precision: Precision = "int4-mixed", quant_type: QuantType = "nf4",
                   compute_dtype: ComputeDtype = "float32", device: torch.device | str | None = None,
                   keep_fp32: Sequence[str] = PAPER_FP32_MODULES) -> Captioner:
    """Load model and processor from a local folder (or a hub id where a hub is reachable).

    ``device`` None means the accelerator if torch sees one, else the CPU. Modules not
    quantized are FP32, except at precision "fp16" where the whole model is FP16.
    Raises CaptionerNotFound with where to put the folder when nothing can be loaded.
    """
    config = quantization_config(precision, quant_type, compute_dtype, keep_fp32)
    place = resolve_device(device)
    source = _resolve(id_or_path)
    dtype = torch.float16 if precision == "fp16" else torch.float32
    try:
        processor = BlipProcessor.from_pretrained(source)
        model = BlipForConditionalGeneration.from_pretrained(
            source, quantization_config=config, dtype=dtype, device_map={"": str(place)})
    except OSError as error:
        raise CaptionerNotFound(_missing_message(id_or_path)) from error
    model.eval()
    return Captioner(model=model, processor=processor, precision=precision, source=str(id_or_path))


def _resolve(id_or_path: str | Path) -> str:
    """A local folder as a string; a path that looks local but is absent raises at once (no hub round trip)."""
    path = Path(id_or_path).expanduser()
    if path.is_dir():
        return str(path)
    text = str(id_or_path)
    looks_local = isinstance(id_or_path, Path) or path.is_absolute() or text.startswith((".", "~")) \
        or text.count("/") != 1
    if looks_local:
        raise CaptionerNotFound(_missing_message(id_or_path))
    return text


def _missing_message(id_or_path: str | Path) -> str:
    return (f"cannot load a BLIP captioner from {str(id_or_path)!r} (a hub id needs the hub or its cache): put the "
            f"model folder (config.json, model.safetensors, preprocessor_config.json and tokenizer files, as written "
            f"by save_pretrained) at {default_model_dir()} or pass a local path")
