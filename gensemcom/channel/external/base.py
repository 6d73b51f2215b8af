"""The contract every external channel keeps: one burst of complex64 in, as many samples out.

A burst is a frame's concatenated IQ. The service relies on the reply having
exactly the input's length (it writes the samples back into the frame's
segments), so every transport checks that here, in one place, and fails with
an :class:`ExternalChannelError` that names the frame, never with a silently
misaligned frame.
"""

from abc import ABC, abstractmethod
from types import TracebackType

import numpy as np

from gensemcom.shared.modem import as_symbol_array

IQ_DTYPE = np.dtype("<c8")  # little-endian complex64: interleaved float32 re, im (SigMF cf32_le)


class ExternalChannelError(RuntimeError):
    """The external channel could not process a burst: it died, broke the protocol or replied wrongly.

    The request itself was fine, so this is not a ``ValueError``: the gRPC
    adapter answers it with UNAVAILABLE (retrying later may work).
    """


class ExternalChannelTimeout(ExternalChannelError):
    """No complete reply within the transport's timeout."""


class ProtocolError(ExternalChannelError):
    """The peer sent bytes that do not follow the transport's framing."""


def as_burst(iq: np.ndarray) -> np.ndarray:
    """``iq`` as a contiguous 1-D complex64 burst of finite samples; ValueError otherwise."""
    burst = np.ascontiguousarray(as_symbol_array(iq, "burst"), dtype=IQ_DTYPE)
    if burst.size == 0:
        raise ValueError("burst is empty; an external channel needs at least one sample")
    if not np.all(np.isfinite(burst.view(np.float32))):
        raise ValueError("burst contains NaN or infinite samples")
    return burst


def check_reply(burst: np.ndarray, reply: np.ndarray, frame_id: str, source: str) -> np.ndarray:
    """``reply`` as complex64 if it can stand in for ``burst``: same length, finite samples."""
    if reply.size != burst.size:
        raise ExternalChannelError(
            f"{source} returned {reply.size} samples for frame {frame_id!r} of {burst.size}; "
            "an external channel must return exactly as many samples as it was given"
        )
    if not np.all(np.isfinite(reply.view(np.float32))):
        raise ExternalChannelError(f"{source} returned NaN or infinite samples for frame {frame_id!r}")
    return reply.astype(np.complex64, copy=False)


class ExternalChannel(ABC):
    """A channel outside this process: ``channel(iq, frame_id) -> iq'`` of the same length.

    Implementations serialise calls (a radio handles one burst at a time) and
    may be used as context managers so that tests and scripts release the
    process or sockets they hold.
    """

    name: str  # short transport name, reported as the channel model ("external:<name>")

    @abstractmethod
    def __call__(self, iq: np.ndarray, frame_id: str) -> np.ndarray:
        """Send one burst through the channel and return what came back (complex64, same length)."""

    @abstractmethod
    def close(self) -> None:
        """Release the process, sockets or files; calling it twice is harmless."""

    def __enter__(self) -> "ExternalChannel":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
