"""Figures of an evaluation run: which rows each shows, the plot, and one sentence saying what it shows.

Every figure function takes the result rows (dicts in the row schema of ``results.jsonl``), the
scheme order and the base condition, draws one PNG into the report folder and returns a
:class:`ReportFigure` whose text is written from the same numbers that were plotted. When the run
lacks the data (one SNR only, no LPIPS, no saved samples) it draws nothing and the text says why:
an empty plot would look like a result.

Statistics are taken over images: rows of one image are averaged first (a scheme that ignores the
non-key ratio may be written once per ratio), then the mean and its standard error go over images.
Rows with status "error" carry no metrics and are left out; "lost" rows count, since their metrics
are those of the mean-colour image the receiver shows.

Matplotlib is used through its object API (``matplotlib.figure.Figure``): it renders with Agg, needs
no display and shares no pyplot state with a caller.
"""

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image

from gensemcom.eval.schemes import RATIO_FREE, SCHEMES
from gensemcom.eval.registry import METRICS, MetricInfo

LPIPS_VS_NONKEY = "lpips_vs_nonkey.png"
METRICS_VS_SNR = "metrics_vs_snr.png"
CHANNELS = "channels.png"
RADAR = "radar.png"
SAMPLES = "samples.png"
FIGURE_FILES = (LPIPS_VS_NONKEY, METRICS_VS_SNR, CHANNELS, RADAR, SAMPLES)

# Schemes whose transmission does not depend on the non-key target (no key region, or the whole image).
WHOLE_IMAGE_SCHEMES = RATIO_FREE
SNR_PANEL_METRICS = ("psnr", "ssim", "vsi")  # plus LPIPS, whichever network the run measured
MAX_SAMPLE_IMAGES = 4
DPI = 110


@dataclass(frozen=True)
class Condition:
    """One point of the evaluation grid."""

    channel: str
    snr_db: float
    nonkey_target: float

    def describe(self) -> str:
        return f"{self.channel}, {self.snr_db:g} dB, non-key target {self.nonkey_target:g}"


@dataclass(frozen=True)
class Stat:
    """Mean over images and its standard error (NaN with fewer than two images)."""

    mean: float
    se: float


@dataclass(frozen=True)
class ReportFigure:
    """A figure as the report lists it: ``file`` is None when it was skipped, and ``text`` says why."""

    title: str
    file: str | None
    text: str


# --- selecting rows and averaging them -------------------------------------------------------------

def same(a: object, b: float) -> bool:
    """Condition values compare as numbers: 10 and 10.0 are the same SNR."""
    return isinstance(a, int | float) and math.isclose(float(a), b, abs_tol=1e-9)


def matches(row: dict, *, channel: str | None = None, snr_db: float | None = None,
            nonkey_target: float | None = None) -> bool:
    """Whether a row is at the given condition values (None: any); whole-image schemes match any non-key target."""
    return ((channel is None or row["channel"] == channel)
            and (snr_db is None or same(row["snr_db"], snr_db))
            and (nonkey_target is None or row["scheme"] in WHOLE_IMAGE_SCHEMES
                 or same(row["nonkey_target"], nonkey_target)))


def select(rows: Iterable[dict], *, channel: str | None = None, snr_db: float | None = None,
           nonkey_target: float | None = None) -> list[dict]:
    """Rows without error at the given condition values."""
    return [r for r in rows if r["status"] != "error"
            and matches(r, channel=channel, snr_db=snr_db, nonkey_target=nonkey_target)]


def at(rows: Iterable[dict], condition: Condition) -> list[dict]:
    return select(rows, channel=condition.channel, snr_db=condition.snr_db, nonkey_target=condition.nonkey_target)


def of_scheme(rows: Iterable[dict], scheme: str) -> list[dict]:
    return [r for r in rows if r["scheme"] == scheme]


def number(value: object) -> float | None:
    """A finite number, or None for anything else (missing, null, NaN, text)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def metric_of(name: str) -> Callable[[dict], float | None]:
    return lambda row: number(row["metrics"].get(name))


def field_of(name: str) -> Callable[[dict], float | None]:
    return lambda row: number(row.get(name))


def per_image(rows: Iterable[dict], value: Callable[[dict], float | None]) -> list[float]:
    """One value per image (the mean of that image's rows), images in name order; images without one drop out."""
    groups: dict[str, list[float]] = {}
    for row in rows:
        v = value(row)
        if v is not None:
            groups.setdefault(row["image"], []).append(v)
    return [float(np.mean(groups[image])) for image in sorted(groups)]


def mean_se(values: Sequence[float]) -> Stat | None:
    """Mean and standard error s / sqrt(n) with the sample standard deviation; None without values."""
    if not values:
        return None
    arr = np.asarray(values, dtype=float)
    se = float(arr.std(ddof=1) / math.sqrt(arr.size)) if arr.size > 1 else math.nan
    return Stat(float(arr.mean()), se)


def stat_of(rows: Iterable[dict], value: Callable[[dict], float | None]) -> Stat | None:
    return mean_se(per_image(rows, value))


def scheme_stats(rows: Sequence[dict], schemes: Sequence[str], metric: str) -> dict[str, Stat]:
    """The metric's statistic per scheme, for the schemes that have a value."""
    stats = {s: stat_of(of_scheme(rows, s), metric_of(metric)) for s in schemes}
    return {s: st for s, st in stats.items() if st is not None}


def metrics_present(rows: Iterable[dict]) -> list[str]:
    """Registry metrics with at least one value in ``rows``, in registry order."""
    found = {name for r in rows for name, v in r["metrics"].items() if number(v) is not None}
    return [name for name in METRICS if name in found]


def lpips_metric(rows: Sequence[dict]) -> str | None:
    """LPIPS with AlexNet when measured, else with VGG16, else None."""
    present = metrics_present(rows)
    return next((name for name in ("lpips_alex", "lpips_vgg") if name in present), None)


# --- wording ---------------------------------------------------------------------------------------

def fmt(value: float) -> str:
    """Three significant digits, without exponent for values from 100 up (MSE, symbols)."""
    if not math.isfinite(value):
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def better(info: MetricInfo) -> str:
    return "higher is better" if info.higher_is_better else "lower is better"


def ranked(values: dict[str, float], info: MetricInfo) -> list[str]:
    """Schemes best first; ties keep the given (scheme) order."""
    sign = -1.0 if info.higher_is_better else 1.0
    return sorted(values, key=lambda s: sign * values[s])


def best_phrase(values: dict[str, float], info: MetricInfo) -> str:
    """'ours is best (0.31; next: deepjscc-image, 0.4)': the winner and the runner-up, or who ties for best."""
    order = ranked(values, info)
    first = order[0]
    if len(order) == 1:
        return f"{first} is best ({fmt(values[first])}, the only scheme measured)"
    leaders = [s for s in order if math.isclose(values[s], values[first], rel_tol=1e-9, abs_tol=1e-12)]
    if len(leaders) == len(order):
        return f"all schemes tie ({fmt(values[first])})"
    if len(leaders) > 1:
        return f"{', '.join(leaders)} tie for best ({fmt(values[first])})"
    second = order[1]
    return f"{first} is best ({fmt(values[first])}; next: {second}, {fmt(values[second])})"


def skipped(title: str, reason: str) -> ReportFigure:
    return ReportFigure(title, None, reason)


# --- drawing helpers -------------------------------------------------------------------------------

def scheme_colours(schemes: Sequence[str]) -> dict[str, tuple]:
    """One colour per scheme, the same in every figure and in every report (known schemes keep theirs)."""
    palette = matplotlib.colormaps["tab10"]
    order = [*SCHEMES, *[s for s in schemes if s not in SCHEMES]]
    return {s: palette(order.index(s) % palette.N) for s in schemes}


def save(fig: Figure, folder: Path, name: str) -> str:
    """Cropped to what was drawn: cheaper than constrained layout (3-4x here) and nothing is clipped."""
    fig.savefig(folder / name, dpi=DPI, bbox_inches="tight")
    return name


def band(ax: Axes, x: Sequence[float], stats: Sequence[Stat], colour: tuple, label: str) -> None:
    """A mean line with a shaded ± standard-error band (no band where the s.e. is undefined)."""
    mean = np.array([s.mean for s in stats])
    se = np.array([s.se for s in stats])
    ax.plot(x, mean, "o-", color=colour, label=label, ms=4)
    ax.fill_between(x, mean - se, mean + se, color=colour, alpha=0.2, lw=0)


# --- 1. LPIPS vs non-key ratio ---------------------------------------------------------------------

@dataclass(frozen=True)
class RatioPoint:
    target: float
    x: float  # mean achieved non-key share, or the target when the scheme reports none
    stat: Stat


def lpips_vs_nonkey(rows: Sequence[dict], schemes: Sequence[str], base: Condition, folder: Path) -> ReportFigure:
    """LPIPS against the achieved non-key share 1 − α per scheme, at the base SNR and channel."""
    title = "LPIPS vs non-key ratio"
    pool = select(rows, channel=base.channel, snr_db=base.snr_db)
    metric = lpips_metric(pool)
    if metric is None:
        return skipped(title, f"No LPIPS values (lpips_alex or lpips_vgg) at {base.channel}, {base.snr_db:g} dB, "
                              "so there is nothing to plot against the non-key ratio.")
    targets = sorted({t for r in pool if r["scheme"] not in WHOLE_IMAGE_SCHEMES
                      and (t := number(r["nonkey_target"])) is not None})
    if len(targets) < 2:
        return skipped(title, f"The run has {len(targets)} non-key target(s) at {base.channel}, {base.snr_db:g} dB "
                              "for schemes with a key region; a curve needs the ratio sweep (two targets or more).")
    info = METRICS[metric]
    curves: dict[str, list[RatioPoint]] = {}
    lines: dict[str, Stat] = {}
    for scheme in schemes:
        rows_s = of_scheme(pool, scheme)
        if scheme in WHOLE_IMAGE_SCHEMES:
            stat = stat_of(rows_s, metric_of(metric))
            if stat is not None:
                lines[scheme] = stat
            continue
        points = []
        for t in targets:
            rows_t = [r for r in rows_s if same(r["nonkey_target"], t)]
            stat = stat_of(rows_t, metric_of(metric))
            if stat is not None:
                achieved = per_image(rows_t, field_of("nonkey_ratio"))
                points.append(RatioPoint(t, float(np.mean(achieved)) if achieved else t, stat))
        if points:
            curves[scheme] = points

    colours = scheme_colours(schemes)
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for scheme, points in curves.items():
        ax.errorbar([p.x for p in points], [p.stat.mean for p in points], yerr=[p.stat.se for p in points],
                    fmt="o-", color=colours[scheme], capsize=3, ms=4, label=scheme)
    for scheme, stat in lines.items():
        ax.axhline(stat.mean, color=colours[scheme], ls="--", label=f"{scheme} (independent of α)")
        if math.isfinite(stat.se):
            ax.axhspan(stat.mean - stat.se, stat.mean + stat.se, color=colours[scheme], alpha=0.15, lw=0)
    ax.set_xlabel("achieved non-key share 1 − α")
    ax.set_ylabel(info.label)
    ax.set_title(f"{info.label} vs non-key ratio ({base.channel}, {base.snr_db:g} dB)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    name = save(fig, folder, LPIPS_VS_NONKEY)

    def best_at(target: float) -> str:
        values = {s: p.stat.mean for s, pts in curves.items() for p in pts if p.target == target}
        values |= {s: st.mean for s, st in lines.items()}
        return best_phrase(values, info) if values else "no scheme has a value"

    text = (f"{info.label} ({better(info)}) against the achieved non-key share 1 − α on {base.channel} at "
            f"{base.snr_db:g} dB, with standard-error bars over images (dashed: schemes that do not depend on α); "
            f"at the smallest non-key target ({targets[0]:g}) {best_at(targets[0])}, and at the largest "
            f"({targets[-1]:g}) {best_at(targets[-1])}.")
    return ReportFigure(title, name, text)


# --- 2. metrics vs SNR -----------------------------------------------------------------------------

def metrics_vs_snr(rows: Sequence[dict], schemes: Sequence[str], base: Condition, folder: Path) -> ReportFigure:
    """PSNR, SSIM, VSI and LPIPS against SNR per scheme, at the base channel and non-key target."""
    title = "Metrics vs SNR"
    pool = select(rows, channel=base.channel, nonkey_target=base.nonkey_target)
    snrs = sorted({float(r["snr_db"]) for r in pool})
    if len(snrs) < 2:
        return skipped(title, f"The run has {len(snrs)} SNR value(s) at {base.channel}, non-key target "
                              f"{base.nonkey_target:g}; curves need the SNR sweep (two SNRs or more).")
    present = metrics_present(pool)
    panels = [m for m in SNR_PANEL_METRICS if m in present]
    lpips = lpips_metric(pool)
    if lpips is not None:
        panels.append(lpips)
    if not panels:
        return skipped(title, "None of PSNR, SSIM, VSI or LPIPS was measured, so there is nothing to plot against SNR.")

    colours = scheme_colours(schemes)
    cols = min(2, len(panels))
    rows_n = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(5.5 * cols, 4 * rows_n))
    fig.subplots_adjust(hspace=0.35, wspace=0.3)
    axes = np.atleast_1d(fig.subplots(rows_n, cols)).ravel()
    reference = base.snr_db if any(same(s, base.snr_db) for s in snrs) else snrs[-1]
    best: list[str] = []
    for ax, metric in zip(axes, panels):
        info = METRICS[metric]
        at_reference: dict[str, float] = {}
        for scheme in schemes:
            points = [(snr, stat_of(select(of_scheme(pool, scheme), snr_db=snr), metric_of(metric))) for snr in snrs]
            points = [(snr, st) for snr, st in points if st is not None]
            if not points:
                continue
            band(ax, [p[0] for p in points], [p[1] for p in points], colours[scheme], scheme)
            at_reference |= {scheme: st.mean for snr, st in points if same(snr, reference)}
        ax.set_title(info.label)
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel(info.label)
        ax.grid(True, alpha=0.3)
        if at_reference:
            best.append(f"by {info.label} {best_phrase(at_reference, info)}")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    axes[0].legend(fontsize="small")
    fig.suptitle(f"Quality vs SNR ({base.channel}, non-key target {base.nonkey_target:g}; bands: ± s.e.)")
    name = save(fig, folder, METRICS_VS_SNR)
    text = (f"{', '.join(METRICS[m].label for m in panels)} against SNR from {snrs[0]:g} to {snrs[-1]:g} dB on "
            f"{base.channel} at non-key target {base.nonkey_target:g}, with ± standard-error bands over images; "
            f"at {reference:g} dB {'; '.join(best)}.")
    return ReportFigure(title, name, text)


# --- 3. channel models -----------------------------------------------------------------------------

def channels(rows: Sequence[dict], schemes: Sequence[str], base: Condition, folder: Path,
             channel_order: Sequence[str] = ()) -> ReportFigure:
    """Grouped bars of LPIPS and PSNR per channel model and scheme, at the base SNR and non-key target."""
    title = "Channel models"
    pool = select(rows, snr_db=base.snr_db, nonkey_target=base.nonkey_target)
    seen = {r["channel"] for r in pool}
    names = [c for c in channel_order if c in seen] + sorted(seen - set(channel_order))
    if len(names) < 2:
        return skipped(title, f"The run has {len(names)} channel model(s) at {base.snr_db:g} dB, non-key target "
                              f"{base.nonkey_target:g}; a comparison needs the channel sweep (two models or more).")
    panels = [m for m in (lpips_metric(pool), "psnr") if m is not None and m in metrics_present(pool)]
    if not panels:
        return skipped(title, "Neither LPIPS nor PSNR was measured, so there is nothing to compare across channels.")

    colours = scheme_colours(schemes)
    shown = [s for s in schemes if of_scheme(pool, s)]
    width = 0.8 / len(shown)
    fig = Figure(figsize=(6 * len(panels), 4.2))
    fig.subplots_adjust(wspace=0.3)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    sentences: list[str] = []
    for ax, metric in zip(axes, panels):
        info = METRICS[metric]
        per_channel = {c: scheme_stats(select(pool, channel=c), shown, metric) for c in names}
        for i, scheme in enumerate(shown):
            xs = [j + (i - (len(shown) - 1) / 2) * width for j, c in enumerate(names) if scheme in per_channel[c]]
            stats = [per_channel[c][scheme] for c in names if scheme in per_channel[c]]
            ax.bar(xs, [s.mean for s in stats], width, yerr=[s.se for s in stats], capsize=2,
                   color=colours[scheme], label=scheme)
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel(info.label)
        ax.set_title(f"{info.label} ({better(info)})")
        ax.grid(True, axis="y", alpha=0.3)
        winners = [f"on {c} {best_phrase({s: st.mean for s, st in per_channel[c].items()}, info)}"
                   for c in names if per_channel[c]]
        sentences.append(f"by {info.label}, " + ", ".join(winners))
    axes[-1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1))  # beside the bars, not on them
    fig.suptitle(f"Channel models at {base.snr_db:g} dB, non-key target {base.nonkey_target:g} (bars: ± s.e.)",
                 y=1.0)
    name = save(fig, folder, CHANNELS)
    text = (f"Mean over images per channel model and scheme at {base.snr_db:g} dB and non-key target "
            f"{base.nonkey_target:g}, with standard-error bars; {'; '.join(sentences)}.")
    return ReportFigure(title, name, text)


# --- 4. radar ranking ------------------------------------------------------------------------------

def normalise(means: dict[str, dict[str, float]], metrics: Sequence[str]) -> dict[str, dict[str, float]]:
    """Min–max scale each metric across schemes to [0, 1] with 1 = best, using its registry direction.

    A metric on which every scheme scores the same gives everyone 1: no scheme is worse there.
    """
    scores: dict[str, dict[str, float]] = {s: {} for s in means}
    for metric in metrics:
        values = {s: means[s][metric] for s in means}
        low, high = min(values.values()), max(values.values())
        for scheme, v in values.items():
            if high == low:
                scores[scheme][metric] = 1.0
            else:
                up = (v - low) / (high - low)
                scores[scheme][metric] = up if METRICS[metric].higher_is_better else 1.0 - up
    return scores


def ranking(scores: dict[str, dict[str, float]]) -> list[tuple[str, float]]:
    """Schemes by mean normalised score, best first (ties keep the given order)."""
    overall = [(s, float(np.mean(list(v.values())))) for s, v in scores.items()]
    return sorted(overall, key=lambda item: -item[1])


def radar(rows: Sequence[dict], schemes: Sequence[str], base: Condition, folder: Path) -> ReportFigure:
    """Every metric measured at the base condition on one polar chart, normalised so that 1 = best."""
    title = "Ranking on all metrics"
    pool = at(rows, base)
    means = {s: {m: st.mean for m in METRICS if (st := stat_of(of_scheme(pool, s), metric_of(m)))}
             for s in schemes if of_scheme(pool, s)}
    if len(means) < 2:
        return skipped(title, f"{len(means)} scheme(s) have results at the base condition ({base.describe()}); "
                              "a ranking needs two or more.")
    shared = [m for m in METRICS if all(m in v for v in means.values())]
    partial = [m for m in metrics_present(pool) if m not in shared]
    if len(shared) < 3:
        return skipped(title, f"Only {len(shared)} metric(s) were measured for every scheme at the base condition; "
                              "a radar chart needs three or more axes.")
    scores = normalise(means, shared)
    order = ranking(scores)

    colours = scheme_colours(schemes)
    angles = np.linspace(0, 2 * np.pi, len(shared), endpoint=False)
    closed = np.append(angles, angles[0])
    fig = Figure(figsize=(7.5, 7))
    ax = fig.add_subplot(projection="polar")
    for scheme, _ in order:
        values = [scores[scheme][m] for m in shared]
        ax.plot(closed, values + values[:1], "o-", color=colours[scheme], label=scheme, ms=3)
        ax.fill(closed, values + values[:1], color=colours[scheme], alpha=0.08)
    ax.set_xticks(angles, [METRICS[m].label for m in shared], fontsize="small")
    ax.set_ylim(0, 1.05)
    ax.set_yticks([0, 0.5, 1.0], ["0", "0.5", "1 = best"], fontsize="x-small")
    ax.set_title(f"Schemes at {base.describe()}\n(each metric scaled across schemes, 1 = best)")
    ax.legend(loc="upper right", bbox_to_anchor=(1.25, 1.1), fontsize="small")
    name = save(fig, folder, RADAR)
    text = (f"Each metric at the base condition ({base.describe()}) is normalised across schemes to [0, 1] with "
            f"1 = best (min–max over the scheme means; for lower-is-better metrics the scale is reversed); by mean "
            f"normalised score over {len(shared)} metrics the ranking is "
            + " > ".join(f"{s} ({v:.2f})" for s, v in order) + "."
            + (f" Left out because some scheme lacks them: {', '.join(partial)}." if partial else ""))
    return ReportFigure(title, name, text)


# --- 5. sample reconstructions ---------------------------------------------------------------------

def samples(rows: Sequence[dict], schemes: Sequence[str], base: Condition, samples_dir: Path,
            folder: Path) -> ReportFigure:
    """Original and each scheme's reconstruction of up to four images, titled with the symbols used."""
    title = "Sample reconstructions"
    folders = sorted(samples_dir.iterdir()) if samples_dir.is_dir() else []
    stems = [d.name for d in folders if (d / "original.png").is_file()][:MAX_SAMPLE_IMAGES]
    shown = [s for s in schemes if any((samples_dir / stem / f"{s}.png").is_file() for stem in stems)]
    if not stems or not shown:
        return skipped(title, f"No saved originals with reconstructions under {samples_dir.name}/, "
                              "so there are no samples to show.")
    base_rows = {(Path(r["image"]).stem, r["scheme"]): r for r in at(rows, base)}

    with Image.open(samples_dir / stems[0] / "original.png") as first:
        aspect = first.height / first.width
    fig = Figure(figsize=(2.3 * (len(shown) + 1), (2.3 * aspect + 0.6) * len(stems)))
    fig.subplots_adjust(hspace=0.4, wspace=0.05)
    axes = np.array(fig.subplots(len(stems), len(shown) + 1, squeeze=False))
    for i, stem in enumerate(stems):
        for j, scheme in enumerate(["original", *shown]):
            ax = axes[i, j]
            ax.set_axis_off()
            path = samples_dir / stem / f"{scheme}.png"
            if path.is_file():
                with Image.open(path) as img:
                    ax.imshow(np.asarray(img.convert("RGB")))
            else:
                ax.text(0.5, 0.5, "not saved", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(tile_title(stem, scheme, base_rows.get((stem, scheme))), fontsize="small")
    name = save(fig, folder, SAMPLES)
    shown_rows = [row for (stem, _), row in base_rows.items() if stem in stems]
    symbols = {s: st.mean for s in shown if (st := stat_of(of_scheme(shown_rows, s), field_of("symbols")))}
    text = (f"Originals and reconstructions of {len(stems)} image(s) ({', '.join(stems)}) at the base condition "
            f"({base.describe()}), each titled with the channel symbols it used; mean symbols per image over these: "
            + (", ".join(f"{s} {fmt(v)}" for s, v in symbols.items()) or "not recorded") + ".")
    return ReportFigure(title, name, text)


def tile_title(stem: str, scheme: str, row: dict | None) -> str:
    if scheme == "original":
        return f"{stem}\noriginal"
    symbols = number(row.get("symbols")) if row else None
    used = f"{symbols:,.0f} symbols" if symbols is not None else "symbols n/a"
    lost = " (lost)" if row and row["status"] == "lost" else ""
    return f"{scheme}{lost}\n{used}"
