"""Shared fixtures: real images from ../shared/data and a chain of in-process gRPC services."""

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from gensemcom.adapt.measure import KeyImage
from gensemcom.services import start_channel, start_receiver, start_transmitter
from gensemcom.shared.config import ChannelSettings, ReceiverSettings, TransmitterSettings
from gensemcom.shared.paths import shared_data_dir
from gensemcom.shared.pb import semcom_pb2_grpc as pb_grpc

DATA = shared_data_dir()


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Small tensors: one torch thread avoids oversubscribing a busy 2-core machine (8× slower seen)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "kodak24").is_dir():
        raise FileNotFoundError(f"test data not found at {DATA}; set SEMCOM_SHARED_DATA to the shared/data folder")
    return DATA


@pytest.fixture(scope="session")
def codec():
    """The shipped DeepJSCC key codec (trained weights in the repository)."""
    from gensemcom.shared.jscc.zoo import load_pretrained
    from gensemcom.shared.keycodecs import DeepJsccKey

    return DeepJsccKey(load_pretrained("deepjscc-afgdn"))


def kodak_crops(data_dir: Path, names: list[str], size: int = 96) -> list[KeyImage]:
    """Centre crops with an elliptic key region: small enough for the CPU, real photo content."""
    items = []
    yy, xx = np.mgrid[:size, :size]
    mask = ((yy - size / 2) / (0.45 * size)) ** 2 + ((xx - size / 2) / (0.35 * size)) ** 2 <= 1
    for name in names:
        image = np.asarray(Image.open(data_dir / "kodak24" / f"{name}.png").convert("RGB"))
        top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
        crop = np.ascontiguousarray(image[top : top + size, left : left + size])
        ys, xs = np.nonzero(mask)
        bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1 - int(xs.min()), int(ys.max()) + 1 - int(ys.min()))
        items.append(KeyImage(name, crop, mask, bbox))
    return items


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def astronaut_png(data_dir: Path) -> bytes:
    """A real photo of a person, downscaled to keep tests fast."""
    img = Image.open(data_dir / "people" / "skimage_astronaut.png").convert("RGB").resize((256, 256))
    return png_bytes(np.asarray(img))


@dataclass
class Chain:
    transmitter: pb_grpc.TransmitterStub
    channel: pb_grpc.ChannelStub
    receiver: pb_grpc.ReceiverStub
    addresses: dict[str, str]


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    """Receiver, channel and transmitter servers in this process, wired on free loopback ports."""
    servers = {}
    servers["receiver"] = start_receiver(ReceiverSettings(port=0, max_message_mb=4))
    rx = f"127.0.0.1:{servers['receiver'].port}"
    servers["channel"] = start_channel(ChannelSettings(port=0, next_hop=rx, seed=1, max_message_mb=4))
    ch = f"127.0.0.1:{servers['channel'].port}"
    servers["transmitter"] = start_transmitter(TransmitterSettings(port=0, next_hop=ch, max_message_mb=4))
    tx = f"127.0.0.1:{servers['transmitter'].port}"
    channels = [grpc.insecure_channel(a) for a in (tx, ch, rx)]
    yield Chain(pb_grpc.TransmitterStub(channels[0]), pb_grpc.ChannelStub(channels[1]),
                pb_grpc.ReceiverStub(channels[2]), {"transmitter": tx, "channel": ch, "receiver": rx})
    for c in channels:
        c.close()
    for server in servers.values():
        server.stop(grace_s=1)
