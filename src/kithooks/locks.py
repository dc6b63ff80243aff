"""One lock per plugin, for threads, asyncio tasks and event loops alike.

The contract: a plugin's handlers never run at once, and a handler may emit again. Each
plugin has one :class:`PluginLock`:

* ``slot`` is a dict whose key ``0`` holds the holder's thread id. Taking the plugin is
  one atomic C call, ``slot.setdefault(0, me)``, that stores this thread's id unless
  another is there: ownership is recorded in the same step (a signal handler or a
  ``KeyboardInterrupt`` right after it sees or leaves a plugin held by this thread, as with
  an ``RLock``), it never blocks, and it costs a fraction of ``RLock.acquire(False)``,
  which parses its arguments on every call. The compiled dispatch of :mod:`kithooks.plans`
  inlines it; :func:`leave` deletes the key.
* A coroutine handler that takes the plugin holds it while it awaits: a *hold*.
  ``task`` is its task and ``mark`` a fresh token compared by identity: the one-tuple
  ``(outer,)`` whose item is the mark of the hold it runs inside (``()`` at the top), so
  that one allocation is both the token and a link of the chain of holds. The ``held``
  context variable of its task carries the innermost mark, and child tasks copy it.
  Other tasks of the same loop (which share the thread) wait for a hold; the tasks that
  carry its mark (the handler, its child tasks, their nested emits) re-enter.
  ``inside`` counts the coroutine handlers that re-entered and still run: when the
  handler that took the plugin returns before them, the last of them gives it back
  (``orphan``). A task the handler left running after the hold ended waits like any
  other.

A plugin held by this thread is a re-entry (a handler emitting again); held by another,
a wait. Waiting never blocks an event loop: :func:`wait_async` polls with a short back-off
while the loop runs other tasks. Synchronous waiters (:func:`wait_sync`) queue in arrival
order and sleep on the lock's condition, which :func:`leave` signals; while any waits, a
newcomer queues behind them instead of taking the plugin first, so a thread that emits in
a tight loop cannot starve another. Both kinds of wait look for cycles first: when plugin
A's handler waits for plugin B whose holder waits (directly or through others) for A,
waiting would hang forever, so the wait fails at once with :class:`LockCycleError` naming
both plugins; the manager reports it as a failure of that call and lets the rest finish.

A synchronous ``emit`` from one task of an event loop cannot wait for a plugin held by
another task of the same loop (that task cannot run until the wait returns): it fails with
:class:`LockCycleError` too, which says to use ``aemit``.
"""

from __future__ import annotations

import collections
import contextvars
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "LockCycleError",
    "PluginLock",
    "enter_async",
    "enter_sync",
    "held",
    "leave",
    "wait_async",
    "wait_sync",
]

_get_ident: Final = threading.get_ident

#: The mark (see ``PluginLock.mark``) of the innermost hold this task chain runs inside;
#: its item links to the next hold out, down to ``()``. Child tasks and
#: ``asyncio.to_thread`` copy it: a child task of a handler may re-enter its plugin while
#: the hold lasts, and a thread (or another thread's event loop) that the handler waits
#: for fails at once instead of waiting for a plugin its parent holds.
held: contextvars.ContextVar[tuple[Any, ...]] = contextvars.ContextVar("kithooks_held", default=())

#: Who waits for which lock: a thread id (sync waits) or a task (async waits) -> lock.
_waiting: dict[object, PluginLock] = {}
#: What some task inside a hold waits for: ``id`` of the hold's mark -> (the mark, lock), for
#: cycle detection. Marks are keyed by identity (equal tuples are different holds); the
#: entry keeps its mark alive and is matched by identity, so an entry left behind can never
#: be taken for a later hold's mark that reuses the address.
_waiting_in: dict[int, tuple[tuple[Any, ...], PluginLock]] = {}
_graph_lock = threading.Lock()
_SLICE = 0.05  # seconds a sync waiter sleeps before it looks for a cycle again


class LockCycleError(RuntimeError):
    """Waiting for a plugin would never end (a cycle of nested emits); the call is skipped."""


class PluginLock:
    """One plugin's lock. See the module docstring for the design.

    ``take(0, me) is me`` takes it for thread id ``me`` (anything else: held); whoever
    takes it ends with :func:`leave`.
    """

    __slots__ = ("freed", "inside", "mark", "name", "orphan", "queue", "slot", "take", "task")

    def __init__(self, name: str) -> None:
        self.name = name
        self.slot: dict[int, int] = {}
        self.take = self.slot.setdefault
        #: The task of the hold (see the module docstring), while it lasts.
        self.task: asyncio.Task[Any] | None = None
        #: The hold's token (see the module docstring), while it lasts.
        self.mark: tuple[Any, ...] | None = None
        #: Coroutine handlers that re-entered the hold and still run.
        self.inside = 0
        #: The handler that took the plugin has returned; the last one inside gives it back.
        self.orphan = False
        #: Threads sleeping in wait_sync, in arrival order; ``leave`` wakes them.
        self.queue: collections.deque[int] = collections.deque()
        self.freed = threading.Condition(threading.Lock())

    @property
    def waiters(self) -> int:
        """How many threads wait for the plugin."""
        return len(self.queue)

    @property
    def owner(self) -> int:
        """The thread holding the plugin (0: nobody)."""
        return self.slot.get(0, 0)

    def __repr__(self) -> str:
        return f"<PluginLock {self.name!r} owner={self.owner} task={self.task!r}>"

    def holder(self) -> object | None:
        """Who holds the lock now: a suspended task, a thread id, or None (best effort)."""
        task = self.task
        if task is not None:
            return task
        return self.owner or None

    def wake(self) -> None:
        """Wake the threads waiting for this lock (``leave`` calls it when there are any)."""
        with self.freed:
            self.freed.notify_all()


def marks(innermost: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    """The marks of the holds a task runs inside, innermost first (``innermost`` is what its
    ``held`` carries)."""
    while innermost:
        yield innermost
        innermost = innermost[0]


def _inside(mark: tuple[Any, ...] | None, innermost: tuple[Any, ...]) -> bool:
    """True when ``mark`` is one of the holds ``innermost`` runs inside."""
    return mark is not None and any(m is mark for m in marks(innermost))


def ours(lock: PluginLock) -> bool:
    """True when this task chain runs inside the coroutine handler holding ``lock`` now."""
    return _inside(lock.mark, held.get())


def hold(lock: PluginLock, task: object, took: bool) -> Any:
    """Start a coroutine handler's time in ``lock`` (after :func:`enter_async`; ``took``
    is what it returned): a hold when it took the plugin, else a re-entry counted in
    ``inside``. Pass what it returns to :func:`unhold`. The compiled dispatch of
    :mod:`kithooks.plans` inlines the same steps."""
    if not took:
        lock.inside += 1
        return None
    lock.task = task  # type: ignore[assignment]
    mark = lock.mark = (held.get(),)  # a fresh tuple: only identity counts
    return held.set(mark)


def unhold(lock: PluginLock, token: Any) -> None:
    """End what :func:`hold` started, giving the plugin back when this ends the hold (the
    handler that took it, with nobody inside; or the last one inside an orphaned hold)."""
    if token is None:
        lock.inside -= 1
        if lock.orphan and not lock.inside:
            release(lock)
        return
    if lock.inside:
        lock.orphan = True  # re-entered handlers still run: the last of them gives it back
    else:
        release(lock)
    held.reset(token)


def release(lock: PluginLock) -> None:
    """End ``lock``'s hold and give the plugin back."""
    lock.task = lock.mark = None
    lock.orphan = False
    leave(lock)


def leave(lock: PluginLock) -> None:
    """Give back a lock taken by :func:`enter_sync` / :func:`enter_async` (when they
    returned True; a re-entry gives nothing back)."""
    del lock.slot[0]
    if lock.queue:
        lock.wake()


def _cycle(me: object, lock: PluginLock, innermost: tuple[Any, ...]) -> list[str] | None:
    """With ``_graph_lock`` held: the plugins from ``lock`` back to one ``me`` holds (or a
    hold ``me`` runs inside: ``innermost`` and the holds out from it), if any."""
    chain = [lock.name]
    seen: set[int] = set()
    current: PluginLock | None = lock
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        holder = current.holder()
        if holder is None:
            return None
        is_task = not isinstance(holder, int)
        mark = current.mark
        if holder == me or (is_task and current.owner == me) or _inside(mark, innermost):
            return chain
        nxt = _waiting.get(holder)
        if nxt is None and mark is not None:  # another task inside the hold waits
            entry = _waiting_in.get(id(mark))
            if entry is not None and entry[0] is mark:
                nxt = entry[1]
        if nxt is None and is_task:
            nxt = _waiting.get(current.owner)  # its loop's thread is blocked
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


def _held_by_parent(lock: PluginLock) -> LockCycleError:
    return LockCycleError(
        f"plugin {lock.name!r} is held by the coroutine handler that started this thread "
        "(asyncio.to_thread or a copied context), which waits for it: emitting back to "
        "that plugin from here would never finish, so this call is skipped"
    )


def _mark_waiting(lock: PluginLock, key: object, innermost: tuple[Any, ...]) -> None:
    """Record that ``key`` (a thread id or a task inside the hold ``innermost`` and those
    out from it) waits for ``lock``; raises :class:`LockCycleError` when the wait would
    never end."""
    with _graph_lock:
        chain = _cycle(key, lock, innermost)
        if chain is not None:
            raise _cycle_error(lock, chain)
        _waiting[key] = lock
        for mark in marks(innermost):
            _waiting_in[id(mark)] = (mark, lock)


def _unmark_waiting(lock: PluginLock, key: object, innermost: tuple[Any, ...]) -> None:
    """Undo :func:`_mark_waiting` (given the same ``innermost``)."""
    with _graph_lock:
        _waiting.pop(key, None)
        for mark in marks(innermost):
            entry = _waiting_in.get(id(mark))
            if entry is not None and entry[0] is mark and entry[1] is lock:
                del _waiting_in[id(mark)]


def wait_sync(lock: PluginLock, me: int) -> bool:
    """Take ``lock`` for thread ``me`` after the fast take failed; False: a re-entry.

    Blocks until the holder leaves. Raises :class:`LockCycleError` when the wait would
    never end: a cycle, or a plugin held by a suspended task of this thread's own event
    loop, or by the coroutine handler that started this thread.
    """
    if lock.owner == me:
        if lock.mark is None or ours(lock):
            return False  # this thread (or this task chain) holds it: a nested emit
        raise _suspended_here(lock)
    if ours(lock):
        raise _held_by_parent(lock)
    freed = lock.freed
    queue = lock.queue
    innermost = held.get()
    with freed:
        queue.append(me)
        try:
            while True:
                if queue[0] == me and lock.take(0, me) is me:
                    return True
                _mark_waiting(lock, me, innermost)
                freed.wait(_SLICE)
        finally:
            queue.remove(me)
            if queue:
                freed.notify_all()  # the next in line may take it now
            _unmark_waiting(lock, me, innermost)


async def wait_async(lock: PluginLock, me: int) -> bool:
    """Take ``lock`` for the running task on thread ``me`` after the fast take failed,
    letting the event loop run while it waits; False: a re-entry of this task chain.

    Raises :class:`LockCycleError` when the wait would never end.
    """
    import asyncio

    if ours(lock):
        if lock.owner == me:
            return False  # inside the hold of this task chain: a nested emit
        raise _held_by_parent(lock)
    if lock.owner == me and lock.mark is None:
        return False  # held by a plain handler of this thread: a nested emit
    task = asyncio.current_task()
    key: object = task if task is not None else me
    innermost = held.get()
    delay = 0.0001
    try:
        while lock.take(0, me) is not me:
            _mark_waiting(lock, key, innermost)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.005)
        return True
    finally:
        _unmark_waiting(lock, key, innermost)


def enter_sync(lock: PluginLock) -> bool:
    """Take ``lock`` for a plain handler called from synchronous code; False: a re-entry
    (give nothing back). Pair a True with :func:`leave`."""
    me = _get_ident()
    if not lock.queue and lock.take(0, me) is me:
        return True
    return wait_sync(lock, me)


async def enter_async(lock: PluginLock) -> bool:
    """Take ``lock`` for the running task, letting the event loop run while it waits;
    False: a re-entry. Pair a True with :func:`leave`."""
    me = _get_ident()
    if not lock.queue and lock.take(0, me) is me:
        return True
    return await wait_async(lock, me)
