"""The one device choice every learned stage makes."""

import pytest
import torch

from gensemcom.shared.device import resolve_device


def test_auto_is_the_accelerator_if_torch_sees_one_else_the_cpu() -> None:
    expected = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else torch.device("cpu")
    assert resolve_device(None) == resolve_device("auto") == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.accelerator.is_available(), reason="checks the refusal on a machine without one")
def test_naming_an_absent_accelerator_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no accelerator"):
        resolve_device("cuda")
