"""Contract checks: property-test a plugin against every event contract it touches.

``check_contract(plugin)`` loads the plugin (an object or module, or the path of a plugin
file or directory, loaded as the manager's loader does), finds every hook it implements and,
for each, draws events with the shipped hypothesis strategies and dispatches them to the
plugin through a real :class:`~kithooks.PluginManager` (``emit``, or ``aemit`` for a hook
with coroutine handlers), so the handlers are called exactly as a host calls them: with the
read-only context view, their ``tools=`` matchers and ``timeout=`` deadlines, and the
manager's check of what they return. Every failure the manager reports (a handler that
raised, timed out, returned the wrong result type or an awaitable from a plain function)
raises :class:`ContractViolation` naming the plugin, the hook and the minimal event
hypothesis shrank it to. A handler the check passes is one dispatch runs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pluggy import PluginValidationError

from ..context import Context
from ..events import Event, EventType
from ..hookspecs import POLICY_ATTR
from ..listeners import HandlerError
from ..loading import LoadError, register_plugin
from ..manager import PluginManager
from ..matching import ToolSpec, named_tools
from . import strategies

__all__ = ["ContractViolation", "acheck_contract", "check_contract"]

_HOOKS = {et.hook_name: et for et in EventType}


class ContractViolation(AssertionError):
    """A plugin broke an event contract; the message shows the minimal failing event."""


def check_contract(
    plugin: object,
    *,
    max_examples: int = 100,
    name: str | None = None,
    context: Context | None = None,
) -> list[str]:
    """Property-test every hook ``plugin`` implements; returns the hooks checked.

    ``plugin`` is an object or module, or the path (``str`` or ``os.PathLike``) of a
    ``.py`` plugin file or a directory plugin, loaded as ``pm.load_plugin_files`` loads it
    (every plugin the file gives is checked, each on its own manager: its module-level
    hooks, its instances and its classes). A plugin that would not load, would do nothing
    (no hook, or only optional hooks that match none), or has only custom-event handlers
    (no contract to draw their events from), is a :class:`ContractViolation` naming it;
    ``name`` is for objects only.

    Each hook gets ``max_examples`` drawn events, dispatched as a host dispatches them
    (see the module docs); a handler limited by ``tools=`` gets events of the tools it
    names as well as others. Handlers see ``context`` (a default :class:`Context` when
    None) through the read-only view dispatch gives them: its fields and the host
    callbacks are ``context``'s, but state always goes to a fresh in-memory store, never
    to the store of a manager ``context`` is bound to (a contract run must not leave its
    random events' state in a harness or a session). The draws are derandomized: the same
    plugin gets the same events on every run, so a check that passes in CI passes on a
    laptop too. Raises :class:`ContractViolation` at the first broken contract, with
    hypothesis' minimal example.

    Raises :class:`RuntimeError` when called inside a running event loop (an async test):
    coroutine handlers are run in the check's own event loop; ``await acheck_contract(...)``
    there.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "check_contract() was called inside a running event loop (an async test?); it "
            "runs coroutine handlers in an event loop of its own. In async code use "
            "'await kithooks.testing.acheck_contract(plugin)', or call check_contract from "
            "a plain (sync) test"
        )
    loader = PluginManager(aggregate_turns=False)
    labels = _load(loader, plugin, name)
    checked: set[str] = set()
    unchecked: list[str] = []
    for label in labels:
        loaded = loader.get_plugin(label)
        hooks = sorted({c.name for c in loader.get_hookcallers(loaded) or [] if c.name in _HOOKS})
        if not hooks:
            unchecked.append(label)
            continue
        # Each plugin on a manager of its own, holding only it: a plugin that blocks does
        # not keep the next plugin of the same file from being checked.
        pm = PluginManager(aggregate_turns=False, context=context)
        pm.register(loaded, name=label)
        for hook in hooks:
            _check_hook(pm, label, _HOOKS[hook], max_examples=max_examples)
        checked.update(hooks)
    if unchecked:  # never passed unseen, even beside plugins that were checked
        raise ContractViolation(
            f"{', '.join(map(repr, unchecked))}: no kithooks event handler to check (custom-event "
            "handlers have no contract to draw events from: test them with kithooks_harness)"
        )
    return sorted(checked)


async def acheck_contract(
    plugin: object,
    *,
    max_examples: int = 100,
    name: str | None = None,
    context: Context | None = None,
) -> list[str]:
    """:func:`check_contract` for async code (an async test): it runs in a worker thread,
    with its own event loop for coroutine handlers, while the caller's loop goes on."""
    return await asyncio.to_thread(
        check_contract, plugin, max_examples=max_examples, name=name, context=context
    )


def _load(pm: PluginManager, plugin: object, name: str | None) -> list[str]:
    """Load ``plugin`` into ``pm`` as the loader would; the labels it registered."""
    if isinstance(plugin, str | os.PathLike):
        if name is not None:
            raise TypeError("check_contract: name= is for plugin objects, not paths")
        labels = pm.load_plugin_files([plugin], user_dir=None, project_dir=None)
        if pm.load_errors:
            raise ContractViolation("; ".join(e.message for e in pm.load_errors))
        if not labels:
            raise ContractViolation(f"{os.fspath(plugin)}: no plugin was loaded")
        return labels
    try:
        label = register_plugin(pm, plugin, name=name)
    except PluginValidationError as exc:
        raise ContractViolation(str(exc)) from exc
    if label is None:
        raise ValueError("the plugin's name is blocked")
    return [label]


def _tool_names(spec: ToolSpec | None) -> st.SearchStrategy[str] | None:
    """Tool names a ``tools=`` filter takes (None: every tool, nothing to aim at), read as
    the manager reads it (:func:`kithooks.matching.named_tools`): its names and the host
    names of its Claude Code names; for a pattern, the names it spells out (a dotted name
    such as ``"github.create_issue"`` is a pattern) and names it matches."""
    named = named_tools(spec)
    if not named:
        return None
    if isinstance(named, frozenset):
        return st.sampled_from(sorted(named))
    spelt = st.sampled_from([part.replace("\\.", ".") for part in named.split("|") if part])
    try:
        return spelt | st.from_regex(named, fullmatch=True)
    except Exception:  # a pattern hypothesis cannot draw from: the names it spells out
        return spelt


def _events(pm: PluginManager, label: str, et: EventType) -> st.SearchStrategy[Event]:
    """Events of ``et``; for a handler with ``tools=``, often of the tools it names."""
    drawn = strategies.events(et)
    impls = getattr(pm.hook, et.hook_name).get_hookimpls()
    specs = [getattr(i.function, POLICY_ATTR, None) for i in impls if i.plugin_name == label]
    named = [n for p in specs if p is not None and (n := _tool_names(p.tools)) is not None]
    if not named:
        return drawn
    matched = st.tuples(drawn, st.one_of(named)).map(
        lambda pair: attrs.evolve(pair[0], tool_name=pair[1])  # type: ignore[misc]
    )
    return matched | drawn


def _check_hook(pm: PluginManager, label: str, et: EventType, *, max_examples: int) -> None:
    failures: list[HandlerError] = []

    def heard(error: HandlerError | LoadError) -> None:
        if isinstance(error, HandlerError):
            failures.append(error)

    remove = pm.add_listener(on_error=heard)
    dispatch: Callable[[Event], Any]
    runner: asyncio.Runner | None = None
    if pm.has_async_handlers(et):
        runner = asyncio.Runner()
        dispatch = lambda event: runner.run(pm.aemit(event))  # noqa: E731
    else:
        dispatch = pm.emit

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        # one ContractViolation, the first found, not an ExceptionGroup of every distinct one
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(event=_events(pm, label, et))
    def contract(event: Event) -> None:
        failures.clear()
        dispatch(event)
        if failures:
            first = failures[0]
            raise ContractViolation(f"{first.message}\non {event!r}") from first.error

    try:
        contract()
    finally:
        remove()
        if runner is not None:
            runner.close()
