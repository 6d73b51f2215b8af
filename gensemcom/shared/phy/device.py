"""Where the torch work of the physical layer runs."""

import functools

import torch

from gensemcom.shared.device import resolve_device


@functools.cache
def compute_device() -> torch.device:
    """The accelerator when torch sees one, else the CPU.

    LDPC belief propagation is about 100x faster on a GPU than on a small
    CPU, so every Sionna block of this package is built on this device. The
    answer is cached: blocks built at different times must agree.
    """
    return resolve_device()
