"""The SNR- and rate-adaptive DeepJSCC codec (GDN convolutions + ADJSCC attention features).

An image becomes a latent of ``latent_channels`` reals per 16×16 pixel block; the first
``rate`` of them, paired into ``rate / 2`` complex symbols, are sent. One network serves
every rate in ``JsccConfig.rates`` and every SNR: both ends are conditioned on them, and
the decoder fills whatever was not sent with zeros. A pixel mask restricts transmission
to the blocks that cover the key region, so the symbol count grows with the key area.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from gensemcom.shared.blocks import BLOCK, blocks_of
from gensemcom.shared.jscc.layers import (
    CONDITION_SNR_RANGE_DB,
    AttentionFeature,
    BlockFadingChannel,
    SimplifiedGDN,
    conv,
    deconv,
    normalize_power,
)

#: Pixels per latent position along each axis (four stride-2 stages).
STRIDE = BLOCK  # one latent position per 16×16 block (gensemcom.shared.blocks)


@dataclass(frozen=True)
class JsccConfig:
    """Architecture hyper-parameters; stored in the weights file and checked on load."""

    channels: int = 192
    latent_channels: int = 256
    rates: tuple[int, ...] = (64, 128, 256)

    def __post_init__(self) -> None:
        if self.latent_channels % 2 or self.channels < 1:
            raise ValueError(f"latent_channels must be even and channels positive: {self}")
        if not self.rates or any(r % 2 or not 0 < r <= self.latent_channels for r in self.rates):
            raise ValueError(f"rates must be even and in (0, {self.latent_channels}]: {self.rates}")


def cbr(rate: int) -> float:
    """Channel bandwidth ratio: complex channel uses per source dimension (pixel × colour)."""
    return rate / 2 / (STRIDE * STRIDE * 3)


def latent_positions(mask: Tensor | np.ndarray) -> Tensor:
    """Latent positions whose 16×16 pixel block overlaps a (H, W) boolean pixel mask."""
    array = mask.detach().cpu().numpy() if isinstance(mask, Tensor) else mask
    return torch.from_numpy(blocks_of(array))


def symbols_for_mask(mask: Tensor | np.ndarray, rate: int) -> int:
    """Complex symbols the masked mode sends for one image: covered blocks × rate / 2."""
    if rate % 2 or rate <= 0:
        raise ValueError(f"rate must be a positive even number of latent channels, got {rate}")
    return int(latent_positions(mask).sum()) * rate // 2


def pad_to_stride(x: Tensor) -> Tensor:
    """Pad bottom/right to a multiple of the stride by reflection (edge copy when too small to reflect)."""
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % STRIDE, -width % STRIDE
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode) if pad_h or pad_w else x


def to_complex(latent: Tensor) -> Tensor:
    """Pair real latent channels (2k, 2k+1) into complex symbol k: (B, C, h, w) → (B, C/2, h, w)."""
    latent = latent.float()
    return torch.complex(latent[:, 0::2], latent[:, 1::2])


def from_complex(symbols: Tensor) -> Tensor:
    """Inverse of :func:`to_complex`."""
    return torch.stack([symbols.real, symbols.imag], dim=2).flatten(1, 2)


@dataclass
class JsccSymbols:
    """What the encoder puts on the air, and what the decoder needs to place it back.

    ``symbols``: complex64 (B, N), unit average power per image, ordered by complex
    channel then latent position (row-major). ``positions``: the (h, w) latent grid
    that was sent (all true without a mask). ``rate`` and ``image_size`` travel in the
    frame header as side information.
    """

    symbols: Tensor
    rate: int
    image_size: tuple[int, int]
    positions: Tensor

    def with_symbols(self, symbols: Tensor) -> "JsccSymbols":
        """The same layout carrying other (e.g. received and equalised) symbols."""
        if symbols.shape != self.symbols.shape:
            raise ValueError(f"expected symbols of shape {tuple(self.symbols.shape)}, got {tuple(symbols.shape)}")
        return JsccSymbols(symbols, self.rate, self.image_size, self.positions)


class Encoder(nn.Module):
    """Image (centred at 0) → latent of ``latent_channels`` reals per 16×16 block."""

    def __init__(self, config: JsccConfig) -> None:
        super().__init__()
        n = config.channels
        self.convs = nn.ModuleList([conv(3, n), conv(n, n), conv(n, n)])
        self.gdns = nn.ModuleList([SimplifiedGDN(n) for _ in range(3)])
        self.attention = nn.ModuleList([AttentionFeature(n) for _ in range(3)])
        self.head = conv(n, config.latent_channels)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        for layer, gdn, attention in zip(self.convs, self.gdns, self.attention, strict=True):
            x = attention(gdn(layer(x)), condition)
        return self.head(x)


class Decoder(nn.Module):
    """Zero-filled, equalised latent → image (centred at 0, not yet clamped)."""

    def __init__(self, config: JsccConfig) -> None:
        super().__init__()
        n, m = config.channels, config.latent_channels
        self.entry = AttentionFeature(m)
        self.deconvs = nn.ModuleList([deconv(m, n), deconv(n, n), deconv(n, n)])
        self.gdns = nn.ModuleList([SimplifiedGDN(n, inverse=True) for _ in range(3)])
        self.attention = nn.ModuleList([AttentionFeature(n) for _ in range(3)])
        self.head = deconv(n, 3)

    def forward(self, y: Tensor, condition: Tensor) -> Tensor:
        y = self.entry(y, condition)
        for layer, gdn, attention in zip(self.deconvs, self.gdns, self.attention, strict=True):
            y = attention(gdn(layer(y)), condition)
        return self.head(y)


class DeepJSCC(nn.Module):
    """SNR- and rate-adaptive deep joint source-channel codec for RGB images in [0, 1].

    ``encode``/``decode`` are the deployed path (packed complex symbols, any image size,
    optional key-region mask). ``forward`` is the training path: the same computation on
    dense tensors with per-image rate, SNR and channel, so a batch mixes all of them.
    """

    def __init__(self, config: JsccConfig | None = None) -> None:
        super().__init__()
        self.config = config or JsccConfig()
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)
        self.channel = BlockFadingChannel()
        self.name = "untrained"
        self.version = "0"
        self.digest = ""

    # -- conditioning -----------------------------------------------------------------
    def _condition(self, snr_db: Tensor, rate: Tensor) -> Tensor:
        """(B, 2) vector [SNR / 20 dB, rate / latent_channels] fed to every attention module."""
        low, high = CONDITION_SNR_RANGE_DB
        snr = snr_db.float().clamp(low, high) / 20.0
        return torch.stack([snr, rate.float() / self.config.latent_channels], dim=1)

    def _check_image(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"expected float images in [0, 1], got dtype {x.dtype}")

    def _check_rate(self, rate: int) -> None:
        if rate not in self.config.rates:
            raise ValueError(f"rate {rate} is not one of this model's rates {self.config.rates}")

    def _batch_vector(self, value: float | Tensor, batch: int, device: torch.device) -> Tensor:
        vector = torch.as_tensor(value, dtype=torch.float32, device=device).flatten()
        if vector.numel() == 1:
            return vector.expand(batch)
        if vector.numel() != batch:
            raise ValueError(f"expected a scalar or {batch} values, got {vector.numel()}")
        return vector

    # -- deployed path ------------------------------------------------------------------
    def encode(
        self, x: Tensor, snr_db: float | Tensor, rate: int, mask: Tensor | np.ndarray | None = None
    ) -> JsccSymbols:
        """Encode images (B, 3, H, W) in [0, 1] into unit-power complex symbols.

        ``snr_db`` is the channel's average SNR (scalar or per image), ``rate`` the number
        of latent reals sent per position. A (H, W) ``mask`` keeps only the latent
        positions whose 16×16 block overlaps it (the same for every image of the batch).
        """
        self._check_image(x)
        self._check_rate(rate)
        height, width = x.shape[-2:]
        batch, device = x.shape[0], x.device
        if mask is None:
            positions = torch.ones(-(-height // STRIDE), -(-width // STRIDE), dtype=torch.bool)
        else:
            if tuple(np.shape(mask)) != (height, width):
                raise ValueError(f"mask shape {tuple(np.shape(mask))} does not match image size {(height, width)}")
            positions = latent_positions(mask)
            if not positions.any():
                raise ValueError("mask selects no pixels: nothing to transmit")
        positions = positions.to(device)
        snr = self._batch_vector(snr_db, batch, device)
        condition = self._condition(snr, torch.full((batch,), rate, device=device))
        latent = self.encoder(pad_to_stride(x) - 0.5, condition)
        symbols = to_complex(latent[:, :rate])[:, :, positions].reshape(batch, -1)
        symbols = normalize_power(symbols, torch.ones((), device=device))
        return JsccSymbols(symbols.to(torch.complex64), rate, (height, width), positions)

    def decode(self, received: JsccSymbols, snr_db: float | Tensor) -> Tensor:
        """Reconstruct images in [0, 1] from equalised symbols and the post-equalisation SNR.

        Latent positions and channels that were not sent are zero; outside the key
        region the output is whatever the decoder makes of zeros.
        """
        self._check_rate(received.rate)
        symbols = received.symbols
        batch, device = symbols.shape[0], symbols.device
        positions = received.positions.to(device)
        pairs = received.rate // 2
        if symbols.dim() != 2 or symbols.shape[1] != pairs * int(positions.sum()):
            raise ValueError(
                f"expected {pairs * int(positions.sum())} symbols per image for rate {received.rate} "
                f"and {int(positions.sum())} positions, got shape {tuple(symbols.shape)}"
            )
        grid = torch.zeros(
            batch, self.config.latent_channels // 2, *positions.shape, dtype=torch.complex64, device=device
        )
        grid[:, :pairs, positions] = symbols.to(torch.complex64).view(batch, pairs, -1)
        snr = self._batch_vector(snr_db, batch, device)
        condition = self._condition(snr, torch.full((batch,), received.rate, device=device))
        height, width = received.image_size
        image = self.decoder(from_complex(grid), condition)[..., :height, :width] + 0.5
        return image.clamp(0.0, 1.0)

    # -- training path --------------------------------------------------------------
    def forward(
        self,
        x: Tensor,
        snr_db: Tensor,
        rate: Tensor,
        rayleigh: Tensor,
        generator: torch.Generator,
        positions: Tensor | None = None,
    ) -> Tensor:
        """Encode, pass through the channel and decode, all per image; returns unclamped images.

        ``snr_db`` (B,) average SNR, ``rate`` (B,) latent reals sent, ``rayleigh`` (B,)
        bool fading flag, ``positions`` optional (B, h, w) bool of sent latent positions.
        Equal to ``decode(channel(encode(...)))`` for the same channel draw.
        """
        height, width = x.shape[-2:]
        batch = x.shape[0]
        latent = self.encoder(pad_to_stride(x) - 0.5, self._condition(snr_db, rate))
        symbols = to_complex(latent)
        pair_index = torch.arange(symbols.shape[1], device=x.device)
        keep = (pair_index[None, :] < (rate[:, None] // 2)).float()[:, :, None, None]
        if positions is not None:
            keep = keep * positions[:, None].float()
        keep = keep.expand(batch, *symbols.shape[1:])
        symbols = normalize_power(symbols, keep) * keep
        received, effective_snr_db = self.channel(symbols, snr_db, rayleigh, generator)
        image = self.decoder(from_complex(received * keep), self._condition(effective_snr_db, rate))
        return image[..., :height, :width] + 0.5
