"""QLoRA fine-tuning of the BLIP captioner with the paper's losses (Sec. III-B, Eq. 8).

The student is the quantized captioner (``load_captioner(..., "int4-mixed")``) with
LoRA adapters (peft) on the text decoder's attention projections; only the adapters
(and the small alignment heads below) train, every base weight stays bit-identical.
With the paper's FP32 split (load.PAPER_FP32_MODULES) the whole text decoder is FP32,
so the adapters sit on FP32 layers downstream of the 4-bit vision encoder and no
gradient crosses a 4-bit layer; ``keep_fp32=HEAD_FP32_MODULES`` quantizes the decoder
too and puts the adapters on 4-bit layers (QLoRA in the strict sense).
The teacher is the same checkpoint loaded in FP32 and frozen. The loss is

    L = L_align + L_enhance
    L_align   = λ·L_ITC + (1 − λ)·L_ITM
    L_enhance = β·L_KL  + (1 − β)·L_CE

- L_CE: the captioning loss, next-token cross-entropy of the caption given the image
  (the same number ``BlipForConditionalGeneration(..., labels=...)`` returns).
- L_KL: KL(teacher ‖ student) of the next-token distributions at temperature T,
  scaled by T² (Hinton et al.) and averaged over caption tokens: distillation from
  the full-precision model, which pulls the student back from its quantization error.
- L_ITC, L_ITM: BLIP's image–text contrastive and matching losses. BLIP computes them
  in its retrieval model (a separate bidirectional text encoder with ``vision_proj``,
  ``text_proj`` and ``itm_head``); the captioning model has none of these. So the
  heads here, :class:`AlignmentHeads` (same names and shapes), sit on the captioner's
  own features: the image feature is the vision encoder's [CLS] token; the text
  feature is the text decoder's hidden state at the caption's last token, run
  *without* the image (the decoder skips cross-attention then) for ITC, and *with* it
  for ITM. The decoder is causal, so its last token is the one that has read the
  whole caption. ITM negatives are mined in the batch from the ITC similarities as in
  BLIP (one negative caption per image, one negative image per caption, sampled from
  the softmax of the similarities with a seeded generator).

  Limits, said plainly: the heads start from random weights (the captioning
  checkpoint ships none), so early L_ITC/L_ITM mostly train the heads; the features
  are those of a causal decoder, not of BLIP's bidirectional text encoder, so the
  heads are not interchangeable with ``BlipForImageTextRetrieval``'s; negatives come
  only from the micro-batch (no momentum queue), so batches need at least 2 pairs
  and two captions of the same image in one batch count as a negative pair. The
  heads train beside the adapters and are discarded afterwards: captioning never
  uses them.

λ and β: the paper says only that they are "adaptive" in [0, 1]. Here each follows a
:class:`WeightSchedule` over the optimizer steps, by default a cosine from 1 to 0.5:
training starts on ITC (global alignment, which also makes the similarities that
mine ITM's hard negatives meaningful) and on distillation (stay near the teacher
while the adapters are young), then shifts weight to ITM and to the captioning loss
on the new data; ending at 0.5 keeps all four terms alive.

Randomness: batch order and ITM negatives use seeded ``torch.Generator`` objects;
peft draws LoRA's initial A matrices and its dropout masks from torch's global
generator (it accepts no other), so those run inside a seeded fork of it. A seeded
run is repeatable on CPU.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
from PIL import Image
from torch import nn
from tqdm.auto import tqdm
from transformers import BlipForConditionalGeneration, BlipProcessor

from gensemcom.shared.device import resolve_device
from gensemcom.transmitter.captioner.data import CaptionDataset
from gensemcom.transmitter.captioner.load import (
    PAPER_FP32_MODULES,
    ComputeDtype,
    QuantType,
    load_captioner,
)

StudentPrecision = Literal["int4-mixed", "fp32"]
STUDENT_PRECISIONS: tuple[str, ...] = ("int4-mixed", "fp32")
"""int4-mixed is QLoRA as in the paper; fp32 is plain LoRA (the student then equals the teacher at step 0)."""
DEFAULT_TARGET_MODULES: tuple[str, ...] = (
    "self.query", "self.key", "self.value", "attention.output.dense", "crossattention.output.dense")
"""Name suffixes of the text decoder's attention projections: query/key/value and the output projection of
self-attention (``text_decoder.bert.encoder.layer.N.attention``) and cross-attention (``...crossattention``).
The vision encoder names its projections ``qkv`` and ``projection``, so these never match it."""
ADAPTER_DIR = "adapter"
LOG_FILE = "train_log.csv"
SUMMARY_FILE = "summary.json"
LOG_COLUMNS = ("step", "lambda", "beta", "total", "align", "enhance", "itc", "itm", "kl", "ce", "seconds")


# ---------------------------------------------------------------- settings

@dataclass(frozen=True)
class WeightSchedule:
    """A loss weight moving from ``start`` (first optimizer step) to ``end`` (last step).

    cosine: end + (start − end)·(1 + cos(π·t))/2, flat at both ends; linear: a straight
    line; t = step/(steps − 1). start == end gives a constant weight.
    """

    start: float = 1.0
    end: float = 0.5
    shape: Literal["cosine", "linear"] = "cosine"

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"schedule {name} must lie in [0, 1], got {value}")
        if self.shape not in ("cosine", "linear"):
            raise ValueError(f"schedule shape must be 'cosine' or 'linear', got {self.shape!r}")

    def at(self, step: int, steps: int) -> float:
        """The weight at optimizer step ``step`` of ``steps`` (0-based)."""
        if not 0 <= step < steps:
            raise ValueError(f"step must lie in [0, {steps}), got {step}")
        t = step / (steps - 1) if steps > 1 else 0.0
        keep = 1.0 - t if self.shape == "linear" else 0.5 * (1.0 + math.cos(math.pi * t))
        return keep * self.start + (1.0 - keep) * self.end  # exactly start at t = 0 and end at t = 1


@dataclass
class FinetuneSettings:
    """Everything one fine-tuning run needs; ``semcom captioner finetune --help`` explains each."""

    model: str | Path
    """The full-precision BLIP captioner: a folder written by save_pretrained, or a hub id."""
    data: Path
    """Folder with images and captions.jsonl (see data.py)."""
    out: Path
    """Folder for the adapter, train_log.csv and summary.json."""
    steps: int = 500
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 2e-4
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES
    precision: StudentPrecision = "int4-mixed"
    quant_type: QuantType = "nf4"
    compute_dtype: ComputeDtype = "float32"
    keep_fp32: tuple[str, ...] = PAPER_FP32_MODULES
    temperature: float = 2.0
    lambda_schedule: WeightSchedule = field(default_factory=WeightSchedule)
    beta_schedule: WeightSchedule = field(default_factory=WeightSchedule)
    max_caption_tokens: int = 40
    gradient_checkpointing: bool = False
    seed: int = 0
    device: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        positive = {"steps": self.steps, "grad_accum": self.grad_accum, "lora_rank": self.lora_rank,
                    "lora_alpha": self.lora_alpha, "lr": self.lr, "temperature": self.temperature,
                    "max_caption_tokens": self.max_caption_tokens}
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 (ITC and ITM take their negatives from the batch), "
                             f"got {self.batch_size}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout must lie in [0, 1), got {self.lora_dropout}")
        if self.weight_decay < 0 or self.max_grad_norm < 0:
            raise ValueError("weight_decay and max_grad_norm must be >= 0 (max_grad_norm 0: no clipping)")
        if self.precision not in STUDENT_PRECISIONS:
            raise ValueError(f"student precision must be one of {STUDENT_PRECISIONS}, got {self.precision!r}")
        if not self.target_modules:
            raise ValueError("target_modules must name at least one module")
        if self.quant_type not in get_args(QuantType):
            raise ValueError(f"quant_type must be one of {get_args(QuantType)}, got {self.quant_type!r}")
        if self.compute_dtype not in get_args(ComputeDtype):
            raise ValueError(f"compute_dtype must be one of {get_args(ComputeDtype)}, got {self.compute_dtype!r}")

    def place(self) -> torch.device:
        return resolve_device(self.device)


# ---------------------------------------------------------------- models

class AlignmentHeads(nn.Module):
    """BLIP's ITC/ITM heads (same names and shapes as BlipForImageTextRetrieval's), on the captioner's features."""

    def __init__(self, vision_width: int, text_width: int, embed_dim: int) -> None:
        super().__init__()
        self.vision_proj = nn.Linear(vision_width, embed_dim)
        self.text_proj = nn.Linear(text_width, embed_dim)
        self.itm_head = nn.Linear(text_width, 2)
        self.temp = nn.Parameter(torch.tensor(0.07))
        """Learnable ITC temperature, clamped to [0.001, 0.5] when used, as in BLIP."""

    def temperature(self) -> torch.Tensor:
        return self.temp.clamp(0.001, 0.5)


@dataclass
class Models:
    """The student (peft-wrapped), the frozen FP32 teacher, the alignment heads and the shared processor."""

    student: PeftModel
    teacher: BlipForConditionalGeneration
    heads: AlignmentHeads
    processor: BlipProcessor

    @property
    def base(self) -> BlipForConditionalGeneration:
        """The student's BLIP model, LoRA layers in place."""
        return self.student.get_base_model()


@contextlib.contextmanager
def seeded_global_rng(seed: int, place: torch.device) -> Iterator[None]:
    """Seed torch's global generator for the block (peft draws from it), restoring the caller's state after."""
    with torch.random.fork_rng(devices=[place] if place.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def add_lora(model: BlipForConditionalGeneration, settings: FinetuneSettings) -> PeftModel:
    """Freeze ``model`` and wrap it with LoRA adapters on ``settings.target_modules``.

    peft's gradient-checkpointing path is not used: it hooks the word embeddings so
    their output requires grad, and BLIP's text embeddings then add the position
    embeddings in place onto that leaf tensor, which autograd refuses. Checkpointing
    is switched on here instead in its non-reentrant form, which needs no such hook.
    """
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if settings.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    config = LoraConfig(r=settings.lora_rank, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                        target_modules=list(settings.target_modules), bias="none")
    return get_peft_model(model, config)


def load_models(settings: FinetuneSettings) -> Models:
    """Teacher (FP32, frozen) and student (``settings.precision`` + LoRA) from the same checkpoint, plus heads."""
    place = settings.place()
    teacher = load_captioner(settings.model, "fp32", device=place).model.eval()
    teacher.requires_grad_(False)
    loaded = load_captioner(settings.model, settings.precision, settings.quant_type, settings.compute_dtype,
                            place, settings.keep_fp32)
    config = loaded.model.config
    with seeded_global_rng(settings.seed, place):
        student = add_lora(loaded.model, settings)
        heads = AlignmentHeads(config.vision_config.hidden_size, config.text_config.hidden_size,
                               config.image_text_hidden_size).to(place)
    return Models(student=student, teacher=teacher, heads=heads, processor=loaded.processor)


def load_adapter(model: BlipForConditionalGeneration, adapter_dir: Path) -> PeftModel:
    """``model`` (any precision, e.g. from load_captioner) with a saved adapter applied, frozen, in eval mode."""
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ValueError(f"{adapter_dir} holds no LoRA adapter (adapter_config.json missing)")
    return PeftModel.from_pretrained(model, adapter_dir).eval()


# ---------------------------------------------------------------- batches

@dataclass
class CaptionBatch:
    """Images and tokenized captions ready for the decoder; ``labels`` is -100 on padding."""

    pixel_values: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor


def make_batch(processor: BlipProcessor, pairs: Sequence[tuple[Image.Image, str]], bos_token_id: int,
               max_tokens: int, device: torch.device) -> CaptionBatch:
    """Tokenize and preprocess ``pairs``; the first token becomes the decoder's BOS, as ``generate`` does.

    The BERT tokenizer starts every caption with [CLS], but BLIP's ``generate`` starts
    decoding from ``bos_token_id`` ([DEC]); training on [CLS] would teach a prefix the
    model never sees when it captions.
    """
    images, captions = zip(*pairs)
    pixels = processor.image_processor(images=list(images), return_tensors="pt")["pixel_values"]
    tokens = processor.tokenizer(list(captions), padding="longest", truncation=True, max_length=max_tokens,
                                 return_tensors="pt")
    input_ids = tokens["input_ids"].clone()
    input_ids[:, 0] = bos_token_id
    mask = tokens["attention_mask"]
    return CaptionBatch(pixel_values=pixels.to(device), input_ids=input_ids.to(device), attention_mask=mask.to(device),
                        labels=input_ids.masked_fill(mask == 0, -100).to(device))


def batch_indices(size: int, batch_size: int, generator: torch.Generator) -> Iterator[list[int]]:
    """Endless batches of dataset indices: a fresh permutation per epoch, the incomplete tail dropped.

    The size check runs at the call, not at the first batch, so a run fails before it writes anything.
    """
    if size < batch_size:
        raise ValueError(f"the dataset has {size} pairs, fewer than batch_size {batch_size}")

    def endless() -> Iterator[list[int]]:
        while True:
            order = torch.randperm(size, generator=generator).tolist()
            for start in range(0, size - batch_size + 1, batch_size):
                yield order[start:start + batch_size]

    return endless()


# ---------------------------------------------------------------- losses

@dataclass(frozen=True)
class LossTerms:
    """The four loss terms of one batch and the weights that combine them (Eq. 8)."""

    itc: torch.Tensor
    itm: torch.Tensor
    kl: torch.Tensor
    ce: torch.Tensor
    lam: float
    beta: float

    @property
    def align(self) -> torch.Tensor:
        return self.lam * self.itc + (1.0 - self.lam) * self.itm

    @property
    def enhance(self) -> torch.Tensor:
        return self.beta * self.kl + (1.0 - self.beta) * self.ce

    @property
    def total(self) -> torch.Tensor:
        return self.align + self.enhance

    def as_floats(self) -> dict[str, float]:
        return {"lambda": self.lam, "beta": self.beta, "total": self.total.item(), "align": self.align.item(),
                "enhance": self.enhance.item(), "itc": self.itc.item(), "itm": self.itm.item(),
                "kl": self.kl.item(), "ce": self.ce.item()}


def decoder_states(model: BlipForConditionalGeneration, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   image_embeds: torch.Tensor | None) -> torch.Tensor:
    """Last hidden states of the causal text decoder; with ``image_embeds`` None it skips cross-attention."""
    return model.text_decoder.bert(input_ids=input_ids, attention_mask=attention_mask,
                                   encoder_hidden_states=image_embeds, is_decoder=True,
                                   use_cache=False).last_hidden_state


def image_states(model: BlipForConditionalGeneration, pixel_values: torch.Tensor) -> torch.Tensor:
    """The vision encoder's token sequence ([CLS] first)."""
    return model.vision_model(pixel_values=pixel_values).last_hidden_state


def last_token(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Each row's state at its last non-padding token (padding is on the right)."""
    last = attention_mask.sum(dim=1) - 1
    return states[torch.arange(states.shape[0], device=states.device), last]


def caption_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """L_CE: next-token cross-entropy, the loss BlipForConditionalGeneration computes from ``labels``."""
    vocab = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, vocab), labels[:, 1:].reshape(-1), ignore_index=-100,
                           label_smoothing=label_smoothing)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """L_KL: T²·KL(teacher ‖ student) of the softened next-token distributions, mean over caption tokens."""
    scored = labels[:, 1:] != -100
    student = F.log_softmax(student_logits[:, :-1][scored] / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits[:, :-1][scored] / temperature, dim=-1)
    return F.kl_div(student, teacher, log_target=True, reduction="batchmean") * temperature**2


def contrastive_loss(heads: AlignmentHeads, image_cls: torch.Tensor,
                     text_last: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """L_ITC (symmetric InfoNCE over the batch) and the image→text similarity matrix, detached."""
    image = F.normalize(heads.vision_proj(image_cls), dim=-1)
    text = F.normalize(heads.text_proj(text_last), dim=-1)
    similarity = image @ text.t() / heads.temperature()
    targets = torch.arange(similarity.shape[0], device=similarity.device)
    loss = (F.cross_entropy(similarity, targets) + F.cross_entropy(similarity.t(), targets)) / 2
    return loss, similarity.detach()


def hard_negatives(similarity: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """For each row, a column ≠ the row's own, drawn with probability softmax(similarity) (BLIP's sampling).

    The 1e-4 floor keeps a draw possible when the softmax puts all mass on the diagonal.
    Drawn on the CPU, so a seed gives the same negatives on every device.
    """
    weights = F.softmax(similarity.float().cpu(), dim=1) + 1e-4
    weights.fill_diagonal_(0.0)
    return torch.multinomial(weights, 1, generator=generator).squeeze(1).to(similarity.device)


def matching_loss(models: Models, batch: CaptionBatch, image_embeds: torch.Tensor, positive_states: torch.Tensor,
                  similarity: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """L_ITM: binary match/no-match on B positive pairs and 2B mined negatives (caption swap, image swap)."""
    negative_text = hard_negatives(similarity, generator)
    negative_image = hard_negatives(similarity.t(), generator)
    ids, mask = batch.input_ids, batch.attention_mask
    negative_ids = torch.cat([ids[negative_text], ids])
    negative_mask = torch.cat([mask[negative_text], mask])
    negative_images = torch.cat([image_embeds, image_embeds[negative_image]])
    negatives = last_token(decoder_states(models.base, negative_ids, negative_mask, negative_images), negative_mask)
    logits = models.heads.itm_head(torch.cat([positive_states, negatives]))
    size = ids.shape[0]
    targets = torch.cat([torch.ones(size), torch.zeros(2 * size)]).long().to(logits.device)
    return F.cross_entropy(logits, targets)


def compute_losses(models: Models, batch: CaptionBatch, lam: float, beta: float, temperature: float,
                   generator: torch.Generator) -> LossTerms:
    """All four terms for one batch; gradients reach the student's adapters and the heads only."""
    student = models.base
    image_embeds = image_states(student, batch.pixel_values)
    multimodal = decoder_states(student, batch.input_ids, batch.attention_mask, image_embeds)
    logits = student.text_decoder.cls(multimodal)
    with torch.no_grad():
        teacher = models.teacher
        teacher_states = decoder_states(teacher, batch.input_ids, batch.attention_mask,
                                        image_states(teacher, batch.pixel_values))
        teacher_logits = teacher.text_decoder.cls(teacher_states)
    text_only = decoder_states(student, batch.input_ids, batch.attention_mask, None)
    itc, similarity = contrastive_loss(models.heads, image_embeds[:, 0], last_token(text_only, batch.attention_mask))
    itm = matching_loss(models, batch, image_embeds, last_token(multimodal, batch.attention_mask), similarity,
                        generator)
    return LossTerms(itc=itc, itm=itm, kl=distillation_loss(logits, teacher_logits, batch.labels, temperature),
                     ce=caption_loss(logits, batch.labels, student.text_decoder.label_smoothing), lam=lam, beta=beta)


# ---------------------------------------------------------------- training

@dataclass
class TrainSummary:
    """What a run did: its first and last logged rows, the log file, the time it took."""

    steps: int
    first: dict[str, float]
    last: dict[str, float]
    log: Path
    seconds: float
    trainable_parameters: int


def trainable_parameters(models: Models) -> list[nn.Parameter]:
    """The LoRA matrices of the student and the alignment heads: all AdamW ever updates."""
    return [p for p in models.student.parameters() if p.requires_grad] + list(models.heads.parameters())


def train(models: Models, dataset: CaptionDataset, settings: FinetuneSettings) -> TrainSummary:
    """Run ``settings.steps`` optimizer steps of AdamW, each over ``grad_accum`` micro-batches; log every step."""
    place = settings.place()
    params = trainable_parameters(models)
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    batches = batch_indices(len(dataset), settings.batch_size, torch.Generator().manual_seed(settings.seed))
    negatives = torch.Generator().manual_seed(settings.seed + 1)
    bos = models.base.config.text_config.bos_token_id
    settings.out.mkdir(parents=True, exist_ok=True)
    log_path = settings.out / LOG_FILE
    rows: list[dict[str, float]] = []
    started = time.perf_counter()
    models.student.train()
    models.heads.train()
    with seeded_global_rng(settings.seed, place), log_path.open("w", newline="") as log:
        writer = csv.DictWriter(log, fieldnames=LOG_COLUMNS)
        writer.writeheader()
        progress = tqdm(range(settings.steps), desc="finetune", disable=not settings.progress)
        for step in progress:
            lam = settings.lambda_schedule.at(step, settings.steps)
            beta = settings.beta_schedule.at(step, settings.steps)
            sums: dict[str, float] = {}
            for _ in range(settings.grad_accum):
                pairs = [dataset[i] for i in next(batches)]
                batch = make_batch(models.processor, pairs, bos, settings.max_caption_tokens, place)
                terms = compute_losses(models, batch, lam, beta, settings.temperature, negatives)
                (terms.total / settings.grad_accum).backward()
                for name, value in terms.as_floats().items():
                    sums[name] = sums.get(name, 0.0) + value / settings.grad_accum
            if settings.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            row = {"step": step, **sums, "seconds": round(time.perf_counter() - started, 3)}
            writer.writerow(row)
            rows.append(row)
            progress.set_postfix(loss=f"{sums['total']:.4f}", ce=f"{sums['ce']:.4f}")
    models.student.eval()
    models.heads.eval()
    return TrainSummary(steps=settings.steps, first=rows[0], last=rows[-1], log=log_path,
                        seconds=time.perf_counter() - started,
                        trainable_parameters=sum(p.numel() for p in params))


def finetune(settings: FinetuneSettings) -> TrainSummary:
    """Check the data, load teacher and student, train, save the adapter to ``out/adapter`` and a summary.json."""
    dataset = CaptionDataset(settings.data)
    models = load_models(settings)
    summary = train(models, dataset, settings)
    models.student.save_pretrained(settings.out / ADAPTER_DIR)
    record = {"settings": {f.name: getattr(settings, f.name) for f in fields(settings)}, "summary": asdict(summary)}
    (settings.out / SUMMARY_FILE).write_text(json.dumps(record, indent=1, default=_jsonable))
    return summary


def _jsonable(value: object) -> object:
    """Paths and schedules in summary.json."""
    return asdict(value) if isinstance(value, WeightSchedule) else str(value)
