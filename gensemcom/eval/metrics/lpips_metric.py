"""LPIPS (Zhang et al., CVPR 2018) with the official v0.1 heads and offline ImageNet backbones.

The ``lpips`` package supplies the network and its linear calibration heads (read from the shared data
folder); the backbone weights it would normally download from torchvision come from the files shipped
in ``weights/`` instead (see ``backbones``).
"""

import warnings
from functools import lru_cache

import lpips
import numpy as np
import torch

from gensemcom.eval.metrics.backbones import feature_state_dict
from gensemcom.shared.paths import shared_data_dir

NETS = ("alex", "vgg")


@lru_cache(maxsize=len(NETS))
def lpips_model(net: str) -> lpips.LPIPS:
    """The LPIPS v0.1 network for ``net``, built once per process (loading costs ~0.1-1 s)."""
    if net not in NETS:
        raise ValueError(f"unknown LPIPS backbone {net!r}; expected one of {NETS}")
    heads = shared_data_dir() / "weights" / "lpips_v0.1" / f"{net}.pth"
    if not heads.is_file():
        raise ValueError(f"LPIPS heads not found at {heads}; set SEMCOM_SHARED_DATA")
    with warnings.catch_warnings():
        # lpips calls torchvision with the deprecated ``pretrained=False``; the warning is noise here.
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(pretrained=True, net=net, version="0.1", pnet_rand=True,
                            model_path=str(heads), verbose=False)
    # lpips splits torchvision's ``features`` into slices but keeps the original layer indices as
    # names ("slice2.3.weight" is features[3]), so each key maps back by dropping the slice prefix.
    features = feature_state_dict(net)
    model.net.load_state_dict({key: features[key.split(".", 1)[1]] for key in model.net.state_dict()})
    return model.eval().requires_grad_(False)


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> 1x3xHxW float in [-1, 1], the range LPIPS was trained on."""
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected a uint8 HxWx3 image, got {img.dtype} {img.shape}")
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1.0


def lpips_distance(a: np.ndarray, b: np.ndarray, net: str = "alex") -> float:
    """LPIPS distance between two uint8 RGB images (0 = identical; larger = more different)."""
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    _check_size(a)
    with torch.no_grad():
        return float(lpips_model(net)(_to_tensor(a), _to_tensor(b)).item())


def _check_size(img: np.ndarray) -> None:
    if min(img.shape[:2]) < 32:
        raise ValueError(f"LPIPS needs images of at least 32x32 pixels, got {img.shape[:2]}")


def lpips_taps(img: np.ndarray, net: str = "alex") -> list[torch.Tensor]:
    """The backbone activations LPIPS compares (VGG16: relu1_2 … relu5_3), for one image.

    Computing them once per image lets a caller score one original against many
    reconstructions (:func:`lpips_from_taps`), and share the VGG16 pass with the
    feature losses: LPIPS's input scaling is exactly the ImageNet standardisation.
    """
    _check_size(img)
    model = lpips_model(net)
    with torch.no_grad():
        return list(model.net(model.scaling_layer(_to_tensor(img))))


def lpips_from_taps(a: list[torch.Tensor], b: list[torch.Tensor], net: str = "alex") -> float:
    """LPIPS from two images' :func:`lpips_taps`: the package's own forward pass after the backbone."""
    model = lpips_model(net)
    if [t.shape for t in a] != [t.shape for t in b]:
        raise ValueError("the two images' activations differ in shape: were they the same size?")
    with torch.no_grad():
        return float(sum(
            lpips.spatial_average(model.lins[k]((lpips.normalize_tensor(x) - lpips.normalize_tensor(y)) ** 2),
                                  keepdim=True)
            for k, (x, y) in enumerate(zip(a, b, strict=True))
        ).item())
