"""The committed stubs equal what grpcio-tools generates from proto/ now (no drift)."""

from pathlib import Path

from gensemcom.shared.protogen import STUB_DIR, generate


def test_committed_stubs_match_proto(tmp_path: Path) -> None:
    fresh = generate(tmp_path)
    assert fresh, "protoc generated nothing"
    for path in fresh:
        committed = STUB_DIR / path.name
        assert committed.exists(), f"{committed} missing: run `make proto`"
        assert committed.read_text() == path.read_text(), f"{committed.name} is stale: run `make proto`"
