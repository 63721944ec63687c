"""A few daemon threads working through a list, for the parallel mode's table streams.

Daemon threads, not a ThreadPoolExecutor: the interpreter joins an executor's
threads when it exits, so a run ended by SIGTERM while one of them waits on a
socket (a stalled download or upload) would not end for a minute. The job's
last line is written and the process exits; the server ends the sessions of
a process that is gone and rolls back what they had not committed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any


class Workers:
    """`jobs` daemon threads running `work(item)` over `items`, in order; the first failure hands out no more."""

    def __init__(self, name: str, jobs: int, work: Callable[[Any], Any], items: Sequence[Any]):
        self._work = work
        self._pending: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        for index, item in enumerate(items):
            self._pending.put((index, item))
        self._count = len(items)
        self.results: dict[int, Any] = {}
        self.failure: BaseException | None = None
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{n}", daemon=True)
                         for n in range(min(jobs, len(items)))]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        while self.failure is None:
            try:
                index, item = self._pending.get_nowait()
            except queue.Empty:
                return
            try:
                result = self._work(item)
            except BaseException as exc:  # noqa: BLE001 - handed to wait(), which raises it in the caller
                with self._lock:
                    if self.failure is None:
                        self.failure = exc
                return
            with self._lock:
                self.results[index] = result

    def wait(self) -> list[Any]:
        """Every result in the items' order, once all are done; the first failure as soon as there is one."""
        while any(thread.is_alive() for thread in self._threads) and self.failure is None:
            time.sleep(0.05)  # short sleeps: the main thread takes SIGTERM's handler between them
        if self.failure is not None:
            raise self.failure
        return [self.results[index] for index in range(self._count)]

    def join(self, seconds: float) -> None:
        """Give the threads at most `seconds` to end (after their work was told to stop)."""
        deadline = time.monotonic() + seconds
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
