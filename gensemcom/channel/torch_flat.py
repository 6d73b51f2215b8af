"""AWGN and block Rayleigh/Rician fading in torch, for frames that already live on a GPU.

The NumPy blocks are the reference (and what the channel service runs on a
CPU); this is the same model, y = g·x + n with the gain of
:mod:`gensemcom.channel.fading`, for GPU sweeps and the GPU benchmark. The
random streams differ from NumPy's, so results match in distribution, not
bit for bit; a seeded ``torch.Generator`` on the tensor's device makes a run
repeatable on that device. Draw order: the noise, then the gains.
"""

import math

import torch

from gensemcom.channel.fading import check_k_factor, rician_powers
from gensemcom.channel.noise import check_no
from gensemcom.channel.state import check_coherence, n_blocks


def flat_fading(
    x: torch.Tensor,
    no: float,
    generator: torch.Generator,
    k_factor: float | None = 0.0,
    coherence: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, gains) for 1-D complex64 ``x``; ``k_factor=None`` is AWGN (one unit gain).

    Gains are Rician with linear factor ``k_factor`` (0: Rayleigh), one per
    block of ``coherence`` symbols (0: one for the whole frame).
    """
    if x.dim() != 1 or x.dtype != torch.complex64:
        raise ValueError(f"x must be a 1-D complex64 tensor, got {x.dtype} of shape {tuple(x.shape)}")
    no = check_no(no)
    coherence = check_coherence(coherence)
    y = torch.randn(x.numel(), dtype=torch.complex64, device=x.device, generator=generator)  # CN(0, 1)
    y.mul_(math.sqrt(no))
    if k_factor is None:
        return y.add_(x), torch.ones(1, dtype=torch.complex64, device=x.device)
    los_power, scattered_power = rician_powers(check_k_factor(k_factor))
    blocks = n_blocks(x.numel(), coherence)
    gains = torch.randn(blocks, dtype=torch.complex64, device=x.device, generator=generator)
    gains.mul_(math.sqrt(scattered_power)).add_(math.sqrt(los_power))
    per_symbol = gains if coherence == 0 else gains.repeat_interleave(coherence)[: x.numel()]
    return y.addcmul_(per_symbol, x), gains
