"""`semcom eval`: compare the schemes on a folder of images (run), and turn a run into a report (report).

``run`` builds a :class:`~gensemcom.eval.sweep.SweepSettings` from its options and
calls :func:`~gensemcom.eval.sweep.run_sweep`; ``report`` calls
:func:`~gensemcom.eval.report.write_report`. Also runnable as
``python -m gensemcom.eval.cli``.
"""

import json
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer import Option

from gensemcom.demo import find_images
from gensemcom.eval.schemes import SCHEMES, Condition
from gensemcom.eval.registry import METRICS
from gensemcom.eval.sweep import CHANNELS, Grid, SweepSettings, run_sweep
from gensemcom.shared.paths import shared_data_dir

app = typer.Typer(
    help="Evaluate: every scheme (ours and the paper's baselines) over SNR, non-key ratio and channel; "
    "then figures and a report.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

def _items(text: str, kind: type, what: str) -> tuple:
    try:
        values = tuple(kind(item.strip()) for item in text.split(",") if item.strip())
    except ValueError:
        raise typer.BadParameter(f"{what}: expected a comma-separated list of {kind.__name__}, got {text!r}")
    if not values:
        raise typer.BadParameter(f"{what}: give at least one value")
    return values


def _settings_overrides(pairs: list[str], what: str) -> dict[str, Any]:
    """KEY=VALUE pairs as a dict (values parsed as JSON when they can be, else kept as text)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{what}: expected KEY=VALUE, got {pair!r}")
        try:
            out[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip().replace("-", "_")] = value
    return out


def image_paths(folders: list[Path]) -> list[tuple[Path, str]]:
    """Images in ``folders`` (not recursive, as the demo finds them), each with its dataset name (the folder's)."""
    try:
        return [(path, folder.name) for folder in folders for path in find_images([folder])]
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command()
def run(
    input: Annotated[Optional[list[Path]], Option(help="image folder (repeat for several); "
                                                  "default: Kodak24 from ../shared/data")] = None,
    out: Annotated[Path, Option(help="output folder; a run with the same settings there is resumed")] = Path("out/eval"),
    schemes: Annotated[str, Option(help=f"comma-separated, from {', '.join(SCHEMES)}")] = ",".join(SCHEMES),
    snr: Annotated[str, Option(help="SNRs (dB) of the SNR sweep")] = "0,5,10,15,20",
    ratios: Annotated[str, Option(help="non-key ratios 1 − α of the ratio sweep, each in (0, 1)")] = "0.1,0.3,0.5,0.7,0.9",
    channels: Annotated[str, Option(help=f"channel models of the channel sweep, from {', '.join(CHANNELS)}")] = ",".join(CHANNELS),
    base_snr: Annotated[float, Option(help="SNR (dB) of the ratio and channel sweeps")] = 10.0,
    base_ratio: Annotated[float, Option(help="non-key ratio of the SNR and channel sweeps")] = 0.5,
    base_channel: Annotated[str, Option(help="channel of the SNR and ratio sweeps")] = "awgn",
    seed: Annotated[int, Option(help="channel seed (each image and condition draws from it)")] = 0,
    metrics: Annotated[str, Option(help=f"comma-separated, from {', '.join(METRICS)}")] = ",".join(METRICS),
    samples: Annotated[int, Option(help="images whose reconstructions at the base condition are kept for the "
                                        "sample grid")] = 4,
    limit: Annotated[Optional[int], Option(help="only the first N images")] = None,
    workers: Annotated[int, Option(help="worker processes (each loads the models once; ~2 GB each)")] = min(
        2, os.cpu_count() or 1),
    via: Annotated[Optional[tuple[str, str]], Option(help="'grpc HOST:PORT': send through the live services "
                                                        "at that transmitter address instead of in process")] = None,
    tx: Annotated[Optional[list[str]], Option(help="transmitter setting KEY=VALUE (in process), e.g. "
                                                   "bandwidth_ratio=0.0833; repeatable")] = None,
    rx: Annotated[Optional[list[str]], Option(help="receiver setting KEY=VALUE (in process), e.g. "
                                                   "inpainter=diffusion; repeatable")] = None,
    equal_quality: Annotated[bool, Option(help="also find BPG + LDPC's symbols at ours' LPIPS (AWGN)")] = True,
    retry_errors: Annotated[bool, Option(help="run failed transmissions of a resumed run again")] = False,
    report: Annotated[bool, Option(help="write the report when the run ends")] = True,
) -> None:
    """Run every scheme on every image under every condition; rows go to OUT/results.jsonl.

    Three sweeps around the base condition: SNR, non-key ratio 1 − α, channel model.
    Interrupted? Run the same command again: finished work is kept.
    """
    if via is not None and via[0] != "grpc":
        raise typer.BadParameter(f"--via takes 'grpc HOST:PORT', got {' '.join(via)!r}")
    if (tx or rx) and via is not None:
        raise typer.BadParameter("--tx/--rx configure the in-process chain; with --via grpc, configure the services")
    try:
        grid = Grid(snr_db=_items(snr, float, "--snr"), nonkey_target=_items(ratios, float, "--ratios"),
                    channel=_items(channels, str, "--channels"),
                    base=Condition(base_channel, base_snr, base_ratio, seed))
        settings = SweepSettings(
            schemes=_items(schemes, str, "--schemes"), grid=grid, metrics=_items(metrics, str, "--metrics"),
            samples=samples, equal_quality=equal_quality, via=via[1] if via else "",
            transmitter=_settings_overrides(tx or [], "--tx"), receiver=_settings_overrides(rx or [], "--rx"),
        )
        _check_services_settings(settings)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    paths = image_paths(input or [shared_data_dir() / "kodak24"])[:limit]
    summary = run_sweep(paths, out, settings, workers=workers, retry_errors=retry_errors)
    typer.echo(json.dumps(summary, indent=2))
    if report:
        from gensemcom.eval.report import write_report

        typer.echo(f"report: {write_report(out)}")


def _check_services_settings(settings: SweepSettings) -> None:
    """Fail now, not in a worker, on a bad --tx/--rx setting."""
    from gensemcom.shared.config import ReceiverSettings, TransmitterSettings

    TransmitterSettings(**settings.transmitter)
    ReceiverSettings(**settings.receiver)


@app.command("report")
def report_command(
    out: Annotated[Path, typer.Argument(help="folder of a run (what `semcom eval run --out` wrote)")],
) -> None:
    """Figures (PNG), tables (CSV) and report.md/report.html for a run, in OUT/report/."""
    from gensemcom.eval.report import write_report

    typer.echo(f"report: {write_report(out)}")


if __name__ == "__main__":
    app()
