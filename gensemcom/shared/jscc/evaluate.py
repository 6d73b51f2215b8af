"""Evaluate a DeepJSCC model on Kodak: PSNR, MS-SSIM and LPIPS vs SNR, AWGN and block Rayleigh, every rate.

Images go through the deployed path (``encode`` → channel → ``decode``) at full size and are
scored as delivered: rounded to 8 bits. The encoder sees only the average SNR, so one encoding
per image, rate and SNR serves the AWGN decode and every Rayleigh draw. The report also keeps a
noise-free PSNR on one fixed crop, which the CPU tests recompute from the shipped weights: it
ties a weights file to its published numbers. ``semcom jscc eval`` is the command line.
"""

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from gensemcom.shared.jscc.data import image_files, read_rgb
from gensemcom.shared.jscc.models import DeepJSCC, JsccSymbols, cbr

#: 0–20 dB, keeping SwinJSCC's 1/4/7/10/13 dB; 16 and 19 dB are left out to fit 40 CPU minutes.
EVAL_SNRS_DB = (0.0, 1.0, 4.0, 7.0, 10.0, 13.0, 20.0)
#: SwinJSCC (Yang et al., 2024), Kodak, AWGN, CBR 1/12: PSNR in dB by SNR in dB.
SWINJSCC_KODAK_AWGN_CBR_1_12 = {1: 30.35, 4: 31.98, 7: 33.34, 10: 34.41, 13: 35.19}
#: The test crop: image, and (top, left, height, width).
REFERENCE_CROP = ("kodim23.png", (192, 320, 128, 128))


def to_tensor(array: np.ndarray, device: torch.device | str) -> Tensor:
    """(H, W, 3) uint8 → (1, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None].float().div(255.0).to(device)


def to_8bit(image: Tensor) -> Tensor:
    """The image as it would be delivered: rounded to 8 bits (still float in [0, 1])."""
    return image.clamp(0.0, 1.0).mul(255.0).round().div(255.0)


def psnr_8bit(output: Tensor, reference: Tensor) -> Tensor:
    """Per-image PSNR (dB) of the output rounded to 8 bits."""
    mse = (to_8bit(output) - reference).square().flatten(1).mean(dim=1)
    return 10.0 * torch.log10(1.0 / mse)


def ms_ssim_8bit(output: Tensor, reference: Tensor) -> Tensor:
    """Per-image MS-SSIM of the 8-bit output (5 scales, 11×11 Gaussian window, σ = 1.5, range 1).

    Negative contrast-structure terms are clipped at zero ("relu"), as in pytorch_msssim, the
    implementation most DeepJSCC papers report with. Needs images of at least 161 pixels a side.
    torchmetrics is imported here, so a PSNR-only sweep runs where it is not installed.
    """
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure  # only when asked for

    if min(output.shape[-2:]) < 161:
        raise ValueError(f"MS-SSIM needs images of at least 161×161 pixels, got {tuple(output.shape[-2:])}")
    return multiscale_structural_similarity_index_measure(
        to_8bit(output), reference, data_range=1.0, reduction="none", normalize="relu"
    )


class Lpips:
    """LPIPS v0.1 (AlexNet) on torch images in [0, 1]: the shipped metric of :mod:`gensemcom.eval.metrics`."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        from gensemcom.eval.metrics.lpips_metric import lpips_model

        self.model = lpips_model("alex").to(device)

    @torch.no_grad()
    def __call__(self, output: Tensor, reference: Tensor) -> Tensor:
        """Per-image LPIPS distance of the 8-bit output (0 = identical; lower is better)."""
        return self.model(to_8bit(output), reference, normalize=True).flatten()


@dataclass(frozen=True)
class EvalSettings:
    """What the Kodak sweep covers; recorded in its report.

    ``rayleigh_rates``: the rates also sent over block Rayleigh (None: every rate), each
    image with ``rayleigh_draws`` independent fades per SNR.
    """

    snrs_db: tuple[float, ...] = EVAL_SNRS_DB
    rayleigh_draws: int = 1
    rayleigh_rates: tuple[int, ...] | None = None
    ms_ssim: bool = True
    lpips: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.snrs_db or not all(math.isfinite(s) for s in self.snrs_db):
            raise ValueError(f"need at least one finite SNR, got {self.snrs_db}")
        if self.rayleigh_draws < 0:
            raise ValueError(f"rayleigh_draws must be >= 0, got {self.rayleigh_draws}")


@torch.no_grad()
def receive(
    model: DeepJSCC, code: JsccSymbols, snr_db: float, rayleigh: bool, draws: int, generator: torch.Generator
) -> Tensor:
    """Send the symbols of one image ``draws`` times through the channel and decode each copy."""
    device = code.symbols.device
    snr = torch.full((draws,), snr_db, device=device)
    fading = torch.full((draws,), rayleigh, device=device)
    received, effective_snr_db = model.channel(code.symbols.expand(draws, -1), snr, fading, generator)
    copies = JsccSymbols(received, code.rate, code.image_size, code.positions)
    return model.decode(copies, effective_snr_db)


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


def _rounded(values: Tensor) -> list[float]:
    return [round(float(v), 4) for v in values]


@torch.no_grad()
def evaluate(model: DeepJSCC, kodak: Path, settings: EvalSettings = EvalSettings(), progress: bool = True) -> dict:
    """Mean metrics over the images of ``kodak`` (and over fading draws) per channel, rate and SNR.

    Returns a JSON-ready dict: ``psnr``, ``ms_ssim`` and ``lpips`` are each
    ``{channel: {rate: [value per SNR]}}`` (``None`` when not computed).
    """
    rates = model.config.rates
    rayleigh_rates = rates if settings.rayleigh_rates is None else settings.rayleigh_rates
    for rate in rayleigh_rates:
        if rate not in rates:
            raise ValueError(f"Rayleigh rate {rate} is not one of this model's rates {rates}")
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(settings.seed)
    files = image_files(kodak)
    metrics = {"psnr": psnr_8bit}
    if settings.ms_ssim:
        metrics["ms_ssim"] = ms_ssim_8bit
    if settings.lpips:
        metrics["lpips"] = Lpips(device)
    channels = {"awgn": (rates, 1), "rayleigh": (rayleigh_rates, settings.rayleigh_draws)}
    channels = {name: spec for name, spec in channels.items() if spec[0] and spec[1]}
    n_snr = len(settings.snrs_db)
    totals = {
        metric: {channel: {rate: torch.zeros(n_snr) for rate in spec[0]} for channel, spec in channels.items()}
        for metric in metrics
    }
    started, started_cpu = time.perf_counter(), time.process_time()
    bar = tqdm(total=len(files) * len(rates) * n_snr, desc="DeepJSCC on Kodak", unit="encode", disable=not progress)
    for path in files:
        image = to_tensor(read_rgb(path), device).contiguous(memory_format=torch.channels_last)
        for rate in rates:
            for index, snr_db in enumerate(settings.snrs_db):
                code = model.encode(image, snr_db, rate)
                for channel, (channel_rates, draws) in channels.items():
                    if rate not in channel_rates:
                        continue
                    outputs = receive(model, code, snr_db, channel == "rayleigh", draws, generator)
                    reference = image.expand_as(outputs)
                    for name, metric in metrics.items():
                        totals[name][channel][rate][index] += float(metric(outputs, reference).mean())
                bar.update()
    bar.close()
    sweep_s, sweep_cpu_s = time.perf_counter() - started, time.process_time() - started_cpu
    report = {
        metric: {
            channel: {str(rate): _rounded(values / len(files)) for rate, values in by_rate.items()}
            for channel, by_rate in by_channel.items()
        }
        for metric, by_channel in totals.items()
    }
    return {
        "images": len(files),
        "image_files": [path.name for path in files],
        "metric": "of the 8-bit output, mean over images (and over fading draws)",
        "snr_db": list(settings.snrs_db),
        "rayleigh_draws": settings.rayleigh_draws,
        "rayleigh_rates": [int(r) for r in rayleigh_rates],
        "cbr": {str(rate): cbr(rate) for rate in rates},
        "psnr": report["psnr"],
        "ms_ssim": report.get("ms_ssim"),
        "ms_ssim_definition": "torchmetrics 5-scale MS-SSIM, 11x11 Gaussian (sigma 1.5), data range 1, relu on cs",
        "lpips": report.get("lpips"),
        "lpips_definition": "LPIPS v0.1, AlexNet backbone (ImageNet weights shipped in gensemcom/eval/metrics/weights), full-size images",
        "swinjscc_kodak_awgn_cbr_1_12": {str(k): v for k, v in SWINJSCC_KODAK_AWGN_CBR_1_12.items()},
        "sweep_s": round(sweep_s, 1),
        "sweep_cpu_s": round(sweep_cpu_s, 1),
    }


@torch.no_grad()
def noiseless_crop_report(model: DeepJSCC, kodak: Path) -> dict:
    """The noise-free PSNR of :data:`REFERENCE_CROP` at every rate, which the tests recompute."""
    device = next(model.parameters()).device
    name, box = REFERENCE_CROP
    path = kodak / name
    if not path.is_file():
        raise ValueError(f"the reference crop's image {path} is missing")
    reference = crop(to_tensor(read_rgb(path), device), box)
    return {
        "image": name,
        "box_top_left_height_width": list(box),
        "psnr": {str(rate): round(noiseless_crop_psnr(model, reference, rate), 3) for rate in model.config.rates},
    }
