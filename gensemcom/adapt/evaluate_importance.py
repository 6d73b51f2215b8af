"""Importance-aware vs content-blind trimming of the key region under a symbol budget.

When a frame's budget cannot hold the whole key region even at the lowest ratio, blocks must go. The
``importance`` mode keeps the blocks its ranker scores highest (faces, else saliency); the other modes keep
those nearest the region's centre (:func:`~gensemcom.adapt.allocate.centre_first`). This experiment sends
each image's key region under budgets that hold a share of its blocks at the lowest ratio, in both orders,
plus the whole region, over AWGN, Rayleigh and Rician channels at known average SNRs (the encoder
conditioned on it).

Dropped key pixels are filled from the decoded sent pixels by OpenCV's Telea inpainting: a stand-in for the
receiver's diffusion inpainting, whose trained weights are not available here, and the same for both
orders. The score that matters is PSNR over the *important* key pixels (the ranker's important blocks: face
boxes, or the top saliency share), with PSNR over all key pixels alongside to show what it costs elsewhere.
The saving compares importance's symbols with the centre order's curve (its budgets and the whole region)
at equal important-pixel PSNR.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from gensemcom.adapt.allocate import centre_first, fit_budget
from gensemcom.adapt.importance import ImportanceRanker
from gensemcom.adapt.measure import KeyImage, encode_key, key_psnr, receive_key
from gensemcom.adapt.report import as_table
from gensemcom.adapt.saving import saving
from gensemcom.shared.blocks import block_pixels, blocks_of
from gensemcom.shared.keycodecs import DeepJsccKey

ORDERS = ("centre", "importance")
SOURCES = ("faces", "saliency", "all")


@dataclass(frozen=True)
class ImportanceSettings:
    shares: tuple[float, ...] = (0.25, 0.5, 0.75)  # budget as a share of the region's blocks at the lowest ratio
    channels: tuple[tuple[str, float], ...] = (("awgn", 0.0), ("awgn", 10.0), ("awgn", 20.0), ("rayleigh", 10.0),
                                               ("rician", 10.0))  # (model, average SNR dB)
    k_factor: float = 3.0  # Rician
    seed: int = 0

    def label(self, channel: str, snr_db: float) -> str:
        name = f"rician K={self.k_factor:g}" if channel == "rician" else channel
        return f"{name} {snr_db:g} dB"


def fill_dropped(crop: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``crop`` with every pixel outside ``known`` inpainted from the known ones (Telea, radius 5)."""
    if known.all() or not known.any():
        return crop
    return cv2.inpaint(np.ascontiguousarray(crop), (~known).astype(np.uint8), 5, cv2.INPAINT_TELEA)


def budget_plans(region_blocks: np.ndarray, orders: dict[str, np.ndarray], shares: tuple[float, ...],
                 rate: int) -> list[tuple[str, float, np.ndarray]]:
    """(order, share, blocks kept): the whole region once, then each order under each share's budget."""
    plans = [("full", 1.0, region_blocks)]
    for share in shares:
        budget = int(share * region_blocks.sum()) * rate // 2
        plans += [(order, share, fit_budget(region_blocks, scores, rate, [rate], budget).sent)
                  for order, scores in orders.items()]
    return plans


def run_importance(items: list[KeyImage], codec: DeepJsccKey, ranker: ImportanceRanker,
                   settings: ImportanceSettings = ImportanceSettings(), progress: bool = True) -> dict:
    """Per channel, image, order and budget share: symbols, important-pixel and key PSNR; and the summary."""
    rng = np.random.default_rng(settings.seed)
    lowest = min(codec.rates)
    ratio = codec.ratio_for(lowest)
    rows = []
    sends = len(items) * (2 * len(settings.shares) + 1) * len(settings.channels)
    with tqdm(total=sends, desc="importance vs centre", unit="send", disable=not progress) as bar:
        for item in items:
            x, y, w, h = item.bbox
            inside = item.mask[y : y + h, x : x + w]
            region_blocks = blocks_of(inside)
            ranked = ranker(item.image, item.mask, item.bbox)
            important = block_pixels(ranked.important, (h, w)) & inside
            orders = {"centre": centre_first(region_blocks), "importance": ranked.scores}
            for order, share, kept in budget_plans(region_blocks, orders, settings.shares, lowest):
                codes = {}  # one encoding per design SNR
                for channel, snr in settings.channels:
                    if snr not in codes:
                        codes[snr] = encode_key(codec, item, ratio, snr, sent=kept)
                    params = {"k_factor": settings.k_factor} if channel == "rician" else {}
                    crop, n = receive_key(codec, *codes[snr], channel, snr, rng, **params)
                    crop = fill_dropped(crop, block_pixels(kept, (h, w)) & inside)
                    rows.append({"channel": settings.label(channel, snr), "image": item.name,
                                 "ranked_by": ranked.source, "order": order, "share": share, "symbols": n,
                                 "important_blocks": int(ranked.important.sum()),
                                 "important_kept": round(float((kept & ranked.important).sum()
                                                               / max(ranked.important.sum(), 1)), 4),
                                 "important_psnr": round(key_psnr(item, crop, important), 3),
                                 "key_psnr": round(key_psnr(item, crop), 3)})
                    bar.update()
    labels = [settings.label(*c) for c in settings.channels]
    return {"settings": asdict(settings), "ratio": ratio,
            "summary": {label: summarise([r for r in rows if r["channel"] == label], settings.shares)
                        for label in labels},
            "sends": as_table(rows)}


def summarise(rows: list[dict], shares: tuple[float, ...]) -> dict:
    """Per ranking source (faces, saliency, all): mean symbols and PSNRs per order and share, and the saving
    of importance against the centre order at equal important-pixel PSNR."""
    out = {}
    for source in SOURCES:
        mine = [r for r in rows if source == "all" or r["ranked_by"] == source]
        if not mine:
            continue
        points = {}
        for order in ORDERS:
            for share in (*shares, 1.0):
                cell = [r for r in mine if r["share"] == share and r["order"] == (order if share < 1 else "full")]
                points[f"{order} {share:g}"] = {
                    key: round(float(np.mean([r[key] for r in cell])), 3)
                    for key in ("symbols", "important_psnr", "key_psnr", "important_kept")
                } | {"images": len(cell)}
        centre = [(p["symbols"], p["important_psnr"]) for k, p in points.items() if k.startswith("centre")]
        for share in shares:
            entry = points[f"importance {share:g}"]
            found = saving(entry["symbols"], centre, entry["important_psnr"])
            entry["saving_at_equal_important_psnr"] = None if found is None else round(found, 4)
            entry["important_psnr_gain"] = round(entry["important_psnr"]
                                                 - points[f"centre {share:g}"]["important_psnr"], 3)
        out[source] = points
    return out


def plot_importance(result: dict, path: Path) -> None:
    """Important-pixel (solid) and all-key (dashed) PSNR against symbols, both orders; a row per ranking
    source, a column per channel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    channels = list(result["summary"])
    sources = [s for s in SOURCES[:2] if any(s in result["summary"][c] for c in channels)]
    fig, axes = plt.subplots(len(sources), len(channels), figsize=(3.8 * len(channels), 3.3 * len(sources)),
                             squeeze=False, sharey=True)
    for row, source in enumerate(sources):
        for col, channel in enumerate(channels):
            ax = axes[row, col]
            points = result["summary"][channel].get(source)
            if points is None:
                ax.axis("off")
                continue
            for i, order in enumerate(ORDERS):
                curve = sorted((p["symbols"], p["important_psnr"], p["key_psnr"])
                               for k, p in points.items() if k.startswith(order))
                symbols, important, key = zip(*curve)
                ax.plot(symbols, important, "o-", color=f"C{i}", label=f"{order}: important pixels")
                ax.plot(symbols, key, "x--", color=f"C{i}", alpha=0.6, label=f"{order}: all key pixels")
            n = points["centre 1"]["images"]
            ax.set(title=f"{channel}, {source} ({n} images)", xlabel="key symbols per image")
            ax.title.set_fontsize(9)
            ax.grid(alpha=0.3)
        axes[row, 0].set_ylabel("PSNR (dB)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_importance(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "adapt_importance.json").write_text(json.dumps(result, indent=1) + "\n")
    plot_importance(result, out / "adapt_importance.png")
