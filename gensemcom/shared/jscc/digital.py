"""The separate digital reference for DeepJSCC: HEVC still images over the 5G LDPC link, same symbol budget.

For each image, SNR and channel the transmitter gets exactly the complex symbols DeepJSCC
sends (``rate / 2`` per 16×16 block). It picks an MCS, which turns the symbols into a bit
budget; HEVC (x265 in a HEIF file, the codec behind BPG) codes the image at the highest
quality whose file fits; the file, zero-padded to fill the budget, goes through the
project's link (CRC, LDPC, scrambling, QAM: :mod:`gensemcom.shared.phy.link`) and channel.
The image arrives bit-exact when every code block decodes; otherwise it is lost and the
receiver shows the image's mean colour (three bytes of side information), the usual
convention for the cliff effect when separate coding is compared with DeepJSCC.

Decoding every code block on a CPU is too slow (~0.1 Mbit/s), so each transmission sends a
random subset of its code blocks, each coded and decoded exactly as the link would
(:func:`send_code_blocks`). Code blocks fail independently given the channel gain, so an
image of C blocks arrives with probability (1 − p)^C, p the block error rate; the reported
metrics are expectations over that outcome.

- AWGN: MCS from :func:`~gensemcom.shared.phy.mcs.choose_mcs` with no margin; p is pooled
  over all images at one SNR (the link is the same for every image, thanks to the padding).
- Block Rayleigh: one gain per image, perfect CSI, zero-forcing equalisation; p is
  estimated per image and fade. The transmitter knows only the average SNR, so it picks
  the MCS that maximises the expected PSNR, exp(−γ_m / SNR)·PSNR_m + (1 − exp(−γ_m / SNR))·PSNR_lost,
  with γ_m the MCS's AWGN threshold and exp(−γ_m / SNR) the chance that the fade leaves
  the post-equalisation SNR above it.
"""

import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pillow_heif
from tqdm import tqdm

from gensemcom.channel.fading import BlockRayleigh
from gensemcom.channel.noise import AWGN, snr_db_to_no
from gensemcom.receiver.equalise import equalise
from gensemcom.shared.jscc.data import image_files, read_rgb
from gensemcom.shared.jscc.evaluate import ms_ssim_8bit, psnr_8bit, to_tensor
from gensemcom.shared.jscc.models import symbols_for_mask
from gensemcom.shared.modem import bytes_to_bits
from gensemcom.shared.phy.crc import crc_attach
from gensemcom.shared.phy.link import decode_bits, encode_bits, link_plan, symbols_for_payload
from gensemcom.shared.phy.mcs import MCS_TABLE, Mcs, choose_mcs

#: HEVC chroma format: 4:4:4 keeps the colour resolution the PSNR over RGB measures.
HEVC_CHROMA = 444
#: x265 on one thread (pools and frame threads), so that timings and CPU budgets hold.
_X265_ONE_THREAD = {"x265:pools": "1", "x265:frame-threads": "1"}
HEVC_QUALITIES = range(0, 101)


def hevc_encode(image: np.ndarray, quality: int) -> bytes:
    """A (H, W, 3) uint8 image as a HEIF file (HEVC, 4:4:4) at ``quality`` in 0–100."""
    if quality not in HEVC_QUALITIES:
        raise ValueError(f"HEVC quality must be an integer in 0..100, got {quality}")
    height, width, _ = image.shape
    heif = pillow_heif.from_bytes(mode="RGB", size=(width, height), data=np.ascontiguousarray(image).tobytes())
    buffer = io.BytesIO()
    heif.save(buffer, quality=quality, chroma=HEVC_CHROMA, enc_params=dict(_X265_ONE_THREAD))
    return buffer.getvalue()


def hevc_decode(data: bytes) -> np.ndarray:
    """A HEIF file (trailing padding is ignored) back to a (H, W, 3) uint8 image."""
    return np.array(pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True))


class HevcSearch:
    """The HEVC files of one image, encoded on demand and kept: budgets share most of their searches."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self.files: dict[int, bytes] = {}

    def encode(self, quality: int) -> bytes:
        if quality not in self.files:
            self.files[quality] = hevc_encode(self.image, quality)
        return self.files[quality]

    def best_fit(self, budget_bytes: int) -> int | None:
        """The highest quality whose file has at most ``budget_bytes`` bytes (None if not even 0 fits).

        Binary search, as file size grows with quality, starting from the closest qualities
        already encoded; the answer's file was measured to fit, and the next quality's was
        measured not to (or the answer is 100).
        """
        sizes = {quality: len(data) for quality, data in self.files.items()}
        fits = max((q for q, size in sizes.items() if size <= budget_bytes), default=-1)
        too_big = min((q for q, size in sizes.items() if size > budget_bytes and q > fits), default=101)
        while too_big - fits > 1:
            middle = (fits + too_big) // 2
            if len(self.encode(middle)) <= budget_bytes:
                fits = middle
            else:
                too_big = middle
        return fits if fits >= 0 else None


def max_payload_bytes(n_symbols: int, mcs: Mcs) -> int:
    """The largest payload, in bytes, that the link carries at ``mcs`` in at most ``n_symbols`` symbols.

    ``n_symbols`` × spectral efficiency bits is an upper bound (the link's rate never exceeds
    the MCS's); CRCs and rounding to whole symbols take a little, so step down until it fits.
    """
    if n_symbols <= 0:
        raise ValueError(f"n_symbols must be positive, got {n_symbols}")
    payload = int(n_symbols * mcs.spectral_efficiency) // 8
    while payload > 0 and symbols_for_payload(8 * payload, mcs) > n_symbols:
        payload -= 1
    return payload


def code_block_payloads(payload: bytes, mcs: Mcs) -> np.ndarray:
    """The information bits of each code block the link makes of ``payload``: (C, bits per block).

    As :func:`gensemcom.shared.phy.transport.encode_transport` cuts it: payload, CRC24A and
    zero padding, split into C equal parts (each part then gets its CRC24B). With one code
    block the part is the payload itself (its CRC24A is added when it is sent).
    """
    plan = link_plan(8 * len(payload), mcs)
    bits = bytes_to_bits(payload)
    if plan.n_blocks == 1:
        return bits[None]
    block = crc_attach(bits, "CRC24A")
    block = np.concatenate([block, np.zeros(plan.n_padding, np.uint8)])
    return block.reshape(plan.n_blocks, -1)


def send_code_blocks(
    payload: bytes, mcs: Mcs, count: int, snr_db: float, rayleigh: bool, rng: np.random.Generator
) -> tuple[int, int, int]:
    """Send ``count`` random code blocks of ``payload`` through the link; (errors, sent, blocks in all).

    Each chosen block travels as a one-block transport block through ``encode_bits`` and
    ``decode_bits``: the same LDPC code (K, E, base graph), scrambling and QAM as inside the
    whole transport block, with a CRC24A in place of its CRC24B (both 24-bit, so the same
    error detection). All chosen blocks share one channel gain (block Rayleigh: one per image).
    """
    if count < 1:
        raise ValueError(f"need at least one code block to send, got {count}")
    plan = link_plan(8 * len(payload), mcs)
    parts = code_block_payloads(payload, mcs)
    one_block = link_plan(parts.shape[1], mcs)
    same_code = (one_block.n_blocks, one_block.k_block, one_block.n_block, one_block.base_graph)
    if same_code != (1, plan.k_block, plan.n_block, plan.base_graph):
        raise ValueError(f"a code block sent alone would be coded differently: {one_block} vs {plan}")
    chosen = parts[np.sort(rng.choice(plan.n_blocks, size=min(count, plan.n_blocks), replace=False))]
    symbols = encode_bits(chosen, mcs)
    no = snr_db_to_no(snr_db)
    if rayleigh:
        received, state = BlockRayleigh()(symbols.reshape(-1), no, rng)
        equalised, no_eff = equalise(received, complex(state.gains[0]), no, "zf")
        no_eff = no_eff.reshape(symbols.shape)
    else:
        equalised, no_eff = AWGN()(symbols.reshape(-1), no, rng), no
    _, ok = decode_bits(equalised.reshape(symbols.shape), no_eff, parts.shape[1], mcs)
    return int((~ok).sum()), len(chosen), plan.n_blocks


class Delivery(NamedTuple):
    """What the receiver gets when the whole file arrives."""

    quality: int
    file_bytes: int
    psnr: float
    ms_ssim: float | None


@dataclass
class DigitalImage:
    """One image ready for the digital link: its HEVC files, what each MCS delivers, and what a loss shows."""

    image: np.ndarray
    search: HevcSearch
    lost_psnr: float
    lost_ms_ssim: float | None
    deliveries: dict[int, Delivery | None] = field(default_factory=dict)  # by MCS index


def _scores(output: np.ndarray, reference: np.ndarray, ms_ssim: bool) -> tuple[float, float | None]:
    out, ref = to_tensor(output, "cpu"), to_tensor(reference, "cpu")
    return float(psnr_8bit(out, ref)), float(ms_ssim_8bit(out, ref)) if ms_ssim else None


def mean_colour(image: np.ndarray) -> np.ndarray:
    """The image filled with its own mean colour (rounded to 8 bits): what a lost image shows."""
    return np.broadcast_to(np.round(image.reshape(-1, 3).mean(axis=0)).astype(np.uint8), image.shape).copy()


def prepare_image(image: np.ndarray, ms_ssim: bool) -> DigitalImage:
    return DigitalImage(image, HevcSearch(image), *_scores(mean_colour(image), image, ms_ssim))


def delivery(item: DigitalImage, mcs: Mcs, n_symbols: int, ms_ssim: bool) -> Delivery | None:
    """What the image looks like when sent whole at ``mcs``, or None if not even quality 0 fits."""
    if mcs.index not in item.deliveries:
        quality = item.search.best_fit(max_payload_bytes(n_symbols, mcs))
        found = None
        if quality is not None:
            data = item.search.encode(quality)
            found = Delivery(quality, len(data), *_scores(hevc_decode(data), item.image, ms_ssim))
        item.deliveries[mcs.index] = found
    return item.deliveries[mcs.index]


def padded_file(item: DigitalImage, mcs: Mcs, n_symbols: int) -> bytes:
    """The delivered HEVC file padded with zeros to the whole budget, so every image gets one link plan."""
    data = item.search.encode(item.deliveries[mcs.index].quality)
    return data + bytes(max_payload_bytes(n_symbols, mcs) - len(data))


def rayleigh_mcs(item: DigitalImage, snr_db: float, n_symbols: int, ms_ssim: bool) -> Mcs:
    """The MCS with the highest expected PSNR over a Rayleigh fade of average SNR ``snr_db``.

    Only MCSs up to the AWGN choice compete: one whose threshold exceeds the average SNR
    arrives with probability below 1/e, and a lost image costs far more than one MCS step gains.
    """
    snr = 10.0 ** (snr_db / 10.0)
    best, best_value = MCS_TABLE[0], -math.inf
    for mcs in MCS_TABLE[: choose_mcs(snr_db, margin_db=0.0).index + 1]:
        sent = delivery(item, mcs, n_symbols, ms_ssim)
        if sent is None:
            continue
        arrives = math.exp(-(10.0 ** (mcs.snr_threshold_db / 10.0)) / snr)
        value = arrives * sent.psnr + (1.0 - arrives) * item.lost_psnr
        if value > best_value:
            best, best_value = mcs, value
    return best


def expected(item: DigitalImage, sent: Delivery | None, arrives: float) -> tuple[float, float | None, float, float]:
    """(PSNR, MS-SSIM, loss probability, PSNR if delivered), expected over whether the file arrives."""
    if sent is None:
        return item.lost_psnr, item.lost_ms_ssim, 1.0, item.lost_psnr
    ms_ssim = None if sent.ms_ssim is None else arrives * sent.ms_ssim + (1 - arrives) * item.lost_ms_ssim
    return arrives * sent.psnr + (1 - arrives) * item.lost_psnr, ms_ssim, 1.0 - arrives, sent.psnr


def _means(rows: list[list[tuple]]) -> dict[str, list]:
    """Per SNR, the means over images (and fades) of :func:`expected`'s tuples."""
    names = ("psnr", "ms_ssim", "loss_rate", "psnr_if_delivered")
    columns = {name: [] for name in names}
    for per_snr in rows:
        for column, name in enumerate(names):
            values = [row[column] for row in per_snr]
            columns[name].append(None if values[0] is None else round(float(np.mean(values)), 4))
    return columns


@dataclass(frozen=True)
class DigitalSettings:
    """What the digital reference covers; recorded in its report."""

    snrs_db: tuple[float, ...]
    rayleigh_draws: int = 1
    code_blocks: int = 8
    ms_ssim: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.snrs_db or not all(math.isfinite(s) for s in self.snrs_db):
            raise ValueError(f"need at least one finite SNR, got {self.snrs_db}")
        if self.rayleigh_draws < 0 or self.code_blocks < 1:
            raise ValueError(f"rayleigh_draws must be >= 0 and code_blocks >= 1, got {self}")


def send_over_rayleigh(
    item: DigitalImage, snr_db: float, n_symbols: int, settings: DigitalSettings, rng: np.random.Generator
) -> tuple[tuple, Mcs]:
    """One fade for one image: (:func:`expected` outcome, the MCS chosen for it)."""
    mcs = rayleigh_mcs(item, snr_db, n_symbols, settings.ms_ssim)
    sent = delivery(item, mcs, n_symbols, settings.ms_ssim)
    arrives = 0.0
    if sent is not None:
        payload = padded_file(item, mcs, n_symbols)
        errors, count, blocks = send_code_blocks(payload, mcs, settings.code_blocks, snr_db, True, rng)
        arrives = (1.0 - errors / count) ** blocks
    return expected(item, sent, arrives), mcs


def evaluate_digital(kodak: Path, rate: int, settings: DigitalSettings, progress: bool = True) -> dict:
    """HEVC + LDPC + QAM with DeepJSCC's symbol count at ``rate``, on the images of ``kodak``.

    AWGN sends code blocks of every image first and turns the pooled block errors into
    each SNR's arrival probability at the end; Rayleigh settles each image and fade at once.
    """
    started, started_cpu = time.perf_counter(), time.process_time()
    rng = np.random.default_rng(settings.seed)
    files = image_files(kodak)
    snrs = settings.snrs_db
    awgn_mcs = [choose_mcs(snr, margin_db=0.0) for snr in snrs]
    awgn_sent: list[list[tuple[DigitalImage, Delivery | None]]] = [[] for _ in snrs]
    awgn_blocks = np.zeros((len(snrs), 2), dtype=int)  # errors, sent
    rayleigh_rows: list[list[tuple]] = [[] for _ in snrs]
    rayleigh_choices: list[dict[str, int]] = [{} for _ in snrs]
    n_symbols = 0
    bar = tqdm(total=len(files) * len(snrs), desc=f"HEVC+LDPC, rate {rate}", unit="image-SNR", disable=not progress)
    for path in files:
        image = read_rgb(path)
        n_symbols = symbols_for_mask(np.ones(image.shape[:2], bool), rate)
        item = prepare_image(image, settings.ms_ssim)
        for index, (snr_db, mcs) in enumerate(zip(snrs, awgn_mcs, strict=True)):
            sent = delivery(item, mcs, n_symbols, settings.ms_ssim)
            awgn_sent[index].append((item, sent))
            if sent is not None:
                payload = padded_file(item, mcs, n_symbols)
                awgn_blocks[index] += send_code_blocks(payload, mcs, settings.code_blocks, snr_db, False, rng)[:2]
            for _ in range(settings.rayleigh_draws):
                outcome, chosen = send_over_rayleigh(item, snr_db, n_symbols, settings, rng)
                rayleigh_rows[index].append(outcome)
                key = str(chosen.index)
                rayleigh_choices[index][key] = rayleigh_choices[index].get(key, 0) + 1
            bar.update()
    bar.close()
    payloads = [max_payload_bytes(n_symbols, mcs) for mcs in awgn_mcs]
    blocks = [link_plan(8 * size, mcs).n_blocks for size, mcs in zip(payloads, awgn_mcs, strict=True)]
    arrivals = [(1.0 - e / n) ** c if n else 0.0 for (e, n), c in zip(awgn_blocks, blocks, strict=True)]
    awgn_rows = [
        [expected(it, sent, a) for it, sent in per_snr] for per_snr, a in zip(awgn_sent, arrivals, strict=True)
    ]
    bpp = [[8 * sent.file_bytes / it.image[..., 0].size for it, sent in per_snr if sent] for per_snr in awgn_sent]
    report = {
        "rate": rate,
        "n_symbols": n_symbols,
        "images": len(files),
        "snr_db": list(snrs),
        "awgn": {
            **_means(awgn_rows),
            "mcs": [mcs.index for mcs in awgn_mcs],
            "payload_bytes": payloads,
            "code_blocks": blocks,
            "block_errors": [int(e) for e, _ in awgn_blocks],
            "blocks_sent": [int(n) for _, n in awgn_blocks],
            "image_arrives": [round(a, 4) for a in arrivals],
            "hevc_bpp": [round(float(np.mean(values)), 4) if values else None for values in bpp],
        },
        "mean_colour_psnr": round(float(np.mean([it.lost_psnr for it, _ in awgn_sent[0]])), 4),
        "method": method_note(settings.code_blocks),
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - started_cpu, 1),
    }
    if settings.rayleigh_draws:
        report["rayleigh"] = {**_means(rayleigh_rows), "draws": settings.rayleigh_draws, "mcs_counts": rayleigh_choices}
    return report


def method_note(code_blocks: int) -> str:
    """How the digital reference was simulated, for the report."""
    return (
        f"HEVC (pillow-heif {pillow_heif.__version__}, x265, HEIF, 4:4:4, one thread) at the highest quality 0-100 "
        "whose file fits the payload that the MCS carries in DeepJSCC's symbol count; the file, zero-padded to that payload, "
        f"is cut into 5G LDPC code blocks as the link does, and {code_blocks} random code blocks per image and SNR "
        "(all of them if fewer) are sent through encode_bits -> channel -> decode_bits (20 BP iterations, CRC early "
        "stop). The image arrives with probability (1-p)^C, C code blocks, p the block error rate (AWGN: pooled over "
        "images per SNR; Rayleigh: per image and fade, one gain per image, perfect CSI, zero forcing). A lost image "
        "shows its mean colour; psnr and ms_ssim are expectations over arrival, psnr_if_delivered is the HEVC "
        "file's own PSNR. AWGN: choose_mcs(snr, margin 0). Rayleigh: the MCS maximising expected PSNR given the "
        "average SNR (arrival exp(-threshold/SNR))."
    )
