"""SubprocessChannel: a long-lived child process that speaks framed cf32_le on stdin/stdout.

The child reads requests and writes replies as :mod:`.framing` describes,
one burst at a time. Reads and writes carry a deadline (``poll`` on the pipe
ends), so a hung child costs one timeout, not a hung service. A child that
dies or times out fails the frame it was handling with an error that says
why (exit code, last lines of its stderr) and is started afresh on the next
call; because bursts carry their frame id, the new child draws exactly what
the old one would have.

The child's stderr is forwarded to this process's log, line by line.
"""

import logging
import os
import select
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence

import numpy as np

from gensemcom.channel.external.base import (
    ExternalChannel,
    ExternalChannelError,
    ExternalChannelTimeout,
    as_burst,
    check_reply,
)
from gensemcom.channel.external.framing import encode_request, read_reply

log = logging.getLogger(__name__)

STDERR_TAIL_LINES = 20
_CHUNK = 1 << 20


class _Died(Exception):
    """The child closed a pipe (it exited or is exiting)."""


class _Child:
    """One running instance of the command: its pipes, deadline-bound I/O, and the tail of its stderr."""

    def __init__(self, cmd: list[str]) -> None:
        self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        bufsize=0)
        assert self.process.stdin and self.process.stdout and self.process.stderr
        self._stdin = self.process.stdin.fileno()
        self._stdout = self.process.stdout.fileno()
        os.set_blocking(self._stdin, False)  # a full pipe must not block past the deadline
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._stderr_reader = threading.Thread(target=self._forward_stderr, daemon=True,
                                               name=f"external-stderr-{self.process.pid}")
        self._stderr_reader.start()

    def _forward_stderr(self) -> None:
        assert self.process.stderr
        for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.stderr_tail.append(line)
            log.info("external[%d]: %s", self.process.pid, line)

    def _wait(self, fd: int, event: int, deadline: float) -> None:
        poller = select.poll()
        poller.register(fd, event)
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not poller.poll(remaining * 1e3):
            raise TimeoutError

    def write(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            self._wait(self._stdin, select.POLLOUT, deadline)
            try:
                view = view[os.write(self._stdin, view[:_CHUNK]):]
            except BlockingIOError:
                continue
            except BrokenPipeError:
                raise _Died from None

    def read_exact(self, n: int, deadline: float) -> bytes:
        chunks, got = [], 0
        while got < n:
            self._wait(self._stdout, select.POLLIN, deadline)
            chunk = os.read(self._stdout, min(n - got, _CHUNK))
            if not chunk:
                raise _Died
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def exit_report(self) -> str:
        """How the child ended (after giving it a moment to exit and flush stderr)."""
        try:
            code: int | str = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = f"{self.process.wait()} (killed: it closed its pipes but did not exit)"
        self._stderr_reader.join(timeout=2)
        tail = "\n".join(self.stderr_tail) or "(nothing on stderr)"
        return f"exited with code {code}; its last stderr lines:\n{tail}"

    def stop(self, grace_s: float) -> None:
        """Close stdin (a well-behaved child exits at end of input), kill it if it does not."""
        assert self.process.stdin
        self.process.stdin.close()
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr_reader.join(timeout=2)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe:
                pipe.close()


class SubprocessChannel(ExternalChannel):
    """Bursts through a child process started from ``cmd`` (kept running between bursts).

    ``timeout_s`` bounds each burst, from sending the request to the end of
    the reply, including the child's start-up on the first burst after a
    (re)start. The child is started here, so a command that does not exist
    fails at construction (``FileNotFoundError``).
    """

    name = "exec"

    def __init__(self, cmd: Sequence[str], timeout_s: float = 30.0) -> None:
        if not cmd:
            raise ValueError("the external channel command is empty")
        if not timeout_s > 0:
            raise ValueError(f"timeout must be > 0 s, got {timeout_s}")
        self.cmd = list(cmd)
        self.timeout_s = float(timeout_s)
        self._lock = threading.Lock()
        self._child: _Child | None = _Child(self.cmd)

    @property
    def pid(self) -> int | None:
        """Process id of the running child (None after close or a failure, until the next call)."""
        return self._child.process.pid if self._child else None

    def __call__(self, iq: np.ndarray, frame_id: str) -> np.ndarray:
        burst = as_burst(iq)
        request = encode_request(burst, frame_id)
        with self._lock:
            if self._child is not None and self._child.process.poll() is not None:
                log.warning("external channel process %s (pid %d) %s", self.cmd[0], self._child.process.pid,
                            self._child.exit_report())
                self._discard(self._child)
            if self._child is None:
                self._child = _Child(self.cmd)
                log.info("started external channel %s (pid %d)", self.cmd[0], self._child.process.pid)
            child = self._child
            deadline = time.monotonic() + self.timeout_s
            try:
                child.write(request, deadline)
                reply = read_reply(lambda n: child.read_exact(n, deadline))
            except _Died:
                report = child.exit_report()
                self._discard(child)
                raise ExternalChannelError(
                    f"external channel process {self.cmd[0]} (pid {child.process.pid}) {report}\n"
                    f"frame {frame_id!r} was lost; the process is restarted on the next call"
                ) from None
            except TimeoutError:
                self._discard(child)
                raise ExternalChannelTimeout(
                    f"external channel process {self.cmd[0]} (pid {child.process.pid}) gave no complete reply for "
                    f"frame {frame_id!r} within {self.timeout_s:g} s; it was stopped and is restarted on the next "
                    "call"
                ) from None
            except ExternalChannelError:
                self._discard(child)  # the byte stream is out of step: only a new process can recover it
                raise
        return check_reply(burst, reply, frame_id, f"external channel process {self.cmd[0]}")

    def _discard(self, child: _Child) -> None:
        child.process.kill()
        child.stop(grace_s=2)
        self._child = None

    def close(self) -> None:
        with self._lock:
            if self._child is not None:
                self._child.stop(grace_s=5)
                self._child = None
