"""What the channel hop adds to a frame: Channel.Apply over loopback gRPC, against a no-op echo.

    python bench/channel_hop.py --out bench/channel_hop.json

Two servers run as separate processes on loopback ports, each with one
NumPy/BLAS thread: ``semcom channel serve`` (AWGN at 10 dB, seeded) and an
echo server (this script's ``echo`` sub-command: a generic gRPC handler that
returns the request bytes without parsing them, behind the same server set-up
and limits as the channel). The client sends the same ``ChannelInput`` to
both, alternating Apply and echo call by call, so a slow spell on a shared
machine hits both alike. The client does identical protobuf work for both
(it serialises a ChannelInput and parses a reply of the same size), so
Apply - echo is what the channel adds on top of the transport: parsing the
request, reading the IQ, the model, writing the IQ back, serialising the
reply. The channel's own stage timing (``frame.timings``, hop "channel") and
the servers' CPU time and page faults per call (from /proc) show where that
goes; ``in_process`` times the same work without gRPC in this process.

Each server pair runs twice: with glibc's default allocator settings, and
with its trim and mmap thresholds raised (``MALLOC_TRIM_THRESHOLD_``,
``MALLOC_MMAP_THRESHOLD_``) so that freed frame-sized buffers stay mapped
instead of going back to the kernel and faulting in again on the next frame.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_variable] = "1"  # before NumPy (and its BLAS) loads; the servers inherit it

import grpc  # noqa: E402
import numpy as np  # noqa: E402

from channel import load_average, machine_info, qpsk  # noqa: E402  (bench/channel.py, next to this script)
from gensemcom.channel.link import ChannelParams, apply_channel  # noqa: E402
from gensemcom.channel.service import ChannelService  # noqa: E402
from gensemcom.shared.config import ChannelSettings  # noqa: E402
from gensemcom.shared.frame import WIRE_VERSION  # noqa: E402
from gensemcom.shared.pb import semcom_pb2 as pb  # noqa: E402
from gensemcom.shared.pb import semcom_pb2_grpc as pb_grpc  # noqa: E402
from gensemcom.shared.rpc import Server, connect  # noqa: E402
from gensemcom.shared.wire import iq_to_bytes  # noqa: E402

TARGET_MS = 2.0
TARGET_SYMBOLS = 10**5
N_PILOTS = 64
SNR_DB = 10.0
SEED = 1
ECHO_METHOD = "/bench.Echo/Echo"
ALLOCATORS = {  # environment of both servers; glibc reads these when the process starts
    "glibc_default": {},
    # keep up to 1 GiB of freed heap mapped, and serve buffers up to 64 MiB from the heap rather than fresh mmaps
    "glibc_no_trim": {"MALLOC_TRIM_THRESHOLD_": str(1 << 30), "MALLOC_MMAP_THRESHOLD_": str(1 << 26)},
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def rounds_for(n: int) -> int:
    return 300 if n <= 10**4 else 200 if n <= 10**5 else 40


def serve_echo(port: int) -> None:
    """The transport-only twin of the channel: same server set-up, returns each request's bytes unparsed."""
    server = Server(ChannelSettings(port=port, next_hop=""), [])
    echo = grpc.unary_unary_rpc_method_handler(lambda request, context: request)  # no (de)serialisers: raw bytes
    service, method = ECHO_METHOD.strip("/").split("/")
    server.grpc_server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(service, {method: echo})])
    server.start()
    server.serve_forever()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: list[str], env: dict[str, str], port: int) -> tuple[subprocess.Popen, grpc.Channel]:
    """Start a server process and wait until its port accepts connections."""
    process = subprocess.Popen(command, env={**os.environ, **env})
    channel = connect(f"127.0.0.1:{port}", ChannelSettings().max_message_mb)
    try:
        grpc.channel_ready_future(channel).result(timeout=120)
    except grpc.FutureTimeoutError:
        process.kill()
        raise RuntimeError(f"{' '.join(command)} did not start listening on port {port}") from None
    return process, channel


def stop(process: subprocess.Popen, channel: grpc.Channel) -> None:
    channel.close()
    process.terminate()
    process.wait(timeout=30)


def process_counters(pid: int) -> tuple[int, float]:
    """Minor page faults and CPU seconds (user + system, all threads) of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[7]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def make_request(n: int) -> pb.ChannelInput:
    """A frame as the transmitter lays it out: pilots, then the payload symbols (QPSK)."""
    x = qpsk(n)
    header = pb.FrameHeader(wire_version=WIRE_VERSION, frame_id=f"bench-{n}", stream_id="bench", height=256, width=256)
    segments = [
        pb.IqSegment(kind=pb.SEGMENT_KIND_PILOT, modulation=pb.MODULATION_QPSK, code=pb.CHANNEL_CODE_NONE,
                     n_symbols=N_PILOTS, iq=iq_to_bytes(x[:N_PILOTS])),
        pb.IqSegment(kind=pb.SEGMENT_KIND_KEY_JSCC, modulation=pb.MODULATION_ANALOG, code=pb.CHANNEL_CODE_NONE,
                     n_symbols=n - N_PILOTS, iq=iq_to_bytes(x[N_PILOTS:])),
    ]
    return pb.ChannelInput(frame=pb.Frame(header=header, segments=segments))


def timed_call(call: Callable[[], object], pid: int) -> tuple[object, float, int, float]:
    """The reply, the wall time of one call, and the page faults and CPU time of process ``pid`` during it."""
    faults, cpu = process_counters(pid)
    start_s = time.perf_counter()
    reply = call()
    wall = time.perf_counter() - start_s
    faults_after, cpu_after = process_counters(pid)
    return reply, wall, faults_after - faults, cpu_after - cpu


def summary(values_s: list[float]) -> dict:
    ms = np.asarray(values_s) * 1e3
    return {"median": round(float(np.median(ms)), 3), "p90": round(float(np.percentile(ms, 90)), 3),
            "min": round(float(ms.min()), 3)}


def bench_hop(apply: Callable, echo: Callable, pids: tuple[int, int], n: int) -> dict:
    """Alternate Apply and echo on one frame; returns their round trips and what the channel adds."""
    request = make_request(n)
    for _ in range(10):
        apply(request)
        echo(request)
    walls = {"apply": [], "echo": []}
    faults = {"apply": 0, "echo": 0}
    cpu = {"apply": 0.0, "echo": 0.0}
    stage = []
    rounds = rounds_for(n)
    for _ in range(rounds):
        for name, call, pid in (("apply", apply, pids[0]), ("echo", echo, pids[1])):
            reply, wall, call_faults, call_cpu = timed_call(lambda: call(request), pid)
            walls[name].append(wall)
            faults[name] += call_faults
            cpu[name] += call_cpu
            if name == "apply":
                stage.extend(t.ms / 1e3 for t in reply.frame.timings if t.hop == "channel")
    added = np.subtract(walls["apply"], walls["echo"])
    return {
        "rounds": rounds,
        "apply_ms": summary(walls["apply"]),
        "echo_ms": summary(walls["echo"]),
        "added_ms": summary(list(added)),
        "channel_stage_ms": summary(stage),
        "server_cpu_ms_per_call": {name: round(cpu[name] / rounds * 1e3, 3) for name in cpu},
        "server_page_faults_per_call": {name: round(faults[name] / rounds, 1) for name in faults},
    }


def bench_in_process(n: int) -> dict:
    """The channel's work without gRPC, in this process: the model alone, and the whole servicer path."""
    request = make_request(n)
    raw = request.SerializeToString()
    params = ChannelParams(model="awgn", snr_db=SNR_DB, seed=SEED)
    service = ChannelService(ChannelSettings(next_hop="", model="awgn", snr_db=SNR_DB, seed=SEED))
    iq = np.frombuffer(b"".join(s.iq for s in request.frame.segments), np.complex64)
    runs = {
        "apply_channel": lambda: apply_channel(iq, params, request.frame.header.frame_id),
        "parse_apply_serialise": lambda: service.Apply(pb.ChannelInput.FromString(raw), None).SerializeToString(),
    }
    walls = {name: [] for name in runs}
    faults = dict.fromkeys(runs, 0)
    rounds = rounds_for(n)
    for _ in range(rounds):
        for name, run in runs.items():
            _, wall, call_faults, _ = timed_call(run, os.getpid())
            walls[name].append(wall)
            faults[name] += call_faults
    return {**{f"{name}_ms": summary(values) for name, values in walls.items()},
            "page_faults_per_call": {name: round(count / rounds, 1) for name, count in faults.items()}}


def bench_allocator(env: dict[str, str], sizes: list[int]) -> dict:
    channel_port, echo_port = free_port(), free_port()
    channel_command = [sys.executable, "-c", "from gensemcom.cli import app; app()", "channel", "serve",
                       "--port", str(channel_port), "--next-hop", "", "--model", "awgn", "--snr-db", str(SNR_DB),
                       "--seed", str(SEED), "--log-level", "WARNING"]
    echo_command = [sys.executable, str(Path(__file__).resolve()), "echo", "--port", str(echo_port)]
    channel_process, channel = start(channel_command, env, channel_port)
    echo_process, echo_channel = start(echo_command, env, echo_port)
    try:
        apply = pb_grpc.ChannelStub(channel).Apply
        echo = echo_channel.unary_unary(ECHO_METHOD, request_serializer=pb.ChannelInput.SerializeToString,
                                        response_deserializer=pb.ChannelInput.FromString)
        results = {}
        for n in sizes:
            results[str(n)] = bench_hop(apply, echo, (channel_process.pid, echo_process.pid), n)
            print(f"{env or 'default allocator'} {n:>8d}: apply {results[str(n)]['apply_ms']['median']:.2f} ms, "
                  f"echo {results[str(n)]['echo_ms']['median']:.2f} ms", file=sys.stderr)
    finally:
        stop(channel_process, channel)
        stop(echo_process, echo_channel)
    return {"env": env, "server_command": "semcom " + " ".join(channel_command[3:]), "sizes": results}


def markdown_table(report: dict, sizes: list[int]) -> str:
    """Median (p90) in ms per allocator setting and frame size."""
    rows = ["| allocator | symbols | Apply | echo | added (Apply − echo) | channel stage | in-process model |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for allocator, result in report["hop"].items():
        for n in sizes:
            r = result["sizes"][str(n)]
            cells = [f"{r[k]['median']:.2f} ({r[k]['p90']:.2f})" for k in ("apply_ms", "echo_ms", "added_ms",
                                                                         "channel_stage_ms")]
            model = report["in_process"][str(n)]["apply_channel_ms"]["median"]
            rows.append(f"| {allocator} | {n:.0e} | " + " | ".join(cells) + f" | {model:.2f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    echo = commands.add_parser("echo", help="serve the no-op echo (started by the benchmark itself)")
    echo.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, help="JSON file to write")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**4, 10**5, 10**6], help="frame sizes in symbols")
    args = parser.parse_args()
    if args.command == "echo":
        serve_echo(args.port)
        return
    if args.out is None:
        parser.error("--out is required")

    sizes = sorted(args.sizes)  # glibc's thresholds follow the largest buffer freed so far: smallest first
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    machine = machine_info()
    hop = {name: bench_allocator(env, sizes) for name, env in ALLOCATORS.items()}
    in_process = {str(n): bench_in_process(n) for n in sizes}
    machine["load_average_1min_after"] = load_average()
    added = {name: result["sizes"].get(str(TARGET_SYMBOLS), {}).get("added_ms", {}).get("median")
             for name, result in hop.items()}
    report = {
        "command": "python bench/channel_hop.py " + " ".join(sys.argv[1:]),
        "date": started,
        "machine": machine,
        "units": "milliseconds per frame, median / p90 / min over the rounds; Apply and echo alternate call by call; "
                 "added_ms is per round (Apply - the echo call right after it); server CPU time is from "
                 f"/proc tick counts ({CLOCK_TICKS} Hz), averaged over the rounds",
        "channel": {"model": "awgn", "snr_db": SNR_DB, "seed": SEED, "pilots": N_PILOTS},
        "hop": hop,
        "in_process": in_process,
        "target": {"ms": TARGET_MS, "symbols": TARGET_SYMBOLS, "added_ms_median": added,
                   "met": {name: value is not None and value <= TARGET_MS for name, value in added.items()}},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown_table(report, sizes))


if __name__ == "__main__":
    main()
