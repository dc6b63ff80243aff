"""Per-plugin re-entrant locks for threads and for asyncio tasks."""

from __future__ import annotations

import asyncio
import threading

__all__ = ["PluginLock"]


class _TaskRLock:
    """A lock owned by an asyncio task, re-entrant within that task."""

    __slots__ = ("_depth", "_lock", "_loop", "_owner")

    def __init__(self) -> None:
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._owner: asyncio.Task[object] | None = None
        self._depth = 0

    async def acquire(self) -> None:
        task = asyncio.current_task()
        if task is not None and self._owner is task:
            self._depth += 1
            return
        loop = asyncio.get_running_loop()
        if self._lock is None or (self._loop is not loop and self._depth == 0):
            self._lock, self._loop = asyncio.Lock(), loop
        await self._lock.acquire()
        self._owner = task
        self._depth = 1

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            assert self._lock is not None
            self._lock.release()


class PluginLock:
    """One plugin's lock: its handlers never run at once, and may re-enter.

    ``thread`` is a :class:`threading.RLock` (re-entrant per thread), taken around every
    handler call. ``task`` is re-entrant per asyncio task; ``aemit`` takes it first, then
    ``thread``, so two tasks on one event loop are serialized too.
    """

    __slots__ = ("task", "thread")

    def __init__(self) -> None:
        self.thread = threading.RLock()
        self.task = _TaskRLock()
