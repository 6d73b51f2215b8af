"""What every benchmark records about the machine it ran on (imported by the bench scripts beside it)."""

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what platform reports."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def load_average() -> float | None:
    """The 1-minute load average: other work on the machine slows the wall-clock figures."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
