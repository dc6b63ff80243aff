"""Custom events: plugins talking to plugins by name (``emit_custom_event``).

A plugin subscribes with ``@kithooks.custom_event(name)`` on a plain function or method; a
subscriber is called as ``fn(data)`` or ``fn(data, ctx)``, in registration order, under its
plugin's lock, and one that raises is isolated like any handler.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .hookspecs import static_function
from .locks import LockCycleError, PluginLock, enter_sync, leave

__all__ = ["CustomEventBus", "custom_event", "custom_handlers_of"]

_MARK = "kithooks_custom_event"


def custom_event(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Mark a plugin function as a handler of the custom event ``name``.

    The handler is called as ``fn(data)`` or ``fn(data, ctx)`` when any plugin or the host
    calls ``emit_custom_event(name, data)``; subscribers run in registration order under
    their plugin's lock, and one that raises is logged and skipped.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"custom_event() needs a non-empty event name, got {name!r}")

    def mark(fn: Callable[..., None]) -> Callable[..., None]:
        setattr(fn, _MARK, name)
        return fn

    return mark


def custom_handlers_of(plugin: object) -> list[tuple[str, str, Callable[..., None]]]:
    """``(attribute, event name, bound function)`` for each custom-event handler of ``plugin``."""
    found = []
    for attr in dir(plugin):
        if attr.startswith("__"):
            continue
        raw = static_function(plugin, attr)
        name = getattr(raw, _MARK, None) if raw is not None else None
        if isinstance(name, str):
            found.append((attr, name, getattr(plugin, attr)))
    return found


class _Subscriber:
    __slots__ = ("call", "lock", "order", "plugin")

    def __init__(
        self, plugin: str, fn: Callable[..., None], lock: PluginLock, order: tuple[int, int]
    ) -> None:
        self.plugin, self.lock, self.order = plugin, lock, order
        try:
            params = [
                p
                for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
            ]
        except (TypeError, ValueError):
            params = []
        self.call: Callable[[Any, Any], None] = fn if len(params) >= 2 else (lambda d, c: fn(d))


class CustomEventBus:
    """The subscribers of one manager, by event name."""

    __slots__ = ("_by_name", "_of_plugin")

    def __init__(self) -> None:
        self._of_plugin: dict[str, list[tuple[_Subscriber, str]]] = {}
        self._by_name: dict[str, tuple[_Subscriber, ...]] = {}

    def subscribe(
        self,
        plugin: str,
        handlers: list[tuple[str, str, Callable[..., None]]],
        lock: PluginLock,
        order: tuple[int, int],
    ) -> None:
        """Add ``plugin``'s handlers (from :func:`custom_handlers_of`)."""
        if handlers:
            self._of_plugin[plugin] = [
                (_Subscriber(plugin, fn, lock, order), name) for _attr, name, fn in handlers
            ]
            self._index()

    def unsubscribe(self, plugin: str) -> None:
        """Remove every handler of ``plugin``."""
        if self._of_plugin.pop(plugin, None) is not None:
            self._index()

    def _index(self) -> None:
        by_name: dict[str, list[_Subscriber]] = {}
        for entries in self._of_plugin.values():
            for sub, name in entries:
                by_name.setdefault(name, []).append(sub)
        self._by_name = {
            name: tuple(sorted(subs, key=lambda s: s.order)) for name, subs in by_name.items()
        }

    def has(self, name: str) -> bool:
        """True when some plugin subscribed to ``name``."""
        return name in self._by_name

    def emit(
        self,
        name: str,
        data: Any,
        ctx: Any,
        failed: Callable[[str, str, BaseException], None],
    ) -> None:
        """Call every subscriber of ``name``; failures go to ``failed``."""
        hook = f"custom event {name!r}"
        for sub in self._by_name.get(name, ()):
            try:
                own = enter_sync(sub.lock)
            except LockCycleError as exc:
                failed(sub.plugin, hook, exc)
                continue
            try:
                sub.call(data, ctx)
            except Exception as exc:
                failed(sub.plugin, hook, exc)
            finally:
                if own:
                    leave(sub.lock)
