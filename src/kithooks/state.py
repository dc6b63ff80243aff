"""The session-scoped key-value store plugins share, and its sidecar file.

The file is the original's: a JSON object of strings, 2-space indented, keys sorted, with
``<``, ``>`` and ``&`` escaped as Go's ``encoding/json`` does, so KIT and kithooks read each
other's files. Each mutation is written before the call returns, atomically and durably:
a temporary file in the same directory is written, flushed and fsynced, renamed over the
sidecar, and the directory is fsynced. A crash at any point leaves either the old or the
new file, never a torn one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["StateError", "StateStore", "sidecar_path"]

_SUFFIX = ".ext-state.json"


class StateError(Exception):
    """A sidecar file could not be read or written; the message names the file."""


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


def _go_json(data: dict[str, str]) -> str:
    """Marshal like Go's ``json.MarshalIndent(m, "", "  ")``: sorted keys, HTML-safe escapes."""
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _check_str(what: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"state {what} must be str, not {type(value).__name__} ({value!r:.60})")


class StateStore:
    """String keys to string values, last write wins, saved to a sidecar file.

    ``path=None`` keeps the store in memory only. Reads are lock-free; mutations and saves
    hold one lock, so saves never interleave and the file always holds the latest state.
    A save that fails undoes the mutation that caused it, releases the lock and raises
    :class:`StateError`: the store and the file never disagree.
    """

    __slots__ = ("_batch_depth", "_data", "_dirty", "_lock", "_path")

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._path = None if path is None else Path(path)
        self._data: dict[str, str] = {}
        self._lock = threading.RLock()
        self._batch_depth = 0
        self._dirty = False
        if self._path is not None:
            self.load()

    @classmethod
    def for_session(cls, session_path: str | os.PathLike[str]) -> StateStore:
        """A store bound to the sidecar of ``session_path`` (see :func:`sidecar_path`), loaded."""
        return cls(sidecar_path(session_path))

    @property
    def path(self) -> Path | None:
        """The sidecar file, or None for an in-memory store."""
        return self._path

    def __repr__(self) -> str:
        return f"StateStore(path={self._path!r}, keys={len(self._data)})"

    def __len__(self) -> int:
        return len(self._data)

    # -- reading -----------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        """The value under ``key``, or None."""
        return self._data.get(key)

    def keys(self) -> list[str]:
        """All keys, sorted."""
        return sorted(self._data)

    def snapshot(self) -> dict[str, str]:
        """A copy of the whole store."""
        with self._lock:
            return dict(self._data)

    # -- writing -----------------------------------------------------------------------

    def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` and save. Non-str keys or values are a TypeError."""
        _check_str("key", key)
        _check_str("value", value)
        with self._lock:
            missing = key not in self._data
            old = self._data.get(key)
            self._data[key] = value
            try:
                self._changed()
            except BaseException:
                if missing:
                    del self._data[key]
                else:
                    self._data[key] = old  # type: ignore[assignment]
                raise

    def delete(self, key: str) -> None:
        """Remove ``key`` and save; deleting a missing key saves nothing."""
        _check_str("key", key)
        with self._lock:
            if key not in self._data:
                return
            old = self._data.pop(key)
            try:
                self._changed()
            except BaseException:
                self._data[key] = old
                raise

    @contextlib.contextmanager
    def batch(self) -> Iterator[StateStore]:
        """Group many mutations into one save at the end of the block.

        Other threads wait while a batch is open. If the block raises, what it changed is
        still saved (memory and file stay the same), then the exception propagates.
        """
        with self._lock:
            self._batch_depth += 1
            try:
                yield self
            finally:
                self._batch_depth -= 1
                if self._batch_depth == 0 and self._dirty:
                    self.save()

    def _changed(self) -> None:
        if self._batch_depth:
            self._dirty = True
        else:
            self.save()

    # -- the file ----------------------------------------------------------------------

    def load(self) -> None:
        """Replace the store with the sidecar's contents.

        A missing or empty file gives an empty store. A malformed file raises
        :class:`StateError` and leaves the store as it was.
        """
        if self._path is None:
            return
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            raw = b""
        except OSError as exc:
            raise StateError(f"reading state file {self._path}: {exc}") from exc
        data = self._parse(raw)
        with self._lock:
            self._data = data
            self._dirty = False

    def _parse(self, raw: bytes) -> dict[str, str]:
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StateError(f"state file {self._path} is not valid JSON: {exc}") from exc
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise StateError(
                f"state file {self._path} must hold a JSON object, not {type(data).__name__}"
            )
        for key, value in data.items():
            if not isinstance(value, str):
                raise StateError(
                    f"state file {self._path}: value of {key!r} must be a string, "
                    f"not {type(value).__name__}"
                )
        return data

    def save(self) -> None:
        """Write the store to its sidecar atomically and durably (no-op in memory)."""
        with self._lock:
            self._dirty = False
            if self._path is None:
                return
            try:
                _atomic_write(self._path, _go_json(self._data).encode("utf-8"))
            except OSError as exc:
                self._dirty = True
                raise StateError(f"saving state file {self._path}: {exc}") from exc

    def switch(self, path: str | os.PathLike[str] | None) -> None:
        """Bind the store to another sidecar file and load it; no keys carry over.

        If the new file is malformed, :class:`StateError` is raised and the store stays
        bound to its old file with its old contents.
        """
        new = None if path is None else Path(path)
        with self._lock:
            old_path, old_data = self._path, self._data
            self._path = new
            self._data = {}
            try:
                self.load()
            except BaseException:
                self._path, self._data = old_path, old_data
                raise


def _atomic_write(path: Path, payload: bytes) -> None:
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
