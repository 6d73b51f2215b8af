"""The key-region codecs behind one interface, as the transmitter and receiver use them.

A key codec turns the key region of an image into analog complex symbols and
back. Two exist:

- :class:`LinearKey`: the SoftCast-style block-DCT codec of
  :mod:`gensemcom.shared.keycodec` (no learning; analytic MSE), at any
  bandwidth ratio;
- :class:`DeepJsccKey`: the trained DeepJSCC model of
  :mod:`gensemcom.shared.jscc` in masked mode: it codes the key region's
  bounding box and sends only the latent 16×16 blocks that overlap the key
  mask, so the symbol count grows with the key area, not the box.

What the receiver needs besides the symbols travels in the error-free frame
header (:class:`gensemcom.shared.frame.KeyRegion`): the box, the bandwidth
ratio, float ``params`` and byte ``side`` information. Each codec also says
which equaliser output it was designed for (``equaliser``): the linear
decoder does its own LMMSE weighting on unbiased (zero-forced) symbols,
DeepJSCC was trained on MMSE-equalised ones.
"""

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from gensemcom.shared.blocks import BLOCK, block_pixels, blocks_of
from gensemcom.shared.frame import KeyRegion
from gensemcom.shared.keycodec import LinearKeyCodec

if TYPE_CHECKING:  # torch loads only when a DeepJSCC codec is built
    import torch

    from gensemcom.shared.jscc.models import DeepJSCC


@dataclass(frozen=True)
class KeyCode:
    """What the transmitter sends for the key region: symbols plus the header's side information."""

    symbols: np.ndarray  # complex64, unit average power
    params: tuple[float, ...] = ()
    side: bytes = b""
    block_power: bytes = b""  # per sent block, when blocks differ in power (KeyRegion.block_power)
    bandwidth_ratio: float | None = None  # what the header declares; None = the codec's own


class KeyCodec(Protocol):
    id: str
    version: str
    equaliser: str  # "zf" or "mmse": the equaliser output the decoder expects
    bandwidth_ratio: float

    def encode(self, image: np.ndarray, mask: np.ndarray, bbox: tuple[int, int, int, int]) -> KeyCode:
        """uint8 H×W×3 image, its bool key mask and the mask's bounding box -> what to send."""
        ...

    def n_symbols(self, region: KeyRegion) -> int:
        """Symbols a frame with this key region must carry (checked before decoding)."""
        ...

    def decode(self, x_hat: np.ndarray, no_eff: np.ndarray, region: KeyRegion, equaliser: str) -> np.ndarray:
        """Symbols after ``equaliser`` ("zf" or "mmse") and their effective noise -> uint8 crop of the box."""
        ...


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8)


class LinearKey:
    """:class:`LinearKeyCodec` at the bandwidth ratio each frame declares."""

    id = LinearKeyCodec.id
    version = LinearKeyCodec.version
    equaliser = LinearKeyCodec.equaliser

    def __init__(self, bandwidth_ratio: float = 1 / 6, block: int = 8) -> None:
        self._codec = LinearKeyCodec(bandwidth_ratio=bandwidth_ratio, block=block)
        self.bandwidth_ratio = self._codec.bandwidth_ratio

    def _at(self, region: KeyRegion) -> LinearKeyCodec:
        if math.isclose(region.bandwidth_ratio, self.bandwidth_ratio):
            return self._codec
        return LinearKeyCodec(bandwidth_ratio=region.bandwidth_ratio, block=self._codec.block)

    def encode(self, image: np.ndarray, mask: np.ndarray, bbox: tuple[int, int, int, int]) -> KeyCode:
        symbols, params = self._codec.encode(image.astype(np.float32) / 255.0, bbox)
        return KeyCode(symbols, tuple(params))

    def n_symbols(self, region: KeyRegion) -> int:
        return self._at(region).n_symbols(region.bbox)

    def decode(self, x_hat: np.ndarray, no_eff: np.ndarray, region: KeyRegion, equaliser: str) -> np.ndarray:
        crop = self._at(region).decode(x_hat, list(region.params), region.bbox, no=float(np.mean(no_eff)))
        return _to_uint8(crop)


class DeepJsccKey:
    """A DeepJSCC model in masked mode on the key region's bounding box.

    The transmitter conditions the encoder on ``snr_db``, the SNR it expects
    (its setting, or per frame the rate control's estimate); the receiver conditions the decoder on the SNR
    after equalisation, which it reads off the MMSE output's effective noise
    (no_eff = 1/(γ + 1) for unit-power symbols). Only the sent latent
    positions travel as ``side``: one bit per 16×16 block of the box.
    """

    equaliser = "mmse"

    def __init__(self, model: "DeepJSCC", bandwidth_ratio: float = 1 / 6, snr_db: float = 10.0) -> None:
        from gensemcom.shared.jscc.models import cbr

        rates = {cbr(rate): rate for rate in model.config.rates}
        matches = [rate for ratio, rate in rates.items() if math.isclose(ratio, bandwidth_ratio, rel_tol=1e-6)]
        if not matches:
            offered = ", ".join(f"1/{round(1 / ratio)}" for ratio in sorted(rates))
            raise ValueError(f"model {model.name} offers bandwidth ratios {offered}, not {bandwidth_ratio:.4g}")
        if not math.isfinite(snr_db):
            raise ValueError(f"design SNR must be finite, got {snr_db}")
        self.model = model
        self.id, self.version = model.name, model.version
        self.bandwidth_ratio = float(bandwidth_ratio)
        self.rate = matches[0]
        self.snr_db = float(snr_db)
        self._rates = rates

    @property
    def device(self) -> "torch.device":
        return next(self.model.parameters()).device

    @property
    def rates(self) -> list[int]:
        """The model's latent rates (reals per block), lowest first."""
        return sorted(self._rates.values())

    def rate_for(self, ratio: float) -> int:
        """The latent rate of bandwidth ratio ``ratio``."""
        for offered, rate in self._rates.items():
            if math.isclose(offered, ratio, rel_tol=1e-6):
                return rate
        raise ValueError(f"model {self.id} has no rate for bandwidth ratio {ratio:.4g}")

    def ratio_for(self, rate: int) -> float:
        """The bandwidth ratio of latent ``rate``."""
        for ratio, offered in self._rates.items():
            if offered == rate:
                return ratio
        raise ValueError(f"model {self.id} has no rate {rate}")

    def _rate(self, region: KeyRegion) -> int:
        return self.rate_for(region.bandwidth_ratio)

    def _grid(self, region: KeyRegion) -> tuple[int, int]:
        return -(-region.height // BLOCK), -(-region.width // BLOCK)

    def sent_blocks(self, region: KeyRegion) -> np.ndarray:
        """The (rows, cols) block map of ``region``: which 16×16 blocks of its box were sent."""
        rows, cols = self._grid(region)
        bits = np.unpackbits(np.frombuffer(region.side, np.uint8))
        if bits.size != -(-rows * cols // 8) * 8 or bits[rows * cols :].any():
            raise ValueError(
                f"key side information holds {len(region.side)} bytes; a {region.width}x{region.height} box "
                f"needs a {rows}x{cols} block map ({-(-rows * cols // 8)} bytes)"
            )
        return bits[: rows * cols].reshape(rows, cols).astype(bool)

    def block_power(self, region: KeyRegion) -> np.ndarray:
        """Transmit power of each sent block, in the order of the block map (all 1.0 without a power map)."""
        n_sent = int(self.sent_blocks(region).sum())
        if not region.block_power:
            return np.ones(n_sent, np.float32)
        power = np.frombuffer(region.block_power, np.uint8).astype(np.float32) / POWER_UNIT
        if power.size != n_sent or not (power > 0).all():
            raise ValueError(f"key region lists {power.size} block powers for {n_sent} sent blocks "
                             "(each must be > 0)")
        return power

    def symbol_gain(self, region: KeyRegion) -> np.ndarray | None:
        """Amplitude each key symbol was sent with (None = all 1): the receiver folds it into the channel gain."""
        if not region.block_power:
            return None
        pairs = self._rate(region) // 2
        return np.tile(np.sqrt(self.block_power(region)), pairs)  # symbols run channel-major over the blocks

    def encode(self, image: np.ndarray, mask: np.ndarray, bbox: tuple[int, int, int, int],
               ratio: float | None = None, snr_db: float | None = None, sent: np.ndarray | None = None,
               power: np.ndarray | None = None) -> KeyCode:
        """Code the box's blocks that overlap ``mask`` (or those marked in ``sent``, a block grid of the box).

        ``ratio`` and ``snr_db`` override the codec's bandwidth ratio and design SNR for this frame (an
        adaptive transmitter's plan). ``power`` (block grid, mean 1 over the sent blocks) sends each
        block at its own power: one encoder pass keeps every block's context, so unequal power
        favours the important blocks without the border losses a split into separately coded groups
        would bring (docs/adapt.md). Powers travel quantised to 1/32, rounded down.
        """
        import torch

        from gensemcom.shared.jscc.models import cbr

        x, y, w, h = bbox
        snr_db = self.snr_db if snr_db is None else float(snr_db)
        rate = self.rate if ratio is None else self.rate_for(ratio)
        crop_mask = np.ascontiguousarray(mask[y : y + h, x : x + w])
        positions = blocks_of(crop_mask) if sent is None else np.asarray(sent, bool)
        if positions.shape != self._grid(KeyRegion(x, y, w, h, 0.0)) or not positions.any():
            raise ValueError(f"sent blocks must be a non-empty grid of shape {self._grid(KeyRegion(x, y, w, h, 0.0))}")
        crop = torch.from_numpy(np.ascontiguousarray(image[y : y + h, x : x + w])).permute(2, 0, 1)[None]
        with torch.inference_mode():
            code = self.model.encode(crop.float().div(255.0).to(self.device), snr_db, rate,
                                     block_pixels(positions, (h, w)))
        symbols = code.symbols[0].cpu().numpy()
        block_power = b""
        if power is not None:
            wanted = np.asarray(power, np.float64)[positions]
            # Blocks differ in energy: rescale so the frame keeps unit mean power after the shift.
            energy = np.mean(np.abs(symbols.reshape(rate // 2, -1)) ** 2, axis=0)
            wanted = wanted / float(np.mean(energy * wanted))
            quantised = np.floor(wanted * POWER_UNIT).clip(1, 255)
            block_power = quantised.astype(np.uint8).tobytes()
            symbols = symbols * np.tile(np.sqrt(quantised / POWER_UNIT), rate // 2).astype(np.float32)
        return KeyCode(symbols, (snr_db,), np.packbits(positions).tobytes(), block_power, cbr(rate))

    def n_symbols(self, region: KeyRegion) -> int:
        return int(self.sent_blocks(region).sum()) * self._rate(region) // 2

    def decode(self, x_hat: np.ndarray, no_eff: np.ndarray, region: KeyRegion, equaliser: str) -> np.ndarray:
        """Decode, conditioned on the post-equalisation SNR; with unequal block powers, one decoder pass
        per power level (each conditioned on its blocks' SNR, all blocks in view) and each block's pixels
        from its own level's pass."""
        import torch

        from gensemcom.shared.jscc.models import JsccSymbols

        positions = self.sent_blocks(region)
        rate = self._rate(region)
        power = self.block_power(region)
        levels = np.tile(power, rate // 2)
        received = JsccSymbols(torch.from_numpy(np.asarray(x_hat, np.complex64))[None].to(self.device), rate,
                               (region.height, region.width), torch.from_numpy(positions))
        out = np.zeros((region.height, region.width, 3), np.float32)
        block_levels = np.zeros(positions.shape, np.float32)
        block_levels[positions] = power
        for level in np.unique(levels):
            snr_db = _post_equaliser_snr_db(no_eff[levels == level], equaliser)
            with torch.inference_mode():
                crop = self.model.decode(received, snr_db)[0].permute(1, 2, 0).cpu().numpy()
            pixels = block_pixels(block_levels == level, (region.height, region.width))
            out[pixels] = crop[pixels]
        return _to_uint8(out)


POWER_UNIT = 32  # block powers travel as bytes in units of 1/32


def _post_equaliser_snr_db(no_eff: np.ndarray, equaliser: str) -> float:
    """SNR γ the decoder is conditioned on: MMSE leaves noise 1/(γ + 1) on unit-power symbols, ZF leaves 1/γ."""
    mean_no = float(np.mean(no_eff))
    if not 0 < mean_no < math.inf:
        raise ValueError(f"effective noise must be finite and > 0, got {mean_no}")
    gamma = 1 / mean_no - 1 if equaliser == "mmse" else 1 / mean_no
    return 10 * math.log10(max(gamma, 1e-6))
