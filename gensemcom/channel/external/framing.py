"""Burst framing for the subprocess transport: a small header before each cf32_le burst.

A raw complex64 stream has no frame boundaries, and the external process
needs the frame id to draw the same channel as the in-process model (which
seeds each frame from (seed, frame id)). So each burst travels as

    request  (parent -> child, on the child's stdin)
        offset 0   4 bytes  magic b"SCB1"
        offset 4   u32 LE   n, number of complex64 samples (n >= 1)
        offset 8   u32 LE   m, length of the frame id in bytes (m <= 4096)
        offset 12  m bytes  frame id, UTF-8
        then       8·n bytes samples, little-endian complex64 (float32 re, im)

    reply    (child -> parent, on the child's stdout)
        offset 0   4 bytes  magic b"SCR1"
        offset 4   u32 LE   n, number of complex64 samples
        offset 8   8·n bytes samples, little-endian complex64

The magic words catch a peer that speaks something else, for instance a
program that prints text to stdout, before its bytes are taken as samples.
Both sides read with a ``read_exact(n)`` callable so the same code serves the
parent (deadline-aware pipe reads) and the child (blocking stdin).
"""

import struct
from collections.abc import Callable

import numpy as np

from gensemcom.channel.external.base import IQ_DTYPE, ProtocolError

REQUEST_MAGIC = b"SCB1"
REPLY_MAGIC = b"SCR1"
MAX_FRAME_ID_BYTES = 4096
MAX_SAMPLES = 2**32 - 1

_REQUEST = struct.Struct("<4sII")
_REPLY = struct.Struct("<4sI")

ReadExact = Callable[[int], bytes]
"""Return ``n`` bytes, or fewer only when the stream ended."""


def encode_request(burst: np.ndarray, frame_id: str) -> bytes:
    """Header, frame id and samples of one request (``burst`` is complex64, see ``base.as_burst``)."""
    frame_id_bytes = frame_id.encode()
    if len(frame_id_bytes) > MAX_FRAME_ID_BYTES:
        raise ValueError(f"frame id is {len(frame_id_bytes)} bytes; the burst header allows {MAX_FRAME_ID_BYTES}")
    if burst.size > MAX_SAMPLES:
        raise ValueError(f"burst of {burst.size} samples exceeds the header's u32 count")
    return _REQUEST.pack(REQUEST_MAGIC, burst.size, len(frame_id_bytes)) + frame_id_bytes + burst.tobytes()


def encode_reply(samples: np.ndarray) -> bytes:
    samples = np.ascontiguousarray(samples, dtype=IQ_DTYPE)
    return _REPLY.pack(REPLY_MAGIC, samples.size) + samples.tobytes()


def _read(read_exact: ReadExact, n: int, what: str) -> bytes:
    data = read_exact(n)
    if len(data) != n:
        raise ProtocolError(f"stream ended inside {what}: got {len(data)} of {n} bytes")
    return data


def _samples(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=IQ_DTYPE).astype(np.complex64)


def read_request(read_exact: ReadExact) -> tuple[str, np.ndarray] | None:
    """The next (frame id, samples), or None if the stream ended cleanly between bursts."""
    first = read_exact(_REQUEST.size)
    if not first:
        return None
    header = first + _read(read_exact, _REQUEST.size - len(first), "a request header")
    magic, n, id_len = _REQUEST.unpack(header)
    if magic != REQUEST_MAGIC:
        raise ProtocolError(f"request starts with {magic!r}, expected {REQUEST_MAGIC!r}")
    if n == 0:
        raise ProtocolError("request declares an empty burst")
    if id_len > MAX_FRAME_ID_BYTES:
        raise ProtocolError(f"request declares a {id_len}-byte frame id; at most {MAX_FRAME_ID_BYTES} are allowed")
    try:
        frame_id = _read(read_exact, id_len, "a frame id").decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"frame id is not UTF-8: {exc}") from None
    return frame_id, _samples(_read(read_exact, n * IQ_DTYPE.itemsize, f"the samples of frame {frame_id!r}"))


def read_reply(read_exact: ReadExact) -> np.ndarray:
    """The samples of one reply."""
    magic, n = _REPLY.unpack(_read(read_exact, _REPLY.size, "a reply header"))
    if magic != REPLY_MAGIC:
        raise ProtocolError(f"reply starts with {magic!r}, expected {REPLY_MAGIC!r} (does the process write "
                            "anything else to stdout?)")
    return _samples(_read(read_exact, n * IQ_DTYPE.itemsize, "the reply samples"))
