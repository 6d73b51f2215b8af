"""Transport-block coding: CRC, code-block segmentation and 5G NR LDPC (TS 38.212).

A payload of A bits becomes one transport block:

1. CRC24A is appended (B = A + 24 bits);
2. the base graph is chosen as in 38.212 §7.2.2: BG2 when A <= 292, or
   A <= 3824 and R <= 0.67, or R <= 0.25; BG1 otherwise;
3. if B exceeds the largest code block (Kcb = 8448 bits for BG1, 3840 for
   BG2), it is cut into C = ceil(B / (Kcb - 24)) code blocks, each with its
   own CRC24B (§5.2.2), so a receiver can stop decoding each block early;
4. each code block is LDPC-encoded and rate-matched to E coded bits, the same
   E for every block, a multiple of the bits per symbol: E = Qm·ceil(K / (R·Qm)).

Where this differs from 38.212, and why:

- A is any bit count, not a size from the TBS tables, so B is padded with
  zeros up to a multiple of C; the receiver knows A and drops the padding.
- 38.212 would use BG1 for 0.25 < R < 1/3 on large blocks and repeat coded
  bits in rate matching; Sionna's encoder does not repeat, so those rates use
  BG2 (segmenting at 3840 bits instead of 8448).
- All code blocks get the same E (38.212 lets two sizes differ by Qm·layers).

Every function takes a batch: leading axes are independent transport blocks
of the same plan, which is what BLER simulation wants.
"""

from dataclasses import dataclass

import numpy as np

from gensemcom.shared.phy.crc import CRC_LENGTH, crc_attach, crc_check
from gensemcom.shared.phy.ldpc import DEFAULT_BP_ITERATIONS, LdpcBlockCode, ldpc_block_code

MAX_CODE_BLOCK = {"bg1": 8448, "bg2": 3840}
CODE_RATE_RANGE = (0.2, 948 / 1024)  # Sionna's LDPC: no repetition below 1/5; 38.214's top rate


@dataclass(frozen=True)
class TransportPlan:
    """How a payload of ``n_payload_bits`` is cut and coded; both ends derive it alike."""

    n_payload_bits: int
    code_rate: float  # target rate R; the effective rate is at most R
    bits_per_symbol: int
    base_graph: str  # "bg1" or "bg2"
    n_blocks: int  # C, code blocks
    k_block: int  # K, information bits per code block including its CRC (the LDPC k)
    n_block: int  # E, coded bits per code block after rate matching
    n_padding: int  # zero bits after payload + CRC24A that make C blocks equal

    @property
    def n_coded_bits(self) -> int:
        return self.n_blocks * self.n_block

    @property
    def n_symbols(self) -> int:
        return self.n_coded_bits // self.bits_per_symbol

    @property
    def effective_rate(self) -> float:
        """Payload bits per coded bit: what the link really delivers."""
        return self.n_payload_bits / self.n_coded_bits

    @property
    def _block_crc(self) -> str:
        return "CRC24B" if self.n_blocks > 1 else "CRC24A"


def select_base_graph(n_payload_bits: int, code_rate: float) -> str:
    """38.212 §7.2.2, except that rates below 1/3 always use BG2 (see the module notes)."""
    if n_payload_bits <= 292 or (n_payload_bits <= 3824 and code_rate <= 0.67) or code_rate < 1 / 3:
        return "bg2"
    return "bg1"


def plan_transport(n_payload_bits: int, code_rate: float, bits_per_symbol: int) -> TransportPlan:
    """Segmentation and rate matching for ``n_payload_bits`` at rate ``code_rate``."""
    if int(n_payload_bits) != n_payload_bits or n_payload_bits < 0:
        raise ValueError(f"n_payload_bits must be an integer >= 0, got {n_payload_bits}")
    low, high = CODE_RATE_RANGE
    if not low <= code_rate <= high:
        raise ValueError(f"code rate must be within [{low:g}, {high:.4f}], got {code_rate}")
    if bits_per_symbol not in (1, 2, 4, 6, 8):
        raise ValueError(f"bits_per_symbol must be 1, 2, 4, 6 or 8, got {bits_per_symbol}")
    n_payload_bits = int(n_payload_bits)
    base_graph = select_base_graph(n_payload_bits, code_rate)
    b = n_payload_bits + CRC_LENGTH
    k_max = MAX_CODE_BLOCK[base_graph]
    n_blocks = 1 if b <= k_max else -(-b // (k_max - CRC_LENGTH))
    k_info = -(-b // n_blocks)
    k_block = k_info + (CRC_LENGTH if n_blocks > 1 else 0)
    n_block = bits_per_symbol * int(np.ceil(k_block / (code_rate * bits_per_symbol)))
    return TransportPlan(
        n_payload_bits=n_payload_bits,
        code_rate=float(code_rate),
        bits_per_symbol=bits_per_symbol,
        base_graph=base_graph,
        n_blocks=n_blocks,
        k_block=k_block,
        n_block=n_block,
        n_padding=n_blocks * k_info - b,
    )


def _code(plan: TransportPlan) -> LdpcBlockCode:
    return ldpc_block_code(plan.k_block, plan.n_block, plan.bits_per_symbol, plan.base_graph)


def encode_transport(bits: np.ndarray, plan: TransportPlan) -> np.ndarray:
    """[..., n_payload_bits] payload bits -> [..., n_coded_bits] coded bits (uint8)."""
    bits = np.asarray(bits)
    if bits.ndim < 1 or bits.shape[-1] != plan.n_payload_bits:
        raise ValueError(f"expected bits of shape (..., {plan.n_payload_bits}), got {bits.shape}")
    lead = bits.shape[:-1]
    rows = bits.reshape(int(np.prod(lead)), plan.n_payload_bits)  # -1 fails for 0 payload bits
    tb = crc_attach(rows, "CRC24A")
    tb = np.concatenate([tb, np.zeros((tb.shape[0], plan.n_padding), np.uint8)], axis=1)
    blocks = tb.reshape(-1, tb.shape[1] // plan.n_blocks)
    if plan.n_blocks > 1:
        blocks = crc_attach(blocks, "CRC24B")
    coded = _code(plan).encode(blocks)
    return coded.reshape(*lead, plan.n_coded_bits)


def decode_transport(
    llr: np.ndarray, plan: TransportPlan, num_iter: int = DEFAULT_BP_ITERATIONS
) -> tuple[np.ndarray, np.ndarray]:
    """[..., n_coded_bits] LLRs -> (payload bits [..., n_payload_bits], crc_ok [...]).

    ``crc_ok`` is the transport block's CRC24A; a failed block still returns
    its best-guess bits. Each code block stops decoding once its own CRC passes.
    """
    llr = np.asarray(llr, dtype=np.float32)
    if llr.ndim < 1 or llr.shape[-1] != plan.n_coded_bits:
        raise ValueError(f"expected LLRs of shape (..., {plan.n_coded_bits}), got {llr.shape}")
    lead = llr.shape[:-1]
    block_crc = plan._block_crc
    blocks = _code(plan).decode(
        llr.reshape(-1, plan.n_block), num_iter, is_valid=lambda hard: crc_check(hard, block_crc)[1]
    )
    if plan.n_blocks > 1:
        blocks, _ = crc_check(blocks, "CRC24B")
    tb = blocks.reshape(-1, plan.n_blocks * blocks.shape[1])[:, : plan.n_payload_bits + CRC_LENGTH]
    payload, ok = crc_check(tb, "CRC24A")
    return payload.reshape(*lead, plan.n_payload_bits), ok.reshape(lead)
