"""Per-stage wall-clock timing, so a client sees where each hop spent its time."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from gensemcom.shared.frame import Timing


class StageClock:
    """Collects ``Timing`` records for one hop: ``with clock.stage("segment"): ...``."""

    def __init__(self, hop: str) -> None:
        self.hop = hop
        self.timings: list[Timing] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings.append(Timing(self.hop, name, (time.perf_counter() - start) * 1e3))
