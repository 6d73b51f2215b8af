"""`semcom adapt`: the SNR → bandwidth-ratio table (measure, print, plot) and the fixed/adaptive/importance
comparison (eval). Also runnable as ``python -m gensemcom.adapt.cli``."""

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer import Option

from gensemcom.adapt.table import CHANNELS, METRICS, TABLES_DIR, RateTable
from gensemcom.shared.paths import shared_data_dir

app = typer.Typer(
    help="Adaptive rate: which key-region bandwidth ratio reaches a target quality at each SNR, and what "
    "adapting saves (docs/adapt.md).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

DEFAULT_CODEC = "deepjscc-afgdn"


@app.callback()
def main() -> None:
    """Adaptive rate tools."""


def floats(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"{what}: expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise typer.BadParameter(f"{what}: give at least one value")
    return values


def load_codec(device: str = "auto"):
    from gensemcom.shared.device import resolve_device
    from gensemcom.shared.jscc.zoo import load_pretrained
    from gensemcom.shared.keycodecs import DeepJsccKey

    return DeepJsccKey(load_pretrained(DEFAULT_CODEC, resolve_device(device)))


def calibration_images(folder: Path, limit: int, segmenter: str, max_side: int):
    from gensemcom.adapt.measure import key_images
    from gensemcom.demo import find_images
    from gensemcom.transmitter.segment import make_segmenter

    paths = find_images([folder])[:limit]
    if not paths:
        raise typer.BadParameter(f"no images in {folder}")
    return list(key_images(paths, make_segmenter(segmenter, shared_data_dir() / "weights"), max_side))


@app.command("table")
def table(
    measure: Annotated[bool, Option(help="measure the curves on --input first (else read --table)")] = False,
    input: Annotated[Optional[Path], Option(help="calibration images (default: ../shared/data/train/bsds500)")] = None,
    limit: Annotated[int, Option(min=1, help="calibration images to use (first N by name)")] = 30,
    snr: Annotated[str, Option(help="SNR grid to measure, dB")] = "0,2.5,5,7.5,10,12.5,15,17.5,20",
    segmenter: Annotated[str, Option(help="segmenter that finds the key regions")] = "mediapipe",
    max_side: Annotated[int, Option(min=64, help="shrink images to this longer side first")] = 768,
    table_file: Annotated[Optional[Path], Option("--table", help="table JSON (default: the shipped one)")] = None,
    out: Annotated[Optional[Path], Option(help="with --measure: where to write the table JSON")] = None,
    metric: Annotated[str, Option(help=f"quality the targets are in: {', '.join(METRICS)}")] = "psnr",
    channel: Annotated[str, Option(help=f"channel family: {', '.join(CHANNELS)}")] = "awgn",
    targets: Annotated[str, Option(help="target qualities to tabulate (default: 26,28,30 dB or 0.05,0.08,0.12)")] = "",
    at: Annotated[str, Option(help="SNRs to tabulate, dB")] = "-5,0,5,10,15,20,25",
    plot: Annotated[Optional[Path], Option(help="write the curves and the table as a PNG")] = None,
    device: Annotated[str, Option(help="auto, cpu or cuda")] = "auto",
) -> None:
    """Print (and plot) the SNR → ratio table; with --measure, measure its curves first."""
    path = table_file or TABLES_DIR / f"{DEFAULT_CODEC}.json"
    if measure:
        from gensemcom.adapt.measure import measure_curves

        folder = input or shared_data_dir() / "train" / "bsds500"
        items = calibration_images(folder, limit, segmenter, max_side)
        data = measure_curves(items, load_codec(device), floats(snr, "--snr"))
        data["source"] = (f"{len(items)} images of {folder.name} (first {limit} by name, key regions by "
                          f"{segmenter}, longer side <= {max_side})")
        path = out or path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1) + "\n")
        typer.echo(f"wrote {path}")
    try:
        rate_table = RateTable.load(path, metric, channel)
    except (ValueError, FileNotFoundError) as exc:
        raise typer.BadParameter(str(exc)) from None
    goals = floats(targets, "--targets") if targets else ([26.0, 28.0, 30.0] if metric == "psnr" else [0.05, 0.08, 0.12])
    snrs = floats(at, "--at")
    from gensemcom.adapt.report import format_table, plot_table

    typer.echo(format_table(rate_table, snrs, goals))
    if plot is not None:
        plot_table(rate_table, snrs, goals, plot)
        typer.echo(f"wrote {plot}")


@app.command("eval")
def evaluate(
    input: Annotated[Optional[list[Path]], Option(help="image folders (default: Kodak24 and the people photos)")] = None,
    limit: Annotated[int, Option(min=1, help="images per folder at most")] = 1000,
    out: Annotated[Path, Option(help="folder for the JSON and PNG results")] = Path("out/adapt"),
    experiments: Annotated[str, Option(help="which to run: rate (fixed vs adaptive over channels), "
                                            "importance (trimming under a budget), or both")] = "rate,importance",
    targets: Annotated[str, Option(help="adaptive targets, key-region PSNR in dB")] = "24,26,28",
    shares: Annotated[str, Option(help="importance: budgets as shares of the key blocks at the lowest ratio")]
    = "0.25,0.5,0.75",
    max_side: Annotated[int, Option(min=64, help="shrink images to this longer side first")] = 512,
    segmenter: Annotated[str, Option(help="segmenter that finds the key regions")] = "mediapipe",
    device: Annotated[str, Option(help="auto, cpu or cuda")] = "auto",
) -> None:
    """Fixed vs adaptive rate over AWGN, Rayleigh, Rician and two Doppler streams, and importance-aware vs
    centre-first trimming under a budget: quality vs symbols, and the symbols saved at equal quality."""
    chosen = {e.strip() for e in experiments.split(",") if e.strip()}
    if not chosen or chosen - {"rate", "importance"}:
        raise typer.BadParameter(f"--experiments: choose from rate, importance; got {experiments!r}")
    goals, budget_shares = floats(targets, "--targets"), floats(shares, "--shares")
    if not all(0 < share < 1 for share in budget_shares):
        raise typer.BadParameter(f"--shares: each budget share must be between 0 and 1 (exclusive), got {shares!r}")
    data = shared_data_dir()
    folders = input or [data / "kodak24", data / "people"]
    items = [item for folder in folders for item in calibration_images(folder, limit, segmenter, max_side)]
    codec = load_codec(device)
    names = [item.name for item in items]
    if "rate" in chosen:
        from gensemcom.adapt.evaluate import EvalSettings, run_eval, write

        result = run_eval(items, codec, RateTable.shipped(DEFAULT_CODEC, "psnr", "awgn"),
                          RateTable.shipped(DEFAULT_CODEC, "psnr", "rayleigh"),
                          EvalSettings(targets=tuple(goals)))
        write(result | {"images": names}, out)
        echo_rate(result)
        typer.echo(f"wrote {out / 'adapt_eval.json'}, {out / 'adapt_eval.png'} and {out / 'adapt_eval_streams.png'}")
    if "importance" in chosen:
        from gensemcom.adapt.evaluate_importance import ImportanceSettings, run_importance, write_importance
        from gensemcom.adapt.importance import ImportanceRanker
        from gensemcom.transmitter.faces import FACE_MODEL, FaceDetector

        ranker = ImportanceRanker(FaceDetector(data / "weights" / FACE_MODEL))
        result = run_importance(items, codec, ranker, ImportanceSettings(shares=tuple(budget_shares)))
        write_importance(result, out)
        echo_importance(result)
        typer.echo(f"wrote {out / 'adapt_importance.json'} and {out / 'adapt_importance.png'}")


def echo_rate(result: dict) -> None:
    for group in ("conditions", "pools"):
        for label, cell in result[group].items():
            typer.echo(label)
            for scheme, entry in cell.items():
                line = (f"  {scheme:<16} PSNR {entry['psnr']:6.2f} ± {entry['psnr_std']:.2f}  symbols "
                        f"{entry['symbols']:9.0f}  meets " + " ".join(f"{t}:{v:.2f}" for t, v in entry["meets"].items()))
                for key, name in (("saving_at_equal_psnr", "mean PSNR"), ("saving_at_equal_hit_rate", "hit rate")):
                    if entry.get(key) is not None:
                        line += f"  saving at equal {name} {100 * entry[key]:+.1f} %"
                if entry.get("dominated_by"):
                    line += f"  (worse than {entry['dominated_by']}, which is cheaper)"
                typer.echo(line)


def echo_importance(result: dict) -> None:
    for channel, sources in result["summary"].items():
        for source, points in sources.items():
            typer.echo(f"{channel}, ranked by {source}")
            for name, p in points.items():
                line = (f"  {name:<16} symbols {p['symbols']:8.0f}  important PSNR {p['important_psnr']:6.2f}  "
                        f"key PSNR {p['key_psnr']:6.2f}  important kept {p['important_kept']:.2f}")
                if p.get("saving_at_equal_important_psnr") is not None:
                    line += f"  saving {100 * p['saving_at_equal_important_psnr']:+.1f} %"
                typer.echo(line)


if __name__ == "__main__":
    app()
