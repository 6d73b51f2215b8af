"""Dynamic batching: concurrent requests share one worker that runs them in batches.

A GPU runs a batch of 8 diffusion inpaintings in little more time than one,
so the receiver gathers concurrent frames: the worker takes the first waiting
item, then waits at most ``max_wait_s`` for more, up to ``max_batch``, and
runs them together. Callers block on their own item and get their own result
(or their own exception) back. The queue is bounded: when ``max_queue`` items
wait, :meth:`Batcher.submit` raises :class:`~gensemcom.shared.rpc.Overloaded`
(RESOURCE_EXHAUSTED) at once instead of letting memory grow.

The batch function receives a list and must return a list of the same length
in the same order. If it raises, every item of that batch gets the exception.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

from gensemcom.shared.rpc import Overloaded

log = logging.getLogger(__name__)

I = TypeVar("I")
O = TypeVar("O")


@dataclass(frozen=True)
class BatchStats:
    batches: int
    items: int
    largest: int


class Batcher(Generic[I, O]):
    """One worker thread running ``run(list_of_items) -> list_of_results`` on batches of waiting items."""

    def __init__(
        self,
        run: Callable[[list[I]], Sequence[O]],
        max_batch: int = 8,
        max_wait_s: float = 0.01,
        max_queue: int = 64,
        name: str = "batcher",
    ) -> None:
        if max_batch < 1 or max_queue < 1 or not max_wait_s >= 0:
            raise ValueError(f"need max_batch >= 1, max_queue >= 1, max_wait_s >= 0; got {max_batch}, "
                             f"{max_queue}, {max_wait_s}")
        self._run = run
        self.max_batch, self.max_wait_s, self.max_queue = max_batch, max_wait_s, max_queue
        self._queue: queue.Queue[tuple[I, Future]] = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._batches = self._items = self._largest = 0
        self._worker = threading.Thread(target=self._loop, name=name, daemon=True)
        self._worker.start()

    @property
    def stats(self) -> BatchStats:
        return BatchStats(self._batches, self._items, self._largest)

    @property
    def waiting(self) -> int:
        """Items queued and not yet taken into a batch (approximate while other threads submit)."""
        return self._queue.qsize()

    def submit(self, item: I) -> Future:
        """Queue ``item``; its Future resolves to its result. Raises Overloaded when the queue is full."""
        if self._stop.is_set():
            raise Overloaded("the batcher is shutting down")
        future: Future = Future()
        try:
            self._queue.put_nowait((item, future))
        except queue.Full:
            raise Overloaded(f"{self.max_queue} requests already waiting; try again later") from None
        return future

    def __call__(self, item: I, timeout: float | None = None) -> O:
        """Submit and wait for this item's result (or its exception)."""
        return self.submit(item).result(timeout)

    def close(self) -> None:
        """Finish the queued items, then stop the worker."""
        self._stop.set()
        self._worker.join()

    def _take(self) -> list[tuple[I, Future]]:
        try:
            batch = [self._queue.get(timeout=0.05)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _loop(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            batch = self._take()
            if not batch:
                continue
            items = [item for item, _ in batch]
            try:
                results = list(self._run(items))
                if len(results) != len(items):
                    raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
            except Exception as exc:  # noqa: BLE001 - every caller of this batch gets the failure
                log.exception("batch of %d failed", len(items))
                for _, future in batch:
                    future.set_exception(exc)
            else:
                for (_, future), result in zip(batch, results):
                    future.set_result(result)
            self._batches += 1
            self._items += len(items)
            self._largest = max(self._largest, len(items))
