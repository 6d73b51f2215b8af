"""External channels: hand a frame's IQ to another process (a radio, a flowgraph, a recording).

The channel service normally applies an in-process model. With an external
channel it instead sends the burst out and takes back the same number of
samples, so a GNU Radio flowgraph with a USRP or PlutoSDR can sit where the
model was. Transports: a child process on stdin/stdout (:mod:`.pipe`), ZeroMQ
sockets compatible with GNU Radio's ZMQ blocks (:mod:`.zmqlink`), and SigMF
record/replay (:mod:`gensemcom.channel.sigmf`); :func:`.spec.make_transport`
builds one from a one-line spec. docs/sdr.md explains the radio side.
"""

from gensemcom.channel.external.base import (
    ExternalChannel,
    ExternalChannelError,
    ExternalChannelTimeout,
    ProtocolError,
)

__all__ = ["ExternalChannel", "ExternalChannelError", "ExternalChannelTimeout", "ProtocolError"]
