"""What the adaptive and importance-aware modes cost the transmitter per frame, as JSON.

    python bench/adapt.py --out bench/adapt.json      # one torch thread, people + Kodak photos

Measured on real photos (the first ``--images`` of ../shared/data/people and of kodak24, longer side
``--max-side``), median of ``--repeats`` timed runs after one warm-up, wall clock and process CPU time:

- the pieces: the rate plan (table lookup + MCS), the importance ranking with the face detector
  (MediaPipe BlazeFace + spectral-residual saliency) and without it (saliency alone), and the
  centre-first order + budget fit;
- the whole ``Transmitter.encode`` in each mode: ``fixed``, ``adaptive`` (an SNR of 10 dB stated) and
  ``importance`` under a budget that holds about half the key region at 1/24, so that blocks are ranked
  and dropped. Prompt and mask use the repetition code here: 5G LDPC costs ~0.5 s a frame on this CPU
  (bench/ldpc.py) and is the same in every mode, so it would only hide the difference.
"""

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

from machine import cpu_model, load_average  # bench/machine.py, beside this script
from gensemcom.adapt.allocate import centre_first, fit_budget
from gensemcom.adapt.control import LinkState
from gensemcom.adapt.importance import ImportanceRanker
from gensemcom.adapt.measure import KeyImage, key_images
from gensemcom.demo import find_images
from gensemcom.services import build_transmitter
from gensemcom.shared.blocks import blocks_of
from gensemcom.shared.config import TransmitterSettings
from gensemcom.shared.frame import SegmentKind
from gensemcom.shared.paths import shared_data_dir
from gensemcom.transmitter.pipeline import Transmitter

LINK = LinkState(10.0, "request")


def median_ms(fn: Callable[[], object], repeats: int) -> dict[str, float]:
    """Median wall-clock and process-CPU milliseconds of ``fn`` after one untimed call."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(1e3 * (time.perf_counter() - w))
        cpu.append(1e3 * (time.process_time() - c))
    return {"wall_ms": round(statistics.median(wall), 3), "cpu_ms": round(statistics.median(cpu), 3)}


def photos(tx: Transmitter, count: int, max_side: int) -> list[KeyImage]:
    """The first ``count`` people photos and Kodak images, shrunk so the longer side is ``max_side``, with the
    transmitter's key region."""
    data = shared_data_dir()
    paths = [path for folder in (data / "people", data / "kodak24") for path in find_images([folder])[:count]]
    return list(key_images(paths, tx.segmenter, max_side))


def bench_image(tx: Transmitter, item: KeyImage, repeats: int) -> dict:
    """Every timing for one photo."""
    rate, saliency_only = tx.rate, ImportanceRanker(None)
    image, mask, bbox = item.image, item.mask, item.bbox
    x, y, w, h = bbox
    sent = blocks_of(mask[y : y + h, x : x + w])
    full = tx.encode(image, "full", mode="fixed")
    key = full.segment(SegmentKind.KEY_JSCC).n_symbols
    budget = full.n_symbols - key + int(sent.sum()) * 64 // 4  # about half the blocks at rate 64 (1/24)
    ranked = rate.importance(image, mask, bbox)
    trimmed = tx.encode(image, "i", mode="importance", link=LINK, max_symbols=budget).header.key_region
    return {
        "image": item.name,
        "size": list(image.shape[:2]),
        "key_blocks": int(sent.sum()),
        "ranked_by": ranked.source,
        "plan": median_ms(lambda: rate.plan("adaptive", LINK), repeats),
        "rank_faces_and_saliency": median_ms(lambda: rate.importance(image, mask, bbox), repeats),
        "rank_saliency": median_ms(lambda: saliency_only(image, mask, bbox), repeats),
        "centre_first_and_fit": median_ms(lambda: fit_budget(sent, centre_first(sent), 64, [64], key // 4), repeats),
        "encode": {
            "fixed": median_ms(lambda: tx.encode(image, "f", mode="fixed"), repeats),
            "adaptive": median_ms(lambda: tx.encode(image, "a", mode="adaptive", link=LINK), repeats),
            "importance_budget": median_ms(
                lambda: tx.encode(image, "i", mode="importance", link=LINK, max_symbols=budget), repeats),
        },
        "budget_symbols": budget,
        "budget_kept_blocks": 0 if trimmed is None else int(tx.key_codec.sent_blocks(trimmed).sum()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--images", type=int, default=3, help="photos from each of people/ and kodak24/")
    parser.add_argument("--max-side", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    tx = build_transmitter(TransmitterSettings(digital="repetition", rate_mode="adaptive", target_quality=26.0))
    rows = [bench_image(tx, item, args.repeats) for item in photos(tx, args.images, args.max_side)]
    summary = {key: round(statistics.median(r[key]["cpu_ms"] for r in rows), 3)
               for key in ("plan", "rank_faces_and_saliency", "rank_saliency", "centre_first_and_fit")}
    summary |= {f"encode_{mode}": round(statistics.median(r["encode"][mode]["cpu_ms"] for r in rows), 1)
                for mode in ("fixed", "adaptive", "importance_budget")}
    report = {
        "command": "python bench/adapt.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": started,
        "machine": {"cpu": cpu_model(), "python": platform.python_version(), "torch": torch.__version__,
                    "torch_threads": args.threads, "load_average": load_average()},
        "units": "milliseconds, median over repeats; summary: median over images of the CPU time",
        "summary_cpu_ms": summary,
        "images": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
