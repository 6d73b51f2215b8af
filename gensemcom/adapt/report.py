"""The rate table as text and as a figure; the evaluations' per-send rows as compact JSON tables."""

from collections.abc import Sequence
from pathlib import Path

from gensemcom.adapt.table import RateTable


def ratio_label(ratio: float) -> str:
    return f"1/{round(1 / ratio)}"


def format_table(table: RateTable, snrs: Sequence[float], targets: Sequence[float]) -> str:
    """One row per SNR, one column per target: the ratio chosen and its predicted quality (* = not met)."""
    unit = "dB" if table.metric == "psnr" else ""
    head = [f"{'SNR dB':>7}"] + [f"{table.metric} {t:g}{unit}".rjust(18) for t in targets]
    lines = [f"rate table for {table.codec}, {table.channel}, key-region {table.metric}"
             + (f" (measured on {table.source})" if table.source else ""), " ".join(head)]
    for snr in snrs:
        cells = []
        for target in targets:
            choice = table.choose(snr, target)
            mark = "" if choice.met else "*"
            cells.append(f"{ratio_label(choice.ratio)} ({choice.predicted:.3g}){mark}".rjust(18))
        lines.append(" ".join([f"{snr:>7g}"] + cells))
    lines.append("ratio = key-region channel uses per pixel and colour; (predicted quality); * = target not "
                 "reachable, largest ratio sent")
    return "\n".join(lines)


def plot_table(table: RateTable, snrs: Sequence[float], targets: Sequence[float], path: Path) -> None:
    """Left: measured means (dots) and the monotone curves the table uses; right: the ratio per SNR and target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for ratio, measured, used in zip(table.ratios, table.measured, table.values):
        line, = left.plot(table.snr_db, used, label=f"ratio {ratio_label(ratio)}")
        left.plot(table.snr_db, measured, "o", color=line.get_color(), ms=4)
    for target in targets:
        left.axhline(target, color="grey", lw=0.6, ls=":")
    left.set(xlabel="SNR (dB)", ylabel=f"key-region {table.metric}", title=f"{table.codec}, {table.channel}")
    left.legend()
    dense = np.linspace(min(snrs), max(snrs), 200)
    for target in targets:
        right.step(dense, [table.choose(s, target).ratio for s in dense], where="post", label=f"target {target:g}")
    right.set(xlabel="SNR (dB)", ylabel="bandwidth ratio chosen", yscale="log", title="SNR → ratio")
    right.set_yticks(table.ratios, [ratio_label(r) for r in table.ratios])
    right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def as_table(rows: list[dict]) -> dict:
    """Rows of equal keys as one list of column names and lists of values: a third of the JSON."""
    columns = list(rows[0]) if rows else []
    return {"columns": columns, "rows": [[row[c] for c in columns] for row in rows]}


def from_table(table: dict) -> list[dict]:
    """The rows of an :func:`as_table` table, as dictionaries again."""
    return [dict(zip(table["columns"], row)) for row in table["rows"]]
