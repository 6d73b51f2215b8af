"""Generate the Python stubs for proto/semcom/v1 with grpcio-tools.

The stubs are committed under ``gensemcom/shared/pb`` so that a plain
``pip install`` needs no code generation step; ``tests/test_protogen.py``
regenerates them and fails on drift. Run ``python -m gensemcom.shared.protogen``
after editing the .proto file.

protoc writes absolute imports (``from semcom.v1 import semcom_pb2``) that only
work if ``semcom`` is a top-level package; we rewrite them to package-relative
imports so that the stubs live inside ``gensemcom`` without a top-level
``semcom`` package in site-packages.
"""

import re
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "proto"
PROTO_FILES = ("semcom/v1/semcom.proto",)
STUB_DIR = Path(__file__).resolve().parent / "pb"
_ABSOLUTE_IMPORT = re.compile(r"^from semcom\.v1 import (\w+)", re.MULTILINE)


def generate(out_dir: Path) -> list[Path]:
    """Write ``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` into ``out_dir``; return them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        well_known = resources.files("grpc_tools") / "_proto"
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *PROTO_FILES,
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed for {PROTO_FILES}")
        written = []
        for src in sorted((Path(tmp) / "semcom" / "v1").glob("*")):
            text = _ABSOLUTE_IMPORT.sub(r"from . import \1", src.read_text())
            dst = out_dir / src.name
            dst.write_text(text)
            written.append(dst)
    return written


def main() -> int:
    """Regenerate the committed stubs."""
    for path in generate(STUB_DIR):
        print(path.relative_to(REPO_ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
