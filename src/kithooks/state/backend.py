"""The interface between :class:`~kithooks.StateStore` and where its data lives.

The store keeps the data in memory, refuses bad keys and values, serializes threads and
groups batches; a backend makes changes durable and shares them with other stores (other
processes, other machines). A host plugs one in with ``StateStore(backend=...)``; plugins
see the same ``StateStore`` whatever the backend. See docs/state.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

__all__ = ["MemoryBackend", "StateBackend"]


@runtime_checkable
class StateBackend(Protocol):
    """What a state store needs from its storage.

    The store calls every method but :meth:`stale` while holding its own thread lock, and
    :meth:`sync`, :meth:`write` and :meth:`compact` only inside :meth:`lock`. Failures are
    :class:`~kithooks.StateError` with a message a person can act on.
    """

    def lock(self, write: bool) -> contextlib.AbstractContextManager[object]:
        """Exclusive access across every store sharing this storage, for one operation.

        The context manager yields a token that is not None when the lock is held. Only
        for ``write=False`` may it let the caller in without the lock (yielding None),
        when the storage cannot be locked (a read-only directory) or waiting could never
        end (the sidecar backend: this thread holds the lock through another store): the
        caller then reads but never writes or compacts. A lock that this thread can never
        get should raise rather than wait (the sidecar backend raises
        :class:`RuntimeError`).
        """
        ...

    def stale(self) -> bool:
        """Cheap, without the lock: may someone else have written since the last sync?

        False negatives are allowed only for a read that overlaps the other write.
        """
        ...

    def load(self) -> dict[str, str]:
        """The whole current state, read afresh."""
        ...

    def sync(self, data: dict[str, str]) -> dict[str, str]:
        """``data`` brought up to date with what others wrote since the last sync or write.

        May update ``data`` in place (one key at a time, so lock-free readers never see a
        half-applied state) or return a new dict.
        """
        ...

    def write(self, changes: Mapping[str, str | None], data: Mapping[str, str]) -> None:
        """Make ``changes`` (key to new value, None deletes) durable, all or nothing.

        ``data`` is the whole state after the changes. When this returns, the changes
        survive a crash and every other store sees them on its next sync. On a failure
        to write nothing was applied; an exception from elsewhere (a signal handler's
        ``KeyboardInterrupt``) after the changes became durable leaves them on disk: the
        caller undoes them in memory as for a failure, and :meth:`stale` is then True, so
        its next sync reads them back.
        """
        ...

    def compact(self, data: Mapping[str, str]) -> None:
        """Rewrite the storage as ``data`` alone (the current state) if it keeps a log
        with something in it; otherwise do nothing."""
        ...

    def close(self) -> None:
        """Release what the backend holds open; it may be used again afterwards."""
        ...


class MemoryBackend:
    """No storage: the state lives in the store's memory only (``StateStore()``)."""

    def lock(self, write: bool) -> contextlib.AbstractContextManager[object]:
        """Nothing to lock: the store's thread lock is enough."""
        return contextlib.nullcontext(self)

    def stale(self) -> bool:
        """Nobody else writes."""
        return False

    def load(self) -> dict[str, str]:
        """An empty state."""
        return {}

    def sync(self, data: dict[str, str]) -> dict[str, str]:
        """``data`` as it is."""
        return data

    def write(self, changes: Mapping[str, str | None], data: Mapping[str, str]) -> None:
        """Nothing to write."""

    def compact(self, data: Mapping[str, str]) -> None:
        """Nothing to compact."""

    def close(self) -> None:
        """Nothing to release."""
