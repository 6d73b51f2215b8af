"""Digital physical layer for the short payloads of a frame (prompt, mask, side data).

The chain, top-down, one module per step:

- :mod:`.link` — payload bytes <-> complex symbols at a chosen MCS; the API the
  pipelines call (``encode_payload`` / ``decode_payload``);
- :mod:`.mcs` — the modulation-and-coding table and the choice of an entry from SNR;
- :mod:`.transport` — transport-block CRC, code-block segmentation and 5G NR LDPC;
- :mod:`.ldpc` — one LDPC code block (Sionna's 5G encoder and BP decoder);
- :mod:`.crc` — the 3GPP CRCs (Sionna);
- :mod:`.qam` — Gray QAM mapping and soft demapping, BPSK to 256-QAM (Sionna);
- :mod:`.device` — where the torch work runs.

Conventions are those of :mod:`gensemcom.shared.modem`: numpy ``complex64``
symbols with unit average power, complex noise variance ``no`` (Es/N0 = 1/no),
and LLR = log P(b=0)/P(b=1), positive meaning bit 0. Every public function takes
and returns numpy arrays; torch stays inside.
"""
