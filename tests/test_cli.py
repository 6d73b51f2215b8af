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
