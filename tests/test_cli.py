"""The `semcom` entry point: heavy sub-apps load on use and show their own options."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("argv, expect", [
    (["captioner", "finetune", "--help"], "--data"),
    (["jscc", "eval", "--help"], "--kodak"),
    (["jscc", "train", "--help"], "--steps"),
    (["transmitter", "serve", "--help"], "--key-codec"),
    (["receiver", "serve", "--help"], "--estimator"),
    (["channel", "serve", "--help"], "--attach-truth"),
])
def test_help_lists_the_options(argv: list[str], expect: str) -> None:
    out = subprocess.run([sys.executable, "-m", "gensemcom.cli", *argv], capture_output=True, text=True, timeout=300,
                         env={"COLUMNS": "200", "PATH": ""})
    assert out.returncode == 0, out.stderr
    assert expect in out.stdout


def test_starting_a_service_does_not_import_the_learned_captioner_stack() -> None:
    code = "import sys, gensemcom.cli; print('peft' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr


SERVICES = [("transmitter", "TransmitterSettings"), ("channel", "ChannelSettings"), ("receiver", "ReceiverSettings")]


@pytest.mark.parametrize("service, settings_class", SERVICES)
def test_every_setting_is_an_option_of_serve(service: str, settings_class: str) -> None:
    """A setting without an option can only be reached through YAML or the environment: easy to miss."""
    import typer.main

    from gensemcom.cli import NOT_OPTIONS, app
    from gensemcom.shared import config

    serve = typer.main.get_command(app).commands[service].commands["serve"]
    options = {param.name for param in serve.params}
    fields = set(getattr(config, settings_class).model_fields)
    assert fields - NOT_OPTIONS - options == set()
    assert options - fields == {"config"}


def test_serve_options_reach_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import gensemcom.services
    from gensemcom.cli import app

    seen = {}
    monkeypatch.setattr(gensemcom.services, "serve", lambda name, settings: seen.update(settings=settings))
    argv = ["transmitter", "serve", "--rate-mode", "adaptive", "--target-quality", "26", "--mcs-spread-factor", "2",
            "--max-symbols", "40000", "--grace-s", "3"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    settings = seen["settings"]
    assert (settings.rate_mode, settings.target_quality, settings.mcs_spread_factor, settings.max_symbols,
            settings.grace_s) == ("adaptive", 26.0, 2.0, 40000, 3.0)
    bad = CliRunner().invoke(app, ["transmitter", "serve", "--rate-mode", "turbo", "--mcs", "99"])
    assert bad.exit_code == 2
    assert "--rate-mode: Input should be 'fixed', 'adaptive' or 'importance'" in bad.output
    assert "--mcs: Input should be less than or equal to 15" in bad.output and "Traceback" not in bad.output
