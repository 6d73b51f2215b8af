"""Diffusion receiver speed and memory: Stable Diffusion 1.5 inpainting on a GPU (or the CPU), as JSON.

    python bench/receiver_gpu.py --out bench/receiver_gpu.json            # the accelerator torch sees
    python bench/receiver_gpu.py --modes eager compile --batches 1 8 ...  # a subset
    python bench/receiver_gpu.py --tiny --device cpu --batches 1 2 --modes eager --steps 2 --repeats 1 \\
        --out /tmp/receiver_gpu.json                                      # smoke run of the plumbing

No model hub is reachable, so the SD 1.5 inpainting architecture is built from its
published configs with random weights (gensemcom/receiver/random_sd.py: the 9-channel
UNet, the SD autoencoder, the text tower of openai/clip-vit-large-patch14, a
character-level CLIP tokenizer). Speed and memory do not depend on the weights'
values; the pictures are noise.

Measured, with torch's scaled_dot_product_attention, float16 on an accelerator and
float32 on the CPU, at ``--size`` pixels (latent side = size / 8):

- the UNet step with classifier-free guidance: one UNet call on twice the batch
  (unconditional and prompted), as the pipeline makes per step, for each batch and
  each mode: ``eager``, ``compile`` (``torch.compile``, default mode) and
  ``reduce-overhead`` (``torch.compile(mode="reduce-overhead")``: CUDA graphs, so
  CUDA only; elsewhere the JSON says it was skipped). Compiled modes use
  ``dynamic=False``: each batch size gets its own graph, as a server with a fixed
  set of batch sizes would;
- the autoencoder's encode (one masked image, as the pipeline does it: with a
  generator per frame it encodes frame by frame) and decode, and the text encoder
  (a batch of 77-token prompts; the pipeline runs it twice, prompt and negative);
- images per second at ``--steps`` steps, derived from those parts and measured end
  to end through :class:`~gensemcom.receiver.inpaint_diffusion.DiffusionInpainter`
  (batch 1 through its call, larger batches through ``inpaint_batch``; DDIM, which
  makes exactly one UNet call per step, guidance 7.5), which adds the image
  pre- and post-processing and the scheduler;
- peak memory: the accelerator's ``max_memory_allocated`` (weights included), or on
  the CPU the process's peak resident set, a high-water mark that never goes down.

Latencies are the median of ``--repeats`` timed calls after warm-up calls (which
include compilation; the first call's time is reported as ``first_call_s``). End-to-end
runs (``--e2e-repeats``) come after the parts have run at the same shapes, so only a
compiled UNet gets an untimed run first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import diffusers
import numpy as np
import torch
import transformers
from diffusers import StableDiffusionInpaintPipeline
from tqdm import tqdm

from machine import cpu_model, load_average  # bench/machine.py, beside this script
from gensemcom.receiver.inpaint_diffusion import DiffusionInpainter
from gensemcom.receiver.random_sd import CONFIGS, random_inpainting_pipeline
from gensemcom.shared.device import resolve_device

MIB = 2**20
MODES = ("eager", "compile", "reduce-overhead")
GUIDANCE = 7.5
PROMPT = "a person standing in a sunny park with trees and a path"
NOTE = "random weights: speed and memory only (the architecture is SD 1.5 inpainting's; the images are noise)"

REFERENCE_H100 = {
    "source": "issue 7: SD 1.5 inpainting, float16, 512x512, on an H100",
    "unet_cfg_step_ms": {"eager": {"1": 43.5, "4": 41.0, "8": 52.3}, "compile": {"1": 33.2},
                         "reduce-overhead": {"1": 6.9, "8": 33.9}},
    "vae_encode_ms": 11.9,
    "vae_decode_ms": 25.6,
    "text_encoder_ms": 5.7,
    "images_per_s_at_20_steps": {"1": 1.1, "8": 5.7},
}
TARGET = {"images_per_s_at_20_steps": 10.0, "batch1_end_to_end_s": 0.25,
          "where": "through the receiver service, SD 1.5 inpainting at 512x512, 20 steps"}


def significant(value: float) -> float:
    """``value`` to 4 significant digits: images/s span 0.002 (a CPU) to tens (a GPU)."""
    return float(f"{value:.4g}")


class Probe:
    """Timing and peak memory on one device: accelerator work is synchronised before each clock reading."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.accelerator = device.type != "cpu"

    def sync(self) -> None:
        if self.accelerator:
            torch.accelerator.synchronize(self.device)

    def reset_peak(self) -> None:
        if self.accelerator:
            torch.accelerator.reset_peak_memory_stats(self.device)

    def peak_mib(self) -> float:
        """Accelerator: peak allocated since the last reset. CPU: the process's peak RSS so far (Linux: KiB)."""
        if self.accelerator:
            return round(torch.accelerator.max_memory_allocated(self.device) / MIB, 1)
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    def allocated_mib(self) -> float | None:
        return round(torch.accelerator.memory_allocated(self.device) / MIB, 1) if self.accelerator else None

    def time(self, run: Callable[[], object], repeats: int, warmup: int = 1) -> dict[str, Any]:
        """Median and best of ``repeats`` timed calls after ``warmup`` untimed ones; the first call's seconds."""
        self.reset_peak()
        seconds = []
        for _ in range(warmup + repeats):
            self.sync()
            start = time.perf_counter()
            run()
            self.sync()
            seconds.append(time.perf_counter() - start)
        timed = seconds[warmup:]
        return {"median_ms": round(1e3 * statistics.median(timed), 3), "min_ms": round(1e3 * min(timed), 3),
                "first_call_s": round(seconds[0], 3), "repeats": repeats, "peak_memory_mib": self.peak_mib()}


def unet_runner(pipeline: StableDiffusionInpaintPipeline, mode: str) -> Callable[..., Any]:
    """The UNet as ``mode`` runs it. Static shapes: each batch size compiles (and graphs) once."""
    if mode == "eager":
        return pipeline.unet
    torch.compiler.reset()  # drop the previous mode's graphs (and their CUDA graph memory)
    if mode == "compile":
        return torch.compile(pipeline.unet, dynamic=False)
    return torch.compile(pipeline.unet, mode="reduce-overhead", dynamic=False)


def unet_step(unet: Callable[..., Any], pipeline: StableDiffusionInpaintPipeline, batch: int, latent: int,
              graphs: bool) -> Callable[[], object]:
    """One guided denoising step's UNet call, as the pipeline makes it (so its compiled graphs serve the pipeline).

    Under ``no_grad`` like the pipeline: tensors made under ``inference_mode`` would fail the compiled graph's
    guards there and compile it again.
    """
    device, dtype = pipeline.device, pipeline.unet.dtype
    generator = torch.Generator(device).manual_seed(batch)
    sample = torch.randn(2 * batch, pipeline.unet.config.in_channels, latent, latent, generator=generator,
                         device=device, dtype=dtype)
    context = torch.randn(2 * batch, 77, pipeline.unet.config.cross_attention_dim, generator=generator,
                          device=device, dtype=dtype)
    timestep = torch.tensor(981, device=device)

    def run() -> object:
        if graphs:  # a new CUDA graph replay: the previous output is no longer read
            torch.compiler.cudagraph_mark_step_begin()
        with torch.no_grad():
            noise = unet(sample, timestep, encoder_hidden_states=context, timestep_cond=None,
                         cross_attention_kwargs=None, added_cond_kwargs=None, return_dict=False)[0]
            unconditional, prompted = noise.chunk(2)
            return unconditional + GUIDANCE * (prompted - unconditional)

    return run


def part_runs(pipeline: StableDiffusionInpaintPipeline, batch: int, size: int, latent: int
              ) -> dict[str, Callable[[], object]]:
    """Text encoder, autoencoder encode and decode on a batch, called as the pipeline calls them."""
    device, dtype = pipeline.device, pipeline.unet.dtype
    ids = pipeline.tokenizer([PROMPT] * batch, padding="max_length", max_length=pipeline.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids.to(device)
    generator = torch.Generator(device).manual_seed(batch)
    image = torch.rand(batch, 3, size, size, generator=generator, device=device, dtype=dtype) * 2 - 1
    latents = torch.randn(batch, 4, latent, latent, generator=generator, device=device, dtype=dtype)
    noise = torch.Generator("cpu").manual_seed(0)  # the inpainter's generators live on the CPU
    scale = pipeline.vae.config.scaling_factor

    @torch.no_grad()
    def text() -> object:
        return pipeline.text_encoder(ids)[0]

    @torch.no_grad()
    def encode() -> object:
        return pipeline.vae.encode(image).latent_dist.sample(noise) * scale

    @torch.no_grad()
    def decode() -> object:
        return pipeline.vae.decode(latents / scale, return_dict=False)[0]

    return {"text_encoder": text, "vae_encode": encode, "vae_decode": decode}


def sample_frames(batch: int, size: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``batch`` size×size frames: a random key region (a centred box) on a black canvas, and the prompt."""
    rng = np.random.default_rng(size)
    frames = []
    for _ in range(batch):
        known = np.zeros((size, size), dtype=bool)
        known[size // 4 : 3 * size // 4, size // 3 : 2 * size // 3] = True
        canvas = np.zeros((size, size, 3), dtype=np.uint8)
        canvas[known] = rng.integers(0, 256, (int(known.sum()), 3), dtype=np.uint8)
        frames.append((PROMPT, canvas, known))
    return frames


def end_to_end(inpainter: DiffusionInpainter, probe: Probe, batch: int, size: int, repeats: int,
               warmup: int) -> dict[str, Any]:
    """Frames in, frames out through the inpainter: its call for one frame, ``inpaint_batch`` for more."""
    frames = sample_frames(batch, size)
    if batch == 1:
        (prompt, canvas, known), = frames

        def run() -> object:
            return inpainter(prompt, canvas, known, seed=1)
    else:
        def run() -> object:
            return inpainter.inpaint_batch(frames, list(range(batch)), max_batch=batch)

    timing = probe.time(run, repeats, warmup)
    seconds = timing["median_ms"] / 1e3
    return {"median_s": round(seconds, 4), "min_s": round(timing["min_ms"] / 1e3, 4),
            "first_call_s": timing["first_call_s"], "repeats": repeats,
            "images_per_s": significant(batch / seconds), "peak_memory_mib": timing["peak_memory_mib"],
            "path": "DiffusionInpainter.__call__" if batch == 1 else "DiffusionInpainter.inpaint_batch"}


def derived_images_per_s(parts: dict[str, dict[str, dict]], unet: dict[str, dict], batch: int, steps: int) -> float:
    """Images/s from the parts: steps UNet calls, two text encodings, one encode per frame, one batched decode."""
    ms = (steps * unet[str(batch)]["median_ms"] + 2 * parts["text_encoder"][str(batch)]["median_ms"]
          + batch * parts["vae_encode"]["1"]["median_ms"] + parts["vae_decode"][str(batch)]["median_ms"])
    return significant(1e3 * batch / ms)


def machine_info(device: torch.device, threads: int) -> dict[str, Any]:
    info = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else
                       cpu_model() if device.type == "cpu" else str(device),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": threads,
        "load_average_1min_before": load_average(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
    }
    if device.type != "cpu":
        info["accelerator_memory_mib"] = round(torch.accelerator.get_memory_info(device)[1] / MIB)
    return info


def target_check(report: dict[str, Any], tiny: bool) -> dict[str, Any]:
    """Whether the best measured end-to-end figures reach the targets; judged only on the real configuration."""
    settings = report["settings"]
    if tiny or settings["steps"] != 20 or settings["size"] != 512:
        return dict(TARGET, met=None, why_not_judged="needs the full-size model at 512 px and 20 steps")
    runs = [(mode, batch, run) for mode, by_batch in report["end_to_end"].items() for batch, run in by_batch.items()]
    best = max(runs, key=lambda r: r[2]["images_per_s"])
    batch1 = [(mode, run) for mode, batch, run in runs if batch == "1"]
    met = {"images_per_s": best[2]["images_per_s"] >= TARGET["images_per_s_at_20_steps"]}
    best_batch1 = min(batch1, key=lambda r: r[1]["median_s"]) if batch1 else None
    if best_batch1 is not None:
        met["batch1_end_to_end_s"] = best_batch1[1]["median_s"] <= TARGET["batch1_end_to_end_s"]
    return dict(TARGET, met=met, best_images_per_s={"mode": best[0], "batch": int(best[1]),
                                                    "images_per_s": best[2]["images_per_s"]},
                best_batch1_end_to_end=None if best_batch1 is None else
                {"mode": best_batch1[0], "median_s": best_batch1[1]["median_s"]})


def markdown(report: dict[str, Any]) -> str:
    """UNet step and images/s per mode and batch, for bench/README.md."""
    lines = ["| mode | batch | UNet CFG step (ms) | images/s derived | images/s end to end | peak memory (MiB) |",
             "|---|---:|---:|---:|---:|---:|"]
    for mode, by_batch in report["unet_cfg_step"].items():
        if "skipped" in by_batch:
            lines.append(f"| {mode} | – | skipped: {by_batch['skipped']} | | | |")
            continue
        for batch, step in by_batch.items():
            run = report["end_to_end"][mode][batch]
            lines.append(f"| {mode} | {batch} | {step['median_ms']:.1f} | "
                         f"{report['images_per_s_derived'][mode][batch]:.3g} | {run['images_per_s']:.3g} | "
                         f"{step['peak_memory_mib']:.0f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/receiver_gpu.json"), help="JSON file to write")
    parser.add_argument("--device", default=None, help="torch device (default: the accelerator torch sees, else cpu)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8, 16], help="frames per pipeline call")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="how the UNet runs")
    parser.add_argument("--steps", type=int, default=20, help="denoising steps for images/s")
    parser.add_argument("--size", type=int, default=None, help="image side in pixels (default 512; 64 with --tiny)")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per latency, after warm-up")
    parser.add_argument("--e2e-repeats", type=int, default=3, help="timed end-to-end runs per mode and batch")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    parser.add_argument("--tiny", action="store_true",
                        help="the tests' tiny model at 64 px: a smoke run, not a benchmark")
    args = parser.parse_args(argv)
    args.size = args.size or (64 if args.tiny else 512)
    # Sides the whole chain takes unchanged: autoencoder × UNet down-sampling (8 × 8; 2 × 2 tiny), and the
    # inpainter's working grid (16; 8 tiny), so the parts run at the size the end-to-end runs see.
    grid = 8 if args.tiny else 64
    if args.size % grid:
        parser.error(f"--size must be a multiple of {grid}")
    if min(args.batches) < 1 or args.steps < 1 or args.repeats < 1 or args.e2e_repeats < 1:
        parser.error("--batches, --steps, --repeats and --e2e-repeats must be >= 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dtype = torch.float32 if device.type == "cpu" else torch.float16
    batches = sorted(set(args.batches) | {1})  # the encode of one frame enters every derived figure
    graphs_skipped = "reduce-overhead" in args.modes and device.type != "cuda"
    modes = [mode for mode in args.modes if not (mode == "reduce-overhead" and graphs_skipped)]
    probe = Probe(device)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    machine = machine_info(device, args.threads)

    architecture = "tiny" if args.tiny else "sd15"
    pipeline = random_inpainting_pipeline(architecture, device, dtype)
    latent = args.size // pipeline.vae_scale_factor
    report: dict[str, Any] = {
        "note": NOTE,
        "command": "python bench/receiver_gpu.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": started,
        "machine": machine,
        "model": {
            "architecture": "tiny test model (not SD 1.5)" if args.tiny else "Stable Diffusion 1.5 inpainting",
            **CONFIGS[architecture],
            "tokenizer": "character-level CLIP tokenizer, prompts padded to 77 tokens",
            "params": {name: sum(p.numel() for p in getattr(pipeline, name).parameters())
                       for name in ("unet", "vae", "text_encoder")},
            "dtype": str(dtype).removeprefix("torch."),
            "attention": "torch scaled_dot_product_attention (diffusers AttnProcessor2_0; transformers sdpa)",
            "weights_mib": probe.allocated_mib(),
        },
        "settings": {"size": args.size, "latent": latent, "steps": args.steps, "guidance_scale": GUIDANCE,
                     "batches": batches, "modes": args.modes, "repeats": args.repeats,
                     "e2e_repeats": args.e2e_repeats, "end_to_end_scheduler": "ddim"},
        "units": "ms per call (median of repeats; min_ms the best), s per end-to-end run, images/s; memory in MiB "
                 "(2^20 bytes): accelerator max_memory_allocated since the measurement began, weights included, "
                 "or on the CPU the process's peak RSS so far",
    }
    inpainter = DiffusionInpainter(pipeline, scheduler="ddim", steps=args.steps, guidance_scale=GUIDANCE,
                                   size=args.size, device=device, dtype=dtype)  # DDIM: one UNet call per step
    eager_unet = pipeline.unet
    tasks = len(batches) * (3 + 2 * len(modes))
    with tqdm(total=tasks, desc="receiver bench", file=sys.stderr) as bar:
        parts: dict[str, dict[str, dict]] = {"text_encoder": {}, "vae_encode": {}, "vae_decode": {}}
        for batch in batches:
            for name, run in part_runs(pipeline, batch, args.size, latent).items():
                bar.set_description(f"{name} b{batch}")
                parts[name][str(batch)] = probe.time(run, args.repeats)
                bar.update()
        report.update(parts)
        report["unet_cfg_step"], report["images_per_s_derived"], report["end_to_end"] = {}, {}, {}
        for mode in modes:
            unet = unet_runner(pipeline, mode)
            steps = report["unet_cfg_step"][mode] = {}
            for batch in batches:
                bar.set_description(f"UNet {mode} b{batch}")
                run = unet_step(unet, pipeline, batch, latent, graphs=mode == "reduce-overhead")
                steps[str(batch)] = probe.time(run, args.repeats, warmup=1 if mode == "eager" else 3)
                bar.update()
            report["images_per_s_derived"][mode] = {str(b): derived_images_per_s(parts, steps, b, args.steps)
                                                    for b in batches}
            inpainter.pipeline.unet = unet
            report["end_to_end"][mode] = {}
            for batch in batches:
                bar.set_description(f"end to end {mode} b{batch}")
                # Every part already ran at these shapes; a compiled UNet still gets one untimed run, in case
                # the pipeline's call misses a guard of the graphs compiled above and compiles again.
                report["end_to_end"][mode][str(batch)] = end_to_end(inpainter, probe, batch, args.size,
                                                                    args.e2e_repeats, int(mode != "eager"))
                bar.update()
            inpainter.pipeline.unet = eager_unet
    if graphs_skipped:
        report["unet_cfg_step"]["reduce-overhead"] = {"skipped": f"CUDA graphs need a CUDA device, not {device}"}
    report["inpainter_settings"] = inpainter.settings
    report["machine"]["load_average_1min_after"] = load_average()
    report["reference_h100"] = REFERENCE_H100
    report["target"] = target_check(report, args.tiny)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
