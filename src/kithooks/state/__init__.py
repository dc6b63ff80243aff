"""The session-scoped key-value store plugins share, and where it is kept.

:class:`StateStore` is what plugins use (through ``ctx.get_state``/``set_state``); it keeps
its data in a :class:`StateBackend`: by default the session's sidecar file
(:class:`SidecarBackend`: the original's JSON format, a journal for constant-time durable
writes, a lock shared by processes), or memory only (:class:`MemoryBackend`). See
docs/state.md.
"""

from __future__ import annotations

from .backend import MemoryBackend, StateBackend
from .errors import StateError
from .sidecar import SidecarBackend
from .store import StateStore, sidecar_path

__all__ = [
    "MemoryBackend",
    "SidecarBackend",
    "StateBackend",
    "StateError",
    "StateStore",
    "sidecar_path",
]
