"""Dynamic batcher: own results for concurrent callers, batch size and wait limits, bounded queue."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from gensemcom.shared.batching import Batcher
from gensemcom.shared.rpc import Overloaded


class Recorder:
    """A batch function that squares its items and records each batch it ran."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.delay_s = delay_s
        self.release = threading.Event()
        self.release.set()

    def __call__(self, items: list[int]) -> list[int]:
        self.release.wait()
        time.sleep(self.delay_s)
        self.batches.append(list(items))
        return [i * i for i in items]


def test_concurrent_callers_get_their_own_results_in_batches_no_larger_than_the_limit() -> None:
    run = Recorder(delay_s=0.02)
    batcher = Batcher(run, max_batch=4, max_wait_s=0.05, max_queue=64)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(batcher, range(40)))
    batcher.close()
    assert results == [i * i for i in range(40)]
    assert max(len(b) for b in run.batches) <= 4
    assert sorted(i for b in run.batches for i in b) == list(range(40))
    assert len(run.batches) < 40, "concurrent requests must share batches"
    assert batcher.stats.items == 40 and batcher.stats.largest <= 4


def test_a_lone_request_waits_no_longer_than_max_wait() -> None:
    batcher = Batcher(Recorder(), max_batch=8, max_wait_s=0.05)
    start = time.perf_counter()
    assert batcher(3) == 9
    assert time.perf_counter() - start < 0.05 + 0.05 + 0.2  # wait budget + one poll interval + slack
    batcher.close()


def test_full_queue_is_overloaded_and_later_requests_succeed() -> None:
    run = Recorder()
    run.release.clear()  # hold the worker inside its first batch
    batcher = Batcher(run, max_batch=1, max_wait_s=0.0, max_queue=2)
    first = batcher.submit(1)
    time.sleep(0.1)  # the worker has taken item 1 and blocks
    queued = [batcher.submit(2), batcher.submit(3)]
    with pytest.raises(Overloaded, match="2 requests already waiting"):
        batcher.submit(4)
    run.release.set()
    assert [first.result(5), *(f.result(5) for f in queued)] == [1, 4, 9]
    assert batcher(5) == 25
    batcher.close()


def test_a_failing_batch_fails_only_its_own_callers() -> None:
    def run(items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky")
        return items

    batcher = Batcher(run, max_batch=1, max_wait_s=0.0)
    with pytest.raises(ValueError, match="unlucky"):
        batcher(13)
    assert batcher(7) == 7
    batcher.close()


def test_wrong_result_count_is_an_error_and_bad_limits_are_refused() -> None:
    batcher = Batcher(lambda items: [], max_batch=2)
    with pytest.raises(RuntimeError, match="0 results for 1"):
        batcher(1, timeout=5)
    batcher.close()
    with pytest.raises(ValueError):
        Batcher(lambda items: items, max_batch=0)
