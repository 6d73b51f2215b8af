"""Which torch device a learned stage runs on: the one every service, tool and benchmark asks."""

import torch


def resolve_device(setting: str | torch.device | None = None) -> torch.device:
    """None or ``"auto"``: the accelerator torch sees, else the CPU; anything else as named.

    Naming an accelerator that torch does not see is an error, not a silent run on the CPU.
    """
    if setting is None or setting == "auto":
        accelerator = torch.accelerator.current_accelerator(check_available=True)
        return accelerator if accelerator is not None else torch.device("cpu")
    device = torch.device(setting)
    if device.type != "cpu" and not torch.accelerator.is_available():
        raise RuntimeError(f"device {str(device)!r} requested but torch sees no accelerator")
    return device
