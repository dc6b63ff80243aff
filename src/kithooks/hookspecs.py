"""The hookspecs and the hookimpl marker.

Each event's hook is ``on_<wire name>(event, ctx)``; an implementation may take any subset
of the two arguments, as ordinary parameters (a default is allowed). The 34 hookspecs are
generated from the payload classes, where each event declares its hook's text
(``hook_doc``) and its dispatch rule; ``hookspecs.md`` is generated from the same
(``python -m kithooks.docgen``). ``on_outcome`` is the one hook that is not an event.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, TypeVar, overload

import attrs
import pluggy

from .context import Context
from .events import EVENT_CLASSES, Event, Result
from .matching import ToolSpec, tool_matcher

__all__ = [
    "KIT_HOOKS",
    "POLICY_ATTR",
    "PROJECT",
    "HandlerPolicy",
    "HookimplMarker",
    "KitHookSpecs",
    "OutcomeSpecs",
    "hookimpl",
    "hookspec",
    "static_function",
]

#: The pluggy project name and the entry-point group.
PROJECT = "kithooks"

#: The attribute under which ``hookimpl`` stores a handler's :class:`HandlerPolicy`.
POLICY_ATTR = "kithooks_policy"

_F = TypeVar("_F", bound=Callable[..., Any])


@attrs.frozen(kw_only=True)
class HandlerPolicy:
    """What ``@kithooks.hookimpl(tools=..., timeout=...)`` adds to pluggy's options."""

    tools: ToolSpec | None = None
    timeout: float | None = None


class HookimplMarker:
    """pluggy's hookimpl marker with two kithooks options.

    ``tools`` limits a handler of a tool event to the tools it names (see
    :mod:`kithooks.matching`); ``timeout`` (seconds, coroutine handlers only) cancels a
    handler at its deadline and counts it as a failure of its plugin. The other options
    are pluggy's (``tryfirst``, ``trylast``, ``specname``, ...).
    """

    def __init__(self, project_name: str) -> None:
        self.project_name = project_name
        self._pluggy = pluggy.HookimplMarker(project_name)

    @overload
    def __call__(
        self,
        function: _F,
        *,
        tools: ToolSpec | None = None,
        timeout: float | None = None,
        tryfirst: bool = False,
        trylast: bool = False,
        specname: str | None = None,
        optionalhook: bool = False,
        wrapper: bool = False,
        hookwrapper: bool = False,
    ) -> _F: ...

    @overload
    def __call__(
        self,
        function: None = None,
        *,
        tools: ToolSpec | None = None,
        timeout: float | None = None,
        tryfirst: bool = False,
        trylast: bool = False,
        specname: str | None = None,
        optionalhook: bool = False,
        wrapper: bool = False,
        hookwrapper: bool = False,
    ) -> Callable[[_F], _F]: ...

    def __call__(
        self,
        function: _F | None = None,
        *,
        tools: ToolSpec | None = None,
        timeout: float | None = None,
        tryfirst: bool = False,
        trylast: bool = False,
        specname: str | None = None,
        optionalhook: bool = False,
        wrapper: bool = False,
        hookwrapper: bool = False,
    ) -> _F | Callable[[_F], _F]:
        """Mark ``function`` as a hook implementation (usable bare or with options)."""
        tool_matcher(tools)  # a bad pattern fails here, where it is written
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise ValueError(
                f"hookimpl(timeout=...) must be a positive number of seconds, not {timeout!r}"
            )
        policy = None
        if tools is not None or timeout is not None:
            policy = HandlerPolicy(tools=tools, timeout=timeout)
        mark = self._pluggy(
            tryfirst=tryfirst,
            trylast=trylast,
            specname=specname,
            optionalhook=optionalhook,
            wrapper=wrapper,
            hookwrapper=hookwrapper,
        )

        def apply(fn: _F) -> _F:
            mark(fn)
            if policy is not None:
                setattr(fn, POLICY_ATTR, policy)
            return fn

        return apply if function is None else apply(function)


def static_function(obj: object, attr: str) -> Callable[..., Any] | None:
    """The function ``obj.attr`` names, looked up without running descriptors (as pluggy
    does): a staticmethod's or classmethod's function unwrapped; None when it is no routine."""
    try:
        raw = inspect.getattr_static(obj, attr)
    except AttributeError:
        return None
    if isinstance(raw, staticmethod | classmethod):
        raw = raw.__func__
    return raw if inspect.isroutine(raw) else None


hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = HookimplMarker(PROJECT)


class KitHookSpecs:
    """The hook specifications, one per event: ``on_<event>(event, ctx)``.

    Generated from the payload classes (:mod:`kithooks.events`): each hook's documentation
    is its event's ``hook_doc``, its result type the event's ``rule``. Plugins implement
    any of them with ``@kithooks.hookimpl``.
    """


def _hookspec_for(cls: type[Event]) -> Callable[..., Any]:
    """The hookspec of ``cls``'s event: ``on_<event>(self, event, ctx)``, documented."""

    def spec(self: Any, event: Any, ctx: Context) -> Any:
        raise NotImplementedError  # a specification: plugins implement it

    hook = cls.event_type.hook_name
    spec.__name__ = hook
    spec.__qualname__ = f"KitHookSpecs.{hook}"
    spec.__doc__ = inspect.cleandoc(cls.hook_doc)
    result = cls.rule.result if cls.rule is not None else None
    spec.__annotations__ = {
        "event": cls.__name__,
        "ctx": "Context",
        "return": f"{result} | None" if result else "None",
    }
    return hookspec(spec)


for _cls in EVENT_CLASSES.values():
    setattr(KitHookSpecs, _cls.event_type.hook_name, _hookspec_for(_cls))
del _cls


class OutcomeSpecs:
    """The hook that is not an event: what a guard or transform dispatch decided."""

    @hookspec
    def on_outcome(self, event: Event, result: Result | None, ctx: Context) -> None:
        """What a guard or transform dispatch decided. Observe (not an event of its own).

        Emitted after every ``emit`` / ``aemit`` of a guard or transform event that had at
        least one handler, once that event's handlers have all run (or one stopped the
        dispatch), with ``event`` as the host emitted it and ``result`` the merged result the
        host receives (None when no handler returned one). A tracer or audit log uses it to
        see blocks, cancels and rewrites without depending on handler order.
        """


#: Every hook kithooks specifies: the 34 events' hooks and ``on_outcome``.
KIT_HOOKS: frozenset[str] = frozenset(
    name for specs in (KitHookSpecs, OutcomeSpecs) for name in vars(specs) if name.startswith("on_")
)
