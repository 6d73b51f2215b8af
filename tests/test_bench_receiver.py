"""The receiver GPU benchmark: a CPU smoke run of the tiny model end to end, and the full-size architecture.

The smoke run exercises every code path but compilation (minutes on a CPU); the
full-size configs are checked against the published parameter counts of Stable
Diffusion 1.5 inpainting, built on the meta device (no memory, no time).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from gensemcom.receiver.random_sd import CLIP_L14_TEXT, SD15_INPAINT_UNET, SD_VAE

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "receiver_gpu.py"


def positive_timing(entry: dict) -> bool:
    return entry["median_ms"] > 0 and entry["min_ms"] > 0 and entry["peak_memory_mib"] > 0


def test_a_tiny_cpu_run_writes_every_measurement(tmp_path):
    out = tmp_path / "receiver_gpu.json"
    command = [sys.executable, str(SCRIPT), "--tiny", "--device", "cpu", "--batches", "1", "2",
               "--modes", "eager", "reduce-overhead", "--steps", "2", "--repeats", "1", "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())

    assert "random weights: speed and memory only" in report["note"]
    assert report["command"].endswith("--out " + str(out))
    assert report["machine"]["device"] == "cpu" and report["model"]["dtype"] == "float32"
    assert all(n > 0 for n in report["model"]["params"].values())
    settings = report["settings"]
    assert (settings["batches"], settings["steps"], settings["size"], settings["latent"]) == ([1, 2], 2, 64, 32)
    for part in ("text_encoder", "vae_encode", "vae_decode"):
        assert set(report[part]) == {"1", "2"} and all(positive_timing(e) for e in report[part].values()), part
    assert set(report["unet_cfg_step"]) == {"eager", "reduce-overhead"}
    assert "CUDA" in report["unet_cfg_step"]["reduce-overhead"]["skipped"]
    steps = report["unet_cfg_step"]["eager"]
    assert set(steps) == {"1", "2"} and all(positive_timing(e) for e in steps.values())
    parts = {name: report[name] for name in ("text_encoder", "vae_encode", "vae_decode")}
    for batch in (1, 2):
        b = str(batch)
        # The documented sum: steps guided UNet calls, two text encodings, one encode per frame, one decode.
        ms = (2 * steps[b]["median_ms"] + 2 * parts["text_encoder"][b]["median_ms"]
              + batch * parts["vae_encode"]["1"]["median_ms"] + parts["vae_decode"][b]["median_ms"])
        assert report["images_per_s_derived"]["eager"][b] == pytest.approx(1e3 * batch / ms, rel=1e-3)
        run = report["end_to_end"]["eager"][b]
        assert run["median_s"] > 0 and run["images_per_s"] == pytest.approx(batch / run["median_s"], rel=1e-3)
        assert run["path"].endswith("__call__" if batch == 1 else "inpaint_batch")
    assert report["inpainter_settings"]["steps"] == 2 and report["inpainter_settings"]["scheduler_class"] == \
           "DDIMScheduler"
    reference = report["reference_h100"]
    assert reference["unet_cfg_step_ms"]["reduce-overhead"] == {"1": 6.9, "8": 33.9}
    assert reference["images_per_s_at_20_steps"] == {"1": 1.1, "8": 5.7}
    target = report["target"]
    assert (target["images_per_s_at_20_steps"], target["batch1_end_to_end_s"]) == (10.0, 0.25)
    assert target["met"] is None  # a tiny run is no judgement on the targets
    assert "| eager | 2 |" in done.stdout


def test_the_full_size_configs_are_stable_diffusion_1_5_inpainting():
    """Published parameter counts: SD 1.5 UNet 859,520,964 plus 5 input channels × 320 × 3×3; SD VAE; CLIP-L text."""
    with torch.device("meta"):
        unet = UNet2DConditionModel(**SD15_INPAINT_UNET)
        vae = AutoencoderKL(**SD_VAE)
        text = CLIPTextModel(CLIPTextConfig(**CLIP_L14_TEXT))
    assert sum(p.numel() for p in unet.parameters()) == 859_520_964 + 5 * 320 * 9
    assert sum(p.numel() for p in vae.parameters()) == 83_653_863
    assert sum(p.numel() for p in text.parameters()) == 123_060_480
    assert 2 ** (len(SD_VAE["block_out_channels"]) - 1) * SD15_INPAINT_UNET["sample_size"] == 512
