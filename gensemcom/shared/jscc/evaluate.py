"""Evaluate a DeepJSCC weights file on Kodak24: PSNR vs SNR for AWGN and block Rayleigh at every rate.

``python -m gensemcom.shared.jscc.evaluate --weights W --kodak DIR --out eval.json``.
Images go through the deployed path (``encode`` → channel → ``decode``) at full size.
The JSON also stores a noise-free PSNR on one fixed crop, which the CPU tests recompute
from the shipped weights: it ties the shipped file to its published numbers.
"""

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gensemcom.shared.jscc.data import image_files, read_rgb
from gensemcom.shared.jscc.models import DeepJSCC, cbr
from gensemcom.shared.jscc.train import default_device
from gensemcom.shared.jscc.zoo import load_weights

EVAL_SNRS_DB = (1.0, 4.0, 7.0, 10.0, 13.0, 16.0, 19.0)
#: SwinJSCC (Yang et al., 2024), Kodak, AWGN, CBR 1/12: PSNR in dB by SNR in dB.
SWINJSCC_KODAK_AWGN_CBR_1_12 = {1: 30.35, 4: 31.98, 7: 33.34, 10: 34.41, 13: 35.19}
#: The test crop: image, and (top, left, height, width).
REFERENCE_CROP = ("kodim23.png", (192, 320, 128, 128))


def to_tensor(array: np.ndarray, device: torch.device | str) -> Tensor:
    """(H, W, 3) uint8 → (1, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None].float().div(255.0).to(device)


def psnr_8bit(output: Tensor, reference: Tensor) -> Tensor:
    """Per-image PSNR (dB) of the output rounded to 8 bits, as it would be delivered."""
    delivered = output.mul(255.0).round().div(255.0)
    mse = (delivered - reference).square().flatten(1).mean(dim=1)
    return 10.0 * torch.log10(1.0 / mse)


@torch.no_grad()
def transmit(
    model: DeepJSCC, image: Tensor, snr_db: Tensor, rate: int, rayleigh: bool, generator: torch.Generator
) -> Tensor:
    """Send one image once per entry of ``snr_db`` through the deployed path; returns the reconstructions."""
    batch = image.expand(snr_db.numel(), -1, -1, -1)
    code = model.encode(batch, snr_db, rate)
    fading = torch.full((snr_db.numel(),), rayleigh, device=image.device)
    received, effective_snr_db = model.channel(code.symbols, snr_db, fading, generator)
    return model.decode(code.with_symbols(received), effective_snr_db)


@torch.no_grad()
def noiseless_crop_psnr(model: DeepJSCC, image: Tensor, rate: int) -> float:
    """PSNR through a noise-free channel (both ends conditioned as for the top of the SNR range)."""
    code = model.encode(image, math.inf, rate)
    return float(psnr_8bit(model.decode(code, math.inf), image).mean())


def crop(image: Tensor, box: Sequence[int]) -> Tensor:
    top, left, height, width = box
    return image[..., top : top + height, left : left + width]


@torch.no_grad()
def evaluate(
    model: DeepJSCC,
    kodak: Path,
    snrs_db: Sequence[float] = EVAL_SNRS_DB,
    rayleigh_draws: int = 4,
    seed: int = 0,
) -> dict[str, object]:
    """Mean PSNR over the images of ``kodak`` (and over fading draws) per channel, rate and SNR."""
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    images = [to_tensor(read_rgb(path), device) for path in image_files(kodak)]
    results: dict[str, dict[str, list[float]]] = {"awgn": {}, "rayleigh": {}}
    started = time.perf_counter()
    for rate in model.config.rates:
        for channel, draws in (("awgn", 1), ("rayleigh", rayleigh_draws)):
            snr = torch.tensor(snrs_db, device=device).repeat(draws)
            total = torch.zeros(len(snrs_db), device=device)
            for image in images:
                output = transmit(model, image, snr, rate, channel == "rayleigh", generator)
                total += psnr_8bit(output, image).view(draws, -1).mean(dim=0)
            results[channel][str(rate)] = [round(float(v), 3) for v in total / len(images)]
    sweep_s = time.perf_counter() - started
    name, box = REFERENCE_CROP
    reference = crop(to_tensor(read_rgb(kodak / name), device), box)
    return {
        "images": len(images),
        "metric": "PSNR (dB) of the 8-bit output, mean over images (and over fading draws)",
        "snr_db": list(snrs_db),
        "rayleigh_draws": rayleigh_draws,
        "cbr": {str(rate): cbr(rate) for rate in model.config.rates},
        "psnr": results,
        "swinjscc_kodak_awgn_cbr_1_12": {str(k): v for k, v in SWINJSCC_KODAK_AWGN_CBR_1_12.items()},
        "noiseless_crop": {
            "image": name,
            "box_top_left_height_width": list(box),
            "psnr": {str(rate): round(noiseless_crop_psnr(model, reference, rate), 3) for rate in model.config.rates},
        },
        "sweep_s": round(sweep_s, 1),
    }


@torch.no_grad()
def time_codec(model: DeepJSCC, size: tuple[int, int] = (512, 768), repeats: int = 20) -> float:
    """Median milliseconds to encode and decode one image of ``size`` (noise-free), after warm-up."""
    device = next(model.parameters()).device
    image = torch.rand(1, 3, *size, device=device)
    times = []
    for index in range(repeats + 3):
        if device.type != "cpu":
            torch.accelerator.synchronize()
        start = time.perf_counter()
        model.decode(model.encode(image, 10.0, model.config.rates[0]), 10.0)
        if device.type != "cpu":
            torch.accelerator.synchronize()
        if index >= 3:
            times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``semcom jscc eval``: writes the JSON and prints the AWGN table."""
    parser = argparse.ArgumentParser(prog="semcom jscc eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--kodak", type=Path, required=True, help="folder with kodim01.png … kodim24.png")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--device", default=default_device())
    parser.add_argument("--rayleigh-draws", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model = load_weights(args.weights, args.device)
    report = {
        "model": model.name,
        "version": model.version,
        "weights_file": args.weights.name,
        "weights_tensors_sha256": model.digest,
        "device": torch.cuda.get_device_name() if torch.device(args.device).type == "cuda" else args.device,
        **evaluate(model, args.kodak, rayleigh_draws=args.rayleigh_draws, seed=args.seed),
        "encode_decode_ms_768x512_fp32": round(time_codec(model), 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    for channel in ("awgn", "rayleigh"):
        print(f"{channel:8s} SNR " + " ".join(f"{s:6.0f}" for s in report["snr_db"]))
        for rate, values in report["psnr"][channel].items():
            print(f"  rate {rate:>3s}     " + " ".join(f"{v:6.2f}" for v in values))
    print("noiseless crop", report["noiseless_crop"]["psnr"], "codec ms", report["encode_decode_ms_768x512_fp32"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
