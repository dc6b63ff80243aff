"""Contract checks: property-test a plugin against every event contract it touches.

``check_contract(plugin)`` loads the plugin (an object or module, or the path of a plugin
file or directory, loaded as the manager's loader does), finds every hook it implements and,
for each, draws
events with the shipped hypothesis strategies and calls the handler directly, asserting
that it never raises, and returns None or the result type of that hook (observe hooks:
only None). A violation raises :class:`ContractViolation` naming the plugin, the hook and
the minimal event hypothesis shrank it to.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from pluggy import PluginValidationError

from ..context import Context
from ..dispatch import RULES
from ..events import EventType
from ..loading import register_plugin
from ..manager import PluginManager
from . import strategies

__all__ = ["ContractViolation", "check_contract"]

_HOOKS = {et.hook_name: et for et in EventType}


class ContractViolation(AssertionError):
    """A plugin broke an event contract; the message shows the minimal failing event."""


def _call(function: Any, argnames: tuple[str, ...], event: Any, ctx: Context) -> Any:
    kwargs = {"event": event, "ctx": ctx}
    result = function(*[kwargs[a] for a in argnames])
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


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
    (every plugin the file gives is checked: its module-level hooks and its classes). A
    plugin that would not load, or would do nothing (no hook, or only optional hooks that
    match none), is a :class:`ContractViolation` naming it; ``name`` is for objects only.

    Each handler gets ``max_examples`` drawn events and a context bound to a fresh
    in-memory state store. The draws are derandomized: the same plugin gets the same
    events on every run, so a check that passes in CI passes on a laptop too. Raises
    :class:`ContractViolation` at the first broken contract,
    with hypothesis' minimal example.
    """
    pm = PluginManager(aggregate_turns=False)
    if isinstance(plugin, str | os.PathLike):
        if name is not None:
            raise TypeError("check_contract: name= is for plugin objects, not paths")
        labels = pm.load_plugin_files([plugin], user_dir=None, project_dir=None)
        if pm.load_errors:
            raise ContractViolation("; ".join(e.message for e in pm.load_errors))
        if not labels:
            raise ContractViolation(f"{os.fspath(plugin)}: no plugin was loaded")
    else:
        try:
            label = register_plugin(pm, plugin, name=name)
        except PluginValidationError as exc:
            raise ContractViolation(str(exc)) from exc
        if label is None:
            raise ValueError("the plugin's name is blocked")
        labels = [label]
    ctx = context if context is not None else Context()
    pm.set_context(ctx)
    checked: set[str] = set()
    for label in labels:
        loaded = pm.get_plugin(label)
        for caller in pm.get_hookcallers(loaded) or []:
            et = _HOOKS.get(caller.name)
            if et is None:
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin is loaded:
                    _check_hook(
                        label,
                        et,
                        function=impl.function,
                        argnames=tuple(impl.argnames),
                        ctx=ctx,
                        max_examples=max_examples,
                    )
            checked.add(caller.name)
    return sorted(checked)


def _check_hook(
    label: str,
    et: EventType,
    *,
    function: Any,
    argnames: tuple[str, ...],
    ctx: Context,
    max_examples: int,
) -> None:
    rule = RULES.get(et)
    expected = rule.result_type if rule else None
    where = f"plugin {label!r}, {et.hook_name}"

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        # one ContractViolation, the first found, not an ExceptionGroup of every distinct one
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(event=strategies.events(et))
    def contract(event: Any) -> None:
        try:
            result = _call(function, argnames, event, ctx)
        except Exception as exc:
            raise ContractViolation(f"{where} raised {type(exc).__name__}: {exc}") from exc
        if result is None:
            return
        if expected is None:
            raise ContractViolation(
                f"{where} returned {type(result).__name__}; {et.value} is an observe event, "
                "its handlers must return None"
            )
        if not isinstance(result, expected):
            raise ContractViolation(
                f"{where} returned {type(result).__name__}; "
                f"it must return {expected.__name__} or None"
            )

    contract()
