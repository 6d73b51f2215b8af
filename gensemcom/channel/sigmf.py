"""SigMF record and replay of channel bursts (``PREFIX.sigmf-data`` cf32_le + ``PREFIX.sigmf-meta``).

A recording is what a channel returned, burst after burst, as one SigMF
dataset: the samples back to back, one capture segment per burst (where it
starts, when it was recorded) and one annotation per burst with its
``core:sample_count`` and its frame id under the ``semcom`` extension
namespace (``semcom:frame_id``). Any SigMF tool can open it; replaying it
returns each frame the exact samples it got when it was recorded, so a radio
session can be rerun offline, bit for bit.

The meta file is rewritten (atomically) after every burst, so a recording
that stops abruptly is still valid up to its last complete burst. Only what
this project writes and reads is supported: cf32_le, one channel.
"""

import datetime
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gensemcom.channel.external.base import IQ_DTYPE, ExternalChannel, ExternalChannelError, as_burst, check_reply

SIGMF_VERSION = "1.0.0"  # every field written here exists in SigMF 1.0.0, so any 1.x reader accepts it
DATATYPE = "cf32_le"
EXTENSION = {"name": "semcom", "version": "1.0.0", "optional": True}
FRAME_ID_KEY = "semcom:frame_id"
_SUFFIXES = (".sigmf-meta", ".sigmf-data")


def recording_paths(path_prefix: Path | str) -> tuple[Path, Path]:
    """(data, meta) paths of a recording; a prefix given with either suffix means the same recording."""
    prefix = str(path_prefix)
    for suffix in _SUFFIXES:
        prefix = prefix.removesuffix(suffix)
    return Path(prefix + ".sigmf-data"), Path(prefix + ".sigmf-meta")


@dataclass(frozen=True)
class Burst:
    start: int  # first sample, index into the dataset
    count: int
    frame_id: str | None  # None when the annotation has no semcom:frame_id (a recording made elsewhere)


@dataclass(frozen=True)
class Recording:
    meta: dict[str, Any]
    samples: np.ndarray  # the whole dataset, complex64 (memory-mapped)
    bursts: list[Burst]

    def burst(self, burst: Burst) -> np.ndarray:
        return np.array(self.samples[burst.start : burst.start + burst.count], dtype=np.complex64)


def _index(entry: dict[str, Any], key: str, where: str) -> int:
    value = entry.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{where}: {key} must be an integer >= 0, got {value!r}")
    return value


def _check_global(meta: dict[str, Any], path: Path) -> None:
    for key in ("global", "captures", "annotations"):
        if key not in meta:
            raise ValueError(f"{path}: SigMF meta has no {key!r} object")
    glob = meta["global"]
    if glob.get("core:datatype") != DATATYPE:
        raise ValueError(f"{path}: core:datatype is {glob.get('core:datatype')!r}; only {DATATYPE!r} is supported")
    version = glob.get("core:version")
    if not isinstance(version, str) or not re.fullmatch(r"1\.\d+\.\d+", version):
        raise ValueError(f"{path}: core:version {version!r} is not a SigMF 1.x version")
    if glob.get("core:num_channels", 1) != 1:
        raise ValueError(f"{path}: core:num_channels is {glob['core:num_channels']}; only 1 is supported")


def _bursts(meta: dict[str, Any], n_samples: int, path: Path) -> list[Burst]:
    starts = [_index(c, "core:sample_start", f"{path}: capture {i}") for i, c in enumerate(meta["captures"])]
    if starts != sorted(starts) or any(s >= max(n_samples, 1) for s in starts):
        raise ValueError(f"{path}: capture sample_start values must be ascending and inside the "
                         f"{n_samples}-sample dataset, got {starts}")
    bursts = []
    for i, note in enumerate(meta["annotations"]):
        where = f"{path}: annotation {i}"
        start = _index(note, "core:sample_start", where)
        if "core:sample_count" not in note:
            raise ValueError(f"{where} has no core:sample_count; replay needs each burst's length")
        count = _index(note, "core:sample_count", where)
        if start + count > n_samples:
            raise ValueError(f"{where} covers samples {start}..{start + count} but the dataset has {n_samples}")
        frame_id = note.get(FRAME_ID_KEY)
        if frame_id is not None and not isinstance(frame_id, str):
            raise ValueError(f"{where}: {FRAME_ID_KEY} must be a string, got {frame_id!r}")
        bursts.append(Burst(start, count, frame_id))
    if [b.start for b in bursts] != sorted(b.start for b in bursts):
        raise ValueError(f"{path}: annotations must be sorted by core:sample_start")
    return bursts


def load_recording(path_prefix: Path | str) -> Recording:
    """Open and validate a recording; ValueError says what is wrong with it."""
    data_path, meta_path = recording_paths(path_prefix)
    for path in (meta_path, data_path):
        if not path.is_file():
            raise FileNotFoundError(f"SigMF recording file {path} does not exist")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{meta_path}: not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_path}: SigMF meta must be a JSON object")
    _check_global(meta, meta_path)
    size = data_path.stat().st_size
    if size % IQ_DTYPE.itemsize:
        raise ValueError(f"{data_path}: {size} bytes is not a whole number of {DATATYPE} samples")
    samples = np.memmap(data_path, dtype=IQ_DTYPE, mode="r") if size else np.empty(0, IQ_DTYPE)
    return Recording(meta, samples, _bursts(meta, samples.size, meta_path))


class SigmfRecorder(ExternalChannel):
    """Pass bursts to ``inner`` and record every reply at ``path_prefix``.

    ``sample_rate`` goes into the metadata: the chain's IQ is one sample per
    symbol, so it is the symbol rate in samples/s (1.0, the default, means
    normalised: the rate is not known here). An existing recording is never
    overwritten (``FileExistsError``).
    """

    def __init__(self, inner: ExternalChannel, path_prefix: Path | str, sample_rate: float = 1.0,
                 description: str = "gensemcom channel output: one burst (frame) per annotation") -> None:
        if not sample_rate > 0:
            raise ValueError(f"sample rate must be > 0, got {sample_rate}")
        self.inner = inner
        self.name = f"{inner.name}+sigmf"
        self.data_path, self.meta_path = recording_paths(path_prefix)
        if self.meta_path.exists():
            raise FileExistsError(f"SigMF recording {self.meta_path} already exists; choose another prefix")
        self._data = open(self.data_path, "xb")  # exclusive: refuses to clobber an existing dataset
        self._meta: dict[str, Any] = {
            "global": {
                "core:datatype": DATATYPE,
                "core:version": SIGMF_VERSION,
                "core:sample_rate": float(sample_rate),
                "core:description": description,
                "core:recorder": "gensemcom",
                "core:extensions": [EXTENSION],
            },
            "captures": [],
            "annotations": [],
        }
        self._n_samples = 0
        self._lock = threading.Lock()
        self._write_meta()

    def __call__(self, iq: np.ndarray, frame_id: str) -> np.ndarray:
        reply = self.inner(iq, frame_id)
        with self._lock:
            start = self._n_samples
            self._data.write(np.ascontiguousarray(reply, dtype=IQ_DTYPE).tobytes())
            self._data.flush()
            self._n_samples += reply.size
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            self._meta["captures"].append({"core:sample_start": start, "core:datetime": now})
            self._meta["annotations"].append(
                {"core:sample_start": start, "core:sample_count": int(reply.size), FRAME_ID_KEY: frame_id}
            )
            self._write_meta()
        return reply

    def _write_meta(self) -> None:
        """Write to a temporary file and rename it over the meta file, so readers never see half a file."""
        tmp = self.meta_path.with_name(self.meta_path.name + ".tmp")
        tmp.write_text(json.dumps(self._meta, indent=2))
        os.replace(tmp, self.meta_path)

    def close(self) -> None:
        self.inner.close()
        self._data.close()


class SigmfReplay(ExternalChannel):
    """Answer each burst with the recorded burst of the same frame id (or, with ``by_frame_id=False``, the next).

    The recorded burst must have the length of the burst it answers; frame
    ids must be unique in the recording when replaying by id.
    """

    name = "sigmf-replay"

    def __init__(self, path_prefix: Path | str, by_frame_id: bool = True) -> None:
        self.path = recording_paths(path_prefix)[1]
        self.recording = load_recording(path_prefix)
        self.by_frame_id = by_frame_id
        self._by_id: dict[str, Burst] = {}
        if by_frame_id:
            for i, burst in enumerate(self.recording.bursts):
                if burst.frame_id is None:
                    raise ValueError(f"{self.path}: annotation {i} has no {FRAME_ID_KEY}; replay it in order")
                if burst.frame_id in self._by_id:
                    raise ValueError(f"{self.path}: frame id {burst.frame_id!r} is recorded twice; replay it in order")
                self._by_id[burst.frame_id] = burst
        self._next = 0
        self._lock = threading.Lock()

    def __call__(self, iq: np.ndarray, frame_id: str) -> np.ndarray:
        burst = as_burst(iq)
        if self.by_frame_id:
            recorded = self._by_id.get(frame_id)
            if recorded is None:
                raise ExternalChannelError(f"frame {frame_id!r} is not in the recording {self.path}")
        else:
            with self._lock:
                if self._next == len(self.recording.bursts):
                    raise ExternalChannelError(f"all {self._next} bursts of {self.path} have been replayed")
                recorded = self.recording.bursts[self._next]
                self._next += 1
        return check_reply(burst, self.recording.burst(recorded), frame_id, f"the recording {self.path}")

    def close(self) -> None:
        """Nothing to release: the memory map closes with the last reference to it."""
