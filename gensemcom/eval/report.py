"""The report of an evaluation run: read what ``semcom eval run`` wrote to OUT, write OUT/report/.

OUT holds ``run.json`` (settings), ``results.jsonl`` (one row per image, scheme and condition),
``equal_quality.jsonl`` (symbols of ours and of BPG + LDPC at equal quality) and ``samples/``.
The report folder gets the figures of :mod:`gensemcom.eval.figures`, ``summary.csv``,
``symbols_vs_bpg.csv``, and ``report.md`` / ``report.html`` built from one list of blocks, so the
two always say the same thing. Every figure and table is followed by a sentence written from its
numbers; what could not be drawn is listed with the reason, and rows that failed are counted and
listed instead of silently dropped.
"""

import csv
import html
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gensemcom.eval import figures
from gensemcom.eval.figures import Condition, ReportFigure, fmt, number, stat_of
from gensemcom.eval.registry import METRICS

REPORT_DIR = "report"
SUMMARY_CSV = "summary.csv"
SYMBOLS_CSV = "symbols_vs_bpg.csv"
STATUSES = ("ok", "lost", "error")
PAPER_SAVING = "The paper reports 11–12 % fewer channel symbols than BPG + LDPC at equal quality."
MAX_ERRORS_LISTED = 200


@dataclass(frozen=True)
class Run:
    """What an evaluation run wrote: result rows, equal-quality rows and the settings of run.json."""

    rows: list[dict]
    equal_quality: list[dict]
    settings: dict

    @property
    def base(self) -> Condition:
        b = self.settings["base"]
        return Condition(str(b["channel"]), float(b["snr_db"]), float(b["nonkey_target"]))

    @property
    def schemes(self) -> list[str]:
        """The schemes of run.json in its order, then any others found in the rows."""
        listed = list(self.settings["schemes"])
        return listed + sorted({r["scheme"] for r in self.rows} - set(listed))


# --- reading ---------------------------------------------------------------------------------------

def load_run(out: Path) -> Run:
    """Read and check an output folder of ``semcom eval run``; errors name the file and line."""
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"evaluation output folder not found: {out}")
    settings = read_settings(out / "run.json")
    rows = read_jsonl(out / "results.jsonl", result_problem)
    eq_path = out / "equal_quality.jsonl"  # absent when the run compared no digital baseline
    equal_quality = read_jsonl(eq_path, equal_quality_problem) if eq_path.is_file() else []
    return Run(rows, equal_quality, settings)


def read_settings(path: Path) -> dict:
    """run.json: the scheme order and the base condition are needed to place every row."""
    if not path.is_file():
        raise FileNotFoundError(f"run settings not found: {path}")
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(settings, dict) or not isinstance(settings.get("schemes"), list):
        raise ValueError(f"{path}: expected an object with a 'schemes' list")
    base = settings.get("base")
    if not isinstance(base, dict) or not isinstance(base.get("channel"), str) \
            or number(base.get("snr_db")) is None or number(base.get("nonkey_target")) is None:
        raise ValueError(f"{path}: 'base' must give channel (text), snr_db and nonkey_target (numbers)")
    return settings


def read_jsonl(path: Path, problem: Callable[[dict], str | None]) -> list[dict]:
    """One JSON object per non-blank line; ``problem`` says what is wrong with a row, or None."""
    if not path.is_file():
        raise FileNotFoundError(f"results not found: {path}")
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: line {lineno} is not valid JSON ({exc.msg})") from exc
        wrong = "not a JSON object" if not isinstance(row, dict) else problem(row)
        if wrong:
            raise ValueError(f"{path}: line {lineno}: {wrong}")
        rows.append(row)
    return rows


def missing_or_not_numbers(row: dict, required: Sequence[str], numbers: Sequence[str],
                           nullable: Sequence[str] = ()) -> str | None:
    missing = [k for k in required if k not in row]
    if missing:
        return f"lacks {', '.join(missing)}"
    wrong = [k for k in numbers if number(row[k]) is None and not (k in nullable and row[k] is None)]
    if not wrong:
        return None
    return f"{', '.join(wrong)} must be {'a number' if len(wrong) == 1 else 'numbers'}"


def result_problem(row: dict) -> str | None:
    """What makes a results.jsonl row unusable (the row schema of the evaluation contract)."""
    problem = missing_or_not_numbers(row, ("image", "scheme", "channel", "snr_db", "nonkey_target", "status",
                                           "metrics"), ("snr_db", "nonkey_target"), nullable=("nonkey_target",))
    if problem:
        return problem
    not_text = [k for k in ("image", "scheme", "channel") if not isinstance(row[k], str)]
    if not_text:
        return f"{', '.join(not_text)} must be text"
    if row["status"] not in STATUSES:
        return f"status {row['status']!r} is not one of {', '.join(STATUSES)}"
    if not isinstance(row["metrics"], dict):
        return "metrics must be an object"
    return None


def equal_quality_problem(row: dict) -> str | None:
    return missing_or_not_numbers(row, ("image", "snr_db", "ours_symbols", "bpg_symbols"),
                                  ("snr_db", "ours_symbols", "bpg_symbols"), nullable=("bpg_symbols",))


# --- tables ----------------------------------------------------------------------------------------

def summary(run: Run) -> tuple[list[str], list[dict]]:
    """Mean ± s.e. over images of every metric and of the symbols per scheme, at the base condition.

    Returns the metric names (registry order) and one record per scheme with results there.
    """
    pool = figures.at(run.rows, run.base)
    errors = [r for r in run.rows if r["status"] == "error" and figures.matches(r, **asdict(run.base))]
    metrics = figures.metrics_present(pool)
    records = []
    for scheme in run.schemes:
        rows = figures.of_scheme(pool, scheme)
        failed = sum(r["scheme"] == scheme for r in errors)
        if not rows and not failed:
            continue
        record: dict = {"scheme": scheme, "images": len({r["image"] for r in rows}),
                        "lost": len({r["image"] for r in rows if r["status"] == "lost"}), "errors": failed}
        values = {"symbols": figures.field_of("symbols")} | {m: figures.metric_of(m) for m in metrics}
        for name, value in values.items():
            stat = stat_of(rows, value)
            record[f"{name}_mean"] = stat.mean if stat else math.nan
            record[f"{name}_se"] = stat.se if stat else math.nan
        records.append(record)
    return metrics, records


@dataclass(frozen=True)
class SymbolsRow:
    """Symbols per image of ours and of BPG + LDPC at equal quality, at one SNR."""

    channel: str
    metric: str
    snr_db: float
    images: int
    bpg_unmatched: int  # images where no HEVC quality reached ours
    ours_symbols: float  # mean over the images BPG matched
    bpg_symbols: float
    saving: float  # 1 − ours/bpg of those means; NaN when BPG matched none


def symbols_vs_bpg(equal_quality: Sequence[dict], nonkey_target: float) -> list[SymbolsRow]:
    """Per channel, metric and SNR: mean symbols of both on the images BPG could match, and the saving.

    Only rows at the base non-key target (or without one) count: a row of the ratio sweep at the base
    SNR would otherwise mix other ratios into that SNR's mean.
    """
    groups: dict[tuple[str, str, float], list[dict]] = {}
    for row in equal_quality:
        if row.get("nonkey_target") is not None and not figures.same(row["nonkey_target"], nonkey_target):
            continue
        key = (str(row.get("channel", "")), str(row.get("metric", "")), float(row["snr_db"]))
        groups.setdefault(key, []).append(row)
    table = []
    for (channel, metric, snr), rows in sorted(groups.items()):
        matched = [r for r in rows if (number(r["bpg_symbols"]) or 0) > 0]  # null: no HEVC quality reached ours
        ours = float(np.mean([r["ours_symbols"] for r in matched])) if matched else math.nan
        bpg = float(np.mean([r["bpg_symbols"] for r in matched])) if matched else math.nan
        saving = 1.0 - ours / bpg if matched else math.nan
        table.append(SymbolsRow(channel, metric, snr, len({r["image"] for r in rows}),
                                len(rows) - len(matched), ours, bpg, saving))
    return table


def symbols_sentence(table: Sequence[SymbolsRow]) -> str:
    """What we measured, next to what the paper reports."""
    measured = [row for row in table if math.isfinite(row.saving)]
    unmatched = sum(row.bpg_unmatched for row in table)
    pairs = sum(row.images for row in table)
    if not measured:
        return (f"{PAPER_SAVING} We could not measure a saving: BPG + LDPC matched ours on none of {pairs} "
                "image–SNR pairs.")
    savings = [100 * row.saving for row in measured]
    spread = (f"a saving of {savings[0]:.1f} %" if len(savings) == 1 else
              f"savings from {min(savings):.1f} % to {max(savings):.1f} % across {len(savings)} SNR points")
    fewer = sum(s > 0 for s in savings)
    plainly = ("ours needed fewer symbols than BPG + LDPC at every SNR measured" if fewer == len(savings) else
               "ours needed more symbols than BPG + LDPC at every SNR measured" if fewer == 0 else
               f"ours needed fewer symbols than BPG + LDPC at {fewer} of {len(savings)} SNRs")
    return (f"{PAPER_SAVING} We measured {spread} (1 − mean ours / mean BPG symbols over the images BPG matched): "
            f"{plainly}; BPG + LDPC could not reach ours' quality on {unmatched} of {pairs} image–SNR pairs.")


def summary_sentence(metrics: Sequence[str], records: Sequence[dict], base: Condition) -> str:
    """Which scheme is best at the base condition by each metric."""
    parts = []
    for metric in metrics:
        values = {r["scheme"]: r[f"{metric}_mean"] for r in records if math.isfinite(r[f"{metric}_mean"])}
        if values:
            parts.append(f"by {METRICS[metric].label}, {figures.best_phrase(values, METRICS[metric])}")
    if not parts:
        return "No metric has a value at the base condition."
    return f"At the base condition ({base.describe()}): " + "; ".join(parts) + "."


def write_csv(path: Path, header: Sequence[str], records: Sequence[Sequence[object]]) -> None:
    """Numbers at full precision; NaN written as an empty cell."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for record in records:
            writer.writerow(["" if isinstance(v, float) and not math.isfinite(v) else v for v in record])


def pm(mean: float, se: float) -> str:
    if not math.isfinite(mean):
        return "n/a"
    return fmt(mean) if not math.isfinite(se) else f"{fmt(mean)} ± {fmt(se)}"


# --- the document: one list of blocks, two renderings ----------------------------------------------

@dataclass(frozen=True)
class Heading:
    text: str
    level: int


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Picture:
    file: str
    alt: str


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Bullets:
    items: list[str]


Block = Heading | Paragraph | Picture | Table | Bullets


def to_markdown(blocks: Sequence[Block]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = []
    for b in blocks:
        match b:
            case Heading():
                out.append(f"{'#' * b.level} {b.text}")
            case Paragraph():
                out.append(b.text)
            case Picture():
                out.append(f"![{b.alt}]({b.file})")
            case Table():
                lines = ["| " + " | ".join(cell(h) for h in b.header) + " |",
                         "|" + "---|" * len(b.header)]
                lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in b.rows]
                out.append("\n".join(lines))
            case Bullets():
                out.append("\n".join(f"- {item}" for item in b.items))
    return "\n\n".join(out) + "\n"


STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:3px 8px}"
         "img{max-width:100%}")


def to_html(blocks: Sequence[Block], title: str) -> str:
    e = html.escape
    body = []
    for b in blocks:
        match b:
            case Heading():
                body.append(f"<h{b.level}>{e(b.text)}</h{b.level}>")
            case Paragraph():
                body.append(f"<p>{e(b.text)}</p>")
            case Picture():
                body.append(f'<img src="{e(b.file)}" alt="{e(b.alt)}">')
            case Table():
                head = "".join(f"<th>{e(h)}</th>" for h in b.header)
                rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in b.rows)
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            case Bullets():
                body.append("<ul>" + "".join(f"<li>{e(item)}</li>" for item in b.items) + "</ul>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


# --- sections --------------------------------------------------------------------------------------

def settings_section(run: Run) -> list[Block]:
    s = run.settings
    grid = s.get("grid") or {}

    def listed(value: object) -> str:
        items = value if isinstance(value, list) else [value]
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in items)

    counts = {status: sum(r["status"] == status for r in run.rows) for status in STATUSES}
    table = [
        ["dataset", listed(s.get("dataset", "not recorded"))],
        ["images", str(s.get("images", "not recorded"))],
        ["inpainter", str(s.get("inpainter", "not recorded"))],
        ["seed", str(s.get("seed", "not recorded"))],
        ["schemes", listed(run.schemes)],
        ["base condition", run.base.describe()],
        *[[f"grid: {key}", listed(value)] for key, value in grid.items() if isinstance(value, list)],
        ["metrics", listed(s.get("metrics", "not recorded"))],
        ["result rows", f"{len(run.rows)} ({counts['ok']} ok, {counts['lost']} lost, {counts['error']} error)"],
    ]
    return [Heading("Evaluation report", 1), Heading("Run settings", 2), Table(["setting", "value"], table),
            Paragraph("Means and standard errors go over images; rows with status error are left out of every "
                      "mean and listed at the end; lost rows count with the metrics of the mean-colour image.")]


def figure_section(figure: ReportFigure) -> list[Block]:
    if figure.file is None:
        return [Heading(figure.title, 2), Paragraph(f"Not drawn: {figure.text}")]
    return [Heading(figure.title, 2), Picture(figure.file, figure.title), Paragraph(figure.text)]


def summary_section(run: Run, folder: Path) -> list[Block]:
    metrics, records = summary(run)
    columns = ["symbols", *metrics]
    header = ["scheme", "images", "lost", "errors", *[f"{c}_{part}" for c in columns for part in ("mean", "se")]]
    write_csv(folder / SUMMARY_CSV, header, [[r[h] for h in header] for r in records])
    title = Heading(f"Summary at the base condition ({run.base.describe()})", 2)
    if not records:
        return [title, Paragraph("No results at the base condition.")]
    table = Table(["scheme", "images", "lost", "errors", "symbols", *[METRICS[m].label for m in metrics]],
                  [[r["scheme"], str(r["images"]), str(r["lost"]), str(r["errors"]),
                    *[pm(r[f"{c}_mean"], r[f"{c}_se"]) for c in columns]] for r in records])
    sentence = summary_sentence(metrics, records, run.base)
    return [title, table, Paragraph(f"{sentence} The table is also in {SUMMARY_CSV}.")]


def symbols_section(run: Run, folder: Path) -> list[Block]:
    title = Heading(f"Channel symbols at equal quality: ours vs BPG + LDPC (non-key target "
                    f"{run.base.nonkey_target:g})", 2)
    table = symbols_vs_bpg(run.equal_quality, run.base.nonkey_target)
    if not table:
        return [title, Paragraph(f"Not measured: the run has no equal-quality rows at non-key target "
                                 f"{run.base.nonkey_target:g}. {PAPER_SAVING}")]
    header = ["channel", "metric", "snr_db", "images", "bpg_unmatched", "ours_symbols", "bpg_symbols", "saving"]
    write_csv(folder / SYMBOLS_CSV, header, [[getattr(row, h) for h in header] for row in table])
    shown = Table(["channel", "metric", "SNR (dB)", "images", "BPG could not match", "ours: symbols/image",
                   "BPG + LDPC: symbols/image", "saved (1 − ours/BPG)"],
                  [[row.channel, row.metric, f"{row.snr_db:g}", str(row.images), str(row.bpg_unmatched),
                    fmt(row.ours_symbols), fmt(row.bpg_symbols),
                    f"{100 * row.saving:.1f} %" if math.isfinite(row.saving) else "n/a"] for row in table])
    return [title, shown, Paragraph(f"{symbols_sentence(table)} The table is also in {SYMBOLS_CSV}.")]


def one_line(message: object) -> str:
    """An error message as one line: a traceback must not break the list it sits in."""
    return " ".join(str(message or "no message").split())


def errors_section(run: Run) -> list[Block]:
    failed = [r for r in run.rows if r["status"] == "error"]
    title = Heading("Errors", 2)
    if not failed:
        return [title, Paragraph("No row failed.")]
    items = [f"{r['scheme']} on {r['image']} ({r['channel']}, {r['snr_db']:g} dB, non-key target "
             f"{r['nonkey_target']}): {one_line(r.get('error'))}" for r in failed[:MAX_ERRORS_LISTED]]
    more = len(failed) - len(items)
    per_scheme = {s: n for s in run.schemes if (n := sum(r["scheme"] == s for r in failed))}
    text = (f"{len(failed)} of {len(run.rows)} rows failed; they are left out of every mean ("
            + ", ".join(f"{s}: {n}" for s, n in per_scheme.items()) + ")"
            + (f"; the first {len(items)} are listed." if more else "."))
    return [title, Paragraph(text), Bullets(items)]


# --- writing ---------------------------------------------------------------------------------------

def draw_figures(run: Run, out: Path, folder: Path) -> list[ReportFigure]:
    schemes, base = run.schemes, run.base
    channel_order = (run.settings.get("grid") or {}).get("channel") or []
    return [
        figures.samples(run.rows, schemes, base, out / "samples", folder),
        figures.lpips_vs_nonkey(run.rows, schemes, base, folder),
        figures.metrics_vs_snr(run.rows, schemes, base, folder),
        figures.channels(run.rows, schemes, base, folder, channel_order),
        figures.radar(run.rows, schemes, base, folder),
    ]


def write_report(out: Path, run: Run | None = None) -> Path:
    """Write OUT/report/ (figures, CSV tables, report.md, report.html) and return the path of report.md."""
    out = Path(out)
    run = run if run is not None else load_run(out)
    folder = out / REPORT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*figures.FIGURE_FILES, SUMMARY_CSV, SYMBOLS_CSV):  # a skipped item must not leave a stale file
        (folder / name).unlink(missing_ok=True)
    blocks: list[Block] = settings_section(run)
    for figure in draw_figures(run, out, folder):
        blocks += figure_section(figure)
    blocks += summary_section(run, folder) + symbols_section(run, folder) + errors_section(run)
    (folder / "report.html").write_text(to_html(blocks, f"Evaluation report: {out.name}"), encoding="utf-8")
    md = folder / "report.md"
    md.write_text(to_markdown(blocks), encoding="utf-8")
    return md
