"""Train the DeepJSCC codec with the channel in the loop; resumable across short GPU sessions.

``semcom jscc train --data DIR --out DIR --steps N`` (:mod:`.cli`) builds the
:class:`TrainSettings` and calls :func:`train`. Each batch mixes rates, SNRs (uniform over a range, per image), AWGN and
block Rayleigh, and some key-region masks, so one model learns all of them. The
learning rate follows a cosine cycle of ``--steps`` steps; ``--resume`` continues a cycle
exactly where a checkpoint left it, ``--new-cycle`` starts a fresh cycle from its weights,
and ``--init-weights`` starts one from a shipped fp16 weights file with a fresh optimizer.

GPU time arrives in runs of about ten minutes, and files come back from a run only up
to 16 MiB each, so a checkpoint is a folder of safetensors shards under that size
(model in fp32; Adam moments in bf16 to halve them), written every ``--checkpoint-every-s``
seconds and at the end, next to a CSV log and a JSON summary.
"""

import csv
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from gensemcom.shared.jscc.data import GpuImageBank
from gensemcom.shared.jscc.models import STRIDE, DeepJSCC, JsccConfig
from gensemcom.shared.jscc.zoo import load_weights, save_weights

CHECKPOINT_DIR = "checkpoint"
SHARD_BYTES = 15 * 2**20
LOG_FIELDS = ("step", "loss", "psnr", "lr", "time_s", "images_per_s")


@dataclass(frozen=True)
class TrainSettings:
    """Everything that shapes a run; recorded in the checkpoint and the summary."""

    data: Path
    out: Path
    steps: int | None
    batch: int = 64
    crop: int = 256
    lr: float = 3e-4
    min_lr: float = 1e-5
    warmup: int = 300
    weight_decay: float = 1e-4
    clip: float = 1.0
    snr_min_db: float = 0.0
    snr_max_db: float = 20.0
    rayleigh_fraction: float = 0.5
    masked_fraction: float = 0.25
    seed: int = 0
    device: str = "cpu"
    bf16: bool = False
    compile: bool = False
    channels_last: bool = False
    resume: Path | None = None
    init_weights: Path | None = None
    new_cycle: bool = False
    time_budget_s: float | None = None
    checkpoint_every_s: float = 120.0
    log_every: int = 50
    weights_out: Path | None = None
    name: str = "deepjscc-afgdn"
    version: str = "1"
    config: JsccConfig = JsccConfig()

    def __post_init__(self) -> None:
        if self.steps is None and (self.resume is None or self.new_cycle):
            raise ValueError("steps is required for a fresh run or a new cycle")
        if self.resume is not None and self.init_weights is not None:
            raise ValueError("resume and init_weights exclude each other")
        if self.crop % STRIDE:
            raise ValueError(f"crop must be a multiple of {STRIDE}, got {self.crop}")


@dataclass
class Progress:
    """Where a run stands: global step, and the cosine cycle it is in."""

    step: int = 0
    cycle_start: int = 0
    cycle_steps: int = 0

    @property
    def cycle_end(self) -> int:
        return self.cycle_start + self.cycle_steps


@dataclass
class Batch:
    """One training batch: images and, per image, the conditions it is sent under."""

    images: Tensor
    snr_db: Tensor
    rate: Tensor
    rayleigh: Tensor
    positions: Tensor


def learning_rate(progress: Progress, settings: TrainSettings) -> float:
    """Linear warm-up, then cosine decay to ``min_lr`` at the end of the cycle."""
    k = progress.step - progress.cycle_start
    if k < settings.warmup:
        return settings.lr * (k + 1) / settings.warmup
    fraction = min(1.0, (k - settings.warmup) / max(1, progress.cycle_steps - settings.warmup))
    return settings.min_lr + (settings.lr - settings.min_lr) * 0.5 * (1.0 + math.cos(math.pi * fraction))


def random_positions(batch: int, grid: int, fraction: float, generator: torch.Generator, device: torch.device) -> Tensor:
    """(B, grid, grid) latent masks: all true, except a ``fraction`` of images keep one random rectangle.

    Training with partial latents teaches the decoder the masked mode, where blocks next
    to the key region's border have zero-filled neighbours.
    """
    corners = torch.randint(0, grid, (batch, 2, 2), device=device, generator=generator).sort(dim=2).values
    index = torch.arange(grid, device=device)
    rows = (index >= corners[:, 0, :1]) & (index <= corners[:, 0, 1:])
    cols = (index >= corners[:, 1, :1]) & (index <= corners[:, 1, 1:])
    rectangle = rows[:, :, None] & cols[:, None, :]
    masked = torch.rand(batch, device=device, generator=generator) < fraction
    return rectangle | ~masked[:, None, None]


def sample_batch(bank: GpuImageBank, settings: TrainSettings, generator: torch.Generator) -> Batch:
    """Random crops with random rate, SNR, channel and key-region mask per image."""
    b, device = settings.batch, bank.device
    rates = torch.tensor(settings.config.rates, device=device)
    return Batch(
        images=bank.sample(b, settings.crop, generator),
        snr_db=settings.snr_min_db
        + (settings.snr_max_db - settings.snr_min_db) * torch.rand(b, device=device, generator=generator),
        rate=rates[torch.randint(0, len(rates), (b,), device=device, generator=generator)],
        rayleigh=torch.rand(b, device=device, generator=generator) < settings.rayleigh_fraction,
        positions=random_positions(b, settings.crop // STRIDE, settings.masked_fraction, generator, device),
    )


def batch_loss(model: DeepJSCC, batch: Batch, generator: torch.Generator, bf16: bool) -> Tensor:
    """Mean squared error over the pixels of the transmitted blocks (the whole crop when unmasked)."""
    device_type = batch.images.device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
        output = model(batch.images, batch.snr_db, batch.rate, batch.rayleigh, generator, batch.positions)
    pixels = batch.positions.repeat_interleave(STRIDE, 1).repeat_interleave(STRIDE, 2)[:, None].float()
    squared = (output.float() - batch.images).square() * pixels
    return squared.sum() / (pixels.sum() * 3)


def build_optimizer(model: DeepJSCC, settings: TrainSettings) -> torch.optim.AdamW:
    """AdamW with weight decay on conv/linear weights only (not biases, GDN or gains)."""
    layers = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    decay = [m.weight for m in model.modules() if isinstance(m, layers)]
    decay_ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in decay_ids]
    groups = [{"params": decay, "weight_decay": settings.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    fused = torch.device(settings.device).type != "cpu"
    return torch.optim.AdamW(groups, lr=settings.lr, betas=(0.9, 0.999), fused=fused)


# -- checkpoints -------------------------------------------------------------------------
def checkpoint_tensors(model: DeepJSCC, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> dict[str, Tensor]:
    """Model in fp32, Adam moments in bf16 (their precision barely matters), and the RNG state."""
    tensors = {f"model.{k}": v.detach().float().cpu() for k, v in model.state_dict().items()}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            dtype = torch.bfloat16 if value.dim() > 0 else torch.float32
            tensors[f"optim.{index}.{key}"] = value.detach().to("cpu", dtype)
    tensors["rng"] = generator.get_state()
    return tensors


def save_checkpoint(
    folder: Path,
    model: DeepJSCC,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    progress: Progress,
    settings: TrainSettings,
) -> None:
    """Write shards of at most ``SHARD_BYTES`` to a temporary folder, then swap it in."""
    tensors = checkpoint_tensors(model, optimizer, generator)
    shards: list[dict[str, Tensor]] = [{}]
    size = 0
    for key, value in tensors.items():
        nbytes = value.numel() * value.element_size()
        if size + nbytes > SHARD_BYTES and shards[-1]:
            shards.append({})
            size = 0
        shards[-1][key] = value.contiguous()
        size += nbytes
    metadata = {
        "progress": json.dumps(asdict(progress)),
        "config": json.dumps(asdict(settings.config)),
        "rng_device": generator.device.type,
        "shards": str(len(shards)),
    }
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for number, shard in enumerate(shards):
        save_file(shard, str(staging / f"shard-{number:02d}.safetensors"), metadata)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


def load_checkpoint(
    folder: Path, model: DeepJSCC, optimizer: torch.optim.Optimizer, generator: torch.Generator
) -> Progress:
    """Restore model, optimizer and RNG from a checkpoint folder; return its progress."""
    files = sorted(folder.glob("shard-*.safetensors"))
    if not files:
        raise ValueError(f"no checkpoint shards (shard-NN.safetensors) in {folder}")
    tensors: dict[str, Tensor] = {}
    metadata: dict[str, str] = {}
    for path in files:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata()
            tensors.update({key: handle.get_tensor(key) for key in handle.keys()})
    if int(metadata["shards"]) != len(files):
        raise ValueError(f"checkpoint {folder} has {len(files)} shards, its header says {metadata['shards']}")
    if json.loads(metadata["config"]) != asdict(model.config) | {"rates": list(model.config.rates)}:
        raise ValueError(f"checkpoint architecture {metadata['config']} differs from {asdict(model.config)}")
    if metadata["rng_device"] != generator.device.type:
        raise ValueError(f"checkpoint RNG is for {metadata['rng_device']}, this run uses {generator.device.type}")
    model.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
    template = optimizer.state_dict()
    state: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value.float()
    optimizer.load_state_dict({"state": state, "param_groups": template["param_groups"]})
    for parameter, slots in optimizer.state.items():
        for key, value in slots.items():
            if value.shape == parameter.shape:
                slots[key] = torch.empty_like(parameter).copy_(value)  # the parameter's memory layout
    generator.set_state(tensors["rng"])
    return Progress(**json.loads(metadata["progress"]))


def export_checkpoint(folder: Path, path: Path, name: str, version: str) -> None:
    """Write a checkpoint's model as a shipped fp16 weights file (bit-identical wherever it runs)."""
    files = sorted(folder.glob("shard-*.safetensors"))
    if not files:
        raise ValueError(f"no checkpoint shards (shard-NN.safetensors) in {folder}")
    tensors: dict[str, Tensor] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            metadata = handle.metadata()
            tensors.update({k.removeprefix("model."): handle.get_tensor(k) for k in handle.keys() if k.startswith("model.")})
    fields = json.loads(metadata["config"])
    model = DeepJSCC(JsccConfig(**{**fields, "rates": tuple(fields["rates"])}))
    model.load_state_dict(tensors)
    steps = str(json.loads(metadata["progress"])["step"])
    save_weights(model, path, name, version, extra={"training_steps": steps})


# -- the run -----------------------------------------------------------------------------
def train(settings: TrainSettings) -> dict[str, object]:
    """Run (or continue) training; returns the summary that is also written to ``out/summary.json``."""
    started = time.perf_counter()
    device = torch.device(settings.device)
    torch.manual_seed(settings.seed)
    generator = torch.Generator(device).manual_seed(settings.seed)
    bank = GpuImageBank.from_folder(settings.data, device)
    load_s = time.perf_counter() - started
    model = DeepJSCC(settings.config).to(device)
    if settings.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, settings)
    progress = Progress(cycle_steps=settings.steps or 0)
    if settings.init_weights is not None:
        shipped = load_weights(settings.init_weights)
        if shipped.config != settings.config:
            raise ValueError(f"{settings.init_weights} holds architecture {shipped.config}, this run {settings.config}")
        model.load_state_dict(shipped.state_dict())
    if settings.resume is not None:
        progress = load_checkpoint(settings.resume, model, optimizer, generator)
        if settings.new_cycle:
            progress = Progress(progress.step, progress.step, settings.steps or 0)
    if settings.compile:
        model.encoder.compile()
        model.decoder.compile()
    settings.out.mkdir(parents=True, exist_ok=True)
    log_path = settings.out / "train_log.csv"
    new_log = not log_path.exists()
    first_step = progress.step
    window_loss = torch.zeros((), device=device)
    window_steps, window_start = 0, time.perf_counter()
    last_checkpoint = time.perf_counter()
    first_step_s: float | None = None
    timed_from: tuple[int, float] | None = None
    logged_loss = float("nan")
    with open(log_path, "a", newline="") as stream:
        log = csv.writer(stream)
        if new_log:
            log.writerow(LOG_FIELDS)
        model.train()
        while progress.step < progress.cycle_end:
            lr = learning_rate(progress, settings)
            for group in optimizer.param_groups:
                group["lr"] = lr
            step_start = time.perf_counter()
            loss = batch_loss(model, sample_batch(bank, settings, generator), generator, settings.bf16)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip)
            optimizer.step()
            progress.step += 1
            window_loss += loss.detach()
            window_steps += 1
            if first_step_s is None:
                if device.type != "cpu":
                    torch.accelerator.synchronize()
                first_step_s = time.perf_counter() - step_start
            if progress.step - first_step == 20:
                timed_from = (progress.step, time.perf_counter())
            if window_steps == settings.log_every or progress.step == progress.cycle_end:
                logged_loss = float(window_loss) / window_steps
                now = time.perf_counter()
                log.writerow(
                    [
                        progress.step,
                        f"{logged_loss:.6f}",
                        f"{10 * math.log10(1 / logged_loss):.3f}",
                        f"{lr:.3e}",
                        f"{now - started:.1f}",
                        f"{window_steps * settings.batch / (now - window_start):.1f}",
                    ]
                )
                stream.flush()
                window_loss.zero_()
                window_steps, window_start = 0, now
                out_of_time = settings.time_budget_s is not None and now - started > settings.time_budget_s
                if out_of_time or now - last_checkpoint > settings.checkpoint_every_s:
                    save_checkpoint(settings.out / CHECKPOINT_DIR, model, optimizer, generator, progress, settings)
                    last_checkpoint = time.perf_counter()
                if out_of_time:
                    break
    save_checkpoint(settings.out / CHECKPOINT_DIR, model, optimizer, generator, progress, settings)
    if settings.weights_out is not None:
        export_checkpoint(settings.out / CHECKPOINT_DIR, settings.weights_out, settings.name, settings.version)
    finished = time.perf_counter()
    steps_per_s = None
    if timed_from is not None and progress.step > timed_from[0]:
        steps_per_s = (progress.step - timed_from[0]) / (finished - timed_from[1])
    summary: dict[str, object] = {
        "steps_this_run": progress.step - first_step,
        "progress": asdict(progress),
        "cycle_complete": progress.step >= progress.cycle_end,
        "final_loss": logged_loss,
        "final_psnr_db": 10 * math.log10(1 / logged_loss) if logged_loss > 0 else None,
        "seconds": finished - started,
        "data_load_s": load_s,
        "first_step_s": first_step_s,
        "steps_per_s": steps_per_s,
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
        "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        "torch": torch.__version__,
        "settings": {k: str(v) for k, v in asdict(settings).items()},
    }
    (settings.out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary

