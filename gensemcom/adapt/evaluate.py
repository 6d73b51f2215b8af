"""Fixed vs adaptive rate: key-region quality against symbols per image, over channels (``semcom adapt eval``).

Each image's key region goes through :func:`~gensemcom.adapt.measure.send_key` under every condition:

- **fixed**: each of the codec's ratios, encoder conditioned on a design SNR of 10 dB (what a
  transmitter without feedback does); the three points trace the fixed-rate quality/symbols curve;
- **adaptive**: for each target, the rate table picks the ratio from the SNR the transmitter knows
  (the true average SNR on the static channels; on the time-varying channel, the receiver's report
  of the *previous* frame, through :class:`~gensemcom.adapt.feedback.SnrTracker`).

The time-varying channel is a stream: the frame SNR follows Clarke fading from frame to frame
(normalised Doppler ``frame_doppler`` per frame time, mean ``stream_snr_db``), constant within a frame.
The saving at equal quality compares the adaptive scheme's mean symbols with the fixed-rate curve's
symbols at the same mean PSNR (interpolated linearly in log-symbols between the fixed points).
Symbols counted are the key region's: prompt and mask are a few hundred symbols either way.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gensemcom.adapt.feedback import SnrTracker
from gensemcom.adapt.measure import KeyImage, encode_key, key_psnr, receive_key, send_key
from gensemcom.adapt.report import ratio_label
from gensemcom.adapt.table import RateTable
from gensemcom.channel.doppler import jakes_gains
from gensemcom.shared.keycodecs import DeepJsccKey

DESIGN_SNR_DB = 10.0


@dataclass(frozen=True)
class EvalSettings:
    awgn_snr_db: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0)
    fading_snr_db: float = 10.0
    k_factor: float = 3.0
    targets: tuple[float, ...] = (26.0, 28.0, 30.0)
    stream_snr_db: float = 10.0
    frame_doppler: float = 0.05
    seed: int = 0


def conditions(settings: EvalSettings) -> list[tuple[str, str, float, dict]]:
    """(label, channel model, SNR, channel parameters) for the static conditions."""
    out = [(f"awgn {snr:g} dB", "awgn", snr, {}) for snr in settings.awgn_snr_db]
    out.append((f"rayleigh {settings.fading_snr_db:g} dB", "rayleigh", settings.fading_snr_db, {}))
    out.append((f"rician K={settings.k_factor:g} {settings.fading_snr_db:g} dB", "rician", settings.fading_snr_db,
                {"k_factor": settings.k_factor}))
    return out


def run_eval(items: list[KeyImage], codec: DeepJsccKey, table: RateTable, rayleigh_table: RateTable,
             settings: EvalSettings = EvalSettings(), progress: bool = True) -> dict:
    """Per condition and scheme: mean key PSNR, its spread and mean symbols; plus the equal-quality saving."""
    ratios = sorted(codec.ratio_for(rate) for rate in codec.rates)
    rng = np.random.default_rng(settings.seed)
    rows: dict[str, dict[str, list[tuple[float, int]]]] = {}
    static = conditions(settings)
    stream_label = f"doppler stream {settings.stream_snr_db:g} dB, fD·T={settings.frame_doppler:g}/frame"
    frame_gains = jakes_gains(rng, len(items), settings.frame_doppler, np.ones(1))[0]
    snr_stream = settings.stream_snr_db + 10 * np.log10(np.maximum(np.abs(frame_gains) ** 2, 1e-6))
    total = len(items) * (len(static) + 1) * (len(ratios) + len(settings.targets))
    trackers = {target: SnrTracker(smoothing=1.0, stale_after_s=1e9) for target in settings.targets}
    with tqdm(total=total, desc="fixed vs adaptive", unit="send", disable=not progress) as bar:
        for index, item in enumerate(items):
            fixed_codes = {ratio: encode_key(codec, item, ratio, DESIGN_SNR_DB) for ratio in ratios}
            for label, model, snr, params in static + [(stream_label, "awgn", float(snr_stream[index]), {})]:
                stream = label == stream_label
                cell = rows.setdefault(label, {})
                for ratio, (code, region) in fixed_codes.items():
                    crop, n = receive_key(codec, code, region, model, snr, rng, **params)
                    cell.setdefault(f"fixed {ratio_label(ratio)}", []).append((key_psnr(item, crop), n))
                    bar.update()
                plan_table = rayleigh_table if model != "awgn" else table
                for target in settings.targets:
                    if stream:
                        known = trackers[target].estimate("stream")
                        planned = settings.stream_snr_db - 10 if known is None else known.snr_db
                        trackers[target].report("stream", snr)  # the receiver's report, used for the next frame
                    else:
                        planned = snr
                    ratio = plan_table.choose(planned, target).ratio
                    crop, n = send_key(codec, item, ratio, planned, model, snr, rng, **params)
                    cell.setdefault(f"adaptive {target:g} dB", []).append((key_psnr(item, crop), n))
                    bar.update()
    return summarise(rows, ratios, settings)


def summarise(rows: dict, ratios: list[float], settings: EvalSettings) -> dict:
    out = {"settings": asdict(settings), "design_snr_db": DESIGN_SNR_DB, "conditions": {}}
    for label, schemes in rows.items():
        summary = {}
        for scheme, values in schemes.items():
            psnr = np.array([v[0] for v in values])
            symbols = np.array([v[1] for v in values], np.float64)
            summary[scheme] = {"psnr": round(float(psnr.mean()), 3), "psnr_std": round(float(psnr.std()), 3),
                               "symbols": round(float(symbols.mean()), 1), "images": int(psnr.size)}
        fixed = sorted((summary[f"fixed {ratio_label(r)}"] for r in ratios), key=lambda s: s["symbols"])
        for scheme, entry in summary.items():
            if scheme.startswith("adaptive"):
                equal = fixed_symbols_at(fixed, entry["psnr"])
                entry["fixed_symbols_at_equal_psnr"] = None if equal is None else round(equal, 1)
                entry["saving"] = None if equal is None else round(1 - entry["symbols"] / equal, 4)
        out["conditions"][label] = summary
    return out


def fixed_symbols_at(fixed: list[dict], psnr: float) -> float | None:
    """Symbols the fixed-rate curve needs for ``psnr`` (log-linear between its points); None outside it."""
    quality = [f["psnr"] for f in fixed]
    if not (min(quality) <= psnr <= max(quality)) or any(np.diff(quality) <= 0):
        return None
    return float(np.exp(np.interp(psnr, quality, np.log([f["symbols"] for f in fixed]))))


def plot_eval(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(result["conditions"])
    cols = 4
    fig, axes = plt.subplots(-(-len(labels) // cols), cols, figsize=(4 * cols, 3.4 * -(-len(labels) // cols)),
                             squeeze=False)
    for ax, label in zip(axes.ravel(), labels):
        cell = result["conditions"][label]
        fixed = sorted((v["symbols"], v["psnr"]) for k, v in cell.items() if k.startswith("fixed"))
        ax.plot([f[0] for f in fixed], [f[1] for f in fixed], "o-", color="grey", label="fixed ratio")
        for scheme, entry in cell.items():
            if scheme.startswith("adaptive"):
                ax.plot(entry["symbols"], entry["psnr"], "s", label=scheme)
        ax.set(title=label, xscale="log", xlabel="key symbols per image", ylabel="key PSNR (dB)")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(labels):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "adapt_eval.json").write_text(json.dumps(result, indent=1) + "\n")
    plot_eval(result, out / "adapt_eval.png")
