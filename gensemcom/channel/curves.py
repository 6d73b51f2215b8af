"""Bit and block error rate curves: the project's PHY over its channel models, next to theory.

Three panels, written as one PNG plus a JSON of every simulated point:

- uncoded BER vs Es/N0 on AWGN for BPSK to 256-QAM, with the exact Gray-code
  BER (BPSK: Q(sqrt(2 Es/N0)); square M-QAM: Cho & Yoon, IEEE Trans. Commun.
  2002, a weighted sum of erfc terms);
- the same on flat Rayleigh fading, independent per symbol, with perfect CSI
  (coherent equalisation, per-symbol noise variance into the demapper); theory
  is the exact average of each erfc term over the exponential SNR,
  E[erfc(a sqrt(g))] = 1 - sqrt(a^2 g_mean / (1 + a^2 g_mean));
- LDPC-coded BLER on AWGN for a few MCS, with the BLER the same payload would
  have uncoded (1 - (1 - BER)^A) and the Shannon limit 2^SE - 1 of each MCS.

Simulation uses the project's own blocks end to end (QAM, LDPC link, channel
models), so agreement with theory checks all of them. Every draw comes from
one seeded ``np.random.Generator``. A curve stops at its first SNR without
errors: higher SNRs would only cost time.

``python -m gensemcom.channel.curves --help`` runs it; ``--thresholds``
instead measures the SNR thresholds of the MCS table.
"""

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from scipy.special import erfc
from tqdm import tqdm

from gensemcom.channel.models import AWGN, BlockRayleigh, snr_db_to_no
from gensemcom.shared.modem import hard_decision
from gensemcom.shared.phy.ldpc import DEFAULT_BP_ITERATIONS
from gensemcom.shared.phy.link import decode_bits, encode_bits
from gensemcom.shared.phy.mcs import MCS_TABLE, MODULATIONS, Mcs, bits_per_symbol, mcs_from_index
from gensemcom.shared.phy.qam import QamDemapper, QamMapper

CHANNELS = ("awgn", "rayleigh")
DEFAULT_SNRS_DB = tuple(float(s) for s in np.arange(-4, 33, 2))
DEFAULT_CODED_MCS = (0, 4, 8, 11, 15)
DEFAULT_PAYLOAD_BITS = 1024
_BLER_TARGET = 0.1  # the MCS thresholds are where BLER crosses this
_MAX_GAP_DB = 10.0  # a working 5G LDPC code reaches the target well within this of capacity


# --- theory ------------------------------------------------------------------


def _erfc_terms(modulation: str) -> list[tuple[float, float]]:
    """(c, a) pairs with BER = sum c·erfc(a·sqrt(Es/N0)), exact for Gray labelling.

    BPSK: Q(sqrt(2γ)) = erfc(sqrt(γ))/2. Square M-QAM (M = L², n = log2 L
    bits per dimension), Cho & Yoon (2002) eq. (14)-(16):
    P_b = 1/n · Σ_k 1/L · Σ_i w(i, k)·erfc((2i + 1)·sqrt(3γ / (2(M - 1)))),
    k = 1..n, i = 0..(1 - 2^-k)·L - 1,
    w(i, k) = (-1)^floor(i·2^(k-1)/L) · (2^(k-1) - floor(i·2^(k-1)/L + 1/2)).
    """
    m = bits_per_symbol(modulation)
    if m == 1:
        return [(0.5, 1.0)]
    n_levels, n_dim_bits, order = 2 ** (m // 2), m // 2, 2**m
    scale = np.sqrt(3 / (2 * (order - 1)))
    terms: dict[int, float] = {}
    for k in range(1, n_dim_bits + 1):
        for i in range(int((1 - 2.0**-k) * n_levels)):
            t = i * 2 ** (k - 1) / n_levels
            weight = (-1) ** int(np.floor(t)) * (2 ** (k - 1) - np.floor(t + 0.5))
            terms[i] = terms.get(i, 0.0) + weight / (n_levels * n_dim_bits)
    return [(c, (2 * i + 1) * scale) for i, c in sorted(terms.items()) if c]


def ber_theory(modulation: str, channel: str, esno_db: float | np.ndarray) -> np.ndarray:
    """Exact uncoded BER of Gray ``modulation`` at Es/N0 ``esno_db`` (the mean Es/N0 on Rayleigh)."""
    gamma = 10.0 ** (np.asarray(esno_db, dtype=np.float64) / 10)
    if channel == "awgn":
        return sum(c * erfc(a * np.sqrt(gamma)) for c, a in _erfc_terms(modulation))
    if channel == "rayleigh":
        return sum(c * (1 - np.sqrt(a * a * gamma / (1 + a * a * gamma))) for c, a in _erfc_terms(modulation))
    raise ValueError(f"unknown channel {channel!r}; choose one of {', '.join(CHANNELS)}")


def shannon_limit_db(spectral_efficiency: float) -> float:
    """Lowest Es/N0 at which any code of ``spectral_efficiency`` bit/symbol can work: 2^SE - 1."""
    return float(10 * np.log10(2.0**spectral_efficiency - 1))


# --- simulation ----------------------------------------------------------------


def _through_channel(
    x: np.ndarray, channel: str, no: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Pass ``x`` through ``channel`` and equalise with perfect CSI: (symbols, per-symbol noise variance)."""
    if channel == "awgn":
        return AWGN()(x, no, rng), np.full(x.size, no)
    if channel == "rayleigh":
        y, state = BlockRayleigh(coherence=1)(x, no, rng)
        h = state.per_symbol(x.size)
        power = np.maximum(np.abs(h) ** 2, np.finfo(np.float32).tiny)
        return (y * np.conj(h) / power).astype(np.complex64), no / power.astype(np.float64)
    raise ValueError(f"unknown channel {channel!r}; choose one of {', '.join(CHANNELS)}")


def simulate_ber(modulation: str, channel: str, esno_db: float, n_bits: int, rng: np.random.Generator) -> int:
    """Bit errors among ``n_bits`` random bits sent uncoded (hard decisions on exact LLRs)."""
    bits = rng.integers(0, 2, n_bits, dtype=np.uint8)
    y, no = _through_channel(QamMapper(modulation)(bits), channel, snr_db_to_no(esno_db), rng)
    llr = QamDemapper(modulation)(y, no)[:n_bits]
    return int(np.count_nonzero(hard_decision(llr) != bits))


def simulate_bler(
    mcs: Mcs,
    esno_db: float,
    n_frames: int,
    n_payload_bits: int,
    rng: np.random.Generator,
    num_iter: int = DEFAULT_BP_ITERATIONS,
) -> int:
    """Block errors among ``n_frames`` random payloads sent over AWGN at ``mcs``.

    A block is in error when its payload differs from what was sent,
    whether or not the CRC noticed.
    """
    bits = rng.integers(0, 2, (n_frames, n_payload_bits), dtype=np.uint8)
    symbols = encode_bits(bits, mcs)
    no = snr_db_to_no(esno_db)
    y = AWGN()(symbols.reshape(-1), no, rng).reshape(symbols.shape)
    decoded, _ = decode_bits(y, no, n_payload_bits, mcs, num_iter)
    return int(np.count_nonzero(np.any(decoded != bits, axis=1)))


def mcs_threshold(
    mcs: Mcs, n_payload_bits: int, n_frames: int, rng: np.random.Generator, step_db: float = 0.25
) -> tuple[float, list[dict]]:
    """Es/N0 where BLER falls through 10 % on AWGN, and the points simulated to find it.

    Climbs from 0.5 dB above the Shannon limit in ``step_db`` steps until
    BLER <= 10 %, then interpolates log10(BLER) linearly between the last two.
    """
    limit = shannon_limit_db(mcs.spectral_efficiency)
    snr = np.ceil((limit + 0.5) / step_db) * step_db
    points: list[dict] = []
    while True:
        errors = simulate_bler(mcs, snr, n_frames, n_payload_bits, rng)
        points.append({"snr_db": float(snr), "block_errors": errors, "blocks": n_frames})
        if errors <= _BLER_TARGET * n_frames:
            break
        snr += step_db
        if snr > limit + _MAX_GAP_DB:
            raise RuntimeError(f"MCS {mcs.index}: BLER above 10 % at {_MAX_GAP_DB} dB from the Shannon limit")
    if len(points) == 1:
        return float(snr), points
    (s0, e0), (s1, e1) = [(p["snr_db"], max(p["block_errors"], 0.5) / n_frames) for p in points[-2:]]
    frac = (np.log10(e0) - np.log10(_BLER_TARGET)) / (np.log10(e0) - np.log10(e1))
    return float(s0 + frac * (s1 - s0)), points


def measure_mcs_thresholds(n_payload_bits: int, n_frames: int, seed: int) -> list[dict]:
    """:func:`mcs_threshold` for every entry of the MCS table."""
    rng = np.random.default_rng(seed)
    rows = []
    for mcs in tqdm(MCS_TABLE, desc="MCS thresholds", unit="mcs"):
        threshold, points = mcs_threshold(mcs, n_payload_bits, n_frames, rng)
        rows.append(
            {
                "index": mcs.index,
                "modulation": mcs.modulation,
                "rate_x1024": mcs.rate_x1024,
                "spectral_efficiency": mcs.spectral_efficiency,
                "shannon_limit_db": shannon_limit_db(mcs.spectral_efficiency),
                "threshold_db": round(threshold, 2),
                "points": points,
            }
        )
    return rows


# --- the curves ----------------------------------------------------------------


def _uncoded_points(snrs: Sequence[float], n_bits: int, rng: np.random.Generator, bar: tqdm) -> list[dict]:
    points = []
    for channel in CHANNELS:
        for modulation in MODULATIONS:
            for done, snr in enumerate(snrs, start=1):
                errors = simulate_ber(modulation, channel, snr, n_bits, rng)
                bar.update()
                points.append(
                    {
                        "channel": channel,
                        "modulation": modulation,
                        "snr_db": float(snr),
                        "errors": errors,
                        "bits": n_bits,
                        "ber": errors / n_bits,
                        "theory": float(ber_theory(modulation, channel, snr)),
                    }
                )
                if errors == 0:
                    bar.update(len(snrs) - done)  # the skipped points
                    break
    return points


def _coded_snrs(mcs: Mcs) -> np.ndarray:
    """Seven points across the threshold: a 1024-bit LDPC block goes from BLER 1 to 1 % in about 1.5 dB."""
    return mcs.snr_threshold_db + np.arange(-0.75, 0.76, 0.25)


def _coded_points(
    mcs_list: Sequence[Mcs], n_frames: int, n_payload_bits: int, rng: np.random.Generator, bar: tqdm
) -> list[dict]:
    points = []
    for mcs in mcs_list:
        snrs = _coded_snrs(mcs)
        for done, snr in enumerate(snrs, start=1):
            errors = simulate_bler(mcs, float(snr), n_frames, n_payload_bits, rng)
            bar.update()
            uncoded = 1 - (1 - ber_theory(mcs.modulation, "awgn", snr)) ** n_payload_bits
            points.append(
                {
                    "mcs": mcs.index,
                    "modulation": mcs.modulation,
                    "code_rate": mcs.code_rate,
                    "snr_db": float(snr),
                    "block_errors": errors,
                    "blocks": n_frames,
                    "bler": errors / n_frames,
                    "uncoded_bler_theory": float(uncoded),
                }
            )
            if errors == 0:
                bar.update(len(snrs) - done)
                break
    return points


def plot_curves(results: dict, path: Path) -> None:
    """Draw the three panels of ``results`` (as :func:`ber_curves` builds them) into ``path``."""
    fig = Figure(figsize=(19, 6), layout="constrained")  # no pyplot: no GUI backend, no global state
    axes = fig.subplots(1, 3)
    palette = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    colours = dict(zip(MODULATIONS, palette))
    snrs = np.asarray(results["snrs_db"])
    fine = np.linspace(snrs.min(), snrs.max(), 400)
    for ax, channel in zip(axes[:2], CHANNELS):
        for modulation in MODULATIONS:
            pts = [p for p in results["uncoded"] if p["channel"] == channel and p["modulation"] == modulation]
            pts = [p for p in pts if p["errors"] > 0]
            colour = colours[modulation]
            ax.semilogy(fine, ber_theory(modulation, channel, fine), "-", color=colour, lw=1.2)
            ax.semilogy([p["snr_db"] for p in pts], [p["ber"] for p in pts], "o", color=colour, ms=5,
                        mfc="none", label=modulation.upper())
        ax.set_title(f"Uncoded BER, {'AWGN' if channel == 'awgn' else 'Rayleigh (per-symbol, perfect CSI)'}")
        ax.set_ylim(max(0.5 / results["bits_per_point"], 1e-7), 1)
    ax = axes[2]
    for colour, mcs_index in zip(palette, results["coded_mcs"]):
        mcs = mcs_from_index(mcs_index)
        pts = [p for p in results["coded"] if p["mcs"] == mcs_index]
        label = f"MCS {mcs.index}: {mcs.modulation.upper()} R={mcs.code_rate:.2f}"
        shown = [p for p in pts if p["block_errors"] > 0]
        ax.semilogy([p["snr_db"] for p in shown], [p["bler"] for p in shown], "o-", color=colour, ms=5,
                    label=label)
        clean = [p for p in pts if p["block_errors"] == 0]  # drawn at 1/blocks: an upper bound
        ax.semilogy([p["snr_db"] for p in clean], [1 / p["blocks"] for p in clean], "v", color=colour, ms=6,
                    mfc="none")
        grid = np.linspace(mcs.snr_threshold_db - 2, mcs.snr_threshold_db + 6, 200)
        uncoded = 1 - (1 - ber_theory(mcs.modulation, "awgn", grid)) ** results["payload_bits"]
        ax.semilogy(grid, uncoded, ":", color=colour, lw=1.2)
        ax.axvline(shannon_limit_db(mcs.spectral_efficiency), color=colour, ls="--", lw=0.8)
    ax.axhline(_BLER_TARGET, color="grey", lw=0.6)
    ax.set_title(f"LDPC BLER, AWGN, {results['payload_bits']}-bit payload")
    ax.set_ylim(0.1 / results["frames_per_point"], 1.05)  # room under the points for the legend
    for ax in axes:
        ax.set_xlabel("Es/N0 (dB)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("bit error rate")
    axes[2].set_ylabel("block error rate")
    axes[0].legend(title="markers: simulated\nlines: exact theory", loc="lower left")
    axes[1].legend(loc="lower left")
    axes[2].legend(title="solid: LDPC simulated (v: no error)\ndotted: uncoded theory\ndashed: Shannon limit",
                   loc="lower left", fontsize="small")
    fig.savefig(path, dpi=110)


def ber_curves(
    out_dir: Path,
    snrs: Sequence[float] = DEFAULT_SNRS_DB,
    n_bits: int = 200_000,
    seed: int = 0,
    *,
    coded_mcs: Sequence[int] = DEFAULT_CODED_MCS,
    n_frames: int = 40,
    n_payload_bits: int = DEFAULT_PAYLOAD_BITS,
) -> dict[str, Path]:
    """Simulate all curves and write ``ber_curves.png`` and ``ber_curves.json`` into ``out_dir``.

    ``n_bits`` is per uncoded point and ``n_frames`` per coded point: the
    lowest BER a curve shows is about 1/n_bits. Returns {"png": ..., "json": ...}.
    """
    snrs = [float(s) for s in snrs]
    if not snrs or not all(np.isfinite(snrs)):
        raise ValueError("snrs must be a non-empty list of finite values in dB")
    if n_bits < 1 or n_frames < 1 or n_payload_bits < 0:
        raise ValueError("n_bits and n_frames must be >= 1, n_payload_bits >= 0")
    mcs_list = [mcs_from_index(i) for i in coded_mcs]
    rng = np.random.default_rng(seed)
    total = len(CHANNELS) * len(MODULATIONS) * len(snrs) + sum(len(_coded_snrs(m)) for m in mcs_list)
    with tqdm(total=total, desc="BER/BLER points", unit="pt") as bar:
        uncoded = _uncoded_points(sorted(snrs), n_bits, rng, bar)
        coded = _coded_points(mcs_list, n_frames, n_payload_bits, rng, bar)
    results = {
        "seed": seed,
        "snrs_db": sorted(snrs),
        "bits_per_point": n_bits,
        "frames_per_point": n_frames,
        "payload_bits": n_payload_bits,
        "coded_mcs": [m.index for m in mcs_list],
        "uncoded": uncoded,
        "coded": coded,
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"png": out_dir / "ber_curves.png", "json": out_dir / "ber_curves.json"}
    paths["json"].write_text(json.dumps(results, indent=1))
    plot_curves(results, paths["png"])
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``semcom channel ber-curves`` (or ``python -m gensemcom.channel.curves``)."""
    parser = argparse.ArgumentParser(
        prog="semcom channel ber-curves",
        description="Simulated BER/BLER vs Es/N0 of every modulation and a few MCS, with theory overlaid.",
    )
    parser.add_argument("--out-dir", type=Path, default=Path("ber-curves"), help="output folder (PNG + JSON)")
    parser.add_argument("--snr-min", type=float, default=DEFAULT_SNRS_DB[0], help="lowest Es/N0 in dB")
    parser.add_argument("--snr-max", type=float, default=DEFAULT_SNRS_DB[-1], help="highest Es/N0 in dB")
    parser.add_argument("--snr-step", type=float, default=2.0, help="Es/N0 step in dB")
    parser.add_argument("--bits", type=int, default=200_000, help="bits per uncoded point")
    parser.add_argument("--frames", type=int, default=40, help="LDPC blocks per coded point")
    parser.add_argument("--mcs", type=int, nargs="*", default=list(DEFAULT_CODED_MCS), help="MCS indices to code")
    parser.add_argument("--payload-bits", type=int, default=DEFAULT_PAYLOAD_BITS, help="payload bits per block")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--thresholds", action="store_true",
                        help="instead, measure the BLER=10%% threshold of every MCS (AWGN) into thresholds.json")
    args = parser.parse_args(argv)
    if args.thresholds:
        rows = measure_mcs_thresholds(args.payload_bits, args.frames, args.seed)
        args.out_dir.mkdir(parents=True, exist_ok=True)
        path = args.out_dir / "thresholds.json"
        path.write_text(json.dumps(rows, indent=1))
        for row in rows:
            print(f"MCS {row['index']:2d} {row['modulation']:>6} R={row['rate_x1024']:>5}/1024 "
                  f"threshold {row['threshold_db']:6.2f} dB (Shannon {row['shannon_limit_db']:6.2f})")
        print(path)
        return 0
    if args.snr_step <= 0 or args.snr_max < args.snr_min:
        parser.error("need --snr-step > 0 and --snr-max >= --snr-min")
    snrs = np.arange(args.snr_min, args.snr_max + args.snr_step / 2, args.snr_step)
    paths = ber_curves(args.out_dir, snrs, args.bits, args.seed, coded_mcs=args.mcs, n_frames=args.frames,
                       n_payload_bits=args.payload_bits)
    print(paths["png"])
    print(paths["json"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
