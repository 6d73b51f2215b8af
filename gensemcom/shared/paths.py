"""Where the project finds data that is not in the repository."""

import os
from pathlib import Path


def shared_data_dir() -> Path:
    """../shared/data beside the checkout, or $SEMCOM_SHARED_DATA."""
    env = os.environ.get("SEMCOM_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"
