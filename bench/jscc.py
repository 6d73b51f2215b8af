"""DeepJSCC encode and decode time for one 768×512 image, parameters and peak memory, as JSON.

    python bench/jscc.py --out bench/jscc.json                      # one CPU core
    python bench/jscc.py --device cuda --out bench-jscc-cuda.json   # the GPU instead, when there is one

Loads the shipped weights (fp32 inference, as the services run them), sends a random
768×512 image (Kodak's size) at rate 128 (CBR 1/12) through ``encode`` and ``decode``
with the channel left out, and reports the median of ``--repeats`` timed runs after
``--warmup`` untimed ones (wall clock and process CPU time), for encode, decode and both;
on the CPU in both memory layouts (NCHW and channels-last, which oneDNN runs faster). Peak memory is the process's
resident-set growth on the CPU and ``torch.cuda.max_memory_allocated`` on a GPU.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from gensemcom.shared.jscc import load_pretrained

SIZE = (512, 768)  # height, width of a landscape Kodak image
RATE = 128  # CBR 1/12
SNR_DB = 10.0


def _median_ms(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> tuple[float, float]:
    """Median wall-clock and process-CPU milliseconds of ``fn`` after ``warmup`` untimed calls.

    CPU time ignores the time the process waits for a core, so on a shared machine it is the
    steadier figure for one thread; on a GPU the wall clock (synchronised) is the one that counts.
    """
    wall, cpu = [], []
    for index in range(warmup + repeats):
        if device.type != "cpu":
            torch.accelerator.synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        if device.type != "cpu":
            torch.accelerator.synchronize()
        if index >= warmup:
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    return 1000.0 * statistics.median(wall), 1000.0 * statistics.median(cpu)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


@torch.no_grad()
def bench(device: torch.device, warmup: int, repeats: int, channels_last: bool) -> dict:
    """Times and memory of encode, decode and both for one image on ``device``."""
    model = load_pretrained(device=device)
    image = torch.rand(1, 3, *SIZE, generator=torch.Generator().manual_seed(0)).to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        image = image.contiguous(memory_format=torch.channels_last)
    code = model.encode(image, SNR_DB, RATE)
    rss_before = _peak_rss_mib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    cases = {
        "encode": lambda: model.encode(image, SNR_DB, RATE),
        "decode": lambda: model.decode(code, SNR_DB),
        "encode_decode": lambda: model.decode(model.encode(image, SNR_DB, RATE), SNR_DB),
    }
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch_threads": torch.get_num_threads() if device.type == "cpu" else None,
        "channels_last": channels_last,
        "symbols": int(code.symbols.shape[1]),
    }
    for name, fn in cases.items():
        wall_ms, cpu_ms = _median_ms(fn, device, warmup, repeats)
        result[f"{name}_ms"] = round(wall_ms, 2)
        result[f"{name}_cpu_ms"] = round(cpu_ms, 2)
    if device.type == "cuda":
        result["peak_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    else:
        result["peak_rss_growth_mib"] = round(_peak_rss_mib() - rss_before, 1)
        result["peak_rss_mib"] = round(_peak_rss_mib(), 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cpu", help="cpu, or an accelerator such as cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model = load_pretrained()
    report = {
        "command": "python bench/jscc.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "model": f"{model.name} v{model.version}",
        "parameters": sum(p.numel() for p in model.parameters()),
        "image": f"{SIZE[1]}x{SIZE[0]} RGB, fp32, batch 1",
        "rate": RATE,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average_before": os.getloadavg(),
    }
    device = torch.device(args.device)
    if device.type == "cpu":
        report["runs"] = {
            "cpu_nchw": bench(device, args.warmup, args.repeats, channels_last=False),
            "cpu_channels_last": bench(device, args.warmup, args.repeats, channels_last=True),
        }
    elif torch.accelerator.is_available():
        report["runs"] = {device.type: bench(device, args.warmup, args.repeats, channels_last=True)}
    else:
        report["runs"] = {device.type: {"skipped": f"no {device.type} device on this machine"}}
    report["load_average_after"] = os.getloadavg()
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report["runs"], indent=1))


if __name__ == "__main__":
    main()
