"""Build an external channel from a one-line spec, as settings and command lines give it.

    exec:COMMAND                  child process speaking framed cf32 (shell-style quoting)
    zmq:TX_ADDRESS,RX_ADDRESS     GNU Radio ZMQ PULL Source / PUSH Sink endpoints
    replay:PREFIX                 SigMF recording PREFIX.sigmf-{meta,data}, bursts by frame id
    record:PREFIX=SPEC            any of the above, with every reply recorded as SigMF at PREFIX

Example: ``exec:python -m gensemcom.channel.external_sim --model awgn --snr-db 10 --seed 3``.
"""

import shlex
from pathlib import Path

from gensemcom.channel.external.base import ExternalChannel
from gensemcom.channel.external.pipe import SubprocessChannel
from gensemcom.channel.external.zmqlink import ZmqChannel
from gensemcom.channel.sigmf import SigmfRecorder, SigmfReplay

SPEC_FORMS = ("exec:COMMAND", "zmq:TX_ADDRESS,RX_ADDRESS", "replay:PREFIX", "record:PREFIX=SPEC")


def make_transport(spec: str, timeout_s: float = 30.0) -> ExternalChannel:
    """The external channel ``spec`` names; ValueError for a malformed spec."""
    kind, sep, rest = spec.partition(":")
    if not sep or not rest.strip():
        raise ValueError(f"external channel spec {spec!r} is not one of: {', '.join(SPEC_FORMS)}")
    if kind == "exec":
        return SubprocessChannel(shlex.split(rest), timeout_s=timeout_s)
    if kind == "zmq":
        tx, comma, rx = rest.partition(",")
        if not comma or not tx or not rx:
            raise ValueError(f"zmq spec needs two endpoints, zmq:TX_ADDRESS,RX_ADDRESS; got {spec!r}")
        return ZmqChannel(tx.strip(), rx.strip(), timeout_s=timeout_s)
    if kind == "replay":
        return SigmfReplay(Path(rest))
    if kind == "record":
        prefix, eq, inner = rest.partition("=")
        if not eq or not prefix or not inner:
            raise ValueError(f"record spec needs a prefix and a channel, record:PREFIX=SPEC; got {spec!r}")
        channel = make_transport(inner, timeout_s)
        try:
            return SigmfRecorder(channel, Path(prefix))
        except BaseException:
            channel.close()  # do not leave its process or sockets behind
            raise
    raise ValueError(f"unknown external channel kind {kind!r} in {spec!r}; use one of: {', '.join(SPEC_FORMS)}")
