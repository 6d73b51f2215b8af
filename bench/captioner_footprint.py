"""BLIP captioner footprint at FP32 / FP16 / INT8 / INT4 (paper's Table I) and beam-search time, as JSON.

    python bench/captioner_footprint.py --out bench/captioner_footprint.json [--models base large]
    python bench/captioner_footprint.py --device cuda --out ...   # the same on a GPU

No model hub is reachable, so each BLIP is built from the published config.json
values of Salesforce/blip-image-captioning-base and -large (written out below) with
random weights, saved with save_pretrained to a temporary folder, and loaded back
through ``BlipForConditionalGeneration.from_pretrained(quantization_config=...)`` with
the configs of :mod:`gensemcom.transmitter.captioner.load`. Footprint does not depend
on the weights' values; time barely does (the beams are forced to a fixed length).

Per variant it reports
- ``params``: ``sum(p.numel())`` as torch counts it; a 4-bit weight is a uint8 tensor
  holding two weights per element, so it counts half (this is what Table I's
  "Parameters" reports for the proposed model: see docs/captioner_footprint.md);
- ``weights``: the model's weights counted one per weight (unchanged by quantization);
- ``footprint``: ``model.get_memory_footprint()`` (parameters and buffers);
- ``tensor_bytes``: every tensor the model holds, the quantization constants too
  (4-bit absmax per 64 weights, INT8 row scales), shared tensors counted once;
- ``table_i_params`` / ``table_i_tensor_bytes``: the same plus one separate copy of the
  30524×768 head weight at the kept dtype. transformers 5 ties ``text_decoder.cls``'s
  decoder weight to the word embeddings (one tensor); the published checkpoint stores
  both, and Table I's 247.41 M counts both (with the head bias shared, as transformers 4
  did), so this column is the one to set beside Table I;
- ``generate``: seconds per Table II beam search (3 beams, length penalty 0.5,
  3 returned sequences, exactly ``--new-tokens`` new tokens) on one 384×384 image,
  median of ``--runs`` after one warm-up, with ``--threads`` CPU threads; wall clock and
  process CPU time (which ignores time spent descheduled on a shared machine).

Memory is given in GiB (2^30 bytes): Table I's 0.92 "GB" for 247.41 M FP32 weights
is 0.92 GiB (0.99 decimal GB).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import bitsandbytes
import numpy as np
import torch
import transformers
from bitsandbytes.nn import Linear4bit, Linear8bitLt
from PIL import Image
from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor

from gensemcom.shared.paths import shared_data_dir
from gensemcom.transmitter.captioner.generate import Decoding
from gensemcom.transmitter.captioner.load import HEAD_FP32_MODULES, PAPER_FP32_MODULES, quantization_config

GIB = 2**30
PAPER_TABLE_I = {"BLIP": {"params_m": 247.41, "memory_gb": 0.92},
                 "Proposed": {"params_m": 204.95, "memory_gb": 0.35}}

_TEXT = dict(vocab_size=30524, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
             max_position_embeddings=512, hidden_act="gelu", layer_norm_eps=1e-12, hidden_dropout_prob=0.0,
             attention_probs_dropout_prob=0.0, initializer_range=0.02, bos_token_id=30522, sep_token_id=102,
             pad_token_id=0, eos_token_id=2, is_decoder=True, tie_word_embeddings=True)
_VISION = dict(image_size=384, patch_size=16, num_channels=3, hidden_act="gelu", layer_norm_eps=1e-5, dropout=0.0,
               attention_dropout=0.0, initializer_range=0.02)
CONFIGS = {
    # Salesforce/blip-image-captioning-base, config.json (transformers 4.26 export).
    "base": dict(text_config=dict(_TEXT, encoder_hidden_size=768),
                 vision_config=dict(_VISION, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                    num_attention_heads=12),
                 projection_dim=512, image_text_hidden_size=256, logit_scale_init_value=2.6592),
    # Salesforce/blip-image-captioning-large: ViT-L/16 image encoder, the same BERT-base text decoder.
    "large": dict(text_config=dict(_TEXT, encoder_hidden_size=1024),
                  vision_config=dict(_VISION, hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                     num_attention_heads=16),
                  projection_dim=512, image_text_hidden_size=256, logit_scale_init_value=2.6592),
}
VARIANTS = {
    # name: (precision, modules kept out of quantization, dtype of everything not quantized)
    "fp32": ("fp32", PAPER_FP32_MODULES, torch.float32),
    "fp16": ("fp16", PAPER_FP32_MODULES, torch.float16),
    "int8-paper-split": ("int8", PAPER_FP32_MODULES, torch.float32),
    "int4-paper-split": ("int4-mixed", PAPER_FP32_MODULES, torch.float32),
    "int4-paper-split-fp16-rest": ("int4-mixed", PAPER_FP32_MODULES, torch.float16),
    "int4-head-kept": ("int4-mixed", HEAD_FP32_MODULES, torch.float32),
    "int4-head-kept-fp16-rest": ("int4-mixed", HEAD_FP32_MODULES, torch.float16),
}


def tensor_bytes(model: torch.nn.Module) -> int:
    """Bytes of every tensor the model holds, quantization constants included; shared storage counted once."""
    seen: dict[int, int] = {}

    def add(tensor: torch.Tensor) -> None:
        seen[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()

    def add_state(state: object) -> None:  # a bitsandbytes QuantState: absmax, code, nested state2
        for value in vars(state).values():
            if isinstance(value, torch.Tensor):
                add(value)
            elif value is not None and hasattr(value, "absmax"):
                add_state(value)

    for tensor in [*model.parameters(), *model.buffers()]:
        add(tensor)
        if getattr(tensor, "quant_state", None) is not None:
            add_state(tensor.quant_state)
        if getattr(tensor, "SCB", None) is not None:
            add(tensor.SCB)
    return sum(seen.values())


def weight_count(model: torch.nn.Module) -> int:
    """Weights one per weight: a packed 4-bit tensor counts its logical shape, not its uint8 storage."""
    total = 0
    for parameter in model.parameters():
        state = getattr(parameter, "quant_state", None)
        total += int(np.prod(state.shape)) if state is not None else parameter.numel()
    return total


def quantized_linears(model: torch.nn.Module) -> int:
    return sum(isinstance(module, (Linear4bit, Linear8bitLt)) for module in model.modules())


def pixel_values(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A real photo of a person at BLIP's input size (384×384, CLIP normalisation)."""
    image = Image.open(shared_data_dir() / "people" / "skimage_astronaut.png").convert("RGB")
    pixels = BlipImageProcessor()(images=np.array(image), return_tensors="pt")["pixel_values"]
    return pixels.to(device=device, dtype=dtype)


def time_generation(model: BlipForConditionalGeneration, pixels: torch.Tensor, new_tokens: int, runs: int,
                    device: torch.device) -> dict:
    """Seconds per Table II beam search forced to ``new_tokens`` tokens: median of ``runs`` after a warm-up."""
    decoding = Decoding(max_new_tokens=new_tokens)
    seconds, cpu_seconds = [], []
    for _ in range(runs + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            out = model.generate(pixel_values=pixels, do_sample=False, num_beams=decoding.num_beams,
                                 length_penalty=decoding.length_penalty,
                                 num_return_sequences=decoding.num_return_sequences,
                                 max_new_tokens=new_tokens, min_new_tokens=new_tokens)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
    assert out.shape == (decoding.num_return_sequences, new_tokens + 1)
    return {"median_s": statistics.median(seconds[1:]), "runs_s": seconds[1:], "warmup_s": seconds[0],
            "cpu_median_s": statistics.median(cpu_seconds[1:]), "cpu_runs_s": cpu_seconds[1:],
            "new_tokens": new_tokens, "num_beams": decoding.num_beams,
            "length_penalty": decoding.length_penalty, "num_return_sequences": decoding.num_return_sequences}


def measure(folder: Path, variant: str, device: torch.device, timing: dict | None) -> dict:
    precision, keep, dtype = VARIANTS[variant]
    config = quantization_config(precision, "nf4", "float32" if dtype == torch.float32 else "float16", keep)
    start = time.perf_counter()
    model = BlipForConditionalGeneration.from_pretrained(folder, quantization_config=config, dtype=dtype,
                                                         device_map={"": str(device)})
    row = {
        "variant": variant, "precision": precision, "kept_out_of_quantization": list(keep) if config else [],
        "rest_dtype": str(dtype).removeprefix("torch."), "load_s": time.perf_counter() - start,
        "params": sum(p.numel() for p in model.parameters()), "weights": weight_count(model),
        "quantized_linears": quantized_linears(model),
        "footprint_bytes": model.get_memory_footprint(), "tensor_bytes": tensor_bytes(model),
    }
    row["params_m"] = row["params"] / 1e6
    row["footprint_gib"] = row["footprint_bytes"] / GIB
    row["tensor_gib"] = row["tensor_bytes"] / GIB
    if timing is not None:
        pixels = pixel_values(device, model.vision_model.embeddings.patch_embedding.weight.dtype)
        row["generate"] = time_generation(model, pixels, timing["new_tokens"], timing["runs"], device)
    del model
    gc.collect()
    return row


def bench_model(name: str, device: torch.device, variants: list[str], timing: dict | None) -> dict:
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(BlipConfig(**CONFIGS[name]))
    built = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        checkpoint_bytes = (Path(tmp) / "model.safetensors").stat().st_size
        del model
        gc.collect()
        rows = []
        for variant in variants:
            rows.append(measure(Path(tmp), variant, device, timing))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "generate"} |
                             {"generate_s": rows[-1].get("generate", {}).get("median_s")}), flush=True)
    text = CONFIGS[name]["text_config"]
    head = text["vocab_size"] * text["hidden_size"]
    for row in rows:
        row["table_i_params"] = row["params"] + head
        head_bytes = head * torch.finfo(getattr(torch, row["rest_dtype"])).bits // 8
        row["table_i_tensor_bytes"] = row["tensor_bytes"] + head_bytes
        row["table_i_tensor_gib"] = row["table_i_tensor_bytes"] / GIB
    fp32 = next((row for row in rows if row["variant"] == "fp32"), None)
    if fp32 is not None:
        for row in rows:
            row["tensor_saving_vs_fp32"] = 1 - row["tensor_bytes"] / fp32["tensor_bytes"]
            row["table_i_saving_vs_fp32"] = 1 - row["table_i_tensor_bytes"] / fp32["table_i_tensor_bytes"]
    return {"config": CONFIGS[name], "params_built": built, "checkpoint_bytes": checkpoint_bytes, "variants": rows}


def markdown(report: dict) -> str:
    """The footprint table of the report, for docs/captioner_footprint.md."""
    lines = ["| model | variant | params (M, torch count) | get_memory_footprint (GiB) | all tensors (GiB) | "
             "Table I convention: params (M) | Table I convention: memory (GiB) | saving vs FP32 | "
             "beam-3 caption, wall (CPU) s |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, model in report["models"].items():
        for row in model["variants"]:
            seconds = (f"{row['generate']['median_s']:.1f} ({row['generate']['cpu_median_s']:.1f})"
                       if "generate" in row else "–")
            lines.append(f"| {name} | {row['variant']} | {row['params_m']:.2f} | {row['footprint_gib']:.3f} | "
                         f"{row['tensor_gib']:.3f} | {row['table_i_params'] / 1e6:.2f} | "
                         f"{row['table_i_tensor_gib']:.3f} | {100 * row['table_i_saving_vs_fp32']:.0f} % | "
                         f"{seconds} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/captioner_footprint.json"))
    parser.add_argument("--models", nargs="+", choices=sorted(CONFIGS), default=["base", "large"])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    parser.add_argument("--time-models", nargs="*", choices=sorted(CONFIGS), default=["base"],
                        help="models whose generation is timed (all variants)")
    parser.add_argument("--runs", type=int, default=3, help="timed generations per variant, after one warm-up")
    parser.add_argument("--new-tokens", type=int, default=20, help="tokens each beam generates")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    report = {
        "paper_table_i": PAPER_TABLE_I,
        "load_average": os.getloadavg(),
        "settings": {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
                     or platform.machine(), "threads": args.threads, "torch": torch.__version__,
                     "transformers": transformers.__version__, "bitsandbytes": bitsandbytes.__version__,
                     "python": platform.python_version(), "quant_type": "nf4", "input": "384x384",
                     "date": time.strftime("%Y-%m-%d")},
        "models": {},
    }
    for name in args.models:
        timing = {"runs": args.runs, "new_tokens": args.new_tokens} if name in args.time_models else None
        report["models"][name] = bench_model(name, device, args.variants, timing)
    report["load_average_after"] = os.getloadavg()
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))


if __name__ == "__main__":
    main()
