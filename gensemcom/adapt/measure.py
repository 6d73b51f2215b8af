"""Measuring the key codec's quality curves: the data behind a rate table, and the evaluation's key link.

:func:`send_key` is the key region's path through the system without the
digital segments: the transmitter's key codec, a channel model of
:mod:`gensemcom.channel.models`, the receiver's MMSE equaliser with the
channel's true gains (pilot estimation is left out: at these frame sizes its
error is small against the noise, docs/adapt.md), and the key decoder.

:func:`measure_curves` runs it over images, every (ratio, SNR) of a grid and
each channel family, and scores the key region: PSNR over the key pixels and
LPIPS (AlexNet) of the key region's box with the pixels outside the key
copied from the original, so that only the key region differs.
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from gensemcom.channel.models import make_channel
from gensemcom.receiver.equalise import equalise
from gensemcom.shared.frame import KeyRegion
from gensemcom.shared.image_io import read_image
from gensemcom.shared.keycodecs import DeepJsccKey, KeyCode
from gensemcom.shared.maskcodec import MaskCodec
from gensemcom.transmitter.describe import StructuredDescriptor
from gensemcom.transmitter.pipeline import mask_bbox
from gensemcom.transmitter.segment import Segmentation, Segmenter

RAYLEIGH_DRAWS = 2  # fading draws per (image, ratio, SNR) when measuring Rayleigh curves


@dataclass(frozen=True)
class KeyImage:
    """An image, its key mask and the mask's box, as the transmitter would send it."""

    name: str
    image: np.ndarray
    mask: np.ndarray
    bbox: tuple[int, int, int, int]
    labels: tuple[str, ...] = ()  # what the segmenter says the key region holds (the prompt names it)


def key_images(paths: Iterable[Path], segmenter: Segmenter, max_side: int = 768) -> Iterator[KeyImage]:
    """Each image (shrunk so its longer side is at most ``max_side``) with the segmenter's key region;
    images where it finds none are skipped."""
    for path in paths:
        image = read_image(path)
        scale = max_side / max(image.shape[:2])
        if scale < 1:
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        seg = segmenter(image)
        bbox = mask_bbox(seg.mask)
        if bbox is not None:
            yield KeyImage(Path(path).stem, image, seg.mask, bbox, seg.labels)


def digital_bits(item: KeyImage) -> list[int]:
    """Payload bits of the frame's mask and prompt segments for ``item``, as the transmitter codes them
    without a captioner (the mask codec and the structured description)."""
    mask = MaskCodec().encode(item.mask)
    prompt = StructuredDescriptor()(item.image, Segmentation(item.mask, "given", item.labels))
    return [8 * len(mask), 8 * len(prompt.encode("utf-8"))]


def encode_key(codec: DeepJsccKey, item: KeyImage, ratio: float, design_snr_db: float,
               power: np.ndarray | None = None, sent: np.ndarray | None = None) -> tuple[KeyCode, KeyRegion]:
    """What the transmitter sends for the key region (all its blocks, or those in ``sent``), and the
    header's key region for it."""
    code = codec.encode(item.image, item.mask, item.bbox, ratio=ratio, snr_db=design_snr_db, power=power,
                        sent=sent)
    return code, KeyRegion(*item.bbox, code.bandwidth_ratio, code.params, code.side, code.block_power)


def send_key(codec: DeepJsccKey, item: KeyImage, ratio: float, design_snr_db: float, channel: str,
             snr_db: float, rng: np.random.Generator, power: np.ndarray | None = None,
             **channel_params: object) -> tuple[np.ndarray, int]:
    """The key region's box as decoded after ``channel`` at ``snr_db``, and the symbols it took."""
    code, region = encode_key(codec, item, ratio, design_snr_db, power)
    return receive_key(codec, code, region, channel, snr_db, rng, **channel_params)


def receive_key(codec: DeepJsccKey, code: KeyCode, region: KeyRegion, channel: str, snr_db: float,
                rng: np.random.Generator, **channel_params: object) -> tuple[np.ndarray, int]:
    """``code`` through ``channel`` at ``snr_db``, equalised with the true gains and decoded; and its symbols."""
    y, state = make_channel(channel, snr_db, **channel_params)(code.symbols, rng)
    gain = state.per_symbol(code.symbols.size)
    sent_with = codec.symbol_gain(region)
    if sent_with is not None:
        gain = gain * sent_with
    x_hat, no_eff = equalise(y, gain, state.no, method="mmse")
    return codec.decode(x_hat, no_eff, region, "mmse"), int(code.symbols.size)


def key_psnr(item: KeyImage, crop: np.ndarray, pixels: np.ndarray | None = None) -> float:
    """PSNR (dB, 8-bit) of the decoded box ``crop`` over the key pixels (or ``pixels``, a mask of the box)."""
    x, y, w, h = item.bbox
    select = item.mask[y : y + h, x : x + w] if pixels is None else pixels
    error = crop[select].astype(np.float64) - item.image[y : y + h, x : x + w][select]
    mse = float(np.mean(error**2))
    return 100.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def key_lpips(item: KeyImage, crop: np.ndarray) -> float:
    """LPIPS (AlexNet) of the box with only the key pixels replaced by the decoded ones."""
    from gensemcom.eval.metrics.lpips_metric import lpips_distance

    x, y, w, h = item.bbox
    original = item.image[y : y + h, x : x + w]
    inside = item.mask[y : y + h, x : x + w]
    mixed = np.where(inside[..., None], crop, original)
    pad = max(0, 32 - min(h, w))  # AlexNet needs a little room
    if pad:
        mixed, original = (np.pad(a, ((0, pad), (0, pad), (0, 0)), mode="edge") for a in (mixed, original))
    return lpips_distance(mixed, original, net="alex")


def measure_curves(items: Sequence[KeyImage], codec: DeepJsccKey, snr_db: Sequence[float],
                   channels: Sequence[str] = ("awgn", "rayleigh"), seed: int = 0, lpips: bool = True,
                   progress: bool = True) -> dict:
    """Mean (and standard deviation over images) key-region PSNR and LPIPS per channel, ratio and SNR.

    The encoder is conditioned on the true SNR, as an adaptive transmitter with good feedback would do.
    Returns the rate-table document (:class:`gensemcom.adapt.table.RateTable` reads it).
    """
    ratios = sorted(codec.ratio_for(rate) for rate in codec.rates)
    rng = np.random.default_rng(seed)
    scores: dict[str, dict[str, np.ndarray]] = {
        ch: {m: np.full((len(items), len(ratios), len(snr_db)), np.nan) for m in ("psnr", "lpips")} for ch in channels
    }
    steps = len(items) * len(ratios) * len(snr_db)
    with tqdm(total=steps, desc="measuring key-region quality", unit="point", disable=not progress) as bar:
        for i, item in enumerate(items):
            for r, ratio in enumerate(ratios):
                for s, snr in enumerate(snr_db):
                    code, region = encode_key(codec, item, ratio, snr)  # one encoding serves every channel draw
                    for ch in channels:
                        draws = RAYLEIGH_DRAWS if ch == "rayleigh" else 1
                        crops = [receive_key(codec, code, region, ch, snr, rng)[0] for _ in range(draws)]
                        scores[ch]["psnr"][i, r, s] = np.mean([key_psnr(item, c) for c in crops])
                        if lpips:
                            scores[ch]["lpips"][i, r, s] = np.mean([key_lpips(item, c) for c in crops])
                    bar.update()
    metrics = ("psnr", "lpips") if lpips else ("psnr",)
    return {
        "codec": codec.id,
        "version": codec.version,
        "snr_db": [float(v) for v in snr_db],
        "ratios": ratios,
        "images": [item.name for item in items],
        "key_pixels": [int(item.mask.sum()) for item in items],
        "channels": {
            ch: {
                **{m: np.round(scores[ch][m].mean(axis=0), 4).tolist() for m in metrics},
                **{f"{m}_std": np.round(scores[ch][m].std(axis=0), 4).tolist() for m in metrics},
            }
            for ch in channels
        },
    }
