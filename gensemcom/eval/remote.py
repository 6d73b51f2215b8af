"""The same transmissions as :class:`~gensemcom.eval.schemes.InProcessChain`, through live services.

Each image goes over ``Transmitter.Send`` with its scheme's client profile in the
call metadata, its α target in ``ImageRequest.alpha`` and the condition's channel
(model, SNR, seed, K) in ``ImageRequest.channel``; the channel service seeds its
draw from (seed, frame id) exactly as the in-process chain does, so with the
services configured like the in-process defaults both give the same images.
"""

import grpc
import numpy as np

from gensemcom.eval.schemes import PROFILE, Condition, Transmission, alpha_target, sends_key_region
from gensemcom.shared.image_io import decode_image, encode_png
from gensemcom.shared.pb import semcom_pb2 as pb
from gensemcom.shared.pb import semcom_pb2_grpc as pb_grpc
from gensemcom.shared.rpc import connect_client
from gensemcom.transmitter.profiles import PROFILE_METADATA_KEY

MAX_MESSAGE_MB = 64


class RemoteChain:
    """A transmitter address; every scheme but ``bpg-ldpc`` (not a transmitter profile) runs through it."""

    via = "grpc"

    def __init__(self, address: str, timeout_s: float = 600.0) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._stub = pb_grpc.TransmitterStub(connect_client(address, MAX_MESSAGE_MB))

    def send(self, image: np.ndarray, name: str, scheme: str, condition: Condition) -> Transmission:
        frame_id = condition.frame_id(name)
        params = condition.channel_params()
        request = pb.ImageRequest(
            image=encode_png(image), frame_id=frame_id, request_id=name, alpha=alpha_target(scheme, condition) or 0.0,
            channel=pb.ChannelConfig(model=params.model, snr_db=params.snr_db, seed=params.seed,
                                     k_factor=params.k_factor),
        )
        metadata = [(PROFILE_METADATA_KEY, PROFILE[scheme])] if PROFILE[scheme] else []
        try:
            (delivery,) = list(self._stub.Send(iter([request]), metadata=metadata, timeout=self.timeout_s))
        except grpc.RpcError as exc:
            raise RuntimeError(f"{self.address}: {exc.code().name}: {exc.details()}") from None
        if delivery.status.code != 0:
            raise RuntimeError(f"{self.address} could not deliver {name} ({scheme}): {delivery.status.message}")
        crc = {name.lower(): s.crc_ok for s in delivery.segments
               if (name := pb.SegmentKind.Name(s.kind).removeprefix("SEGMENT_KIND_")) in ("MASK", "PROMPT")}
        return Transmission(
            image=decode_image(delivery.image_png),
            symbols=sum(s.n_symbols for s in delivery.segments),
            alpha=float(delivery.alpha) if sends_key_region(scheme) else None,
            detail={"segmenter": delivery.segmenter, "crc": crc},
        )
