"""Stable Diffusion inpainting pipelines built from configs with random weights: for tests and benchmarks.

No model hub is reachable here, so the receiver's diffusion backend is exercised on pipelines built from
published configs (``sd15``: the 9-channel UNet of runwayml/stable-diffusion-inpainting, the SD autoencoder,
the text tower of openai/clip-vit-large-patch14) or from a tiny config of the same shape (``tiny``: 2×
autoencoder, 64-px native, seconds on a CPU). Speed and memory do not depend on the weights' values; the
pictures are noise, never quality. The tokenizer is a character-level CLIP tokenizer (the 256 byte-level
symbols, no merges): prompts are padded to CLIP's 77 tokens either way, so the text encoder's work is the same.

The tests (tests/test_inpaint_diffusion.py) save a ``tiny`` pipeline and load it through the real
``from_pretrained`` path; the GPU benchmark (bench/receiver_gpu.py) times ``sd15``.
"""

from typing import Literal

import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from tokenizers import pre_tokenizers
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

# runwayml/stable-diffusion-inpainting, unet/config.json.
SD15_INPAINT_UNET = dict(
    sample_size=64, in_channels=9, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768, attention_head_dim=8, act_fn="silu", norm_num_groups=32, norm_eps=1e-5,
    flip_sin_to_cos=True, freq_shift=0, downsample_padding=1, mid_block_scale_factor=1,
)
# The SD 1.x autoencoder, vae/config.json: 8× down, 4 latent channels.
SD_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, act_fn="silu",
    norm_num_groups=32, sample_size=512, scaling_factor=0.18215,
)
# openai/clip-vit-large-patch14, text_config (ids of the special tokens: the tokenizer's below).
CLIP_L14_TEXT = dict(
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
    max_position_embeddings=77, projection_dim=768, hidden_act="quick_gelu", layer_norm_eps=1e-5,
)
# The tiny model: the same blocks, 2× autoencoder, 64 px native.
TINY_UNET = dict(
    sample_size=32, in_channels=9, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=32, attention_head_dim=8,
)
TINY_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64),
    down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
)
TINY_TEXT = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, projection_dim=32,
                 max_position_embeddings=77)
# runwayml/stable-diffusion-inpainting, scheduler/scheduler_config.json (PLMS).
SD15_SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                      set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1)

Architecture = Literal["tiny", "sd15"]
CONFIGS: dict[str, dict[str, dict]] = {
    "tiny": {"unet": TINY_UNET, "vae": TINY_VAE, "text_encoder": TINY_TEXT},
    "sd15": {"unet": SD15_INPAINT_UNET, "vae": SD_VAE, "text_encoder": CLIP_L14_TEXT},
}


def char_tokenizer() -> CLIPTokenizer:
    """A CLIP tokenizer without merges: every character is one token, padded to 77 as CLIP's is."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = ["<|startoftext|>", "<|endoftext|>", *alphabet, *(c + "</w>" for c in alphabet)]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=[], model_max_length=77)


def random_inpainting_pipeline(architecture: Architecture = "tiny", device: torch.device | str = "cpu",
                               dtype: torch.dtype = torch.float32, scheduler: SchedulerMixin | None = None,
                               seed: int = 0) -> StableDiffusionInpaintPipeline:
    """The inpainting pipeline of ``architecture`` with random weights (seeded), on ``device`` in ``dtype``,
    with ``scheduler`` (default: SD 1.5 inpainting's PLMS schedule)."""
    if architecture not in CONFIGS:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(CONFIGS)}")
    configs = CONFIGS[architecture]
    torch.manual_seed(seed)
    tokenizer = char_tokenizer()
    text = dict(configs["text_encoder"], bos_token_id=0, eos_token_id=1, pad_token_id=1)
    if architecture == "tiny":
        text["vocab_size"] = len(tokenizer)
    with torch.device(device):  # random initialisation where the model runs: fast on a GPU
        unet = UNet2DConditionModel(**configs["unet"])
        vae = AutoencoderKL(**configs["vae"])
        text_encoder = CLIPTextModel(CLIPTextConfig(**text, attn_implementation="sdpa"))
    unet.set_attn_processor(AttnProcessor2_0())
    vae.set_attn_processor(AttnProcessor2_0())
    pipeline = StableDiffusionInpaintPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=scheduler or PNDMScheduler(**SD15_SCHEDULER), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )
    # Cast only when the dtype changes: diffusers warns on every cast.
    pipeline = pipeline.to(device) if dtype == torch.float32 else pipeline.to(device, dtype)
    for model in (unet, vae, text_encoder):
        model.eval().requires_grad_(False)
    return pipeline
