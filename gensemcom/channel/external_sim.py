"""`semcom channel external-sim`: the reference external channel process.

It stands where a radio would: it takes bursts from outside and returns them
through :func:`gensemcom.channel.link.apply_channel` with the same
:class:`ChannelParams` the channel service uses (every field of it is an
option here), so the external path can be checked against the in-process one
sample for sample.

Two ways in:

- framed bursts on stdin/stdout (the default; the header is in
  :mod:`gensemcom.channel.external.framing`). Each burst carries its frame id,
  so burst ``frame_id`` is drawn exactly as the in-process model draws it:
  from (seed, frame id).
- ``--zmq-in ADDR --zmq-out ADDR``: raw complex64 messages, like a GNU Radio
  flowgraph between a ZMQ PULL Source (connects to ``--zmq-in``) and a ZMQ
  PUSH Sink (binds ``--zmq-out``). Raw messages have no frame id, so the k-th
  burst since start-up (k = 0, 1, ...) is drawn as frame id
  ``burst_frame_id(k)`` = ``"burst-k"``. Each message is taken as one burst,
  which holds for :class:`ZmqChannel` (it sends a burst as one message).

Nothing but protocol bytes may reach stdout, so ``print`` output is sent to
stderr while the process runs; logs go to stderr too.
"""

import argparse
import dataclasses
import logging
import sys
import types
import typing
from collections.abc import Sequence
from typing import Any, BinaryIO

import numpy as np
import zmq

from gensemcom.channel.external.base import IQ_DTYPE, ProtocolError
from gensemcom.channel.external.framing import encode_reply, read_request
from gensemcom.channel.link import ChannelParams, apply_channel
from gensemcom.shared.config import ChannelSettings

log = logging.getLogger("gensemcom.external_sim")


def burst_frame_id(index: int) -> str:
    """Frame id the ZMQ mode draws its ``index``-th burst with (raw messages carry none)."""
    return f"burst-{index}"


def _option(parser: argparse.ArgumentParser, name: str, hint: Any, default: Any) -> None:
    """Add ``--name`` for one ChannelParams field, typed from its annotation."""
    flag = "--" + name.replace("_", "-")
    settings_field = ChannelSettings.model_fields.get(name)
    help_text = f"{settings_field.description if settings_field else name} (default {default!r})"
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)
    if optional:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is typing.Literal:
        parser.add_argument(flag, choices=typing.get_args(hint), default=default, help=help_text)
    elif hint is bool:
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
    elif hint in (int, float, str):
        parser.add_argument(flag, type=hint, default=default, help=help_text)
    else:
        raise TypeError(f"ChannelParams.{name} has type {hint!r}, which the external sim cannot take as an option")


def build_parser(prog: str = "python -m gensemcom.channel.external_sim") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Reference external channel: bursts in, apply_channel, bursts out. Reads framed cf32_le "
                    "bursts on stdin and writes them to stdout, or with --zmq-in/--zmq-out speaks raw complex64 "
                    "messages like GNU Radio's ZMQ blocks. See docs/sdr.md.",
    )
    hints = typing.get_type_hints(ChannelParams)
    for field in dataclasses.fields(ChannelParams):
        _option(parser, field.name, hints[field.name], field.default)
    parser.add_argument("--zmq-in", metavar="ADDR", help="connect a PULL socket here and take bursts from it")
    parser.add_argument("--zmq-out", metavar="ADDR", help="bind a PUSH socket here and send processed bursts")
    parser.add_argument("--log-level", default="WARNING", help="Python logging level, on stderr (default WARNING)")
    return parser


def serve_stdio(params: ChannelParams, stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Answer framed bursts until stdin ends; returns the number of bursts served."""
    served = 0
    while (request := read_request(stdin.read)) is not None:
        frame_id, burst = request
        y, _ = apply_channel(burst, params, frame_id)
        stdout.write(encode_reply(y))
        stdout.flush()
        log.info("frame %s: %d samples", frame_id, burst.size)
        served += 1
    return served


def serve_zmq(params: ChannelParams, in_address: str, out_address: str) -> typing.NoReturn:
    """Answer raw complex64 messages from ``in_address`` on ``out_address`` until the process is stopped."""
    context = zmq.Context()
    pull, push = context.socket(zmq.PULL), context.socket(zmq.PUSH)
    pull.connect(in_address)
    push.bind(out_address)
    index = 0
    while True:
        message = pull.recv()
        if len(message) % IQ_DTYPE.itemsize or not message:
            raise ProtocolError(f"a {len(message)}-byte message is not a whole, non-empty number of complex64 "
                                "samples")
        y, _ = apply_channel(np.frombuffer(message, dtype=IQ_DTYPE), params, burst_frame_id(index))
        push.send(np.ascontiguousarray(y, dtype=IQ_DTYPE).data)
        log.info("burst %d: %d samples", index, y.size)
        index += 1


def main(argv: Sequence[str] | None = None, prog: str = "python -m gensemcom.channel.external_sim") -> int:
    """Run the external sim; returns the process exit code (``semcom channel external-sim`` passes its prog)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s external-sim: %(message)s")
    if (args.zmq_in is None) != (args.zmq_out is None):
        parser.error("--zmq-in and --zmq-out go together")
    params = ChannelParams(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ChannelParams)})
    try:
        # One symbol through the channel checks the parameters now, not at the first real burst.
        apply_channel(np.zeros(1, np.complex64), params, "")
    except ValueError as exc:
        parser.error(str(exc))
    try:
        if args.zmq_in:
            serve_zmq(params, args.zmq_in, args.zmq_out)
        else:
            protocol_out, sys.stdout = sys.stdout.buffer, sys.stderr  # stray prints must not corrupt the stream
            log.info("stdin closed after %d bursts", serve_stdio(params, sys.stdin.buffer, protocol_out))
    except (ProtocolError, zmq.ZMQError) as exc:
        print(f"external-sim: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
