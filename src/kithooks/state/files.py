"""File operations of the sidecar backend: safe reads, durable replacement, cleanup.

Nothing here follows a FIFO or a device into a blocking read, and every replacement keeps
the target's mode and owner and writes through a symlink to the file it points at.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from pathlib import Path

from .errors import StateError

__all__ = [
    "fsync_directory",
    "lock_descriptor",
    "open_regular",
    "read_parts",
    "read_regular",
    "remove_stray_temporaries",
    "replace_file",
    "temporary_path",
    "unlock_descriptor",
    "write_all",
]

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}
NEW_FILE_MODE = 0o644


def lock_descriptor(fd: int, *, blocking: bool = True) -> bool:
    """Take the exclusive ``flock`` on ``fd``'s file: wait for it (``blocking``; a signal
    handler's exception still interrupts the wait), or return False when it is held.

    ``fcntl`` directly, not a cross-platform library: the sidecar's files are opened with
    POSIX-only flags anyway, and importing filelock cost every ``claude-hook`` process
    about a tenth of its start-up.
    """
    if blocking:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in _HELD:
            return False
        raise
    return True


#: What a non-blocking ``flock`` of a held lock fails with (some file systems say EACCES).
_HELD = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES})


def unlock_descriptor(fd: int) -> None:
    """Release the ``flock`` :func:`lock_descriptor` took."""
    fcntl.flock(fd, fcntl.LOCK_UN)


def _not_regular(path: Path, st: os.stat_result, what: str) -> StateError:
    kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
    return StateError(f"{what} {path} is {kind}, not a regular file")


def _regular(fd: int, path: Path, what: str) -> os.stat_result:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path, st, what)
    return st


def read_regular(path: Path, what: str) -> bytes | None:
    """The bytes of the regular file ``path``, or None when it does not exist.

    A directory, FIFO, socket or device is a :class:`StateError` (a FIFO is opened without
    blocking and never read), as is any other failure to read.
    """
    got = read_parts(path, what, 0, 0)
    return None if got is None else got[1]


def read_parts(path: Path, what: str, head: int, start: int) -> tuple[bytes, bytes] | None:
    """The first ``head`` bytes of the regular file ``path`` and its bytes from ``start`` on.

    None when it does not exist; errors as :func:`read_regular`.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"reading {what} {path}: {exc.strerror}") from exc
    try:
        st = _regular(fd, path, what)
        first = os.pread(fd, head, 0) if head else b""
        chunks, offset = [], start
        while chunk := os.pread(fd, max(st.st_size - offset, 1 << 16), offset):
            chunks.append(chunk)
            offset += len(chunk)
        return first, b"".join(chunks)
    except OSError as exc:
        raise StateError(f"reading {what} {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)


def open_regular(path: Path, what: str, mode_like: Path | None) -> tuple[int, bool]:
    """Open (creating if needed) the regular file ``path`` for reading and appending.

    Returns the descriptor and whether the file was created. A new file gets the mode and
    owner of ``mode_like`` when that exists (the journal holds the same data as the
    sidecar, so it must be no more readable), else mode 0644.
    """
    flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        try:
            fd = os.open(path, flags)
            created = False
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
            created = True
    except OSError as exc:
        raise StateError(f"opening {what} {path}: {exc.strerror or exc}") from exc
    try:
        _regular(fd, path, what)
        if created:
            like = _stat_or_none(mode_like)
            _copy_mode_and_owner(fd, like)
            fsync_directory(path.parent)
    except BaseException:
        os.close(fd)
        raise
    return fd, created


def _stat_or_none(path: Path | None) -> os.stat_result | None:
    if path is None:
        return None
    try:
        return os.stat(path)
    except OSError:
        return None


def _copy_mode_and_owner(fd: int, like: os.stat_result | None) -> None:
    if like is None:
        os.fchmod(fd, NEW_FILE_MODE)
        return
    if (like.st_uid, like.st_gid) != (os.geteuid(), os.getegid()):
        # Only root may give a file away; anyone may keep its group if they belong to it.
        # When neither is allowed the file belongs to the writer, as any new file would.
        for uid, gid in ((like.st_uid, like.st_gid), (-1, like.st_gid)):
            with contextlib.suppress(PermissionError):
                os.fchown(fd, uid, gid)
                break
    os.fchmod(fd, stat.S_IMODE(like.st_mode))


def write_all(fd: int, payload: bytes) -> None:
    """Write every byte of ``payload`` to ``fd`` (a short write is continued)."""
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_path(real: Path) -> Path:
    """The one temporary file a compaction of ``real`` uses (a fixed name: at most one exists)."""
    return real.with_name(f".{real.name}.tmp")


def replace_file(real: Path, payload: bytes) -> None:
    """Replace the file ``real`` (a resolved path, never a symlink) with ``payload``, durably.

    The bytes go to :func:`temporary_path`, get the old file's mode and owner, are fsynced
    and renamed over ``real``, and the directory is fsynced: a crash leaves the old or the
    new file whole. Callers hold the store's lock, so the fixed temporary name is never
    written by two processes at once.
    """
    real.parent.mkdir(parents=True, exist_ok=True)
    old = _stat_or_none(real)
    if old is not None and not stat.S_ISREG(old.st_mode):
        raise _not_regular(real, old, "state file")
    tmp = temporary_path(real)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            write_all(fd, payload)
            _copy_mode_and_owner(fd, old)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_directory(real.parent)


def remove_stray_temporaries(real: Path) -> list[Path]:
    """Delete temporary files crashed writers left beside ``real``; returns what was removed.

    That is :func:`temporary_path` and the randomly named ``.<name>.*.tmp`` files earlier
    kithooks versions wrote. Callers hold the store's lock, so no live writer owns them.
    """
    prefix, removed = f".{real.name}.", list[Path]()
    try:
        names = os.listdir(real.parent)
    except OSError:
        return removed
    for name in names:
        if name.startswith(prefix) and name.endswith(".tmp"):
            path = real.parent / name
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed.append(path)
    return removed
