"""Training images held on the accelerator, with random crops cut there in one gather per batch.

A Python data loader decoding JPEGs every step starved the GPU in an earlier attempt
(see docs/jscc/training-log.md). The 470 training photos are only ~220 MB as uint8, so
they are decoded once, stacked into one tensor on the device, and every batch is a
single indexed gather: no worker processes, no host-to-device copies in the hot loop.
"""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def image_files(folder: Path) -> list[Path]:
    """The images in ``folder`` in a fixed (sorted) order, so seeded runs see the same data."""
    if not folder.is_dir():
        raise ValueError(f"image folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def read_rgb(path: Path) -> np.ndarray:
    """Decode one image file to a (H, W, 3) uint8 array."""
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


def read_folder(folder: Path, limit: int | None = None) -> list[np.ndarray]:
    """Decode the (first ``limit``) images of a folder in parallel threads (PIL releases the GIL)."""
    files = image_files(folder)[:limit]
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(read_rgb, files))


class GpuImageBank:
    """Equal-sized uint8 images on one device, sampled as random augmented square crops.

    Portrait photos are turned on their side when loading so that all images stack into
    one (N, 3, H, W) tensor; random transposes at sampling time make the orientation
    uniform again, together with random horizontal and vertical flips.
    """

    def __init__(self, images: Tensor) -> None:
        if images.dim() != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
            raise ValueError(f"expected a (N, 3, H, W) uint8 tensor, got {tuple(images.shape)} {images.dtype}")
        self.images = images

    @classmethod
    def from_arrays(cls, arrays: list[np.ndarray], device: torch.device | str) -> "GpuImageBank":
        """Stack (H, W, 3) arrays, all of one size up to a quarter turn, onto ``device``."""
        if not arrays:
            raise ValueError("no images to load")
        landscape = [a if a.shape[1] >= a.shape[0] else a.transpose(1, 0, 2) for a in arrays]
        sizes = {a.shape for a in landscape}
        if len(sizes) != 1:
            raise ValueError(f"images must share one size up to rotation, got {sorted(sizes)}")
        stacked = torch.from_numpy(np.ascontiguousarray(np.stack(landscape)))
        return cls(stacked.permute(0, 3, 1, 2).contiguous().to(device))

    @classmethod
    def from_folder(cls, folder: Path, device: torch.device | str, limit: int | None = None) -> "GpuImageBank":
        """Decode a folder of photos once and keep them on ``device``."""
        return cls.from_arrays(read_folder(folder, limit), device)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def device(self) -> torch.device:
        return self.images.device

    def sample(self, batch: int, size: int, generator: torch.Generator) -> Tensor:
        """A (batch, 3, size, size) float batch in [0, 1] of random crops with random flips and transposes."""
        count, _, height, width = self.images.shape
        if size > height:
            raise ValueError(f"crop size {size} exceeds the image height {height}")
        device = self.device

        def uniform_int(high: int) -> Tensor:
            return torch.randint(0, high, (batch,), device=device, generator=generator)

        index = uniform_int(count)
        span = torch.arange(size, device=device)
        rows = uniform_int(height - size + 1)[:, None] + span
        cols = uniform_int(width - size + 1)[:, None] + span
        flips = torch.randint(0, 2, (3, batch), device=device, generator=generator).bool()
        rows = torch.where(flips[0, :, None], rows.flip(1), rows)
        cols = torch.where(flips[1, :, None], cols.flip(1), cols)
        channel = torch.arange(3, device=device)
        crops = self.images[
            index[:, None, None, None], channel[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]
        ]
        crops = torch.where(flips[2, :, None, None, None], crops.transpose(2, 3), crops)
        return crops.float().div_(255.0)
