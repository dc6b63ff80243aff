"""One lock per plugin, for threads, asyncio tasks and event loops alike.

The contract: a plugin's handlers never run at once, and a handler may emit again. Each
plugin has one :class:`PluginLock`:

* ``rlock`` is a :class:`threading.RLock`, held by the thread running one of the plugin's
  handlers. Uncontended, taking it is one C call, which keeps the sync hot path as fast as
  a bare lock (:meth:`PluginLock.try_acquire` is that call).
* ``task`` is the asyncio task whose coroutine handler holds the plugin across its
  ``await``s. While it is set, other tasks of the same loop (which share the thread, so
  would re-enter ``rlock``) wait for it too.

Waiting (only when the plugin is busy) never blocks an event loop: :func:`wait_async`
polls the lock with a short back-off while the loop runs other tasks. A synchronous wait
blocks its thread, in slices, and both kinds of wait look for cycles first: when plugin A's
handler waits for plugin B whose holder waits (directly or through others) for A, waiting
would hang forever, so the wait fails at once with :class:`LockCycleError` naming both
plugins; the manager reports it as a failure of that call and lets the rest finish.

A synchronous ``emit`` from one task of an event loop cannot wait for a plugin held by
another task of the same loop (that task cannot run until the wait returns): it fails with
:class:`LockCycleError` too, which says to use ``aemit``.
"""

from __future__ import annotations

import contextvars
import re
import sys
import threading
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "LockCycleError",
    "held",
    "PluginLock",
    "check_task",
    "enter_async",
    "enter_sync",
    "wait_async",
    "wait_sync",
]

_get_ident: Final = threading.get_ident

#: The plugins the running coroutine handlers of this task chain hold. Child tasks and
#: ``asyncio.to_thread`` copy it: a child task of a handler may re-enter its plugin, and a
#: thread it waits for fails at once instead of waiting for a lock its parent holds.
held: contextvars.ContextVar[tuple[PluginLock, ...]] = contextvars.ContextVar(
    "kithooks_held", default=()
)


def _current_task() -> Any:
    """The running asyncio task, or None (asyncio is imported only by programs that use it)."""
    aio = sys.modules.get("asyncio")
    if aio is None or aio._get_running_loop() is None:
        return None
    return aio.current_task()


#: Who waits for which lock: a thread id (sync waits) or a task (async waits) -> lock.
_waiting: dict[object, PluginLock] = {}
_graph_lock = threading.Lock()
_SLICE = 0.05  # seconds a sync waiter blocks before it looks for a cycle again
_OWNER = re.compile(r"owner=(\d+)")


class LockCycleError(RuntimeError):
    """Waiting for a plugin would never end (a cycle of nested emits); the call is skipped."""


class PluginLock:
    """One plugin's lock. See the module docstring for the design."""

    __slots__ = ("acquire", "name", "release", "rlock", "task", "task_thread")

    def __init__(self, name: str) -> None:
        self.name = name
        self.rlock = threading.RLock()
        # Bound once: calling these costs a third of a `with lock:` block.
        self.acquire = self.rlock.acquire
        self.release = self.rlock.release
        self.task: asyncio.Task[Any] | None = None
        self.task_thread = 0

    def __repr__(self) -> str:
        return f"<PluginLock {self.name!r} {self.rlock!r} task={self.task!r}>"

    def holder(self) -> object | None:
        """Who holds the lock now: a suspended task, a thread id, or None (best effort)."""
        task = self.task
        if task is not None:
            return task
        # CPython's RLock shows its owner's thread id in its repr, and nowhere else; the
        # slow path reads it there rather than making every fast acquire record it.
        match = _OWNER.search(repr(self.rlock))
        owner = int(match.group(1)) if match else 0
        return owner or None

    def held_by_other_task(self) -> bool:
        """True when a coroutine handler of another task of this thread holds the plugin
        (a child task of the holder, which shares its chain, does not count)."""
        task = self.task
        return task is not None and task is not _current_task() and self not in held.get()


def _cycle(me: object, lock: PluginLock) -> list[str] | None:
    """With ``_graph_lock`` held: the plugins from ``lock`` back to one ``me`` holds, if any."""
    chain = [lock.name]
    seen: set[int] = set()
    current: PluginLock | None = lock
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        holder = current.holder()
        if holder is None:
            return None
        is_task = not isinstance(holder, int)
        if holder == me or (is_task and current.task_thread == me):
            return chain
        nxt = _waiting.get(holder)
        if nxt is None and is_task:
            nxt = _waiting.get(current.task_thread)  # its loop's thread is blocked
        current = nxt
        if current is not None:
            chain.append(current.name)
    return None


def _cycle_error(lock: PluginLock, chain: list[str]) -> LockCycleError:
    names = " -> ".join(repr(n) for n in chain)
    return LockCycleError(
        f"plugin {lock.name!r} is busy in another thread or task that waits for plugin "
        f"{chain[-1]!r}, which this one holds (cycle: {names}); plugins emitting to each other "
        f"from two threads or tasks at once would never finish, so this call to {lock.name!r} "
        "is skipped"
    )


def _suspended_here(lock: PluginLock) -> LockCycleError:
    return LockCycleError(
        f"plugin {lock.name!r} is held by another task of this event loop, suspended in a "
        "coroutine handler; a synchronous emit cannot wait for it here (use aemit)"
    )


def check_task(lock: PluginLock) -> None:
    """After a successful try: refuse when another task of this loop holds the plugin."""
    if lock.held_by_other_task():
        lock.release()
        raise _suspended_here(lock)


def wait_sync(lock: PluginLock) -> None:
    """Block this thread until it holds ``lock`` (the fast try already failed).

    Raises :class:`LockCycleError` when the wait would never end: a cycle, or a plugin
    held by a suspended task of this thread's own event loop.
    """
    me = _get_ident()
    if lock.task is not None and lock.task_thread == me:
        raise _suspended_here(lock)
    if lock in held.get():
        raise LockCycleError(
            f"plugin {lock.name!r} is held by the coroutine handler that started this thread "
            "(asyncio.to_thread or a copied context), which waits for it: emitting back to "
            "that plugin from here would never finish, so this call is skipped"
        )
    try:
        while True:
            with _graph_lock:
                chain = _cycle(me, lock)
                if chain is not None:
                    raise _cycle_error(lock, chain)
                _waiting[me] = lock
            if lock.rlock.acquire(True, _SLICE):
                check_task(lock)
                return
    finally:
        with _graph_lock:
            _waiting.pop(me, None)


async def wait_async(lock: PluginLock) -> None:
    """Wait, without blocking the event loop, until this task may hold ``lock``.

    On return this thread holds ``lock.rlock`` and no other task holds the plugin.
    Raises :class:`LockCycleError` when the wait would never end.
    """
    import asyncio

    task = asyncio.current_task()
    me: object = task if task is not None else _get_ident()
    delay = 0.0001
    ours = held.get()
    try:
        while True:
            if lock.rlock.acquire(False):
                if lock.task is None or lock.task is task or lock in ours:
                    return
                lock.rlock.release()
            with _graph_lock:
                chain = _cycle(me, lock)
                if chain is not None:
                    raise _cycle_error(lock, chain)
                _waiting[me] = lock
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.005)
    finally:
        with _graph_lock:
            _waiting.pop(me, None)


def enter_sync(lock: PluginLock) -> None:
    """Take ``lock`` for a plain handler called from synchronous code (see the module doc)."""
    if not lock.acquire(False):
        wait_sync(lock)
    elif lock.task is not None:
        check_task(lock)


async def enter_async(lock: PluginLock, task: Any) -> None:
    """Take ``lock`` for ``task``, letting the event loop run while it waits."""
    if lock.acquire(False):
        if lock.task is None or lock.task is task or lock in held.get():
            return
        lock.release()
    await wait_async(lock)
