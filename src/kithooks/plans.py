"""Dispatch plans: what one event's dispatch needs, computed when plugins register.

:func:`build_plan` is a pure function from an event's hook implementations (with each
plugin's lock and place in the registration order) to a :class:`Plan`: the handlers in
dispatch order, each with its argument adapter, tool matcher and timeout, and, for the
common case, one compiled function that runs every observer. The manager caches one plan
per hook and rebuilds only the hooks a registration touches; ``emit``, ``aemit`` and
pluggy's ``pm.hook.on_x(...)`` all use the cached plan.

Code generation lives here and in ``events`` only, for speed: an observe event with plain
handlers (a ``message_update`` per streamed token) runs as one straight-line function with
no loop, no tuple unpacking and no attribute lookups at dispatch time.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from pluggy import HookImpl

from .aggregator import counts_only
from .dispatch import RULES, EventKind, Rule
from .events import EventType
from .hookspecs import POLICY_ATTR, HandlerPolicy
from .locks import LockCycleError, PluginLock, held, release, wait_async, wait_sync
from .matching import tool_matcher

if TYPE_CHECKING:
    from .callers import Callers

__all__ = ["OUTCOME_HOOK", "Handler", "Plan", "Prepare", "build_plan", "order_group"]

#: What makes an event before its handlers see it: the name of the plugin doing it (for its
#: failure's report) and ``fn(event, ctx) -> event`` (the aggregator's ``enrich``).
Prepare = tuple[str, Callable[[Any, Any], Any]]

#: The hook that observes what a guard or transform dispatch decided.
OUTCOME_HOOK = "on_outcome"

_get_ident = threading.get_ident

#: The arguments each kind of hook passes, in the order the callers pass them.
_EVENT_ARGS = ("event", "ctx")
_OUTCOME_ARGS = ("event", "result", "ctx")


def _adapt(fn: Callable[..., Any], argnames: tuple[str, ...], given: tuple[str, ...]) -> Any:
    """``fn`` called with the subset of ``given`` it declares, in its own order."""
    if argnames == given:
        return fn
    positions = tuple(given.index(a) for a in argnames)
    if not positions:
        return lambda *values: fn()
    if len(positions) == 1:
        (only,) = positions
        return lambda *values: fn(values[only])
    return lambda *values: fn(*[values[i] for i in positions])


class Handler:
    """One hookimpl, ready to call: ``call(event)`` when ``event_only``, else ``call(event, ctx)``.

    ``matches`` is the compiled ``tools=`` matcher (None: every tool); ``timeout`` the
    deadline of a coroutine handler in seconds (None: none).
    """

    __slots__ = (
        "call",
        "counts_only",
        "event_only",
        "hook",
        "is_async",
        "lock",
        "matches",
        "plugin",
        "timeout",
        "tools",
    )

    def __init__(
        self,
        impl: HookImpl,
        hook: str,
        lock: PluginLock,
        default_timeout: float | None,
    ) -> None:
        fn = impl.function
        self.plugin = impl.plugin_name
        #: Only a plain turn aggregator's own counting (:func:`~kithooks.aggregator.counts_only`).
        self.counts_only = counts_only(impl.plugin, fn)
        self.hook = hook
        self.lock = lock
        self.is_async = inspect.iscoroutinefunction(fn)
        policy: HandlerPolicy | None = getattr(fn, POLICY_ATTR, None)
        self.tools = None if policy is None else policy.tools
        self.matches = tool_matcher(self.tools)
        timeout = None if policy is None else policy.timeout
        self.timeout = (
            timeout if timeout is not None else (default_timeout if self.is_async else None)
        )
        args = tuple(impl.argnames)
        given = _OUTCOME_ARGS if hook == OUTCOME_HOOK else _EVENT_ARGS
        #: ``def on_x(self, event)`` is called as ``call(event)``: no adapter on the hot path.
        self.event_only = args == ("event",) and hook != OUTCOME_HOOK
        self.call: Callable[..., Any] = fn if self.event_only else _adapt(fn, args, given)

    def wants(self, tool_name: str) -> bool:
        """True when this handler runs for a call of ``tool_name``."""
        return self.matches is None or self.matches(tool_name)


def _names(i: int, h: Handler, wait: Callable[[PluginLock, int], Any]) -> dict[str, Any]:
    """What the compiled code of handler ``i`` refers to, by name."""
    return {
        f"_t{i}": h.lock.take,
        f"_S{i}": h.lock.slot,
        f"_Q{i}": h.lock.queue,
        f"_c{i}": h.call,
        f"_p{i}": h.plugin,
        f"_h{i}": h.hook,
        f"_H{i}": h,
        f"_L{i}": h.lock,
        f"_m{i}": h.matches,
        f"_w{i}": functools.partial(wait, h.lock),
    }


def _handler_block(
    i: int,
    h: Handler,
    *,
    arg: str,
    mode: str,
    on_fail: list[str],
    on_result: list[str],
    after: list[str],
) -> list[str]:
    """The compiled code of handler ``i``: matcher, lock, call, isolation, then ``on_result``
    (with the handler's value in ``r``). ``on_fail`` runs after a failure is reported, and
    ``after`` once the plugin is given back (a stop the failure decided is acted on there,
    so that on_outcome never runs while the failing plugin is held).

    The lock is :mod:`kithooks.locks`' protocol inlined: take it for this thread (``me``)
    unless threads queue for it, else wait (``o`` False: a re-entry, nothing to give back);
    after the call, ``leave``.
    """
    wait = f"await _w{i}(me)" if mode == "async" else f"_w{i}(me)"
    call = f"_c{i}({arg})" if h.event_only else f"_c{i}({arg}, ctx)"
    give_back = [f"del _S{i}[0]", f"if _Q{i}:", f"    _L{i}.wake()"]
    hold: list[str] = []
    end = ["if o:", *(f"    {line}" for line in give_back)]
    if h.is_async:
        # A coroutine handler holds its plugin across its awaits (locks.hold / unhold,
        # inlined): taking it starts a hold (task, a fresh mark the task chain's ``held``
        # carries); a re-entry is counted in ``inside``. Whoever ends the hold gives the
        # plugin back, before ``held`` is reset (which fails in a foreign context).
        call = f"await _timed(_H{i}, {call})" if h.timeout is not None else f"await {call}"
        hold = [
            "if o:",
            f"    _L{i}.task = task",
            f"    mark = _L{i}.mark = (holding,)",
            "    tok = _held.set(mark)",
            "else:",
            f"    _L{i}.inside += 1",
        ]
        end = [
            "if o:",
            f"    if _L{i}.inside:",
            f"        _L{i}.orphan = True",
            "    else:",
            f"        _L{i}.task = _L{i}.mark = None",
            *(f"        {line}" for line in give_back),
            "    _held.reset(tok)",
            "else:",
            f"    _L{i}.inside -= 1",
            f"    if _L{i}.orphan and not _L{i}.inside:",
            f"        _release(_L{i})",
        ]
    body = [
        "try:",
        f"    if _Q{i} or _t{i}(0, me) is not me:",
        f"        o = {wait}",
        "    else:",
        "        o = True",
        "except _Cycle as exc:",
        f"    _failed(_p{i}, _h{i}, exc)",
        *(f"    {line}" for line in on_fail),
        "else:",
        *(f"    {line}" for line in hold),
        "    try:",
        f"        r = {call}",
        "    except Exception as exc:",
        "        r = None",
        f"        _failed(_p{i}, _h{i}, exc)",
        *(f"        {line}" for line in on_fail),
        "    finally:",
        *(f"        {line}" for line in end),
        "    if r is not None:",
        *(f"        {line}" for line in on_result),
        *after,
    ]
    if h.matches is None:
        return [f"    {line}" for line in body]
    return [f"    if _m{i}(event.tool_name):", *(f"        {line}" for line in body)]


def _prologue(
    handlers: tuple[Handler, ...], callers: Callers, *, mode: str, name: str
) -> tuple[dict[str, Any], list[str]]:
    """The namespace and first lines every compiled dispatch shares: the function's head,
    this thread's id (``me``, for the locks) and, when a coroutine handler is awaited, the
    running task and the mark of the innermost hold it runs inside (see locks)."""
    namespace: dict[str, Any] = {
        "_failed": callers.failed,
        "_stray": callers.stray,
        "_timed": callers.timed,
        "_held": held,
        "_release": release,
        "_Cycle": LockCycleError,
        "_ident": _get_ident,
    }
    lines = [f"async def {name}(event, ctx):" if mode == "async" else f"def {name}(event, ctx):"]
    if handlers:
        lines.append("    me = _ident()")
    if any(h.is_async for h in handlers):
        import asyncio  # a coroutine handler is awaited: asyncio is imported already

        namespace["_current_task"] = asyncio.current_task
        lines += ["    task = _current_task()", "    holding = _held.get()"]
    wait = wait_async if mode == "async" else wait_sync
    for i, h in enumerate(handlers):
        namespace.update(_names(i, h, wait))
    return namespace, lines


def _function(name: str, lines: list[str], namespace: dict[str, Any]) -> Callable[[Any, Any], Any]:
    exec(compile("\n".join(lines) + "\n", f"<kithooks {name}>", "exec"), namespace)
    function: Callable[[Any, Any], Any] = namespace[name]
    return function


def _compile_observers(
    hook: str,
    handlers: tuple[Handler, ...],
    callers: Callers,
    *,
    mode: str,
    prepare: Prepare | None,
) -> Callable[[Any, Any], Any]:
    """One straight-line function calling every observer, each under its plugin's lock,
    with the event ``prepare`` (plugin, fn) makes first when given (the aggregator's
    ``enrich`` for ``agent_end``).

    Each handler's failure (and a lock wait that would never end) is isolated as in
    :class:`~kithooks.callers.Callers`; so is a failure of ``prepare`` (reported as its
    plugin's, in this hook), and the handlers then get the event as it was emitted.
    ``mode``: ``"sync"`` (plain handlers only) falls back to a cycle-checking wait that
    blocks the thread; ``"async"`` is a coroutine whose waits let the event loop run, and
    which awaits coroutine handlers.
    """
    namespace, lines = _prologue(handlers, callers, mode=mode, name="observe")
    if prepare is not None:
        namespace["_prepare_plugin"], namespace["_prepare"] = prepare
        namespace["_prepare_hook"] = hook
        lines += [
            "    try:",
            "        event = _prepare(event, ctx)",
            "    except Exception as exc:",
            "        _failed(_prepare_plugin, _prepare_hook, exc)",
        ]
    for i, h in enumerate(handlers):
        lines += _handler_block(
            i, h, arg="event", mode=mode, on_fail=[], on_result=[f"_stray(_H{i}, r)"], after=[]
        )
    return _function("observe", lines, namespace)


def _compile_rule(
    handlers: tuple[Handler, ...], rule: Rule, callers: Callers, *, mode: str
) -> Callable[[Any, Any], Any]:
    """A guard or transform dispatch as one straight-line function (``mode`` as for
    observers: ``"async"`` awaits coroutine handlers and on_outcome).

    Each handler is called, isolated and checked by the rules of
    :class:`~kithooks.callers.Callers`: nothing is allocated until a handler returns a
    result (most return None), and the outcome hook is asked only when someone listens.
    Results are checked and merged by ``callers.take`` (the merge rules stay in
    :mod:`kithooks.dispatch`).
    """
    guard = rule.kind is EventKind.GUARD
    namespace, lines = _prologue(handlers, callers, mode=mode, name="dispatch")
    namespace.update(
        {
            "_C": callers,
            "_take": callers.take,
            "_hooked": callers.hooked,
            "_OUTCOME": OUTCOME_HOOK,
            "_outcome": callers.aoutcome if mode == "async" else callers.outcome,
            "_begin": rule.begin,
            "_rule": rule,
        }
    )
    # The end of the dispatch, with ``s`` its answer: on_outcome is told only when it has
    # handlers.
    outcome = "await _outcome" if mode == "async" else "_outcome"
    stop_with = ["if _OUTCOME in _hooked:", f"    return {outcome}(event, s, ctx)", "return s"]
    lines += ["    merge = None", "    current = event", "    s = None"]
    # A handler's result (or, failing closed, its failure) sets ``s`` to stop with; the
    # dispatch stops once the handler's plugin is given back, so that on_outcome never runs
    # while it is held.
    stop = ["if s is not None:", *(f"    {line}" for line in stop_with)]
    for i, h in enumerate(handlers):
        fail = ["if _C.fail_closed:", f"    s = _rule.failure(_p{i}, _h{i}, exc)"]
        lines += _handler_block(
            i,
            h,
            arg="current",
            mode=mode,
            on_fail=fail if guard else [],
            on_result=[
                "if merge is None:",
                "    merge = _begin(event)",
                f"s = _take(merge, _H{i}, r)",
                # what the next handler sees (none after the last: a merge may make it lazily)
                *(["current = merge.event"] if i + 1 < len(handlers) else []),
            ],
            after=stop,
        )
    lines += ["    s = None if merge is None else merge.result()"]
    lines += [f"    {line}" for line in stop_with]
    return _function("dispatch", lines, namespace)


class Plan:
    """Everything one hook's dispatch needs.

    The plan of an event runs as compiled code: ``compiled`` (for ``emit``, set when every
    handler is a plain function) is one function ``(event, ctx) -> result`` that runs them
    all (observers return None; a guard or transform returns its merged result), and
    ``acompiled`` (for ``aemit``) is its coroutine twin, which also awaits coroutine
    handlers. ``prepare`` makes the event the handlers see (only ``agent_end`` has one: the
    aggregator enriches it). ``on_outcome``'s plan is not compiled: the callers loop over
    its handlers.
    """

    __slots__ = (
        "_callers",
        "acompiled",
        "compiled",
        "event_type",
        "every_tool",
        "handlers",
        "has_async",
        "hook",
        "listens",
        "prepare",
        "rule",
    )

    def __init__(
        self,
        hook: str,
        event_type: EventType | None,
        handlers: tuple[Handler, ...],
        prepare: Prepare | None,
        callers: Callers,
    ) -> None:
        self.hook = hook
        self.event_type = event_type
        self.handlers = handlers
        self.rule: Rule | None = None if event_type is None else RULES.get(event_type)
        self.has_async = any(h.is_async for h in handlers)
        #: Some handler is more than a plain turn aggregator's counting.
        self.listens = not all(h.counts_only for h in handlers)
        #: Kept only while a handler listens: nobody reads what it would make.
        self.prepare = prepare if self.listens else None
        #: No handler limits the tools it takes (``tools=``).
        self.every_tool = all(h.matches is None for h in handlers)
        self._callers = callers
        compilable = hook != OUTCOME_HOOK and not self.has_async
        self.compiled = self._compile("sync") if compilable else None
        #: Compiled by the first ``aemit`` (``_first_acall`` stands in until then).
        self.acompiled: Callable[[Any, Any], Coroutine[Any, Any, Any]] = self._first_acall

    def _compile(self, mode: str) -> Callable[[Any, Any], Any]:
        if self.rule is None:
            return _compile_observers(
                self.hook, self.handlers, self._callers, mode=mode, prepare=self.prepare
            )
        if self.prepare is not None:  # pragma: no cover - only agent_end, an observer
            raise TypeError(f"{self.hook}: only observers are prepared")
        return _compile_rule(self.handlers, self.rule, self._callers, mode=mode)

    async def _first_acall(self, event: Any, ctx: Any) -> Any:
        """``acompiled`` until the first ``aemit``: compiles the coroutine, then runs it."""
        self.acompiled = self._compile("async")
        return await self.acompiled(event, ctx)

    def names(self, tool_name: str | None = None) -> list[str]:
        """The plugins this plan calls (for ``tool_name``, when given), in order."""
        return [h.plugin for h in self.handlers if tool_name is None or h.wants(tool_name)]


def order_group(impl: HookImpl) -> int:
    """0 for ``tryfirst``, 2 for ``trylast``, 1 otherwise."""
    return 0 if impl.tryfirst else 2 if impl.trylast else 1


def build_plan(
    hook: str,
    impls: Sequence[HookImpl],
    *,
    order: Callable[[HookImpl], tuple[int, int]],
    lock_of: Callable[[HookImpl], PluginLock],
    prepare: Prepare | None,
    callers: Callers,
    default_timeout: float | None,
) -> Plan | None:
    """The plan for ``hook`` given its implementations, or None when there are none.

    Handlers run in registration order (``order``), ``tryfirst`` ones first and
    ``trylast`` ones last.
    """
    if not impls:
        return None
    event_type = None if hook == OUTCOME_HOOK else EventType(hook[3:])
    ranked = sorted(impls, key=lambda i: (order_group(i), order(i)))
    handlers = tuple(Handler(i, hook, lock_of(i), default_timeout) for i in ranked)
    return Plan(hook, event_type, handlers, prepare, callers)
