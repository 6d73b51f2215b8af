"""Settings precedence: flags > environment > YAML > defaults; bad values are refused."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from gensemcom.shared.config import ChannelSettings, TransmitterSettings, load_settings


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    yaml_file = tmp_path / "ch.yaml"
    yaml_file.write_text("snr_db: 7\nmodel: rayleigh\nworkers: 3\n")
    assert load_settings(ChannelSettings).snr_db == 20.0
    from_yaml = load_settings(ChannelSettings, yaml_file)
    assert (from_yaml.snr_db, from_yaml.model, from_yaml.workers) == (7.0, "rayleigh", 3)
    monkeypatch.setenv("SEMCOM_CH_SNR_DB", "9")
    assert load_settings(ChannelSettings, yaml_file).snr_db == 9.0
    assert load_settings(ChannelSettings, yaml_file, snr_db=3.0, model=None).snr_db == 3.0
    assert load_settings(ChannelSettings, yaml_file, snr_db=3.0, model=None).model == "rayleigh"


@pytest.mark.parametrize("flags", [{"snr_db": 99.0}, {"model": "teleport"}, {"port": 70000}, {"seed": -1}])
def test_invalid_values_are_refused(flags: dict) -> None:
    with pytest.raises(ValidationError):
        load_settings(ChannelSettings, **flags)


def test_unknown_yaml_key_and_missing_file_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "tx.yaml"
    bad.write_text("bandwith_ratio: 0.1\n")
    with pytest.raises(ValidationError, match="bandwith_ratio"):
        load_settings(TransmitterSettings, bad)
    with pytest.raises(FileNotFoundError):
        load_settings(TransmitterSettings, tmp_path / "absent.yaml")
