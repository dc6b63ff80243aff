"""The default backend: the sidecar file, a journal beside it, and a lock file.

A mutation appends one checksummed line to ``<sidecar>.journal`` and fdatasyncs it: the
cost does not depend on the store's size. When the journal outgrows twice the sidecar (and
32 KiB), the whole state is written into the sidecar in the original's format (atomically,
keeping its mode and owner, through a symlink) and the journal starts again. Every write of
the files, and every read but one, happens under an exclusive ``flock`` on
``<sidecar>.lock`` (:func:`~kithooks.state.files.lock_descriptor`), so processes and stores
sharing the sidecar never lose an acknowledged write. The exception: ``flock`` on two opens
of one file conflicts inside one process too, so a store whose thread already holds the
lock through another store reads without it (that thread writes nothing meanwhile) and
refuses to write (it would wait for itself). See :mod:`kithooks.state.journal` for the
journal's format.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import stat
import sys
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from fcntl import LOCK_UN, flock
from pathlib import Path

from .. import logs
from . import journal
from .codec import decode_sidecar, encode_sidecar
from .errors import StateError
from .files import (
    lock_descriptor,
    open_regular,
    read_parts,
    read_regular,
    remove_stray_temporaries,
    replace_file,
    unlock_descriptor,
    write_all,
)

__all__ = ["SidecarBackend"]

log = logs.get("kithooks.state")

#: The journal is compacted when it holds more record bytes than this and than twice the
#: sidecar, so each compaction's cost is spread over at least as many bytes of writes.
COMPACT_AT_LEAST = 32 * 1024
#: How often the compaction at exit tries a lock held elsewhere again (seconds).
LOCK_POLL = 0.001

_Identity = tuple[int, int, int, int] | None
#: Flushes a file's data and size (macOS has no fdatasync: fsync there).
_datasync = getattr(os, "fdatasync", os.fsync)
_READ_ONLY_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT}
_open_backends: weakref.WeakSet[SidecarBackend] = weakref.WeakSet()
#: Sidecars this process wrote a journal record to: compacted at exit.
_written: set[Path] = set()
#: How long the exit-time compaction waits for a lock held elsewhere (seconds).
EXIT_LOCK_WAIT = 2.0
#: Who in this process holds each lock file's ``flock``: the thread and its asyncio task
#: (None outside one), by the lock file's device and inode (what ``flock`` locks, so two
#: paths to one file, a bind mount or a hard link, are one entry). ``flock`` on two opens of
#: one file conflicts even inside one process, so a second store on a sidecar, in the thread
#: that holds its lock through the first, would wait for itself forever; this says when
#: that would happen. Only the holder writes its entry (after its ``flock`` succeeds,
#: removed before it is released), so an entry naming this thread is never stale.
_holders: dict[tuple[int, int], tuple[int, object]] = {}


def current_task() -> object:
    """The asyncio task running on this thread, or None (no loop runs here, or asyncio was
    never imported: not imported here, so that a store costs no process its import)."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    loop = asyncio._get_running_loop()  # None, not an exception, when no loop runs
    if loop is None:
        return None
    task: object = asyncio.current_task(loop)
    return task


def held_here_message(path: Path, holder_task: object) -> str:
    """Why a store cannot take the file lock of ``path``: this thread already holds it
    through another store (in another asyncio task, ``holder_task``, or in this one)."""
    if holder_task is not None and holder_task is not current_task():
        return (
            f"the state file {path} is locked by a batch() open in another asyncio task on "
            "this thread: a batch was held across an await. Tasks share the thread, so this "
            "task cannot wait for it. Do not await inside `with store.batch():` (read what "
            "you need, await, then open the batch for the reads and writes only), or run the "
            "whole block in a thread with asyncio.to_thread(), where other stores wait for it"
        )
    return (
        f"the state file {path} is locked by another StateStore on it in this thread (its "
        "batch() is open): this store would wait for the thread that waits for it. Use one "
        "store per session in a process (the manager's pm.state, which handlers reach "
        "through ctx.get_state/set_state), or write through the store whose batch is open"
    )


def _identity(path: str) -> _Identity:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


class SidecarBackend:
    """The sidecar ``path`` with its journal and lock file (the files of a symlink's target).

    Files are opened when first needed and kept open; :meth:`close` releases them.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        #: The file the sidecar is, after following symlinks: what compaction replaces.
        self.real = Path(os.path.realpath(self.path))
        self.journal_path = self.real.with_name(self.real.name + ".journal")
        self.lock_path = self.real.with_name(self.real.name + ".lock")
        self._lock_key: tuple[int, int] | None = None  # the lock file's (st_dev, st_ino)
        self._watched = (str(self.journal_path), str(self.real))
        self._lock_fd: int | None = None
        self._lock_pid = 0
        self._waiting = False  # a thread is in lock(), waiting for the flock
        self._journal_fd: int | None = None
        self._journal_pid = 0
        self._journal_ino = 0
        self._base: journal.Base = journal.base_of(b"")
        self._header: bytes | None = None  # the journal header our view follows; None: reset
        self._offset = 0  # end of the last journal record applied to our view
        self._line = 1  # journal line number at _offset
        self._sidecar_size = 0
        self._seen: tuple[_Identity, _Identity] = (None, None)
        self._swept = False
        self._refusing: str | None = None  # why writes are refused (see write())
        #: The state to compact into the sidecar when the lock is released (see write()).
        self._compact_due: Mapping[str, str] | None = None
        _open_backends.add(self)

    def __repr__(self) -> str:
        return f"SidecarBackend({str(self.path)!r})"

    def __del__(self) -> None:
        self.close()

    # -- locking ------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, write: bool) -> Iterator[object]:
        """Hold the ``flock`` on the lock file (see :meth:`StateBackend.lock`).

        When the block inside wrote a record that made the journal big, the journal is
        compacted as the block ends without an exception, before the lock is released (see
        :meth:`write`).

        When this thread already holds it through another backend on the same sidecar (a
        second store in this process, inside the first one's ``batch()``), waiting would
        never end: a read (``write=False``) goes ahead without the lock, yielding None (the
        holder is this thread, so no write of its is under way: the files are whole), and a
        write raises :class:`RuntimeError` saying what to do. Another thread's hold is
        waited for.
        """
        fd = self._lock_descriptor(write)
        if fd is None:
            yield None
            return
        key = self._lock_key
        assert key is not None  # set with the descriptor
        ident = threading.get_ident()
        holder = _holders.get(key)
        if holder is not None and holder[0] == ident:
            if write:
                raise RuntimeError(held_here_message(self.path, holder[1]))
            yield None
            return
        mine = (ident, current_task())
        pid = self._lock_pid
        # Everything from the wait on is inside the try, so an exception a signal handler
        # raises anywhere (a Ctrl-C as flock returns, before the entry is made) releases
        # what was taken. The finally calls nothing before the unlock, a C call: no handler
        # runs in between, so one interruption cannot skip it.
        try:
            self._waiting = True
            try:
                lock_descriptor(fd)
            except OSError as exc:
                raise StateError(f"locking state lock file {self.lock_path}: {exc}") from exc
            finally:
                self._waiting = False
            _holders[key] = mine
            self._compact_due = None
            if not self._swept:
                remove_stray_temporaries(self.real)
                self._swept = True
            yield fd
            if self._compact_due is not None:
                self._compact_after_write()
        finally:
            self._compact_due = None
            # Not in a child forked meanwhile: it closed its copy (and holds nothing).
            if self._lock_fd == fd and self._lock_pid == pid:
                if key in _holders and _holders[key] is mine:
                    del _holders[key]  # before the release: then another thread may enter
                flock(fd, LOCK_UN)  # a no-op when the wait was interrupted

    def waits_for_this_thread(self) -> bool:
        """Whether a thread waits in :meth:`lock` for the flock that the calling thread holds
        through another backend on this sidecar: the store's thread lock (which that thread
        holds while it waits) must not be waited for then, or neither thread ever goes on."""
        holder = None if self._lock_key is None else _holders.get(self._lock_key)
        return self._waiting and holder is not None and holder[0] == threading.get_ident()

    def _lock_descriptor(self, write: bool) -> int | None:
        if self._lock_fd is not None and self._lock_pid == os.getpid():
            return self._lock_fd
        self._forget_inherited()
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
        try:
            if write:
                self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, flags, 0o644)
        except OSError as exc:
            if not write and exc.errno in _READ_ONLY_ERRORS:
                return None  # nothing can be written here: read without the lock
            raise StateError(f"opening state lock file {self.lock_path}: {exc}") from exc
        try:
            st = os.fstat(fd)
        except OSError as exc:
            os.close(fd)
            raise StateError(f"reading state lock file {self.lock_path}: {exc}") from exc
        self._lock_fd, self._lock_pid = fd, os.getpid()
        self._lock_key = (st.st_dev, st.st_ino)
        return fd

    def _forget_inherited(self) -> None:
        """Close descriptors a forked child inherited: a shared flock would not exclude."""
        if self._lock_fd is not None and self._lock_pid != os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None
        if self._journal_fd is not None and self._journal_pid != os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._journal_fd)
            self._journal_fd = None

    def close(self) -> None:
        """Close the lock file and the journal (reopened when next needed)."""
        for name in ("_lock_fd", "_journal_fd"):
            fd = getattr(self, name, None)
            if fd is not None:
                setattr(self, name, None)
                with contextlib.suppress(OSError):
                    os.close(fd)

    # -- reading ------------------------------------------------------------------------

    def _observe(self) -> tuple[_Identity, _Identity]:
        return _identity(self._watched[0]), _identity(self._watched[1])

    def exists(self) -> bool:
        """Whether the store has been written: its sidecar or its journal exists.

        Until the first compaction (and after a writer was killed) the state is in the
        journal alone, so the sidecar missing does not mean the state is. Touches nothing.
        """
        return any(os.path.exists(name) for name in self._watched)

    def stale(self) -> bool:
        """Whether the journal or the sidecar changed since this backend last looked."""
        return self._observe() != self._seen

    def load(self) -> dict[str, str]:
        """The sidecar with every journal record applied.

        On failure (a damaged file, an error reading either) this backend's view of the
        files is left as it was: the next write appends to the journal it knew, never
        starts the journal afresh over records it could not read. A load that succeeds
        ends the refusal of writes after a failed write that could not be undone.
        """
        data = self._read()
        self._refusing = None
        return data

    def _read(self) -> dict[str, str]:
        """:meth:`load`, without ending a refusal of writes (for :meth:`sync`)."""
        seen = self._observe()
        raw = read_regular(self.real, "state file") or b""
        data = decode_sidecar(raw, f"state file {self.path}")
        base = journal.base_of(raw)
        header, offset, line = None, 0, 1  # no journal that applies: the next write starts one
        log_raw = read_regular(self.journal_path, "state journal")
        if log_raw:
            where = f"state journal {self.journal_path}"
            if journal.parse_header(log_raw, where) == base:
                records, used = journal.parse_records(log_raw[journal.HEADER_LENGTH :], where, 2)
                journal.apply(data, records)
                header = log_raw[: journal.HEADER_LENGTH]
                offset, line = journal.HEADER_LENGTH + used, 2 + len(records)
        # Everything was read: only now does the view change, in one statement.
        size = len(raw)
        self._base, self._sidecar_size, self._header, self._offset, self._line, self._seen = (
            base,
            size,
            header,
            offset,
            line,
            seen,
        )
        return data

    def sync(self, data: dict[str, str]) -> dict[str, str]:
        """``data`` with what was appended to the journal since; a full load after a
        compaction or when another program rewrote the sidecar."""
        seen = self._observe()
        if seen == self._seen:
            return data
        if seen[1] == self._seen[1] and self._header is not None and seen[0] is not None:
            got = read_parts(
                self.journal_path, "state journal", journal.HEADER_LENGTH, self._offset
            )
            if got is not None and got[0] == self._header:
                where = f"state journal {self.journal_path}"
                records, used = journal.parse_records(got[1], where, self._line)
                journal.apply(data, records)  # again from _offset if interrupted: idempotent
                self._offset, self._line, self._seen = (
                    self._offset + used,
                    self._line + len(records),
                    seen,
                )
                return data
        return self._read()

    # -- writing ------------------------------------------------------------------------

    def _journal(self) -> int:
        """The open journal; reopened (or created) when the file at its path is another.

        Called after :meth:`sync` under the lock, so ``_seen`` describes the path now.
        """
        fd, now = self._journal_fd, self._seen[0]
        if fd is not None and self._journal_pid == os.getpid():
            if now is not None and now[0] == self._journal_ino:
                return fd
            self._journal_fd = None  # removed or replaced by someone: let it go
            with contextlib.suppress(OSError):
                os.close(fd)
        self._forget_inherited()
        fd, created = open_regular(self.journal_path, "state journal", self.real)
        self._journal_fd, self._journal_pid = fd, os.getpid()
        self._journal_ino = os.fstat(fd).st_ino
        if created:
            self._header = None
        return fd

    def write(self, changes: Mapping[str, str | None], data: Mapping[str, str]) -> None:
        """Append one record for ``changes`` and fdatasync.

        A write that fails is cut off the journal again before the error is raised, so no
        store ever applies it. If even that fails, this backend refuses every further write
        until :meth:`load` (the files may hold the failed write: a retry could apply it
        twice).

        An exception raised after the record reached the file (a signal handler's, such as
        the ``KeyboardInterrupt`` of a Ctrl-C, can come at any point) propagates with the
        record kept: this backend's view stays before it, so the caller undoes the change
        in memory as for a failed write, and its next :meth:`sync` (every read checks
        :meth:`stale`, which is then True) reads the record back: no read sees the memory
        behind the disk, and no compaction writes it.

        When this returns, the record is durable. When the journal has grown big, ``data``
        (the caller's state, which must not change before the lock is released) is
        compacted into the sidecar as :meth:`lock` ends, after the caller has taken the
        write: a compaction that fails (logged, retried by a later write) or is interrupted
        (``KeyboardInterrupt`` from a Ctrl-C in its fsync, which propagates out of the
        ``with`` block) never makes a durable write look failed.
        """
        if self._refusing is not None:
            raise StateError(self._refusing)
        record = journal.encode_record(changes)
        _written.add(self.real)  # fold at exit what may reach the journal
        fd, undo_to = -1, -1  # where to cut the journal back to if the write fails
        try:
            fd = self._journal()
            header, offset, line = self._header, self._offset, self._line
            journal_seen, sidecar_seen = self._seen
            # Until the last line, the view stays before this record, marked unsure: if
            # this raises once the record is in the file (a KeyboardInterrupt anywhere),
            # the store undoes the change in memory, and its next read or sync reads the
            # record back from the journal. Memory never stays behind the disk.
            self._seen = (None, sidecar_seen)
            if header is None:
                header = journal.make_header(self._base)
                os.ftruncate(fd, 0)  # a stale journal, a torn header, or a new file
                undo_to = 0
                write_all(fd, header + record)
                offset, line = len(header), 2
            else:
                if journal_seen is None or journal_seen[1] != offset:
                    os.ftruncate(fd, offset)  # the torn line of a writer that crashed
                undo_to = offset
                write_all(fd, record)
            _datasync(fd)
        except BaseException as exc:
            if undo_to >= 0:
                self._undo_append(fd, undo_to, exc)
            if isinstance(exc, OSError):
                why = self._refusing or f"writing state journal {self.journal_path}: {exc}"
                raise StateError(why) from exc
            raise
        offset += len(record)
        seen: tuple[_Identity, _Identity]
        try:
            st = os.fstat(fd)  # only the journal changed
        except OSError:  # the record is durable all the same: the next sync re-reads the tail
            seen = (None, sidecar_seen)
        else:
            seen = ((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns), sidecar_seen)
        if offset - journal.HEADER_LENGTH > max(COMPACT_AT_LEAST, 2 * self._sidecar_size):
            self._compact_due = data  # done by lock(), after the caller took the write
        # The write has happened. One statement moves the view past it, the last: it calls
        # nothing, so no signal handler runs between it and the return.
        self._header, self._offset, self._line, self._seen = header, offset, line + 1, seen

    def _compact_after_write(self) -> None:
        """The compaction :meth:`write` asked for, as the lock is released. The record is
        durable and its caller has taken it: a failure is logged (the next write tries
        again); an interruption propagates, the files staying consistent (each step of a
        compaction leaves them so, as a crash would)."""
        data, self._compact_due = self._compact_due, None
        assert data is not None
        try:
            self.compact(data)
        except StateError as exc:
            log.warning("compacting %s failed (will retry): %s", self.path, exc)

    def _undo_append(self, fd: int, size: int, exc: BaseException) -> None:
        """Cut the journal back to ``size`` after a failed append (we hold the lock: no
        other store has read the record), or refuse every further write if that fails."""
        try:
            os.ftruncate(fd, size)
            _datasync(fd)
        except OSError as undo_exc:
            self._refusing = (
                f"refusing writes to {self.path}: a failed write ({exc}) could not be undone "
                f"({undo_exc}), so the journal {self.journal_path} may still hold it; call "
                "load() to take the files as they are, then write again"
            )
            log.error("%s", self._refusing)

    def compact(self, data: Mapping[str, str]) -> None:
        """Write ``data`` into the sidecar, then start the journal afresh.

        Nothing to do when the journal holds no record that applies: the sidecar alone is
        the state then.
        """
        if self._header is None or self._offset <= journal.HEADER_LENGTH:
            return
        payload = encode_sidecar(data)
        try:
            replace_file(self.real, payload)
            self._base, self._sidecar_size = journal.base_of(payload), len(payload)
            self._header = None  # the old journal is stale from here on
            fd = self._journal()
            os.fchmod(fd, stat.S_IMODE(os.stat(self.real).st_mode))  # no more readable than it
            header = journal.make_header(self._base)
            os.ftruncate(fd, 0)
            write_all(fd, header)
            _datasync(fd)
        except OSError as exc:
            raise StateError(f"compacting state file {self.path}: {exc}") from exc
        self._header, self._offset, self._line = header, len(header), 2
        self._seen = self._observe()


def _after_fork_in_child() -> None:
    _written.clear()  # the parent compacts what it wrote
    _holders.clear()  # the child closes the descriptors it inherited: it holds no lock
    for backend in list(_open_backends):
        backend._forget_inherited()


@atexit.register
def _compact_at_exit() -> None:
    """Fold the journals this process wrote into their sidecars, so that programs reading
    only the sidecar (KIT, a person) see the whole state after the process ends.

    A lock held elsewhere for longer than :data:`EXIT_LOCK_WAIT` (a batch left open by a
    daemon thread, another process) skips that sidecar: its journal stays complete and the
    next store to open it reads it.
    """
    if not _written:
        return  # nothing to fold

    for real in sorted(_written):
        backend = SidecarBackend(real)
        try:
            fd = backend._lock_descriptor(write=False)
            if fd is None or not backend.journal_path.exists():
                continue  # removed since (a temporary directory): nothing to fold
            deadline = time.monotonic() + EXIT_LOCK_WAIT
            while not lock_descriptor(fd, blocking=False):
                if time.monotonic() > deadline:
                    log.warning("not compacting %s at exit: its lock is held", real)
                    break
                time.sleep(LOCK_POLL)
            else:
                try:
                    backend.compact(backend.load())
                finally:
                    unlock_descriptor(fd)
        except (StateError, OSError) as exc:
            log.warning("compacting %s at exit failed: %s", real, exc)
        finally:
            backend.close()
    _written.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
