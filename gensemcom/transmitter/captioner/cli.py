"""`semcom captioner`: fine-tune the BLIP captioner with QLoRA and the paper's losses.

``finetune`` builds a :class:`FinetuneSettings` from its options and calls
:func:`finetune`; nothing is parsed twice. Also runnable as
``python -m gensemcom.transmitter.captioner.cli``.
"""

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer import Option

from gensemcom.transmitter.captioner.finetune import (
    ADAPTER_DIR,
    DEFAULT_TARGET_MODULES,
    LOG_FILE,
    STUDENT_PRECISIONS,
    FinetuneSettings,
    WeightSchedule,
    finetune,
)
from gensemcom.transmitter.captioner.load import HEAD_FP32_MODULES, PAPER_FP32_MODULES, default_model_dir

app = typer.Typer(
    help="The BLIP captioner: QLoRA fine-tuning with the paper's alignment and distillation losses.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

Defaults = FinetuneSettings
Schedule = WeightSchedule
SPLITS = {"paper": PAPER_FP32_MODULES, "head": HEAD_FP32_MODULES}


@app.callback()
def captioner() -> None:
    """The BLIP captioner's tools (a group, so `finetune` stays a subcommand while it is the only one)."""


def _names(text: str) -> tuple[str, ...]:
    """'a,b, c' -> ('a', 'b', 'c')."""
    names = tuple(item.strip() for item in text.split(",") if item.strip())
    if not names:
        raise typer.BadParameter(f"expected comma-separated module names, got {text!r}")
    return names


@app.command("finetune")
def finetune_command(
    data: Annotated[Path, Option(help="folder with the images and captions.jsonl, one "
                                      "{\"image\": \"relative/path.jpg\", \"caption\": \"...\"} per line")],
    out: Annotated[Path, Option(help=f"folder for the LoRA adapter ({ADAPTER_DIR}/), {LOG_FILE} and summary.json")],
    model: Annotated[Optional[str], Option(
        help="full-precision BLIP captioner: a save_pretrained folder or a hub id (default: the shared data "
             "models/blip-image-captioning-base); the teacher loads it in FP32, the student at --precision")] = None,
    steps: Annotated[int, Option(help="optimizer steps (λ and β run their schedules over these)")] = Defaults.steps,
    batch_size: Annotated[int, Option(help="image–caption pairs per micro-batch, at least 2 "
                                           "(ITC/ITM negatives come from the batch)")] = Defaults.batch_size,
    grad_accum: Annotated[int, Option(help="micro-batches per optimizer step")] = Defaults.grad_accum,
    lr: Annotated[float, Option(help="AdamW learning rate (constant)")] = Defaults.lr,
    weight_decay: Annotated[float, Option(help="AdamW weight decay")] = Defaults.weight_decay,
    max_grad_norm: Annotated[float, Option(help="clip the gradient norm to this (0: no clipping)")] = (
        Defaults.max_grad_norm),
    lora_rank: Annotated[int, Option(help="LoRA rank r")] = Defaults.lora_rank,
    lora_alpha: Annotated[int, Option(help="LoRA alpha (the update is scaled by alpha/r)")] = Defaults.lora_alpha,
    lora_dropout: Annotated[float, Option(help="dropout on the LoRA input")] = Defaults.lora_dropout,
    target_modules: Annotated[str, Option(
        help="comma-separated module-name suffixes that get LoRA (default: the text decoder's self- and "
             "cross-attention query/key/value and output projections)")] = ",".join(DEFAULT_TARGET_MODULES),
    precision: Annotated[str, Option(
        help=f"student precision, one of {', '.join(STUDENT_PRECISIONS)} (int4-mixed: QLoRA; fp32: plain LoRA)")] = (
        Defaults.precision),
    fp32_split: Annotated[str, Option(
        help="modules the int4-mixed student keeps in FP32: 'paper' (vision embeddings + whole text decoder, "
             "as in the paper; LoRA then sits on FP32 layers) or 'head' (only the vocabulary head; LoRA sits on "
             "4-bit layers)")] = "paper",
    quant_type: Annotated[str, Option(help="4-bit data type: nf4 or fp4")] = Defaults.quant_type,
    compute_dtype: Annotated[str, Option(help="4-bit compute dtype: float32, bfloat16 or float16")] = (
        Defaults.compute_dtype),
    temperature: Annotated[float, Option(help="distillation temperature T of L_KL (scaled by T²)")] = (
        Defaults.temperature),
    lambda_start: Annotated[float, Option(help="λ (weight of ITC vs ITM) at the first step")] = Schedule.start,
    lambda_end: Annotated[float, Option(help="λ at the last step")] = Schedule.end,
    lambda_shape: Annotated[str, Option(help="λ schedule: cosine or linear")] = Schedule.shape,
    beta_start: Annotated[float, Option(help="β (weight of KL vs CE) at the first step")] = Schedule.start,
    beta_end: Annotated[float, Option(help="β at the last step")] = Schedule.end,
    beta_shape: Annotated[str, Option(help="β schedule: cosine or linear")] = Schedule.shape,
    max_caption_tokens: Annotated[int, Option(help="captions are truncated to this many tokens")] = (
        Defaults.max_caption_tokens),
    gradient_checkpointing: Annotated[bool, Option(help="recompute activations in backward to save memory")] = (
        Defaults.gradient_checkpointing),
    seed: Annotated[int, Option(help="seed of LoRA init, batch order, ITM negatives and dropout")] = Defaults.seed,
    device: Annotated[Optional[str], Option(help="torch device, e.g. cpu or cuda (default: the accelerator if any, "
                                                 "else cpu)")] = None,
    progress: Annotated[bool, Option(help="show a progress bar")] = Defaults.progress,
) -> None:
    """Train LoRA adapters on the quantized captioner; prints the summary (first and last logged losses) as JSON."""
    if fp32_split not in SPLITS:
        raise typer.BadParameter(f"--fp32-split must be one of {', '.join(SPLITS)}, got {fp32_split!r}")
    try:
        settings = FinetuneSettings(
            model=model or default_model_dir(),
            data=data,
            out=out,
            steps=steps,
            batch_size=batch_size,
            grad_accum=grad_accum,
            lr=lr,
            weight_decay=weight_decay,
            max_grad_norm=max_grad_norm,
            lora_rank=lora_rank,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            target_modules=_names(target_modules),
            precision=precision,
            quant_type=quant_type,
            compute_dtype=compute_dtype,
            keep_fp32=SPLITS[fp32_split],
            temperature=temperature,
            lambda_schedule=WeightSchedule(lambda_start, lambda_end, lambda_shape),
            beta_schedule=WeightSchedule(beta_start, beta_end, beta_shape),
            max_caption_tokens=max_caption_tokens,
            gradient_checkpointing=gradient_checkpointing,
            seed=seed,
            device=device,
            progress=progress,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    summary = finetune(settings)
    typer.echo(json.dumps({**asdict(summary), "adapter": out / ADAPTER_DIR}, indent=1, default=str))


if __name__ == "__main__":
    app()
