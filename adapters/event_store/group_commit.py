"""Group commit: concurrent saves share one transaction, and a conflict fails only its own save.

The library serialises writers (it locks the events table per insert), so the cost of a commit
is paid per transaction, not per event. Saves that arrive while a commit is in flight wait and
go together in the next one, up to `max_batch` saves; `max_wait` can hold a batch a little
longer to let it fill. When a batch hits a version conflict, each of its saves is retried on its
own so that only the stale one fails.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

T = TypeVar("T")


class Pending(Generic[T]):
    __slots__ = ("future", "item")

    def __init__(self, item: T, future: asyncio.Future[int]) -> None:
        self.item = item
        self.future = future


class GroupCommitter(Generic[T]):
    """Feeds batches of items to a blocking `write` that returns, per item, a position or an error."""

    def __init__(
        self,
        write: Callable[[Sequence[T]], list[int | BaseException]],
        executor: Executor,
        *,
        max_batch: int = 64,
        max_wait: float = 0.0,
        in_flight: int = 1,
    ) -> None:
        if max_batch < 1 or in_flight < 1:
            raise ValueError("max_batch and in_flight must be at least 1")
        self._write = write
        self._executor = executor
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._pending: list[Pending[T]] = []
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        # Commits in flight at once: the database serialises the inserts, but one batch's round trip and
        # encoding overlap another's commit.
        self._slots = asyncio.Semaphore(in_flight)
        self._writing: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> int:
        """Waits until the item is committed; returns its position or raises its error."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append(Pending(item, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="group-commit")
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        if self._writing:
            await asyncio.gather(*self._writing, return_exceptions=True)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for pending in self._pending:
            if not pending.future.done():
                pending.future.set_exception(RuntimeError("the event store is closed"))
        self._pending.clear()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                await self._slots.acquire()
                if self._max_wait and len(self._pending) < self._max_batch:
                    await asyncio.sleep(self._max_wait)
                if not self._pending:
                    self._slots.release()
                    break
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                task = asyncio.create_task(self._commit(batch))
                self._writing.add(task)
                task.add_done_callback(self._writing.discard)

    async def _commit(self, batch: list[Pending[T]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._executor, self._write, [p.item for p in batch])
        except Exception as error:  # the whole transaction failed: every save in it failed
            results = [error] * len(batch)
        finally:
            self._slots.release()
        for pending, result in zip(batch, results, strict=True):
            if pending.future.done():
                continue
            if isinstance(result, BaseException):
                pending.future.set_exception(result)
            else:
                pending.future.set_result(result)
