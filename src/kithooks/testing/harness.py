"""A harness for testing plugins: load, emit, assert, with every host call recorded.

::

    from kithooks.testing import Harness

    h = Harness(my_plugin)                       # an object, a module, or a .py file
    result = h.emit(kithooks.ToolCallEvent(tool_name="bash", input='{"command": "rm -rf /"}'))
    assert result.block
    assert h.printed == ["blocked rm -rf /"]
    assert h.calls[-1] == HostCall("print", ("blocked rm -rf /",))

The harness's manager loads no entry points, keeps its state in a temporary directory
(or the one given), and raises :class:`PluginFailed` when a handler raises or returns a
result of the wrong type, so a test sees the failure instead of a log line.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
from pluggy import PluginValidationError

from ..context import Context
from ..events import Event
from ..loading import LoadError, register_plugin
from ..manager import HandlerError, PluginManager
from ..state import StateStore

__all__ = ["Harness", "HostCall", "PluginFailed"]


class PluginFailed(AssertionError):
    """A plugin raised, returned a wrong result, or failed to load, under the harness."""


@attrs.frozen
class HostCall:
    """One call a plugin made to the host through its :class:`Context`."""

    name: str  #: print, print_info, print_error, send_message, cancel_and_send, abort, exit,
    #: set_model, compact, custom_event, set_state, delete_state
    args: tuple[Any, ...] = ()


class _RecordingStore(StateStore):
    """A state store that reports its mutations to the harness."""

    __slots__ = ("_calls",)

    def __init__(self, path: str | os.PathLike[str] | None, calls: list[HostCall]) -> None:
        self._calls = calls
        super().__init__(path)

    def set(self, key: str, value: str) -> None:
        self._calls.append(HostCall("set_state", (key, value)))
        super().set(key, value)

    def delete(self, key: str) -> None:
        self._calls.append(HostCall("delete_state", (key,)))
        super().delete(key)


class Harness:
    """A fresh manager around one or more plugins, recording what they ask of the host.

    Args:
        plugins: plugin objects, modules, or paths of ``.py`` plugin files.
        state_dir: where the session's sidecar file goes (a new temporary directory when
            None; removed by :meth:`close`).
        context: data fields for the context (``session_id``, ``cwd``, ``model``,
            ``interactive``, ``turn_id``).
        raise_errors: raise :class:`PluginFailed` when a handler fails (the default);
            False only records them in :attr:`errors`.
        aggregate_turns: register the turn aggregator (default True).
    """

    def __init__(
        self,
        *plugins: object,
        state_dir: str | os.PathLike[str] | None = None,
        context: dict[str, Any] | None = None,
        raise_errors: bool = True,
        aggregate_turns: bool = True,
    ) -> None:
        self.calls: list[HostCall] = []
        self.errors: list[HandlerError | LoadError] = []
        self.raise_errors = raise_errors
        self._tmp = (
            None if state_dir is not None else tempfile.TemporaryDirectory(prefix="kithooks-")
        )
        directory = Path(state_dir if state_dir is not None else self._tmp.name)  # type: ignore[union-attr]
        self.session_path = directory / "session.jsonl"
        self.state: StateStore = _RecordingStore(directory / "session.ext-state.json", self.calls)
        self.pm = PluginManager(
            state=self.state,
            context=self._context(context or {}),
            aggregate_turns=aggregate_turns,
            on_error=self._failed,
            on_custom_event=lambda name, data: self.calls.append(
                HostCall("custom_event", (name, data))
            ),
        )
        try:
            for plugin in plugins:
                self.load(plugin)
        except BaseException:
            self.close()  # the caller never gets the harness to close
            raise

    def _context(self, fields: dict[str, Any]) -> Context:
        def record(name: str) -> Any:
            return lambda *args: self.calls.append(HostCall(name, args))

        callbacks = {
            name: record(name)
            for name in (
                "print",
                "print_info",
                "print_error",
                "send_message",
                "cancel_and_send",
                "abort",
                "exit",
                "set_model",
                "compact",
            )
        }
        return Context(**fields, get_session_path=lambda: str(self.session_path), **callbacks)

    def _failed(self, error: HandlerError | LoadError) -> None:
        self.errors.append(error)

    def _check(self, before: int) -> None:
        if self.raise_errors and len(self.errors) > before:
            error = self.errors[before]
            raise PluginFailed(error.message) from error.error

    def load(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object or module, or load a plugin file or directory (as the
        manager's loader does: module functions, classes in the file, directory plugins);
        returns its name. Raises :class:`PluginFailed` when it does not load, as the loader
        would report it: an object, module or file with no hooks (or only optional hooks that
        match none) is refused, naming it, instead of loading as a plugin that does nothing."""
        if isinstance(plugin, str | os.PathLike):
            before = len(self.pm.load_errors)
            names = self.pm.load_plugin_files([plugin], user_dir=None, project_dir=None)
            if len(self.pm.load_errors) > before:
                raise PluginFailed(self.pm.load_errors[-1].message)
            if not names:
                raise PluginFailed(f"{os.fspath(plugin)}: no plugin was loaded")
            return names[0]
        before = len(self.errors)
        try:
            registered = register_plugin(self.pm, plugin, name=name)
        except (PluginValidationError, ValueError) as exc:
            raise PluginFailed(str(exc)) from exc
        self._check(before)
        if registered is None:
            raise PluginFailed(f"the plugin name {name!r} is blocked")
        return registered

    # -- emitting -------------------------------------------------------------------

    @property
    def ctx(self) -> Context:
        """The context handlers receive."""
        return self.pm.context

    def emit(self, event: Event, **context: Any) -> Any:
        """Emit ``event`` (``await`` coroutine handlers too) and return the merged result.

        Keyword arguments override context fields for this call (``turn_id="t2"``).
        """
        ctx = attrs.evolve(self.pm.context, **context) if context else None
        before = len(self.errors)
        try:
            result = self.pm.emit(event, ctx)
        except TypeError as exc:
            if "aemit" not in str(exc):
                raise
            result = asyncio.run(self.pm.aemit(event, ctx))
        self._check(before)
        return result

    def emit_all(self, events: Iterable[Event], **context: Any) -> list[Any]:
        """Emit events in order; returns their results."""
        return [self.emit(e, **context) for e in events]

    async def aemit(self, event: Event, **context: Any) -> Any:
        """:meth:`emit` for async tests."""
        ctx = attrs.evolve(self.pm.context, **context) if context else None
        before = len(self.errors)
        result = await self.pm.aemit(event, ctx)
        self._check(before)
        return result

    # -- what the plugins did ---------------------------------------------------------

    def calls_to(self, name: str) -> list[tuple[Any, ...]]:
        """The arguments of every call to one host callback, in order."""
        return [c.args for c in self.calls if c.name == name]

    @property
    def printed(self) -> list[str]:
        """Every text the plugins printed (``print``, ``print_info``, ``print_error``)."""
        return [c.args[0] for c in self.calls if c.name in ("print", "print_info", "print_error")]

    @property
    def custom_events(self) -> list[tuple[str, Any]]:
        """Every custom event the plugins emitted, as ``(name, data)``."""
        return [(c.args[0], c.args[1]) for c in self.calls if c.name == "custom_event"]

    def close(self) -> None:
        """Remove the temporary state directory, if the harness made one."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
