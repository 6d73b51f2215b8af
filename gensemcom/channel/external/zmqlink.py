"""ZmqChannel: bursts to and from a GNU Radio flowgraph over ZeroMQ PUSH/PULL sockets.

Compatible with gr-zeromq's stream blocks with ``pass_tags`` off, which carry
raw item bytes (here complex64, little-endian on every platform GNU Radio
runs on) and nothing else:

    this process                      GNU Radio flowgraph
    PUSH, binds tx_address   ───▶     ZMQ PULL Source (connects to tx_address)
                                        ... radio or simulation ...
    PULL, connects rx_address ◀───    ZMQ PUSH Sink (binds rx_address)

GNU Radio sinks bind and sources connect, so this side does the opposite.
Each burst goes out as one message. The flowgraph's sink may split what comes
back into any number of messages, so samples are gathered until the burst's
length is reached; more than that, or a message that is not a whole number of
complex64 items, is an error. There is no frame id on the wire (the blocks
carry raw samples only): the flowgraph sees bursts in order.

Late samples from a burst that timed out would be taken for the next burst's
reply, so anything already waiting is discarded (and logged) before each send.
"""

import logging
import threading
import time

import numpy as np
import zmq

from gensemcom.channel.external.base import (
    IQ_DTYPE,
    ExternalChannel,
    ExternalChannelError,
    ExternalChannelTimeout,
    as_burst,
    check_reply,
)

log = logging.getLogger(__name__)


class ZmqChannel(ExternalChannel):
    """Send each burst on a PUSH socket bound at ``tx_address``; read it back from ``rx_address``.

    Addresses are ZeroMQ endpoints (``tcp://127.0.0.1:5555``, ``ipc:///tmp/tx``).
    ``timeout_s`` bounds each burst: waiting for a flowgraph to connect, then
    for the whole reply.
    """

    name = "zmq"

    def __init__(self, tx_address: str, rx_address: str, timeout_s: float = 30.0) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout must be > 0 s, got {timeout_s}")
        self.tx_address, self.rx_address, self.timeout_s = tx_address, rx_address, float(timeout_s)
        self._context = zmq.Context()
        self._push = self._context.socket(zmq.PUSH)
        self._pull = self._context.socket(zmq.PULL)
        for socket in (self._push, self._pull):
            socket.setsockopt(zmq.LINGER, 0)  # closing must not wait for a flowgraph that went away
        try:
            self._push.bind(tx_address)
            self._pull.connect(rx_address)
        except zmq.ZMQError as exc:
            self.close()
            raise ValueError(f"cannot use ZeroMQ endpoints tx={tx_address!r} rx={rx_address!r}: {exc}") from None
        self._lock = threading.Lock()

    def __call__(self, iq: np.ndarray, frame_id: str) -> np.ndarray:
        burst = as_burst(iq)
        with self._lock:
            self._discard_stale()
            deadline = time.monotonic() + self.timeout_s
            if not self._push.poll(self.timeout_s * 1e3, zmq.POLLOUT):
                raise ExternalChannelTimeout(
                    f"no flowgraph took frame {frame_id!r} within {self.timeout_s:g} s: nothing is connected to "
                    f"{self.tx_address} (a ZMQ PULL Source must connect there) or it stopped reading"
                )
            self._push.send(burst.data, copy=False)
            reply = self._receive(burst.size, frame_id, deadline)
        return check_reply(burst, reply, frame_id, f"the flowgraph at {self.rx_address}")

    def _receive(self, n: int, frame_id: str, deadline: float) -> np.ndarray:
        chunks, got = [], 0
        while got < n * IQ_DTYPE.itemsize:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._pull.poll(remaining * 1e3, zmq.POLLIN):
                raise ExternalChannelTimeout(
                    f"the flowgraph returned {got // IQ_DTYPE.itemsize} of {n} samples for frame {frame_id!r} "
                    f"within {self.timeout_s:g} s (is its ZMQ PUSH Sink bound at {self.rx_address}?)"
                )
            message = self._pull.recv()
            if len(message) % IQ_DTYPE.itemsize:
                raise ExternalChannelError(
                    f"a {len(message)}-byte message from {self.rx_address} is not a whole number of complex64 "
                    "samples; set the ZMQ sink's type to complex, vector length 1, pass tags off"
                )
            chunks.append(message)
            got += len(message)
        return np.frombuffer(b"".join(chunks), dtype=IQ_DTYPE).astype(np.complex64)

    def _discard_stale(self) -> None:
        stale = 0
        while self._pull.poll(0, zmq.POLLIN):
            stale += len(self._pull.recv())
        if stale:
            log.warning("discarded %d late samples from %s (left over from an earlier burst)",
                        stale // IQ_DTYPE.itemsize, self.rx_address)

    def close(self) -> None:
        self._push.close()
        self._pull.close()
        self._context.term()
