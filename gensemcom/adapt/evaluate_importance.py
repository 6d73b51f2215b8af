"""Importance-aware vs content-blind trimming of the key region under a symbol budget.

When a frame's budget cannot hold the whole key region even at the lowest ratio, blocks must go. The
``importance`` mode keeps the blocks its ranker scores highest (faces, else saliency); the other modes keep
those nearest the region's centre (:func:`~gensemcom.adapt.allocate.centre_first`). This experiment sends
each image's key region under budgets that hold a share of its blocks at the lowest ratio, in both orders,
plus the whole region, over AWGN at a known SNR (the encoder conditioned on it).

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
from gensemcom.adapt.saving import saving
from gensemcom.shared.blocks import block_pixels, blocks_of
from gensemcom.shared.keycodecs import DeepJsccKey

ORDERS = ("centre", "importance")


@dataclass(frozen=True)
class ImportanceSettings:
    shares: tuple[float, ...] = (0.25, 0.5, 0.75)  # budget as a share of the region's blocks at the lowest ratio
    snr_db: float = 10.0
    seed: int = 0


def fill_dropped(crop: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``crop`` with every pixel outside ``known`` inpainted from the known ones (Telea, radius 5)."""
    if known.all() or not known.any():
        return crop
    return cv2.inpaint(np.ascontiguousarray(crop), (~known).astype(np.uint8), 5, cv2.INPAINT_TELEA)


def run_importance(items: list[KeyImage], codec: DeepJsccKey, ranker: ImportanceRanker,
                   settings: ImportanceSettings = ImportanceSettings(), progress: bool = True) -> dict:
    """Per image, order and budget share: symbols, important-pixel and key PSNR; and the summary."""
    rng = np.random.default_rng(settings.seed)
    lowest = min(codec.rates)
    ratio = codec.ratio_for(lowest)
    rows = []
    with tqdm(total=len(items) * (2 * len(settings.shares) + 1), desc="importance vs centre", unit="send",
              disable=not progress) as bar:
        for index, item in enumerate(items):
            x, y, w, h = item.bbox
            inside = item.mask[y : y + h, x : x + w]
            region_blocks = blocks_of(inside)
            ranked = ranker(item.image, item.mask, item.bbox)
            important = block_pixels(ranked.important, (h, w)) & inside
            orders = {"centre": centre_first(region_blocks), "importance": ranked.scores}
            plans = [("full", 1.0, region_blocks)]
            for share in settings.shares:
                budget = int(share * region_blocks.sum()) * lowest // 2
                for order, scores in orders.items():
                    plans.append((order, share, fit_budget(region_blocks, scores, lowest, [lowest], budget).sent))
            for order, share, kept in plans:
                code, region = encode_key(codec, item, ratio, settings.snr_db, sent=kept)
                crop, n = receive_key(codec, code, region, "awgn", settings.snr_db, rng)
                crop = fill_dropped(crop, block_pixels(kept, (h, w)) & inside)
                rows.append({"image": item.name, "ranked_by": ranked.source, "order": order, "share": share,
                             "symbols": n, "important_blocks": int(ranked.important.sum()),
                             "important_kept": round(float((kept & ranked.important).sum()
                                                           / max(ranked.important.sum(), 1)), 4),
                             "important_psnr": round(key_psnr(item, crop, important), 3),
                             "key_psnr": round(key_psnr(item, crop), 3)})
                bar.update()
    return {"settings": asdict(settings), "ratio": ratio, "summary": summarise(rows, settings.shares),
            "sends": rows}


def summarise(rows: list[dict], shares: tuple[float, ...]) -> dict:
    """Per ranking source (faces, saliency, all): mean symbols and PSNRs per order and share, and the saving
    of importance against the centre order at equal important-pixel PSNR."""
    out = {}
    for source in ("faces", "saliency", "all"):
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
            entry["important_psnr_gain"] = round(entry["important_psnr"] - points[f"centre {share:g}"]["important_psnr"], 3)
        out[source] = points
    return out


def plot_importance(result: dict, path: Path) -> None:
    """Important-pixel and key PSNR against symbols, both orders, per ranking source."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = list(result["summary"])
    fig, axes = plt.subplots(1, len(sources), figsize=(4.6 * len(sources), 3.6), squeeze=False)
    for ax, source in zip(axes[0], sources):
        points = result["summary"][source]
        for i, order in enumerate(ORDERS):
            curve = sorted((p["symbols"], p["important_psnr"], p["key_psnr"])
                           for k, p in points.items() if k.startswith(order))
            symbols, important, key = zip(*curve)
            ax.plot(symbols, important, "o-", color=f"C{i}", label=f"{order}: important pixels")
            ax.plot(symbols, key, "x--", color=f"C{i}", alpha=0.6, label=f"{order}: all key pixels")
        n = points[f"centre {1:g}"]["images"]
        ax.set(title=f"ranked by {source} ({n} images)", xlabel="key symbols per image", ylabel="PSNR (dB)")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_importance(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "adapt_importance.json").write_text(json.dumps(result, indent=1) + "\n")
    plot_importance(result, out / "adapt_importance.png")
