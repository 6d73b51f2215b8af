"""Fixed vs adaptive rate: quality against symbols per image, over channels (``semcom adapt eval``).

Each image's frame (key region by DeepJSCC, prompt and mask by LDPC) is sent under every condition:

- **fixed**: each of the codec's ratios, the encoder conditioned on a design SNR of 10 dB, prompt and mask
  at MCS ``fixed_mcs`` (the transmitter's defaults: what it does without feedback);
- **adaptive**: for each target, :class:`~gensemcom.adapt.control.RateControl` plans the frame from the
  SNR the transmitter knows: the true average SNR on the static channels (a request's ``snr_db``); on the
  time-varying channel, the receiver's report of the *previous* frame through
  :class:`~gensemcom.adapt.feedback.SnrTracker` (the first frame falls back to 0 dB, as the service does).

Conditions: AWGN at several SNRs, Rayleigh and Rician at one average SNR (planned with the Rayleigh table),
and *streams*: frame SNR following Clarke fading from frame to frame (normalised Doppler ``frame_doppler``
per frame time, one stream per value; mean ``stream_snr_db``), constant within a frame. A slow stream is
what feedback can follow; a fast one shows what a one-frame-old report costs.

Symbols are the frame's data symbols: key region plus prompt and mask (pilots, the same share of every
frame, left out). The digital segments are counted lost when the frame's SNR is below their MCS's measured
10 %-BLER threshold (:mod:`gensemcom.shared.phy.mcs`); that model needs an SNR constant over the frame, so
on the static Rayleigh/Rician conditions the digital segments are taken as delivered (``digital_lost`` is
None there). A send *meets* a target when its digital segments arrive and its key PSNR reaches the target.

Equal quality is read two ways (:mod:`gensemcom.adapt.saving`): equal mean key PSNR, and equal share of
sends meeting the target. The second is the one rate adaptation is built for: a fixed-rate transmitter that
does not know the SNR must be sized for the bad channels, so the pools (all AWGN SNRs together: users at
different distances; each stream: one user over time) are where the saving shows.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gensemcom.adapt.control import LinkState, RateControl
from gensemcom.adapt.feedback import SnrTracker
from gensemcom.adapt.measure import KeyImage, digital_bits, encode_key, key_psnr, receive_key
from gensemcom.adapt.report import as_table, from_table, ratio_label
from gensemcom.adapt.saving import saving
from gensemcom.adapt.table import RateTable
from gensemcom.channel.doppler import jakes_gains
from gensemcom.shared.keycodecs import DeepJsccKey
from gensemcom.shared.phy.link import symbols_for_payload
from gensemcom.shared.phy.mcs import mcs_from_index

DESIGN_SNR_DB = 10.0


@dataclass(frozen=True)
class EvalSettings:
    awgn_snr_db: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0)
    fading_snr_db: float = 10.0
    k_factor: float = 3.0
    targets: tuple[float, ...] = (24.0, 26.0, 28.0)
    stream_snr_db: float = 10.0
    frame_doppler: tuple[float, ...] = (0.05, 0.2)
    fixed_mcs: int = 2
    mcs_margin_db: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class Condition:
    label: str
    channel: str  # a model of gensemcom.channel.models
    snr_db: float  # average SNR (the stream's mean)
    params: dict
    doppler: float | None = None  # a stream: SNR varies frame to frame (fD·T per frame); learnt from feedback


def conditions(settings: EvalSettings) -> list[Condition]:
    fading, k = settings.fading_snr_db, settings.k_factor
    return [
        *(Condition(f"awgn {snr:g} dB", "awgn", snr, {}) for snr in settings.awgn_snr_db),
        Condition(f"rayleigh {fading:g} dB", "rayleigh", fading, {}),
        Condition(f"rician K={k:g} {fading:g} dB", "rician", fading, {"k_factor": k}),
        *(Condition(f"doppler stream {settings.stream_snr_db:g} dB, fD·T={doppler:g}/frame", "awgn",
                    settings.stream_snr_db, {}, doppler=doppler) for doppler in settings.frame_doppler),
    ]


def stream_snr_db(rng: np.random.Generator, frames: int, stream: Condition) -> np.ndarray:
    """Each frame's SNR on a stream: the mean times Clarke fading's power, sampled once per frame."""
    gains = jakes_gains(rng, frames, stream.doppler, np.ones(1))[0]
    return stream.snr_db + 10 * np.log10(np.maximum(np.abs(gains) ** 2, 1e-6))


def digital_lost(channel: str, snr_db: float, mcs: int) -> bool | None:
    """Whether prompt and mask are lost at ``snr_db``: below their MCS's 10 %-BLER threshold. None on the
    block-fading channels, where one SNR does not describe the frame."""
    return None if channel != "awgn" else bool(snr_db < mcs_from_index(mcs).snr_threshold_db)


def digital_symbols(bits: list[int], mcs: int) -> int:
    """Data symbols of the prompt and mask segments (payload ``bits`` each) at MCS ``mcs``."""
    entry = mcs_from_index(mcs)
    return sum(symbols_for_payload(b, entry) for b in bits)


def run_eval(items: list[KeyImage], codec: DeepJsccKey, table: RateTable, rayleigh_table: RateTable,
             settings: EvalSettings = EvalSettings(), progress: bool = True) -> dict:
    """Every send's key PSNR and symbols, and per condition and pool the summary and the savings."""
    ratios = sorted(codec.ratio_for(rate) for rate in codec.rates)
    rng = np.random.default_rng(settings.seed)
    conds = conditions(settings)
    stream_snr = {c.label: stream_snr_db(rng, len(items), c) for c in conds if c.doppler is not None}
    controls = {(name, t): RateControl(tab, t, fallback_snr_db=0.0, mcs_margin_db=settings.mcs_margin_db)
                for name, tab in (("awgn", table), ("rayleigh", rayleigh_table)) for t in settings.targets}
    trackers = {(label, t): SnrTracker(smoothing=1.0, stale_after_s=float("inf"))
                for label in stream_snr for t in settings.targets}
    rows: list[dict] = []
    total = len(items) * len(conds) * (len(ratios) + len(settings.targets))
    with tqdm(total=total, desc="fixed vs adaptive", unit="send", disable=not progress) as bar:
        for index, item in enumerate(items):
            bits = digital_bits(item)
            fixed_codes = {ratio: encode_key(codec, item, ratio, DESIGN_SNR_DB) for ratio in ratios}
            fixed_digital = digital_symbols(bits, settings.fixed_mcs)
            for cond in conds:
                snr = float(stream_snr[cond.label][index]) if cond.label in stream_snr else cond.snr_db
                for ratio, (code, region) in fixed_codes.items():
                    crop, n = receive_key(codec, code, region, cond.channel, snr, rng, **cond.params)
                    rows.append(send(cond.label, f"fixed {ratio_label(ratio)}", index, key_psnr(item, crop), n,
                                     fixed_digital, digital_lost(cond.channel, snr, settings.fixed_mcs)))
                    bar.update()
                for target in settings.targets:
                    control = controls["awgn" if cond.channel == "awgn" else "rayleigh", target]
                    if cond.label in stream_snr:
                        tracker = trackers[cond.label, target]
                        plan = control.plan("adaptive", tracker.link("stream"))
                        tracker.report("stream", snr)  # the receiver's report, used for the next frame
                    else:
                        plan = control.plan("adaptive", LinkState(snr, "request"))
                    code, region = encode_key(codec, item, plan.ratio, plan.snr_db)
                    crop, n = receive_key(codec, code, region, cond.channel, snr, rng, **cond.params)
                    rows.append(send(cond.label, f"adaptive {target:g} dB", index, key_psnr(item, crop), n,
                                     digital_symbols(bits, plan.mcs), digital_lost(cond.channel, snr, plan.mcs)))
                    bar.update()
    return summarise(rows, conds, settings, stream_snr)


def send(condition: str, scheme: str, image: int, psnr: float, key_symbols: int, digital_symbols: int,
         digital_lost: bool | None) -> dict:
    """One send's row (the JSON's ``sends`` table has these columns)."""
    return {"condition": condition, "scheme": scheme, "image": image, "psnr": psnr, "key_symbols": key_symbols,
            "digital_symbols": digital_symbols, "digital_lost": digital_lost}


def summarise(rows: list[dict], conds: list[Condition], settings: EvalSettings,
              stream_snr: dict[str, np.ndarray]) -> dict:
    """Per condition, and per pool of conditions, each scheme's means, target hit rates and savings; each
    stream's frame SNRs."""
    awgn = [c.label for c in conds if c.channel == "awgn" and c.doppler is None]
    pools = {f"awgn {settings.awgn_snr_db[0]:g}–{settings.awgn_snr_db[-1]:g} dB, SNR unknown in advance": awgn}
    pools |= {f"{c.label} (feedback)": [c.label] for c in conds if c.doppler is not None}
    return {
        "settings": asdict(settings),
        "design_snr_db": DESIGN_SNR_DB,
        "conditions": {c.label: summary([r for r in rows if r["condition"] == c.label], settings.targets)
                       for c in conds},
        "pools": {name: summary([r for r in rows if r["condition"] in members], settings.targets)
                  for name, members in pools.items()},
        "streams": {label: np.round(snr, 3).tolist() for label, snr in stream_snr.items()},
        "sends": as_table([r | {"psnr": round(r["psnr"], 3)} for r in rows]),
    }


def summary(rows: list[dict], targets: tuple[float, ...]) -> dict:
    """Each scheme's mean PSNR, symbols and share meeting each target; for adaptive schemes the savings
    against the fixed-ratio curve at equal mean PSNR and at an equal share meeting its target."""
    out = {}
    for scheme in dict.fromkeys(r["scheme"] for r in rows):
        mine = [r for r in rows if r["scheme"] == scheme]
        psnr = np.array([r["psnr"] for r in mine])
        key, digital = (np.array([r[name] for r in mine], np.float64) for name in ("key_symbols", "digital_symbols"))
        lost = [r["digital_lost"] for r in mine]
        delivered = np.array([not flag for flag in lost])
        out[scheme] = {
            "psnr": round(float(psnr.mean()), 3), "psnr_std": round(float(psnr.std()), 3),
            "key_symbols": round(float(key.mean()), 1), "digital_symbols": round(float(digital.mean()), 1),
            "symbols": round(float((key + digital).mean()), 1),
            "meets": {f"{t:g}": round(float((delivered & (psnr >= t)).mean()), 4) for t in targets},
            "digital_lost": None if None in lost else round(float(np.mean(lost)), 4),
            "sends": len(mine),
        }
    fixed = {k: v for k, v in out.items() if k.startswith("fixed")}
    for scheme, entry in out.items():
        if scheme.startswith("adaptive"):
            target = scheme.split()[1]
            by_psnr = saving(entry["symbols"], [(f["symbols"], f["psnr"]) for f in fixed.values()], entry["psnr"])
            by_hits = saving(entry["symbols"], [(f["symbols"], f["meets"][target]) for f in fixed.values()],
                             entry["meets"][target])
            entry["saving_at_equal_psnr"] = None if by_psnr is None else round(by_psnr, 4)
            entry["saving_at_equal_hit_rate"] = None if by_hits is None else round(by_hits, 4)
            # no saving to read when a fixed ratio is both cheaper and better on average: say which
            entry["dominated_by"] = next((name for name, f in fixed.items()
                                          if f["symbols"] <= entry["symbols"] and f["psnr"] >= entry["psnr"]), None)
    return out


def plot_eval(result: dict, path: Path) -> None:
    """Top rows: mean key PSNR against symbols per condition. Bottom row: per pool and target, the share of
    sends meeting the target against symbols."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(result["conditions"])
    targets = [f"{t:g}" for t in result["settings"]["targets"]]
    cols = 4
    rows = -(-len(labels) // cols) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.5 * rows), squeeze=False)
    for ax, label in zip(axes[:-1].ravel(), labels):
        cell = result["conditions"][label]
        fixed = sorted((v["symbols"], v["psnr"]) for k, v in cell.items() if k.startswith("fixed"))
        ax.plot(*zip(*fixed), "o-", color="grey", label="fixed ratio")
        for scheme, entry in cell.items():
            if scheme.startswith("adaptive"):
                ax.plot(entry["symbols"], entry["psnr"], "s", label=scheme)
        ax.set(title=label, xscale="log", xlabel="symbols per image", ylabel="mean key PSNR (dB)")
        ax.grid(alpha=0.3)
    for ax in axes[:-1].ravel()[len(labels):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    bottom = axes[-1]
    for ax, (pool, cell) in zip(bottom, result["pools"].items()):
        for i, target in enumerate(targets):
            colour = f"C{i}"
            fixed = sorted((v["symbols"], v["meets"][target]) for k, v in cell.items() if k.startswith("fixed"))
            ax.plot(*zip(*fixed), "o-", color=colour, alpha=0.5, label=f"fixed, ≥{target} dB")
            adaptive = cell[f"adaptive {target} dB"]
            ax.plot(adaptive["symbols"], adaptive["meets"][target], "s", color=colour, ms=8,
                    label=f"adaptive {target} dB")
        ax.set(title=pool, xscale="log", xlabel="mean symbols per image", ylabel="share of sends meeting target",
               ylim=(0, 1.02))
        ax.title.set_fontsize(8)
        ax.grid(alpha=0.3)
    bottom[0].legend(fontsize=7)
    for ax in bottom[len(result["pools"]):]:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_streams(result: dict, path: Path) -> None:
    """Per stream, frame by frame: the channel's SNR, and the key bandwidth ratio each adaptive target chose
    (hollow where the frame missed its target or lost prompt and mask)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = from_table(result["sends"])
    streams = result["streams"]
    fig, axes = plt.subplots(2, len(streams), figsize=(6.5 * len(streams), 5.5), sharex=True, squeeze=False)
    for col, (label, snr) in enumerate(streams.items()):
        top, bottom = axes[0, col], axes[1, col]
        top.plot(snr, "k.-")
        top.set(title=label, ylabel="frame SNR (dB)")
        mine = [r for r in rows if r["condition"] == label]
        fixed = {r["image"]: r for r in mine if r["scheme"] == "fixed 1/24"}  # one latent rate: 1/24 per block
        schemes = [s for s in dict.fromkeys(r["scheme"] for r in mine) if s.startswith("adaptive")]
        for i, scheme in enumerate(schemes):
            sends = sorted((r for r in mine if r["scheme"] == scheme), key=lambda r: r["image"])
            frames = [r["image"] for r in sends]
            ratios = [r["key_symbols"] / fixed[r["image"]]["key_symbols"] / 24 for r in sends]
            target = float(scheme.split()[1])
            bottom.step(frames, ratios, where="mid", color=f"C{i}", alpha=0.7, label=scheme)
            missed = [(f, q) for f, q, r in zip(frames, ratios, sends) if r["digital_lost"] or r["psnr"] < target]
            if missed:
                bottom.plot(*zip(*missed), "o", mfc="none", color=f"C{i}")
        bottom.set(xlabel="frame (o: target missed or prompt/mask lost)", ylabel="key bandwidth ratio", yscale="log",
                   yticks=[1 / 24, 1 / 12, 1 / 6], yticklabels=["1/24", "1/12", "1/6"])
        bottom.minorticks_off()
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
        bottom.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(result: dict, out: Path, name: str = "adapt_eval") -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    plot_eval(result, out / f"{name}.png")
    if result["streams"]:
        plot_streams(result, out / f"{name}_streams.png")
