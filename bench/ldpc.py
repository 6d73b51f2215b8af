"""LDPC encode/decode throughput and per-frame latency of the digital link, as JSON.

    python bench/ldpc.py --out bench/ldpc.json [--threads 1]

Runs on the device :func:`gensemcom.shared.phy.device.compute_device` picks
(the GPU when torch sees one). Throughput counts information bits (k per
code block) and includes the numpy <-> torch transfers, because that is what
the link pays. Decoding is timed twice: with the full 20 BP iterations
(Sionna's own mode, the worst case), and with CRC early stopping (what the
link does) at Eb/N0 = 4 dB, BPSK-equivalent LLRs, where every block decodes.
"""

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from gensemcom.channel.models import AWGN, snr_db_to_no
from gensemcom.shared.phy.crc import crc_attach, crc_check
from gensemcom.shared.phy.device import compute_device
from gensemcom.shared.phy.ldpc import DEFAULT_BP_ITERATIONS, LdpcBlockCode
from gensemcom.shared.phy.link import decode_payload, encode_payload
from gensemcom.shared.phy.mcs import mcs_from_index

EB_N0_DB = 4.0
# (k, n, base graph): a prompt-size block at rate 1/2 and the largest BG1 block at rate 2/3.
BLOCKS = ((1024, 2048, "bg2"), (8448, 12672, "bg1"))
FRAME_BYTES = 512  # prompt + mask of one frame: a few kbit
FRAME_MCS = (4, 8)  # QPSK 1/2 and 16-QAM 0.64


def _timed(fn: Callable[[], object], min_seconds: float = 1.0, min_runs: int = 3) -> float:
    """Mean seconds per call after one warm-up call."""
    fn()
    runs, start = 0, time.perf_counter()
    while runs < min_runs or time.perf_counter() - start < min_seconds:
        fn()
        runs += 1
    return (time.perf_counter() - start) / runs


def _bench_block(k: int, n: int, base_graph: str, batch: int, rng: np.random.Generator) -> dict:
    code = LdpcBlockCode(k, n, bits_per_symbol=2, base_graph=base_graph)
    info = crc_attach(rng.integers(0, 2, (batch, k - 24), dtype=np.uint8), "CRC24B")
    coded = code.encode(info)
    sigma2 = 1 / (2 * (k / n) * 10 ** (EB_N0_DB / 10))  # BPSK noise variance per coded bit
    llr = (2 / sigma2) * ((1 - 2 * coded.astype(np.float32)) + np.sqrt(sigma2) * rng.standard_normal(coded.shape))
    llr = llr.astype(np.float32)
    crc_ok = lambda hard: crc_check(hard, "CRC24B")[1]  # noqa: E731
    decoded = code.decode(llr, DEFAULT_BP_ITERATIONS, crc_ok)
    info_bits = batch * k
    t_enc = _timed(lambda: code.encode(info))
    t_full = _timed(lambda: code.decode(llr, DEFAULT_BP_ITERATIONS))
    t_stop = _timed(lambda: code.decode(llr, DEFAULT_BP_ITERATIONS, crc_ok))
    return {
        "k": k,
        "n": n,
        "base_graph": base_graph,
        "batch": batch,
        "block_errors_at_eb_n0": int(np.count_nonzero(np.any(decoded != info, axis=1))),
        "encode_mbit_s": info_bits / t_enc / 1e6,
        "decode_20_iter_mbit_s": info_bits / t_full / 1e6,
        "decode_20_iter_ms": t_full * 1e3,
        "decode_early_stop_mbit_s": info_bits / t_stop / 1e6,
        "decode_early_stop_ms": t_stop * 1e3,
    }


def _bench_frame(mcs_index: int, rng: np.random.Generator) -> dict:
    """One frame's payload through encode_payload -> AWGN 1 dB above threshold -> decode_payload."""
    mcs = mcs_from_index(mcs_index)
    payload = rng.integers(0, 256, FRAME_BYTES, dtype=np.uint8).tobytes()
    symbols, n_bits, plan = encode_payload(payload, mcs)
    no = snr_db_to_no(mcs.snr_threshold_db + 1.0)
    y = AWGN()(symbols, no, rng)
    t_enc = _timed(lambda: encode_payload(payload, mcs))
    t_dec = _timed(lambda: decode_payload(y, no, n_bits, mcs))
    return {
        "mcs": mcs_index,
        "payload_bits": n_bits,
        "symbols": int(symbols.size),
        "code_blocks": plan.n_blocks,
        "decoded_ok": decode_payload(y, no, n_bits, mcs)[0] == payload,
        "encode_ms": t_enc * 1e3,
        "decode_ms": t_dec * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/ldpc.json"))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the CPU numbers are per core)")
    parser.add_argument("--batches", type=int, nargs="*", default=None, help="blocks decoded together")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = compute_device()
    on_gpu = device.type != "cpu"
    batches = args.batches or ([1, 64, 512] if on_gpu else [1, 8])
    rng = np.random.default_rng(args.seed)
    blocks = [_bench_block(k, n, bg, b, rng) for k, n, bg in BLOCKS for b in batches]
    frames = [_bench_frame(i, rng) for i in FRAME_MCS]
    report = {
        "command": "python bench/ldpc.py " + f"--out {args.out} --threads {args.threads}",
        "device": (torch.cuda.get_device_name(device) if torch.cuda.is_available()
                   else platform.processor() or "cpu"),
        "device_type": device.type,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "eb_n0_db": EB_N0_DB,
        "bp_iterations": DEFAULT_BP_ITERATIONS,
        "blocks": blocks,
        "frames": frames,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
