"""The turn aggregator: the plugin that enriches ``agent_end``."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import attrs

from . import logs
from .context import Context, HandlerContext
from .events import AgentEndEvent, AgentStartEvent, LLMUsageEvent, ToolCallEvent, replace
from .hookspecs import hookimpl

__all__ = ["TurnAggregator", "counts_only"]

logger = logs.get("kithooks")

TurnKey = tuple[str, str]


def _key(ctx: Context) -> TurnKey:
    """The turn of ``ctx``, read from the host's context behind a handler's view (whose
    read-through properties would cost more than the counting itself)."""
    if ctx.__class__ is HandlerContext:  # no call of type(): this runs on every event
        ctx = ctx._host  # type: ignore[attr-defined]
    return (ctx.session_id, ctx.turn_id)


class _Turn:
    __slots__ = (
        "cache_read",
        "cache_write",
        "cost",
        "input",
        "llm_calls",
        "output",
        "started",
        "tool_calls",
        "tool_names",
        "unlisted",
    )

    def __init__(self, started: int | None) -> None:
        self.started = started
        self.tool_calls = 0
        self.tool_names: list[str] = []
        self.llm_calls = 0
        self.input = 0
        self.output = 0
        self.cache_read = 0
        self.cache_write = 0
        self.cost = 0.0
        self.unlisted = 0  # tool names past max_tool_names: counted, not listed


class TurnAggregator:
    """Counts each turn's tool calls and LLM usage and fills them into ``agent_end``.

    A turn is ``(ctx.session_id, ctx.turn_id)``: turns interleaved on one manager are
    counted apart. Between ``agent_start`` and ``agent_end`` it counts every ``tool_call``
    (blocked ones too: the manager registers it before any plugin, so its ``tryfirst``
    handler runs first, before any guard can stop dispatch; names in call order, duplicates
    kept, empty names not listed) and every ``llm_usage`` (calls, the
    four token sums, cost), and measures ``duration_ms`` on a monotonic clock. ``agent_end``
    without ``agent_start`` gives zeros and a duration of 0. An event with a turn id that
    comes before its turn's ``agent_start`` (a turn resumed in another process) opens the
    turn, counted from there with a duration of 0; one with an empty ``turn_id`` and no
    turn open is not kept (a host that sets no turn ids and emits no ``agent_start``, such
    as one calling ``hosting.run_tool`` alone, runs no turns).

    Memory is bounded: at most ``max_open_turns`` turns are tracked at once (starting one
    more forgets the oldest open turn, logged at debug level), and each keeps the names of
    its first ``max_tool_names`` tool calls (a call past them is counted in
    ``tool_call_count`` but not listed in ``tool_names``; the first such is logged as a
    warning naming the turn). The counts and sums stay exact.

    The manager registers one under the name ``turn-aggregator`` and, while another plugin
    handles ``agent_end``, calls :meth:`enrich` before any ``on_agent_end`` handler runs;
    with none, its own ``on_agent_end`` just ends the turn. It counts whether or not anyone
    listens to ``agent_end``, so a plugin registered mid-turn (a reload, a host adding
    plugins late) gets the whole turn's counts. One a host registers itself runs in its
    place in the registration order: after a ``tryfirst`` guard registered before it, it
    does not see the calls that guard blocks. Replay swaps in an aggregator on the
    recording's clock in the same place, so it counts what live dispatch counts. Only this
    class's own methods, on an instance of exactly this class, count for no one
    (:func:`counts_only`; ``PluginManager.plugins_handle`` leaves them out): a subclass's
    handlers, or a function set on the instance, are a plugin's (a guard reusing the
    counting is never skipped), and while one handles ``agent_end`` the event is enriched
    for it.

    An ``enrich`` that fails (a cost sum that overflowed to infinity, a custom ``clock``
    that gives floats) is logged and reported as this plugin's failure in
    ``on_agent_end``, and the handlers get ``agent_end`` as the host emitted it.
    """

    NAME = "turn-aggregator"

    def __init__(
        self,
        *,
        max_open_turns: int = 1024,
        max_tool_names: int = 4096,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        if max_open_turns < 1:
            raise ValueError(f"max_open_turns must be >= 1, got {max_open_turns}")
        if max_tool_names.__class__ is not int:
            raise TypeError(f"max_tool_names must be an int, got {type(max_tool_names).__name__}")
        if max_tool_names < 0:
            raise ValueError(f"max_tool_names must be >= 0, got {max_tool_names}")
        self.max_open_turns = max_open_turns
        self.max_tool_names = max_tool_names
        self._clock = clock
        self._turns: OrderedDict[TurnKey, _Turn] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<TurnAggregator open_turns={len(self._turns)}>"

    @property
    def open_turns(self) -> int:
        """How many turns are started and not yet ended."""
        return len(self._turns)

    def _start(self, key: TurnKey, started: int | None) -> _Turn:
        """A new turn ``key`` (replacing one under that key); call with the lock held."""
        turn = self._turns[key] = _Turn(started)
        self._turns.move_to_end(key)
        while len(self._turns) > self.max_open_turns:
            old, _ = self._turns.popitem(last=False)
            logger.debug("turn aggregator: turn %r never ended; forgotten", old)
        return turn

    def _unstarted(self, key: TurnKey) -> _Turn | None:
        """The turn of an event of ``key`` that came with none open (call with the lock
        held): started now, with no clock (a duration of 0), when the event has a turn id.
        Without one it is None: a host without turn ids that emits no ``agent_start`` (as a
        host of ``hosting.run_tool`` alone) runs no turns, and nothing of it is kept."""
        return self._start(key, None) if key[1] else None

    def _unlisted(self, key: TurnKey, turn: _Turn) -> None:
        """The name of a tool call past the first ``max_tool_names`` of turn ``key`` (call
        with the lock held): counted, not listed; the first such is logged as a warning
        naming the turn."""
        turn.unlisted += 1
        if turn.unlisted == 1:
            logger.warning(
                "turn aggregator: turn %r has more than %d tool calls; agent_end's "
                "tool_names lists the names of the first %d (tool_call_count counts all)",
                key,
                self.max_tool_names,
                self.max_tool_names,
            )

    @hookimpl(tryfirst=True)
    def on_agent_start(self, event: AgentStartEvent, ctx: Context) -> None:
        """Start (or restart) the turn's counters and clock."""
        key = _key(ctx)
        with self._lock:
            self._start(key, self._clock())

    @hookimpl(tryfirst=True)
    def on_tool_call(self, event: ToolCallEvent, ctx: Context) -> None:
        """Count one tool call of the turn."""
        key = _key(ctx)
        with self._lock:
            turn = self._turns.get(key)
            if turn is None and (turn := self._unstarted(key)) is None:
                return
            n = turn.tool_calls = turn.tool_calls + 1
            if event.tool_name:
                if n <= self.max_tool_names:
                    turn.tool_names.append(event.tool_name)
                else:
                    self._unlisted(key, turn)

    @hookimpl(tryfirst=True)
    def on_llm_usage(self, event: LLMUsageEvent, ctx: Context) -> None:
        """Add one LLM call's tokens and cost to the turn."""
        key = _key(ctx)
        with self._lock:
            turn = self._turns.get(key)
            if turn is None and (turn := self._unstarted(key)) is None:
                return
            turn.llm_calls += 1
            turn.input += event.input_tokens
            turn.output += event.output_tokens
            turn.cache_read += event.cache_read_tokens
            turn.cache_write += event.cache_write_tokens
            turn.cost += event.cost

    @hookimpl(tryfirst=True)
    def on_agent_end(self, event: AgentEndEvent, ctx: Context) -> None:
        """End the turn, when no :meth:`enrich` has (nobody else handles ``agent_end``)."""
        key = _key(ctx)
        with self._lock:
            self._turns.pop(key, None)

    def enrich(self, event: AgentEndEvent, ctx: Context) -> AgentEndEvent:
        """End the turn of ``ctx`` and return ``event`` with its aggregates filled in."""
        now = self._clock()
        key = _key(ctx)
        with self._lock:
            turn = self._turns.pop(key, None)
        if turn is None:
            turn = _Turn(None)
        duration = 0 if turn.started is None else max(0, (now - turn.started) // 1_000_000)
        changes: dict[str, Any] = {
            "tool_call_count": turn.tool_calls,
            "tool_names": tuple(turn.tool_names),
            "llm_call_count": turn.llm_calls,
            "input_tokens_delta": turn.input,
            "output_tokens_delta": turn.output,
            "cache_read_tokens_delta": turn.cache_read,
            "cache_write_tokens_delta": turn.cache_write,
            "cost_delta": turn.cost,
            "duration_ms": duration,
        }
        # Sums of validated counts are valid again when they are exact ints and the cost an
        # exact finite float; the checks below catch what is not (a cost sum that overflowed
        # to infinity, a custom clock giving floats, an int subclass's own arithmetic), and
        # an AgentEndEvent subclass, which events.replace does not know. Then attrs.evolve
        # validates, and its error names the field.
        if (
            event.__class__ is AgentEndEvent
            and turn.cost.__class__ is float
            and math.isfinite(turn.cost)
            and all(
                n.__class__ is int and n >= 0
                for n in (turn.input, turn.output, turn.cache_read, turn.cache_write, duration)
            )
        ):
            return replace(event, **changes)
        return attrs.evolve(event, **changes)


def counts_only(plugin: object, function: Any) -> bool:
    """Whether handler ``function`` of ``plugin`` only counts turns for the plugins that read
    ``agent_end``: a method of :class:`TurnAggregator` itself, bound to ``plugin``, an
    object that is exactly a :class:`TurnAggregator`. A subclass's handler, or any function
    set on the object (another object's method included), may do more: a plugin's."""
    if type(plugin) is not TurnAggregator:
        return False
    method = getattr(function, "__func__", None)
    return (
        method is not None
        and getattr(function, "__self__", None) is plugin
        and method is vars(TurnAggregator).get(method.__name__)
    )
