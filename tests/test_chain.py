"""The three services as real processes on loopback, fed real photos over Transmitter.Send.

With the linear key codec, the key-region PSNR must beat a bound computed
from the channel's noise power (the codec's analytic MSE: truncation + noise
through the orthonormal transform), and must fall as the SNR falls. With the
default DeepJSCC codec, the chain must deliver what the same model gives
in-process on the same symbols' noise level (a second implementation of the
whole key path: encode, AWGN, MMSE, decode).
"""

import io
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gensemcom.demo import local_chain
from gensemcom.shared import metrics
from gensemcom.shared.frame import KeyRegion
from gensemcom.shared.jscc.zoo import load_pretrained
from gensemcom.shared.keycodec import LinearKeyCodec
from gensemcom.shared.keycodecs import DeepJsccKey
from gensemcom.shared.image_io import decode_image
from gensemcom.shared.pb import semcom_pb2 as pb
from gensemcom.shared.pb import semcom_pb2_grpc as pb_grpc
from gensemcom.shared.rpc import connect

pytestmark = pytest.mark.slow

IMAGES = ("people/skimage_astronaut.png", "people/yolov5_zidane.jpg", "people/mmpose_coco_000000000785.jpg")
SNRS_DB = (30.0, 15.0, 5.0)


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.fixture(scope="module")
def deliveries(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, float], pb.Delivery]:
    """Every image at every SNR through a chain whose transmitter uses the linear key codec."""
    log_dir = tmp_path_factory.mktemp("logs")
    requests = [
        pb.ImageRequest(image=(data_dir / name).read_bytes(), frame_id=f"{i}-{snr}", request_id=name, seq=i,
                        channel=pb.ChannelConfig(model="awgn", snr_db=snr, seed=11))
        for snr in SNRS_DB for i, name in enumerate(IMAGES)
    ]
    with local_chain(log_dir, env={"SEMCOM_TX_KEY_CODEC": "linear-dct"}) as chain:
        stub = pb_grpc.TransmitterStub(connect(chain.address, 64))
        out = list(stub.Send(iter(requests), timeout=300))
    assert len(out) == len(requests)
    return {(d.request_id, r.channel.snr_db): d for d, r in zip(out, requests, strict=True)}


@pytest.mark.parametrize("name", IMAGES)
def test_delivery_has_original_size_and_passes_crc_at_high_snr(deliveries, data_dir: Path, name: str) -> None:
    original = decode_image((data_dir / name).read_bytes())
    d = deliveries[(name, 30.0)]
    assert d.status.code == 0, d.status.message
    assert _png(d.image_png).shape == original.shape
    assert (d.height, d.width) == original.shape[:2]
    assert all(s.crc_ok for s in d.segments)
    assert d.prompt


@pytest.mark.parametrize("name", IMAGES)
def test_key_psnr_beats_noise_bound_at_30_db(deliveries, data_dir: Path, name: str) -> None:
    original = decode_image((data_dir / name).read_bytes())
    d = deliveries[(name, 30.0)]
    key = _png(d.key_png)  # the decoded key region before compositing, transparent outside the mask
    mask = key[..., 3] > 0
    # Theory: truncation error on the key pixels (noiseless round trip of the same codec) plus the
    # analytic noise error of the orthonormal transform at the channel's noise power, plus 8-bit
    # rounding (1/12 LSB^2). Pilot-estimation error (~no/64 relative) is negligible at 30 dB.
    codec = LinearKeyCodec()  # the transmitter's default bandwidth ratio
    assert d.key_codec == f"{codec.id}/{codec.version}"
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    bbox = (x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0)
    image = original.astype(np.float32) / 255.0
    symbols, params = codec.encode(image, bbox)
    noiseless = codec.decode(symbols, params, bbox)
    crop = image[y0 : y0 + bbox[3], x0 : x0 + bbox[2]]
    truncation = float(np.mean(((noiseless - crop) ** 2)[mask[y0 : y0 + bbox[3], x0 : x0 + bbox[2]]]))
    noise = codec.expected_mse(image, bbox, d.channel.noise_variance) - codec.expected_mse(image, bbox, 0.0)
    bound_psnr = 10 * np.log10(1 / (1.25 * (truncation + noise) + (1 / 12) / 255**2))
    measured = metrics.psnr(original, key[..., :3], mask)
    assert measured >= bound_psnr, f"key PSNR {measured:.2f} dB below the noise bound {bound_psnr:.2f} dB"
    assert 0 < d.alpha < 1


@pytest.mark.parametrize("name", IMAGES)
def test_key_psnr_falls_with_snr(deliveries, data_dir: Path, name: str) -> None:
    original = decode_image((data_dir / name).read_bytes())
    psnrs = []
    for snr in SNRS_DB:
        d = deliveries[(name, snr)]
        assert d.status.code == 0, d.status.message
        key = _png(d.key_png)
        mask = key[..., 3] > 0
        psnrs.append(metrics.psnr(original, key[..., :3], mask))
    assert psnrs[0] > psnrs[1] > psnrs[2], psnrs


def test_each_hop_logs_one_line_per_frame(deliveries, tmp_path_factory: pytest.TempPathFactory) -> None:
    logs = sorted(tmp_path_factory.getbasetemp().glob("logs*/"))[0]
    for hop in ("transmitter", "channel", "receiver"):
        text = (logs / f"{hop}.log").read_text()
        for frame_id in {d.frame_id for d in deliveries.values()}:
            assert sum(f"frame {frame_id}:" in line for line in text.splitlines()) == 1, (hop, frame_id)


def test_sigterm_lets_in_flight_frames_finish(data_dir: Path, tmp_path: Path) -> None:
    """SIGTERM to the transmitter mid-stream: the open stream still delivers every image, then it exits 0."""
    image = (data_dir / IMAGES[0]).read_bytes()
    with local_chain(tmp_path, env={"SEMCOM_TX_KEY_CODEC": "linear-dct"}) as chain:
        processes = chain.processes
        stub = pb_grpc.TransmitterStub(connect(chain.address, 64))
        stream = stub.Send(iter([pb.ImageRequest(image=image, request_id=str(i)) for i in range(4)]), timeout=120)
        first = next(stream)
        processes["transmitter"].send_signal(signal.SIGTERM)
        rest = list(stream)
        assert processes["transmitter"].wait(timeout=30) == 0
    assert [d.status.code for d in [first, *rest]] == [0, 0, 0, 0]


def test_deepjscc_chain_matches_the_model_in_process(data_dir: Path, tmp_path: Path) -> None:
    """Default chain (DeepJSCC key codec) at 10 dB AWGN vs the same model run here at the SNR the chain reports."""
    name = IMAGES[0]
    original = decode_image((data_dir / name).read_bytes())
    request = pb.ImageRequest(image=(data_dir / name).read_bytes(), frame_id="jscc", request_id=name,
                              channel=pb.ChannelConfig(model="awgn", snr_db=10.0, seed=5))
    with local_chain(tmp_path) as chain:
        (d,) = pb_grpc.TransmitterStub(connect(chain.address, 64)).Send(iter([request]), timeout=300)
    assert d.status.code == 0, d.status.message
    codec = DeepJsccKey(load_pretrained(), bandwidth_ratio=1 / 6)
    assert d.key_codec == f"{codec.id}/{codec.version}"
    mask = _png(d.mask_png) > 0
    ys, xs = np.nonzero(mask)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1 - int(xs.min()), int(ys.max()) + 1 - int(ys.min()))
    code = codec.encode(original, mask, bbox)
    region = KeyRegion(*bbox, codec.bandwidth_ratio, code.params, code.side)
    no = 10 ** (-d.channel.snr_db / 10)
    rng = np.random.default_rng(0)
    noise = np.sqrt(no / 2) * (rng.standard_normal(code.symbols.size) + 1j * rng.standard_normal(code.symbols.size))
    x_hat = (code.symbols + noise) / (1 + no)  # MMSE with a unit gain
    crop = codec.decode(x_hat.astype(np.complex64), np.full(x_hat.size, no / (1 + no)), region, "mmse")
    expected = np.zeros_like(original)
    x, y, w, h = bbox
    expected[y : y + h, x : x + w] = crop
    key = _png(d.key_png)
    chain_psnr = metrics.psnr(original, key[..., :3], mask)
    local_psnr = metrics.psnr(original, expected, mask)
    assert abs(chain_psnr - local_psnr) < 0.5, (chain_psnr, local_psnr)
