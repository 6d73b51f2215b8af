"""Building blocks of the DeepJSCC codec: convolutions, GDN, SNR/rate attention, and the training channel.

The encoder and decoder are stacks of the first three; the channel sits between them
while training so the network learns to survive noise and fading ("channel in the loop").
"""

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

#: Both ends are conditioned on an SNR clamped to this range. Training draws 0–20 dB; the
#: decoder sees the post-equalisation SNR, which a deep Rayleigh fade pushes far lower.
#: Above 20 dB (or a noise-free channel) the model acts as trained for 20 dB.
CONDITION_SNR_RANGE_DB = (-10.0, 20.0)


def conv(in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 2) -> nn.Conv2d:
    """A 'same'-padded convolution that downsamples by ``stride``."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)


def deconv(in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    """The transposed twin of :func:`conv`: upsamples by exactly ``stride``."""
    return nn.ConvTranspose2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=kernel_size // 2,
        output_padding=stride - 1,
    )


class SimplifiedGDN(nn.Module):
    """Simplified generalised divisive normalisation (Johnston et al., 2019).

    ``y = x / (beta + gamma * |x|)`` (or ``x * (...)`` when ``inverse``): the learned
    image-codec nonlinearity that Gaussianises conv features, at the cost of one 1×1
    convolution. The L1 form needs no square root, so it is stable under bf16 autocast.
    ``beta`` and ``gamma`` pass through softplus so they stay positive.
    """

    def __init__(self, channels: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        # softplus(raw) = 1 for beta and 0.1 on gamma's diagonal at start: close to identity.
        self.beta_raw = nn.Parameter(torch.full((channels,), math.log(math.e - 1.0)))
        gamma = torch.full((channels, channels), -10.0)
        gamma.fill_diagonal_(math.log(math.exp(0.1) - 1.0))
        self.gamma_raw = nn.Parameter(gamma)

    def forward(self, x: Tensor) -> Tensor:
        gamma = F.softplus(self.gamma_raw)[:, :, None, None]
        norm = F.conv2d(x.abs(), gamma.to(x.dtype), F.softplus(self.beta_raw).to(x.dtype))
        return x * norm if self.inverse else x / norm


class AttentionFeature(nn.Module):
    """ADJSCC's attention-feature module: rescale channels as a function of image context and SNR/rate.

    The global mean of each channel is concatenated with the conditioning vector
    (SNR and rate), and a two-layer MLP yields a sigmoid gate per channel. One network
    thereby adapts its features to every SNR and bandwidth instead of one model each.
    """

    def __init__(self, channels: int, condition_dim: int = 2, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(channels // reduction, 8)
        self.mlp = nn.Sequential(
            nn.Linear(channels + condition_dim, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        context = torch.cat([x.mean(dim=(2, 3)), condition.to(x.dtype)], dim=1)
        return x * self.mlp(context)[:, :, None, None]


def normalize_power(symbols: Tensor, keep: Tensor) -> Tensor:
    """Scale each image's transmitted complex symbols to unit average power.

    ``symbols`` is complex, shape (B, ...); ``keep`` (broadcastable, 0/1) marks the symbols
    that are actually sent. Only those count towards the average, so sending fewer
    symbols (lower rate, smaller key region) concentrates the same power per symbol.
    """
    dims = tuple(range(1, symbols.dim()))
    keep = keep.expand_as(symbols.real)
    energy = (symbols.real.square() + symbols.imag.square()).mul(keep).sum(dim=dims, keepdim=True)
    count = keep.sum(dim=dims, keepdim=True)
    return symbols * torch.rsqrt(energy / count + 1e-12)


class BlockFadingChannel:
    """Complex baseband channel ``y = h·s + n`` with perfect-CSI MMSE equalisation, in torch.

    ``h = 1`` gives AWGN; block Rayleigh draws one ``h ~ CN(0, 1)`` per image. With the
    receiver knowing ``h``, the MMSE estimate ``ŝ = h* y / (|h|² + σ²)`` equals
    ``a·s + w`` where the gain ``a = γ/(γ+1)`` and the noise power ``γ/(γ+1)²`` both depend
    only on the post-equalisation SNR ``γ = |h|²/σ²``. So a decoder that is told γ sees
    the same kind of input on both channels: Rayleigh is AWGN at a random SNR, and
    MMSE (unlike zero forcing) keeps the decoder input bounded in a deep fade.
    Unit symbol power is assumed (see :func:`normalize_power`); ``snr_db = inf`` is noiseless.
    """

    def __call__(
        self,
        symbols: Tensor,
        snr_db: Tensor,
        rayleigh: Tensor,
        generator: torch.Generator,
    ) -> tuple[Tensor, Tensor]:
        """Return the equalised symbols and each image's post-equalisation SNR in dB.

        ``symbols``: complex (B, ...); ``snr_db``: (B,) average SNR; ``rayleigh``: (B,) bool,
        which images see a Rayleigh fade (the rest see AWGN).
        """
        batch = symbols.shape[0]
        shape = (batch,) + (1,) * (symbols.dim() - 1)
        device = symbols.device
        noise_var = torch.pow(10.0, -snr_db.to(device=device, dtype=torch.float32) / 10.0)
        fade = torch.randn(batch, dtype=torch.complex64, device=device, generator=generator)
        h = torch.where(rayleigh.to(device), fade, torch.ones_like(fade))
        noise = torch.randn(symbols.shape, dtype=torch.complex64, device=device, generator=generator)
        received = h.view(shape) * symbols + noise * noise_var.sqrt().view(shape)
        gain = h.real.square() + h.imag.square()
        equalised = h.conj().view(shape) * received / (gain + noise_var).view(shape)
        return equalised, 10.0 * torch.log10(gain / noise_var)
