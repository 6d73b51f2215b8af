"""VGG16 feature losses of Johnson, Alahi & Fei-Fei (ECCV 2016): content, perceptual and style.

They compare images through ImageNet VGG16 activations (the offline backbone in ``weights/``) rather
than pixels: content/perceptual losses compare feature maps position by position; the style loss
compares Gram matrices, which discard position and keep only which features occur together.
"""

from functools import lru_cache

import numpy as np
import torch

from gensemcom.eval.metrics.backbones import load_features

# Index of each ReLU inside torchvision's vgg16().features, named as in Johnson et al.
VGG_LAYERS: dict[str, int] = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22}
STYLE_LAYERS = tuple(VGG_LAYERS)

# torchvision's VGG16 was trained on inputs in [0, 1] standardised with the ImageNet statistics.
_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@lru_cache(maxsize=1)
def _vgg() -> torch.nn.Sequential:
    """VGG16 features up to relu4_3 (deeper layers are never used), built once per process."""
    return load_features("vgg")[: max(VGG_LAYERS.values()) + 1]


def vgg_activations(img: np.ndarray) -> dict[str, torch.Tensor]:
    """Activations (1xCxHxW) of a uint8 RGB image at every layer in ``VGG_LAYERS``."""
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected a uint8 HxWx3 image, got {img.dtype} {img.shape}")
    if min(img.shape[:2]) < 8:
        raise ValueError(f"relu4_3 needs images of at least 8x8 pixels, got {img.shape[:2]}")
    x = (torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0 - _MEAN) / _STD
    wanted = {index: name for name, index in VGG_LAYERS.items()}
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for index, layer in enumerate(_vgg()):
            x = layer(x)
            if index in wanted:
                out[wanted[index]] = x
    return out


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """CxC Gram matrix of 1xCxHxW features, divided by C*H*W as in Johnson et al."""
    _, c, h, w = features.shape
    flat = features.reshape(c, h * w)
    return flat @ flat.T / (c * h * w)


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")


Activations = dict[str, torch.Tensor]


def content_loss(a: np.ndarray, b: np.ndarray, layer: str = "relu3_3") -> float:
    """Mean squared difference of the VGG16 activations at ``layer`` (Johnson's feature loss)."""
    if layer not in VGG_LAYERS:
        raise ValueError(f"unknown layer {layer!r}; expected one of {list(VGG_LAYERS)}")
    _check_pair(a, b)
    return content_from(vgg_activations(a), vgg_activations(b), layer)


def perceptual_loss(a: np.ndarray, b: np.ndarray) -> float:
    """Sum of the content losses over all four layers, from edges (relu1_2) to parts (relu4_3)."""
    _check_pair(a, b)
    return perceptual_from(vgg_activations(a), vgg_activations(b))


def style_loss(a: np.ndarray, b: np.ndarray) -> float:
    """Sum over ``STYLE_LAYERS`` of the squared Frobenius distance between Gram matrices."""
    _check_pair(a, b)
    return style_from(vgg_activations(a), vgg_activations(b))


# The same losses from activations computed once per image (an evaluation scores one original
# against many reconstructions). Activations are dicts keyed by the names in VGG_LAYERS.

def content_from(fa: Activations, fb: Activations, layer: str = "relu3_3") -> float:
    return float(torch.mean((fa[layer] - fb[layer]) ** 2))


def perceptual_from(fa: Activations, fb: Activations) -> float:
    return float(sum(torch.mean((fa[name] - fb[name]) ** 2) for name in VGG_LAYERS))


def style_from(fa: Activations, fb: Activations) -> float:
    return float(sum(torch.sum((gram_matrix(fa[n]) - gram_matrix(fb[n])) ** 2) for n in STYLE_LAYERS))
