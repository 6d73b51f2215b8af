"""`semcom jscc`: train the DeepJSCC key-region codec and evaluate it on Kodak.

``train`` and ``eval`` build the settings objects of :mod:`.train`, :mod:`.evaluate` and
:mod:`.digital` from their options and call those modules; nothing is parsed twice.
Also runnable as ``python -m gensemcom.shared.jscc.cli`` (the GPU script does).
"""

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import torch
import typer
from typer import Option

from gensemcom.shared.device import resolve_device
from gensemcom.shared.jscc.evaluate import (
    EVAL_SNRS_DB,
    REFERENCE_CROP,
    EvalSettings,
    evaluate,
    noiseless_crop_report,
)
from gensemcom.shared.jscc.models import JsccConfig
from gensemcom.shared.jscc.train import TrainSettings, train
from gensemcom.shared.jscc.zoo import DEFAULT_MODEL, PRETRAINED, load_weights
from gensemcom.shared.paths import shared_data_dir

app = typer.Typer(
    help="DeepJSCC, the trained analog codec for key regions: train it, evaluate it on Kodak.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _numbers(text: str, kind: type) -> tuple:
    """'1,4,7' -> (1, 4, 7); ValueError names the bad item."""
    try:
        return tuple(kind(item) for item in text.split(",") if item.strip())
    except ValueError as error:
        raise typer.BadParameter(f"expected comma-separated numbers, got {text!r}") from error


def _device(device: str | None) -> str:
    return str(resolve_device(device))


Device = Annotated[
    Optional[str], Option(help="torch device, e.g. cpu or cuda (default: the accelerator if any, else cpu)")
]
Train = TrainSettings


@app.command("train")
def train_command(
    out: Annotated[Path, Option(help="folder for the checkpoint, train_log.csv and summary.json")],
    data: Annotated[Optional[Path], Option(help="training photos (default: shared data train/bsds500)")] = None,
    steps: Annotated[Optional[int], Option(help="length of the cosine cycle (required unless resuming)")] = None,
    batch: Annotated[int, Option(help="crops per step")] = Train.batch,
    crop: Annotated[int, Option(help="square crop size in pixels, a multiple of 16")] = Train.crop,
    lr: Annotated[float, Option(help="peak learning rate")] = Train.lr,
    min_lr: Annotated[float, Option(help="learning rate at the end of the cosine cycle")] = Train.min_lr,
    warmup: Annotated[int, Option(help="linear warm-up steps at the start of each cycle")] = Train.warmup,
    weight_decay: Annotated[float, Option(help="AdamW weight decay on conv and linear weights")] = Train.weight_decay,
    snr_min_db: Annotated[float, Option(help="lowest training SNR (dB), uniform per image")] = Train.snr_min_db,
    snr_max_db: Annotated[float, Option(help="highest training SNR (dB)")] = Train.snr_max_db,
    rayleigh_fraction: Annotated[
        float, Option(help="share of images sent over block Rayleigh (the rest AWGN)")
    ] = Train.rayleigh_fraction,
    masked_fraction: Annotated[
        float, Option(help="share of images sending only a random rectangle of blocks")
    ] = Train.masked_fraction,
    seed: Annotated[int, Option(help="seed of every random draw")] = Train.seed,
    device: Device = None,
    bf16: Annotated[Optional[bool], Option("--bf16/--no-bf16", help="bf16 autocast (default: on unless CPU)")] = None,
    compile: Annotated[bool, Option(help="torch.compile encoder and decoder")] = False,
    channels_last: Annotated[
        Optional[bool], Option("--channels-last/--no-channels-last", help="NHWC layout (default: on unless CPU)")
    ] = None,
    resume: Annotated[Optional[Path], Option(help="checkpoint folder to continue from")] = None,
    new_cycle: Annotated[bool, Option(help="with --resume: start a new cosine cycle of --steps")] = False,
    init_weights: Annotated[
        Optional[Path], Option(help="start a cycle from a shipped weights file with a fresh optimizer")
    ] = None,
    time_budget_s: Annotated[Optional[float], Option(help="stop (with a checkpoint) after this many seconds")] = None,
    checkpoint_every_s: Annotated[float, Option(help="seconds between checkpoints")] = Train.checkpoint_every_s,
    log_every: Annotated[int, Option(help="steps per line of train_log.csv")] = Train.log_every,
    weights_out: Annotated[Optional[Path], Option(help="also export the final model as fp16 weights here")] = None,
    name: Annotated[str, Option(help="model name stored in the weights file")] = Train.name,
    version: Annotated[str, Option(help="model version stored in the weights file")] = Train.version,
    channels: Annotated[int, Option(help="feature channels of the transforms")] = JsccConfig.channels,
    latent_channels: Annotated[int, Option(help="latent reals per 16x16 block")] = JsccConfig.latent_channels,
    rates: Annotated[str, Option(help="comma-separated rates (latent reals sent per block)")] = ",".join(
        map(str, JsccConfig.rates)
    ),
) -> None:
    """Train (or continue training) the codec with the channel in the loop; prints the run's summary."""
    on_cpu = torch.device(_device(device)).type == "cpu"
    settings = TrainSettings(
        data=data or shared_data_dir() / "train" / "bsds500",
        out=out,
        steps=steps,
        batch=batch,
        crop=crop,
        lr=lr,
        min_lr=min_lr,
        warmup=warmup,
        weight_decay=weight_decay,
        snr_min_db=snr_min_db,
        snr_max_db=snr_max_db,
        rayleigh_fraction=rayleigh_fraction,
        masked_fraction=masked_fraction,
        seed=seed,
        device=_device(device),
        bf16=not on_cpu if bf16 is None else bf16,
        compile=compile,
        channels_last=not on_cpu if channels_last is None else channels_last,
        resume=resume,
        init_weights=init_weights,
        new_cycle=new_cycle,
        time_budget_s=time_budget_s,
        checkpoint_every_s=checkpoint_every_s,
        log_every=log_every,
        weights_out=weights_out,
        name=name,
        version=version,
        config=JsccConfig(channels, latent_channels, _numbers(rates, int)),
    )
    summary = train(settings)
    typer.echo(json.dumps({k: v for k, v in summary.items() if k != "settings"}, indent=2))


@app.command("eval")
def eval_command(
    out: Annotated[Path, Option(help="JSON report to write")],
    weights: Annotated[
        Optional[Path], Option(help=f"weights file (default: the shipped {DEFAULT_MODEL}, hash-checked)")
    ] = None,
    kodak: Annotated[Optional[Path], Option(help="image folder (default: shared data kodak24)")] = None,
    device: Device = None,
    threads: Annotated[Optional[int], Option(help="torch CPU threads (default: torch's choice)")] = None,
    snrs: Annotated[str, Option(help="comma-separated SNRs in dB")] = ",".join(f"{s:g}" for s in EVAL_SNRS_DB),
    rayleigh_draws: Annotated[int, Option(help="block-Rayleigh fades per image and SNR (0: AWGN only)")] = 1,
    rayleigh_rates: Annotated[
        Optional[str], Option(help="comma-separated rates also sent over Rayleigh (default: every rate)")
    ] = None,
    ms_ssim: Annotated[bool, Option("--ms-ssim/--no-ms-ssim", help="also score MS-SSIM")] = True,
    lpips: Annotated[bool, Option("--lpips/--no-lpips", help="also score LPIPS (AlexNet, shipped weights)")] = True,
    digital_rates: Annotated[
        str, Option(help="comma-separated rates that get the HEVC+LDPC digital reference ('' for none)")
    ] = "128",
    code_blocks: Annotated[int, Option(help="digital reference: LDPC code blocks sent per image and SNR")] = 8,
    seed: Annotated[int, Option(help="seed of the channel draws")] = 0,
    figure: Annotated[Optional[Path], Option(help="also plot the report to this PNG")] = None,
) -> None:
    """Sweep SNR, channel and rate on Kodak: PSNR, MS-SSIM, LPIPS, plus the HEVC+LDPC reference; writes JSON."""
    started, started_cpu = time.perf_counter(), time.process_time()
    if threads is not None:
        torch.set_num_threads(threads)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    kodak = kodak or shared_data_dir() / "kodak24"
    weights = weights or PRETRAINED[DEFAULT_MODEL].path
    digest = PRETRAINED[DEFAULT_MODEL].tensors_sha256 if weights == PRETRAINED[DEFAULT_MODEL].path else None
    model = load_weights(weights, _device(device), digest).to(memory_format=torch.channels_last)  # faster convolutions
    place = next(model.parameters()).device
    settings = EvalSettings(
        snrs_db=_numbers(snrs, float),
        rayleigh_draws=rayleigh_draws,
        rayleigh_rates=None if rayleigh_rates is None else _numbers(rayleigh_rates, int),
        ms_ssim=ms_ssim,
        lpips=lpips,
        seed=seed,
    )
    reference_rates = _numbers(digital_rates, int)
    for rate in reference_rates:  # checked before the long sweep, not after it
        if rate not in model.config.rates:
            raise ValueError(f"digital reference rate {rate} is not one of this model's rates {model.config.rates}")
    report: dict = {
        "model": model.name,
        "version": model.version,
        "weights_file": weights.name,
        "weights_tensors_sha256": model.digest,
        "device": torch.cuda.get_device_name(place) if place.type == "cuda" else str(place),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        **evaluate(model, kodak, settings),
    }
    if (kodak / REFERENCE_CROP[0]).is_file():
        report["noiseless_crop"] = noiseless_crop_report(model, kodak)
    report["digital"] = {}
    for rate in reference_rates:
        from gensemcom.shared.jscc.digital import DigitalSettings, evaluate_digital  # pillow-heif only when asked for

        digital = DigitalSettings(settings.snrs_db, rayleigh_draws, code_blocks, ms_ssim, seed)
        report["digital"][str(rate)] = evaluate_digital(kodak, rate, digital)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["cpu_seconds"] = round(time.process_time() - started_cpu, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    _print_table(report)
    if figure is not None:
        from gensemcom.shared.jscc.kodak import plot_report  # matplotlib only when asked for

        plot_report(report, figure)


def _print_table(report: dict) -> None:
    """PSNR by SNR for every channel and rate, then the digital reference."""
    typer.echo(f"{'PSNR (dB)':22s}" + "".join(f"{s:7g}" for s in report["snr_db"]))
    for channel, by_rate in report["psnr"].items():
        for rate, values in by_rate.items():
            typer.echo(f"{channel:8s} rate {rate:>4s}     " + "".join(f"{v:7.2f}" for v in values))
    for rate, digital in report["digital"].items():
        for channel in ("awgn", "rayleigh"):
            if channel in digital:
                values = digital[channel]["psnr"]
                typer.echo(f"HEVC+LDPC {channel:8s} {rate:>4s}" + "".join(f"{v:7.2f}" for v in values))


if __name__ == "__main__":
    app()
