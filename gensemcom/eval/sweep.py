"""`semcom eval run`: every scheme, every image, every condition of the grid; resumable; in parallel.

The grid is three one-dimensional sweeps around a base condition (docs/eval.md):
SNR (base channel and ratio), non-key ratio 1 − α (base SNR and channel) and
channel model (base SNR and ratio). Work is cut into tasks of one image under
one condition; a task runs its schemes in order (``ours`` before ``bpg-ldpc``,
whose budget is ``ours``' symbol count), scores them and returns the rows.
Ratio-free schemes run once, at the base ratio, and their rows are copied to
the other ratios (the transmission is the same).

Rows are appended to ``results.jsonl`` as tasks finish; a second run with the
same settings skips what is there, so an interrupted sweep resumes where it
stopped. Workers are processes (``spawn``), one torch thread each.
"""

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import multiprocessing
import numpy as np
from PIL import Image
from tqdm import tqdm

from gensemcom.eval.schemes import RATIO_FREE, SCHEMES, Condition, Transmission, check_schemes
from gensemcom.eval.registry import METRICS
from gensemcom.shared.image_io import decode_image

log = logging.getLogger(__name__)

CHANNELS = ("awgn", "rayleigh", "rician")
EQUAL_QUALITY_METRIC = "lpips_alex"  # the quality at which ours and BPG + LDPC are compared for symbols


@dataclass(frozen=True)
class Grid:
    """Three one-dimensional sweeps through a base condition."""

    snr_db: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0)
    nonkey_target: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)
    channel: tuple[str, ...] = CHANNELS
    base: Condition = Condition("awgn", 10.0, 0.5)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.channel) - set(CHANNELS))
        if unknown:
            raise ValueError(f"unknown channel model(s) {', '.join(unknown)}; choose from {', '.join(CHANNELS)}")
        if not (self.snr_db and self.nonkey_target and self.channel):
            raise ValueError("every sweep needs at least one value (SNR, non-key ratio, channel)")
        for ratio in self.nonkey_target:
            Condition("awgn", 0.0, ratio)  # validates the range

    def conditions(self) -> list[Condition]:
        """Every condition of the three sweeps, each once, in a stable order."""
        b = self.base
        points = [replace(b, snr_db=float(s)) for s in self.snr_db]
        points += [replace(b, nonkey_target=float(r)) for r in self.nonkey_target]
        points += [replace(b, channel=c) for c in self.channel]
        return list(dict.fromkeys(points))

    def to_json(self) -> dict[str, Any]:
        return {"snr_db": list(self.snr_db), "nonkey_target": list(self.nonkey_target),
                "channel": list(self.channel), "base": asdict(self.base)}


@dataclass(frozen=True)
class Task:
    """One image under one condition, for some schemes."""

    path: Path
    dataset: str
    condition: Condition
    schemes: tuple[str, ...]
    sample: bool = False  # save the reconstructions (the base condition of the sample images)

    @property
    def image(self) -> str:
        return self.path.name


def row_key(row: dict[str, Any]) -> tuple:
    return (row["image"], row["scheme"], row["channel"], row["snr_db"], row["nonkey_target"], row["seed"])


def _equal_key(row: dict[str, Any]) -> tuple:
    return (row["image"], row["channel"], row["snr_db"], row["nonkey_target"])


def plan(paths: Sequence[tuple[Path, str]], grid: Grid, schemes: Sequence[str], n_samples: int) -> list[Task]:
    """The tasks of a sweep: ratio-free schemes only where the ratio is the base's."""
    tasks = []
    for index, (path, dataset) in enumerate(paths):
        for condition in grid.conditions():
            at_base_ratio = condition.nonkey_target == grid.base.nonkey_target
            names = tuple(s for s in schemes if at_base_ratio or s not in RATIO_FREE)
            tasks.append(Task(path, dataset, condition, names, sample=index < n_samples and condition == grid.base))
    return tasks


@dataclass
class TaskResult:
    rows: list[dict[str, Any]]
    equal_quality: list[dict[str, Any]] = field(default_factory=list)


class Evaluator:
    """Runs tasks: transmits with ``chain`` (and BPG + LDPC in this process), scores, saves samples."""

    def __init__(self, chain: Any, scorer: Callable[..., dict[str, float]], segment: Callable[[np.ndarray], np.ndarray],
                 bpg: Any, out: Path, equal_quality: bool) -> None:
        self.chain = chain
        self.scorer = scorer
        self.segment = segment
        self.bpg = bpg
        self.out = out
        self.equal_quality = equal_quality
        self._image: tuple[Path, np.ndarray, np.ndarray] | None = None  # the last image, its key mask

    def _load(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        if self._image is None or self._image[0] != path:
            image = decode_image(path.read_bytes())
            self._image = (path, image, self.segment(image))
        return self._image[1], self._image[2]

    def run(self, task: Task) -> TaskResult:
        image, mask = self._load(task.path)
        done: dict[str, Transmission] = {}
        rows = []
        for scheme in task.schemes:
            condition = task.condition
            row: dict[str, Any] = {"image": task.image, "dataset": task.dataset, "scheme": scheme,
                                   "channel": condition.channel, "snr_db": condition.snr_db,
                                   "nonkey_target": condition.nonkey_target, "seed": condition.seed,
                                   "alpha": None, "nonkey_ratio": None, "symbols": None, "budget": None,
                                   "status": "error", "error": "", "detail": {}, "metrics": {}, "seconds": 0.0,
                                   "via": "in-process" if scheme == "bpg-ldpc" else self.chain.via}
            start = time.perf_counter()
            try:
                sent = self._send(image, task, scheme, done, row)
                done[scheme] = sent
                row.update(status=sent.status, symbols=int(sent.symbols), detail=sent.detail,
                           metrics=self.scorer(image, sent.image, mask))
                if sent.alpha is not None:
                    row.update(alpha=round(sent.alpha, 6), nonkey_ratio=round(1.0 - sent.alpha, 6))
                if task.sample:
                    self._save_sample(task, scheme, image, sent.image)
            except Exception as exc:  # noqa: BLE001 - one failed transmission is a row, not a failed sweep
                log.warning("%s %s %s: %s", task.image, scheme, condition, exc)
                row["error"] = f"{type(exc).__name__}: {exc}"
            row["seconds"] = round(time.perf_counter() - start, 3)
            rows.append(row)
        return TaskResult(rows, self._equal_quality(image, task, rows))

    def _send(self, image: np.ndarray, task: Task, scheme: str, done: dict[str, Transmission],
              row: dict[str, Any]) -> Transmission:
        if scheme != "bpg-ldpc":
            return self.chain.send(image, task.image, scheme, task.condition)
        if "ours" not in done:
            raise RuntimeError("bpg-ldpc takes ours' symbol count as its budget, and ours failed")
        row["budget"] = done["ours"].symbols
        result = self.bpg(image, done["ours"].symbols, task.condition.channel_params(),
                          task.condition.frame_id(task.image))
        return Transmission(result.image, result.symbols, result.status, None, dict(result.detail))

    def _save_sample(self, task: Task, scheme: str, original: np.ndarray, image: np.ndarray) -> None:
        folder = self.out / "samples" / task.path.stem
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "original.png").exists():
            Image.fromarray(original).save(folder / "original.png")
        Image.fromarray(image).save(folder / f"{scheme}.png")

    def _equal_quality(self, image: np.ndarray, task: Task, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Symbols BPG + LDPC needs to match ours' quality, on AWGN at the base ratio (the SNR sweep)."""
        c = task.condition
        ours = next((r for r in rows if r["scheme"] == "ours" and r["status"] == "ok"), None)
        wanted = self.equal_quality and c.channel == "awgn" and "bpg-ldpc" in task.schemes
        if ours is None or not wanted or EQUAL_QUALITY_METRIC not in ours["metrics"]:
            return []
        from gensemcom.eval.bpg_ldpc import symbols_at_quality
        from gensemcom.eval.metrics import lpips_distance

        target = ours["metrics"][EQUAL_QUALITY_METRIC]
        match = symbols_at_quality(image, c.snr_db, c.channel, lambda out: lpips_distance(image, out, "alex"),
                                   target, METRICS[EQUAL_QUALITY_METRIC].higher_is_better)
        row = {"image": task.image, "snr_db": c.snr_db, "channel": c.channel, "nonkey_target": c.nonkey_target,
               "metric": EQUAL_QUALITY_METRIC, "ours_symbols": ours["symbols"], "ours_value": target,
               "bpg_symbols": None, "bpg_value": None, "bpg_quality": None, "bpg_mcs": None, "saved": None}
        if match is not None:
            row.update(bpg_symbols=match.symbols, bpg_value=match.value, bpg_quality=match.quality,
                       bpg_mcs=match.mcs, saved=round(1.0 - ours["symbols"] / match.symbols, 6))
        return [row]


# --- the run: settings, resume, workers -------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepSettings:
    """What defines a run; a resumed run must have the same."""

    schemes: tuple[str, ...] = SCHEMES
    grid: Grid = Grid()
    metrics: tuple[str, ...] = tuple(METRICS)
    samples: int = 4
    equal_quality: bool = True
    via: str = ""  # "" = in process; else the transmitter's address
    transmitter: dict[str, Any] = field(default_factory=dict)  # TransmitterSettings overrides
    receiver: dict[str, Any] = field(default_factory=dict)  # ReceiverSettings overrides

    def __post_init__(self) -> None:
        object.__setattr__(self, "schemes", check_schemes(self.schemes))
        unknown = sorted(set(self.metrics) - set(METRICS))
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
        if self.samples < 0:
            raise ValueError(f"samples must be >= 0, got {self.samples}")

    def to_json(self) -> dict[str, Any]:
        return {"schemes": list(self.schemes), "grid": self.grid.to_json(), "base": asdict(self.grid.base),
                "metrics": list(self.metrics), "samples": self.samples, "equal_quality": self.equal_quality,
                "via": self.via or "in-process", "transmitter": self.transmitter, "receiver": self.receiver,
                "seed": self.grid.base.seed, "inpainter": self.inpainter}

    @property
    def inpainter(self) -> str:
        """The receiver's inpainter, as the report names it (the services' own when run through them)."""
        if self.via:
            return "the services' own (see their logs)"
        return str(self.receiver.get("inpainter", "classical")) + (
            f" ({self.receiver['inpaint_model']})" if self.receiver.get("inpaint_model") else "")


def build_evaluator(settings: SweepSettings, out: Path) -> Evaluator:
    """The evaluator of one process: its chain, scorer, segmenter and BPG + LDPC link."""
    import torch

    from gensemcom.eval.bpg_ldpc import BpgLdpc
    from gensemcom.eval.scoring import Scorer
    from gensemcom.receiver.estimate import ChannelPrior
    from gensemcom.services import build_receiver, build_transmitter
    from gensemcom.shared.config import ReceiverSettings, TransmitterSettings
    from gensemcom.shared.paths import shared_data_dir
    from gensemcom.transmitter.segment import make_segmenter

    torch.set_num_threads(1)
    tx = TransmitterSettings(**settings.transmitter)
    segmenter = make_segmenter(tx.segmenter if tx.segmenter != "whole" else "mediapipe",
                               tx.weights_dir or shared_data_dir() / "weights")

    def segment(image: np.ndarray) -> np.ndarray:
        return segmenter(image).mask

    if settings.via:
        from gensemcom.eval.remote import RemoteChain

        chain: Any = RemoteChain(settings.via)
    else:
        from gensemcom.eval.schemes import InProcessChain

        chain = InProcessChain(tx, build_transmitter, build_receiver(ReceiverSettings(**settings.receiver)))
    scorer = Scorer(settings.metrics, segment=segment if "mask_iou" in settings.metrics else None)
    rx = ReceiverSettings(**settings.receiver)  # BPG + LDPC's receiver estimates the channel as ours does
    bpg = BpgLdpc(estimator=rx.estimator, prior=ChannelPrior(coherence=rx.prior_coherence, doppler=rx.prior_doppler))
    return Evaluator(chain, scorer, segment, bpg, out, settings.equal_quality)


_worker: Evaluator | None = None


def _init_worker(settings: SweepSettings, out: Path) -> None:
    global _worker
    logging.basicConfig(level=logging.WARNING)
    _exit_with_parent(os.getppid())
    _worker = build_evaluator(settings, out)


def _exit_with_parent(parent: int, every_s: float = 2.0) -> None:
    """Stop this worker when the sweep that started it is gone (killed, not interrupted): no orphans."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _run_in_worker(task: Task) -> TaskResult:
    assert _worker is not None, "worker not initialised"
    return _worker.run(task)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file; a truncated last line (an interrupted write) is dropped from the file."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number != len(lines):
                raise ValueError(f"{path}:{number} is not valid JSON; the file is damaged") from None
            log.warning("%s: dropping a truncated last line (an interrupted run)", path)
            path.write_text("".join(f"{line}\n" for line in lines[:-1]))
    return rows


def _check_resumable(out: Path, settings: SweepSettings) -> None:
    run_file = out / "run.json"
    wanted = settings.to_json()
    if run_file.exists():
        held = json.loads(run_file.read_text())
        held = {k: held.get(k) for k in wanted}
        if held != wanted:
            changed = sorted(k for k in wanted if held.get(k) != wanted[k])
            raise ValueError(f"{out} holds a run with other settings ({', '.join(changed)}); "
                             f"use another --out folder, or delete {out} to start again")


def ratio_copies(row: dict[str, Any], grid: Grid) -> list[dict[str, Any]]:
    """A ratio-free scheme's row at the base, copied to the other ratios of the ratio sweep."""
    b = grid.base
    at_ratio_sweep = row["channel"] == b.channel and row["snr_db"] == b.snr_db
    if row["scheme"] not in RATIO_FREE or not at_ratio_sweep or row["nonkey_target"] != b.nonkey_target:
        return []
    return [{**row, "nonkey_target": float(r), "detail": {**row["detail"], "copied_from_ratio": b.nonkey_target}}
            for r in grid.nonkey_target if r != b.nonkey_target]


def task_keys(task: Task, grid: Grid) -> set[tuple]:
    """The row keys a task writes: its own, and the copies of its ratio-free rows."""
    c = task.condition
    rows = [{"image": task.image, "scheme": s, "channel": c.channel, "snr_db": c.snr_db,
             "nonkey_target": c.nonkey_target, "seed": c.seed, "detail": {}} for s in task.schemes]
    return {row_key(r) for row in rows for r in (row, *ratio_copies(row, grid))}


def run_sweep(paths: Sequence[tuple[Path, str]], out: Path, settings: SweepSettings, workers: int = 1,
              progress: bool = True, retry_errors: bool = False) -> dict[str, Any]:
    """Run (or resume) a sweep into ``out``; returns a summary (rows written, errors, tasks skipped).

    ``retry_errors`` drops the rows of failed transmissions before resuming, so they run again.
    """
    if not paths:
        raise ValueError("no images to evaluate")
    out.mkdir(parents=True, exist_ok=True)
    _check_resumable(out, settings)
    meta = {**settings.to_json(), "images": len(paths), "dataset": sorted({d for _, d in paths}),
            "image_paths": [[str(p), d] for p, d in paths]}
    (out / "run.json").write_text(json.dumps(meta, indent=2))
    results, equal = out / "results.jsonl", out / "equal_quality.jsonl"
    rows = read_rows(results)
    if retry_errors and any(r["status"] == "error" for r in rows):
        rows = [r for r in rows if r["status"] != "error"]
        results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    have = {row_key(r) for r in rows}
    have_equal = {_equal_key(r) for r in read_rows(equal)}
    planned = plan(paths, settings.grid, settings.schemes, settings.samples)
    tasks = [t for t in planned if not task_keys(t, settings.grid) <= have]
    skipped = len(planned) - len(tasks)
    written = errors = 0
    with open(results, "a") as rows_file, open(equal, "a") as equal_file:
        for result in tqdm(_execute(tasks, settings, out, workers), total=len(tasks), unit="task",
                           desc="eval", disable=not progress):
            for row in result.rows:
                for copy in [row, *ratio_copies(row, settings.grid)]:
                    if row_key(copy) not in have:
                        rows_file.write(json.dumps(copy) + "\n")
                        have.add(row_key(copy))
                        written += 1
                errors += row["status"] == "error"
            for row in result.equal_quality:
                if _equal_key(row) not in have_equal:
                    equal_file.write(json.dumps(row) + "\n")
                    have_equal.add(_equal_key(row))
            rows_file.flush()
            equal_file.flush()
    return {"tasks": len(tasks), "skipped_tasks": skipped, "rows_written": written, "errors": errors,
            "out": str(out)}


def _execute(tasks: list[Task], settings: SweepSettings, out: Path, workers: int) -> Iterator[TaskResult]:
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers == 1 or len(tasks) <= 1:
        if tasks:
            evaluator = build_evaluator(settings, out)
            yield from (evaluator.run(task) for task in tasks)
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(settings, out)) as pool:
        futures = [pool.submit(_run_in_worker, task) for task in tasks]
        yield from (future.result() for future in as_completed(futures))
