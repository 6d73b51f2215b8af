"""Shipped DeepJSCC weights: saving, checked loading, and the registry of pretrained models.

A weights file is a safetensors file whose header records the format, the model name
and version, and the architecture, so a file can be checked before any tensor is used:
a receiver must refuse symbols from a model it does not have rather than decode noise.
Files are identified by a digest of their tensors, not of their bytes: safetensors
writes the header's metadata in a random order, so two exports of the same model differ
byte-wise.
"""

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from gensemcom.shared.jscc.models import DeepJSCC, JsccConfig

WEIGHTS_FORMAT = "gensemcom-jscc"
WEIGHTS_FORMAT_VERSION = "1"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class WeightsError(ValueError):
    """A weights file exists but is corrupt, of another format, or does not fit the model."""


@dataclass(frozen=True)
class Pretrained:
    """One shipped model: the file ``weights/<name>.safetensors`` must hold this version and tensor digest."""

    name: str
    version: str
    tensors_sha256: str

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.safetensors"


DEFAULT_MODEL = "deepjscc-afgdn"

#: The shipped models; see weights/<name>.md for each one's training and Kodak results.
PRETRAINED: dict[str, Pretrained] = {
    DEFAULT_MODEL: Pretrained(
        name=DEFAULT_MODEL,
        version="1",
        tensors_sha256="e61f84137198c8ad820a55ad498bfd164162fe4ca4b1c07a11b60764e0ca7fe9",
    ),
}


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """Hex SHA-256 over names, dtypes, shapes and bytes of the tensors, in name order."""
    digest = hashlib.sha256()
    for key in sorted(tensors):
        value = tensors[key].contiguous()
        digest.update(f"{key}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def save_weights(
    model: DeepJSCC,
    path: Path,
    name: str,
    version: str,
    dtype: torch.dtype = torch.float16,
    extra: dict[str, str] | None = None,
) -> None:
    """Write the model's parameters (as ``dtype``) and its identity to a safetensors file."""
    state = {key: value.detach().to("cpu", dtype).contiguous() for key, value in model.state_dict().items()}
    metadata = {
        "format": WEIGHTS_FORMAT,
        "format_version": WEIGHTS_FORMAT_VERSION,
        "name": name,
        "version": version,
        "config": json.dumps(asdict(model.config)),
        "parameters": str(sum(p.numel() for p in model.parameters())),
        **(extra or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata)


def read_metadata(path: Path) -> dict[str, str]:
    """The header metadata of a weights file, checked for format and version."""
    if not path.is_file():
        raise FileNotFoundError(f"DeepJSCC weights file {path} is missing")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except SafetensorError as error:
        raise WeightsError(f"DeepJSCC weights file {path} is corrupt or not safetensors: {error}") from error
    if metadata.get("format") != WEIGHTS_FORMAT:
        raise WeightsError(f"{path} is not a {WEIGHTS_FORMAT} weights file (format={metadata.get('format')!r})")
    if metadata.get("format_version") != WEIGHTS_FORMAT_VERSION:
        raise WeightsError(
            f"{path} has weights format version {metadata.get('format_version')!r}; "
            f"this code reads version {WEIGHTS_FORMAT_VERSION}"
        )
    return metadata


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a weights file (on the CPU, as stored)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: handle.get_tensor(key) for key in handle.keys()}
    except SafetensorError as error:
        raise WeightsError(f"DeepJSCC weights file {path} is corrupt: {error}") from error


def load_weights(path: Path, device: torch.device | str = "cpu", tensors_sha256: str | None = None) -> DeepJSCC:
    """Build the model a weights file describes, check it, and load it for inference.

    Checks the header (format, version, architecture), every tensor's name and shape,
    and, when ``tensors_sha256`` is given, the tensors' digest. The digest is kept as
    ``model.digest`` so evaluation reports can name exactly what they measured.
    """
    metadata = read_metadata(path)
    try:
        fields = json.loads(metadata["config"])
        config = JsccConfig(**{**fields, "rates": tuple(fields["rates"])})
    except (KeyError, TypeError, ValueError) as error:
        raise WeightsError(f"{path} has an unreadable architecture description: {error}") from error
    model = DeepJSCC(config)
    expected = model.state_dict()
    tensors = read_tensors(path)
    digest = tensors_digest(tensors)
    if tensors_sha256 is not None and digest != tensors_sha256:
        raise WeightsError(f"{path} is corrupt or replaced: tensor digest {digest}, expected {tensors_sha256}")
    missing, unexpected = sorted(expected.keys() - tensors.keys()), sorted(tensors.keys() - expected.keys())
    if missing or unexpected:
        raise WeightsError(f"{path} does not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for key, value in expected.items():
        if tensors[key].shape != value.shape:
            raise WeightsError(
                f"{path}: tensor {key} has shape {tuple(tensors[key].shape)}, the model needs {tuple(value.shape)}"
            )
    model.load_state_dict({key: value.float() for key, value in tensors.items()})
    model.name, model.version = metadata.get("name", path.stem), metadata.get("version", "0")
    model.digest = digest
    return model.eval().requires_grad_(False).to(device)


def load_pretrained(name: str = DEFAULT_MODEL, device: torch.device | str = "cpu") -> DeepJSCC:
    """Load a shipped model by name after checking the file's hash and version against the registry."""
    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained DeepJSCC model {name!r}; available: {sorted(PRETRAINED)}")
    entry = PRETRAINED[name]
    if not entry.path.is_file():
        raise FileNotFoundError(f"weights for {name!r} are missing: expected {entry.path}")
    model = load_weights(entry.path, device, entry.tensors_sha256)
    if (model.name, model.version) != (entry.name, entry.version):
        raise WeightsError(
            f"{entry.path} holds {model.name} version {model.version}, registry expects {entry.name} {entry.version}"
        )
    return model
