"""The session-scoped key-value store plugins share."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from .backend import MemoryBackend, StateBackend
from .codec import check_key, check_value
from .errors import StateError
from .sidecar import SidecarBackend
from .sidecar import current_task as _current_task

__all__ = ["StateStore", "sidecar_path"]

_SUFFIX = ".ext-state.json"
_MISSING = object()


def sidecar_path(session: str | os.PathLike[str]) -> Path:
    """The sidecar state file of a session file.

    ``…/abc.jsonl`` gives ``…/abc.ext-state.json``; any other path gets ``.ext-state.json``
    appended.
    """
    text = os.fspath(session)
    if not text:
        raise ValueError("sidecar_path() needs a session path, got ''")
    if text.endswith(".jsonl"):
        return Path(text[: -len(".jsonl")] + _SUFFIX)
    return Path(text + _SUFFIX)


_HELD_ACROSS_AN_AWAIT = (
    "StateStore.batch() is open in another asyncio task on this thread: a batch was held "
    "across an await. Other threads wait for a batch, but tasks share the thread, so this "
    "task cannot. Do not await inside `with store.batch():` (read what you need, await, "
    "then open the batch for the reads and writes only), or run the whole block in a "
    "thread with asyncio.to_thread(), where other batches wait for it."
)


class _Batch:
    """An open ``batch()``: the value each key it changed had before (to write what changed
    and to undo it in memory), the asyncio task that opened it (None outside a task) and
    the process (a child forked inside the batch holds no lock: it must not write it).

    What is written is worked out from the data at the end, not recorded change by change,
    so an exception a signal handler raises in the middle of a ``set()`` (a Ctrl-C) can
    never make the record and the memory disagree.
    """

    __slots__ = ("old", "pid", "task")

    def __init__(self, task: object) -> None:
        self.old: dict[str, object] = {}
        self.task = task
        self.pid = os.getpid()

    def check_task(self) -> None:
        """Refuse the store to any task but the one that opened this batch (the caller
        holds the store's thread lock, so it runs on the batch's thread)."""
        if self.task is not None and _current_task() is not self.task:
            raise RuntimeError(_HELD_ACROSS_AN_AWAIT)

    def record(self, data: dict[str, str], key: str, value: str | None) -> None:
        """Change ``key`` in ``data``, remembering its value before the batch first."""
        if key not in self.old:
            self.old[key] = data.get(key, _MISSING)
        _put(data, key, _MISSING if value is None else value)

    def changes(self, data: dict[str, str]) -> dict[str, str | None]:
        """What the batch changed: key to its value now, None for a key it removed."""
        return {
            key: data.get(key)
            for key, old in self.old.items()
            if data.get(key, _MISSING) != old  # _MISSING equals no str
        }

    def roll_back(self, data: dict[str, str]) -> None:
        for key, old in self.old.items():
            _put(data, key, old)


def _put(data: dict[str, str], key: str, old: object) -> None:
    if old is _MISSING:
        data.pop(key, None)
    else:
        data[key] = old  # type: ignore[assignment]


#: How often a thread waiting for a store's thread lock checks that the wait can end (s).
_WAIT_CHECK = 0.05


class _ThreadLock:
    """A store's reentrant thread lock.

    A thread that holds a sidecar's file lock through one store (in its ``batch()``) and
    then needs a second store on that sidecar, which another thread holds while it waits
    for that file lock, would wait forever: it gets :class:`RuntimeError` instead. Only a
    wait checks; the reads, the hot path, take it inline (``acquire(False)``, else
    :meth:`wait`) rather than through ``with``, which costs a Python call each way.
    """

    __slots__ = ("_store", "acquire", "release")

    def __init__(self, store: StateStore) -> None:
        lock = threading.RLock()
        self.acquire, self.release = lock.acquire, lock.release
        self._store = store

    def __enter__(self) -> None:
        if not self.acquire(False):
            self.wait()

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def wait(self) -> None:
        """Wait for the lock another thread holds; refuse a wait that could never end."""
        while not self.acquire(True, _WAIT_CHECK):
            backend = self._store.backend
            if isinstance(backend, SidecarBackend) and backend.waits_for_this_thread():
                raise RuntimeError(
                    f"the state file {backend.path} is locked by another StateStore on it in "
                    "this thread (its batch() is open), and another thread holds this store "
                    "while it waits for that lock: neither could go on. Use one store per "
                    "session in a process (the manager's pm.state, which handlers reach "
                    "through ctx.get_state/set_state), or write through the store whose "
                    "batch is open"
                )


_R = TypeVar("_R")


def _backend_for(path: Path | None) -> StateBackend:
    return MemoryBackend() if path is None else SidecarBackend(path)


class StateStore:
    """String keys to string values, last write wins, durable and shared between processes.

    ``StateStore(path)`` keeps the data in the sidecar file ``path`` (with a journal and a
    lock file beside it, see docs/state.md); ``StateStore()`` keeps it in memory only;
    ``StateStore(backend=...)`` uses another :class:`~kithooks.state.StateBackend`.

    Every ``set()``/``delete()`` is durable when it returns and costs about the same
    whatever the store's size. Any number of stores, in this process or others, may share
    one sidecar: none loses an acknowledged write, and each sees the others' writes on its
    next call. Reads check for others' writes with two ``stat`` calls and take the file
    lock only when there is something new. While a :meth:`batch` is open, other threads
    wait for it, reads included; another asyncio task on its thread gets
    :class:`RuntimeError`. Another store on the same sidecar, used by the thread that holds
    the batch, reads what is written (not the open batch), and its writes, batches and
    compactions raise :class:`RuntimeError` naming the sidecar: it cannot wait for its own
    thread (use one store per session in a process). A key or value that cannot be stored
    is refused with :class:`StateError` naming the key; a write that fails raises
    :class:`StateError` and changes nothing, in memory or on disk (if the sidecar backend
    cannot undo a failed append, it refuses further writes until :meth:`load`). A write that
    is durable stays in memory even when the compaction it sets off is interrupted (a
    ``KeyboardInterrupt`` from it propagates, the write done). An exception a signal
    handler raises anywhere in a write (a Ctrl-C) releases the lock, and the store's next
    read shows what is on disk: the write if its record reached the journal, else nothing
    of it. When the
    interpreter exits normally, the journals it wrote are folded into their sidecars (see
    :meth:`close`).
    """

    __slots__ = ("_backend", "_batch", "_data", "_lock", "_path")

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        backend: StateBackend | None = None,
    ) -> None:
        if path is not None and backend is not None:
            raise TypeError("StateStore() takes a path or a backend, not both")
        self._path = None if path is None else Path(path)
        self._backend: StateBackend = backend if backend is not None else _backend_for(self._path)
        self._data: dict[str, str] = {}
        self._lock = _ThreadLock(self)
        self._batch: _Batch | None = None
        self.load()

    @classmethod
    def for_session(cls, session_path: str | os.PathLike[str]) -> StateStore:
        """A store bound to the sidecar of ``session_path`` (see :func:`sidecar_path`), loaded."""
        return cls(sidecar_path(session_path))

    @property
    def path(self) -> Path | None:
        """The sidecar file, or None for an in-memory store or another backend."""
        return self._path

    @property
    def backend(self) -> StateBackend:
        """Where the data lives."""
        return self._backend

    def __repr__(self) -> str:
        return f"StateStore(path={self._path!r}, keys={len(self._data)})"

    def __len__(self) -> int:
        return self._read(len)

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------

    def _refresh(self, stale: bool) -> None:
        """Catch up with other stores' writes if ``stale`` (asked of the backend before
        taking the thread lock, which the caller now holds); inside a batch there are none.

        Holding the lock is what makes another thread's read wait for an open batch.
        """
        batch = self._batch
        if batch is not None:
            batch.check_task()
        elif stale:
            with self._backend.lock(write=False):
                self._data = self._backend.sync(self._data)

    def _read(self, take: Callable[[dict[str, str]], _R]) -> _R:
        """``take(data)`` on the current data, under the thread lock (see :meth:`get`)."""
        stale = self._backend.stale()
        lock = self._lock
        if not lock.acquire(False):
            lock.wait()
        try:
            if stale or self._batch is not None:
                self._refresh(stale)
            return take(self._data)
        finally:
            lock.release()

    def get(self, key: str) -> str | None:
        """The value under ``key``, or None."""
        # _read, inlined: the one read on a hot path (a plugin's per-event state).
        stale = self._backend.stale()
        lock = self._lock
        if not lock.acquire(False):
            lock.wait()
        try:
            if stale or self._batch is not None:
                self._refresh(stale)
            return self._data.get(key)
        finally:
            lock.release()

    def keys(self) -> list[str]:
        """All keys, sorted."""
        return self._read(sorted)

    def snapshot(self) -> dict[str, str]:
        """A copy of the whole store."""
        return self._read(dict)

    # -- writing -----------------------------------------------------------------------

    def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, durably.

        A key or value that is not a ``str``, or holds a lone surrogate (it has no UTF-8
        form), is refused with :class:`StateError` naming the key; nothing changes.
        """
        check_key(key)
        check_value(key, value)
        self._change(key, value)

    def delete(self, key: str) -> None:
        """Remove ``key``, durably; deleting a missing key writes nothing."""
        check_key(key)
        self._change(key, None)

    def _change(self, key: str, value: str | None) -> None:
        lock = self._lock
        if not lock.acquire(False):
            lock.wait()
        try:
            if (batch := self._batch) is not None:
                if batch.task is not None:
                    batch.check_task()
                if value is not None or key in self._data:
                    batch.record(self._data, key, value)
                return
            with self._backend.lock(write=True):
                data = self._data = self._backend.sync(self._data)
                old = data.get(key, _MISSING)
                if value is None and old is _MISSING:
                    return
                try:  # an exception anywhere in here (a Ctrl-C too) leaves data as it was
                    _put(data, key, _MISSING if value is None else value)
                    self._backend.write({key: value}, data)
                except BaseException:
                    _put(data, key, old)  # if the record landed, the next sync brings it back
                    raise
        finally:
            lock.release()

    @contextlib.contextmanager
    def batch(self) -> Iterator[StateStore]:
        """Group mutations into one durable write at the end of the block: a transaction.

        Other threads and processes wait while a batch is open (their reads too), and reads
        inside it see the latest state, so a read-modify-write (a counter, a budget) loses
        no update. If the block raises, what it changed is still written, then the
        exception propagates. What is written is what the block changed, worked out
        from the data as it ends. If the write fails, the batch's changes are undone in
        memory too (if its record reached the journal all the same, after a Ctrl-C, the
        next read brings them back); an interruption of the compaction that may follow a
        durable write undoes nothing. A batch inside a batch (same thread, same asyncio
        task) joins the outer one.

        Do not await inside a batch: another asyncio task on the thread that then uses the
        store (opens a batch, reads, writes), or writes through another store on the same
        sidecar, gets :class:`RuntimeError`, since it cannot wait for a lock its own thread
        holds. Run such a block with ``asyncio.to_thread``. For the same reason a second
        store on the sidecar, used inside the batch by its own thread, may read but not write.
        """
        with self._lock:
            if self._batch is not None:
                self._batch.check_task()
                yield self
                return
            with self._backend.lock(write=True):
                self._data = self._backend.sync(self._data)
                batch = self._batch = _Batch(_current_task())
                try:
                    yield self
                finally:
                    self._batch = None
                    # Whatever ends the block, a Ctrl-C included, memory keeps only what
                    # was written (what reached the file returns with the next sync).
                    try:
                        if batch.pid != os.getpid() and self.path is not None:
                            raise RuntimeError(
                                f"state file {self.path}: a batch() opened before os.fork() "
                                "cannot be written by the child, which does not hold the "
                                "lock; its changes in the child are dropped (open the batch "
                                "in the child instead)"
                            )
                        if changes := batch.changes(self._data):
                            self._backend.write(changes, self._data)
                    except BaseException:
                        batch.roll_back(self._data)
                        raise

    # -- the files ---------------------------------------------------------------------

    def _not_in_batch(self, what: str) -> None:
        if self._batch is not None:
            self._batch.check_task()
            raise StateError(f"{what}() cannot run inside batch()")

    def load(self) -> None:
        """Replace the store with what its backend holds now (the sidecar plus the journal).

        A missing or empty file gives an empty store. A malformed file raises
        :class:`StateError` naming it and leaves the store as it was. After a failed write
        the sidecar backend could not undo, this is how writing is allowed again.
        """
        with self._lock:
            self._not_in_batch("load")
            with self._backend.lock(write=False):
                self._data = self._backend.load()

    def compact(self) -> None:
        """Fold the journal into the sidecar: write the whole store in the original's format
        and start the journal afresh (nothing happens when the journal holds no record).

        Done automatically as the journal grows, and by :meth:`close`; call it before
        another program reads the sidecar alone.
        """
        with self._lock:
            self._not_in_batch("compact")
            with self._backend.lock(write=True):
                self._data = self._backend.sync(self._data)
                self._backend.compact(self._data)

    def save(self) -> None:
        """Write the whole store into its sidecar now: the same as :meth:`compact`."""
        self.compact()

    def close(self) -> None:
        """Compact (when the backend can be locked), then release the open files.

        After ``close()`` the sidecar alone holds the whole state, for programs that read
        only it. The store can still be used afterwards.
        """
        with self._lock:
            self._not_in_batch("close")
            with self._backend.lock(write=False) as held:
                if held is not None:
                    self._data = self._backend.sync(self._data)
                    self._backend.compact(self._data)
            self._backend.close()

    def switch(self, path: str | os.PathLike[str] | None) -> None:
        """Bind the store to another sidecar file and load it; no keys carry over.

        If the new file is malformed, :class:`StateError` is raised and the store stays
        bound to its old file with its old contents.
        """
        new_path = None if path is None else Path(path)
        with self._lock:
            self._not_in_batch("switch")
            backend = _backend_for(new_path)
            try:
                with backend.lock(write=False):
                    data = backend.load()
            except BaseException:
                backend.close()
                raise
            self._backend.close()
            self._path, self._backend, self._data = new_path, backend, data
