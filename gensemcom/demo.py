"""`semcom demo`: real images through the three real services, panels and metrics out.

Starts receiver, channel and transmitter as child processes on free loopback
ports (or uses a running transmitter), streams the images over one
Transmitter.Send stream, and writes for each image a side-by-side panel
(original | key mask | received key region | reconstruction) plus
``metrics.json`` with fidelity, symbols per segment, SNR and stage timings.
"""

import io
import json
import os
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import grpc
import numpy as np
from PIL import Image
from tqdm import tqdm

from gensemcom.shared import metrics
from gensemcom.shared.healthprobe import check
from gensemcom.shared.image_io import decode_image
from gensemcom.shared.paths import shared_data_dir
from gensemcom.shared.pb import semcom_pb2 as pb
from gensemcom.shared.pb import semcom_pb2_grpc as pb_grpc
from gensemcom.shared.rpc import connect_client

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
PANEL_HEIGHT = 320
MAX_MESSAGE_MB = 64


def find_images(folders: list[Path]) -> list[Path]:
    """Image files in ``folders`` (not recursive), sorted by folder then name."""
    paths = []
    for folder in folders:
        if not folder.is_dir():
            raise FileNotFoundError(f"input folder {folder} does not exist")
        paths += sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {', '.join(map(str, folders))}")
    return paths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(address: str, process: subprocess.Popen, log_path: Path, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"service at {address} exited with {process.returncode}; see {log_path}:\n"
                               + log_path.read_text()[-2000:])
        if check(address, timeout_s=1.0):
            return
        time.sleep(0.2)
    raise TimeoutError(f"service at {address} not SERVING after {timeout_s:.0f} s; see {log_path}")


@dataclass
class LocalChain:
    address: str  # the transmitter's, where clients send images
    processes: dict[str, subprocess.Popen]


@contextmanager
def local_chain(log_dir: Path, env: Mapping[str, str] | None = None) -> Iterator[LocalChain]:
    """Start receiver, channel, transmitter as child processes on free loopback ports; stop them on exit.

    ``env`` adds environment variables for the services, e.g. ``{"SEMCOM_TX_KEY_CODEC": "linear-dct"}``.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in ("receiver", "channel", "transmitter")}
    next_hop = {"receiver": "", "channel": f"127.0.0.1:{ports['receiver']}",
                "transmitter": f"127.0.0.1:{ports['channel']}"}
    processes: dict[str, subprocess.Popen] = {}
    with ExitStack() as stack:
        for name in ("receiver", "channel", "transmitter"):
            log_path = log_dir / f"{name}.log"
            log_file = stack.enter_context(open(log_path, "w"))
            cmd = [sys.executable, "-m", "gensemcom.cli", name, "serve", "--host", "127.0.0.1",
                   "--port", str(ports[name]), "--next-hop", next_hop[name]]
            processes[name] = process = subprocess.Popen(
                cmd, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )
            stack.callback(_stop, process)
            wait_healthy(f"127.0.0.1:{ports[name]}", process, log_path)
        yield LocalChain(f"127.0.0.1:{ports['transmitter']}", processes)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM (graceful: in-flight frames finish), then SIGKILL if it hangs."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def _label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.putText(out, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def panel(original: np.ndarray, mask: np.ndarray, key_rgba: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """original | key mask | received key region (checkerboard outside) | reconstruction."""
    h, w = original.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    checker = np.where(((yy // 16 + xx // 16) % 2)[..., None] == 0, 200, 150).astype(np.uint8).repeat(3, axis=2)
    alpha = key_rgba[..., 3:4].astype(np.float32) / 255.0
    key_view = (key_rgba[..., :3] * alpha + checker * (1 - alpha)).astype(np.uint8)
    tiles = {
        "original": original,
        "key mask": np.repeat(mask.astype(np.uint8)[..., None] * 255, 3, axis=2),
        "received key region": key_view,
        "reconstruction": recon,
    }
    size = (max(1, round(w * PANEL_HEIGHT / h)), PANEL_HEIGHT)
    return np.hstack([_label(cv2.resize(t, size, interpolation=cv2.INTER_AREA), name) for name, t in tiles.items()])


def image_metrics(original: np.ndarray, recon: np.ndarray, mask: np.ndarray) -> dict[str, float | None]:
    key = mask.any()
    return {
        "psnr_full_db": metrics.psnr(original, recon),
        "ssim_full": metrics.ssim(original, recon),
        "psnr_key_db": metrics.psnr(original, recon, mask) if key else None,
        "ssim_key_bbox": metrics.bbox_ssim(original, recon, mask) if key else None,
    }


def run_demo(
    inputs: list[Path] | None,
    out: Path,
    model: str = "awgn",
    snr_db: float = 15.0,
    seed: int = 0,
    limit: int | None = None,
    target: str | None = None,
) -> int:
    """Run the demo; returns a process exit code (0 when every image was delivered)."""
    data = shared_data_dir()
    folders = inputs or [data / "kodak24", data / "people"]
    paths = find_images(folders)[:limit]
    (out / "panels").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with ExitStack() as stack:
        if target is None:
            print(f"starting transmitter, channel and receiver on loopback (logs in {out / 'logs'}) ...")
            target = stack.enter_context(local_chain(out / "logs")).address
        results = stream(target, paths, out, pb.ChannelConfig(model=model, snr_db=snr_db, seed=seed))
    wall_s = time.perf_counter() - start
    summary = summarise(results, wall_s, model, snr_db)
    (out / "metrics.json").write_text(json.dumps({"summary": summary, "images": results}, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"wrote {len(results)} panels to {out / 'panels'} and {out / 'metrics.json'}")
    return 0 if summary["failed"] == 0 else 1


def stream(target: str, paths: list[Path], out: Path, config: pb.ChannelConfig) -> list[dict]:
    """Send every image over one Send stream; one result per image, in order."""
    stub = pb_grpc.TransmitterStub(connect_client(target, MAX_MESSAGE_MB))

    def requests() -> Iterator[pb.ImageRequest]:
        for seq, path in enumerate(paths):
            yield pb.ImageRequest(image=path.read_bytes(), stream_id="demo", frame_id=f"{path.stem}-{seq}",
                                  seq=seq, request_id=str(path), channel=config)

    results = []
    try:
        for delivery in tqdm(stub.Send(requests()), total=len(paths), unit="img", desc="images"):
            results.append(record(delivery, out))
    except grpc.RpcError as exc:
        raise RuntimeError(f"stream to {target} broke: {exc.code().name}: {exc.details()}") from None
    return results


def record(delivery: pb.Delivery, out: Path) -> dict:
    """Write the panel for one delivery and return its metrics row."""
    path = Path(delivery.request_id)
    row: dict = {"image": path.name, "frame_id": delivery.frame_id, "status": delivery.status.code,
                 "message": delivery.status.message}
    if delivery.status.code != 0:
        return row
    original = decode_image(path.read_bytes())
    recon, mask, key = _png(delivery.image_png), _png(delivery.mask_png) > 0, _png(delivery.key_png)
    Image.fromarray(panel(original, mask, key, recon)).save(out / "panels" / f"{path.stem}.png")
    symbols: dict[str, int] = defaultdict(int)
    for seg in delivery.segments:
        symbols[pb.SegmentKind.Name(seg.kind).removeprefix("SEGMENT_KIND_")] += seg.n_symbols
    row.update(
        size=[delivery.width, delivery.height],
        alpha=delivery.alpha,
        segmenter=delivery.segmenter,
        **image_metrics(original, recon, mask),
        symbols=dict(symbols),
        symbols_total=sum(symbols.values()),
        snr_db=delivery.channel.snr_db,
        snr_estimate_db=delivery.link.snr_db,
        crc_ok={pb.SegmentKind.Name(s.kind).removeprefix("SEGMENT_KIND_"): s.crc_ok for s in delivery.segments},
        timings_ms={f"{t.hop}.{t.stage}": round(t.ms, 3) for t in delivery.timings},
    )
    return row


def summarise(results: list[dict], wall_s: float, model: str, snr_db: float) -> dict:
    ok = [r for r in results if r["status"] == 0]

    def mean(key: str) -> float | None:
        vals = [r[key] for r in ok if r.get(key) is not None and np.isfinite(r[key])]
        return float(np.mean(vals)) if vals else None

    stages: dict[str, list[float]] = defaultdict(list)
    for r in ok:
        for stage, ms in r["timings_ms"].items():
            stages[stage].append(ms)
    return {
        "images": len(results),
        "delivered": len(ok),
        "failed": len(results) - len(ok),
        "channel": model,
        "snr_db": snr_db,
        "wall_s": round(wall_s, 2),
        "mean_psnr_key_db": mean("psnr_key_db"),
        "mean_ssim_key_bbox": mean("ssim_key_bbox"),
        "mean_psnr_full_db": mean("psnr_full_db"),
        "mean_ssim_full": mean("ssim_full"),
        "mean_symbols_total": mean("symbols_total"),
        "mean_stage_ms": {k: round(float(np.mean(v)), 2) for k, v in sorted(stages.items())},
    }
