"""The :class:`OtelExporter` plugin: a turn's events as GenAI spans."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping

from opentelemetry import trace
from opentelemetry.context import Context as OtelContext
from opentelemetry.trace import (
    Link,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TracerProvider,
)
from opentelemetry.util.types import AttributeValue

from .. import __version__
from ..context import Context
from ..events import (
    AgentEndEvent,
    AgentStartEvent,
    BeforeCompactEvent,
    BeforeCompactResult,
    ErrorEvent,
    Event,
    LLMUsageEvent,
    ModelChangeEvent,
    Result,
    RetryEvent,
    StepFinishEvent,
    StepStartEvent,
    SubagentChunkEvent,
    SubagentEndEvent,
    SubagentStartEvent,
    ToolCallEvent,
    ToolCallResult,
    ToolResultEvent,
    ToolResultResult,
    thaw,
)
from ..hookspecs import hookimpl
from . import semconv as sc

__all__ = ["OtelExporter"]

logger = logging.getLogger("kithooks")

TurnKey = tuple[str, str]
Attributes = dict[str, AttributeValue]

#: Session events (compactions, model changes) kept for a session's next turn, at most.
MAX_PENDING_EVENTS = 64


def _clean(pairs: Mapping[str, AttributeValue | None]) -> Attributes:
    """The attributes whose value is known (not None, not '')."""
    return {k: v for k, v in pairs.items() if v is not None and v != ""}


def _split_model(model: str) -> tuple[str, str]:
    """``'provider/model'`` as ``(gen_ai.provider.name, model)``; a bare model has none."""
    provider, sep, name = model.partition("/")
    return (sc.provider_name(provider), name) if sep else ("", model)


def _usage(input_tokens: int, output_tokens: int, cache_read: int, cache_write: int) -> Attributes:
    # kithooks' input_tokens excludes cache reads and writes; the conventions' includes them.
    return {
        sc.INPUT_TOKENS: input_tokens + cache_read + cache_write,
        sc.OUTPUT_TOKENS: output_tokens,
        sc.CACHE_READ_TOKENS: cache_read,
        sc.CACHE_CREATION_TOKENS: cache_write,
    }


def _call_usage(event: StepFinishEvent | LLMUsageEvent) -> Attributes:
    """One LLM call's usage and finish reason."""
    attributes = _usage(
        event.input_tokens, event.output_tokens, event.cache_read_tokens, event.cache_write_tokens
    )
    if event.finish_reason:
        attributes[sc.FINISH_REASONS] = (event.finish_reason,)
    return attributes


def _fail(span: Span, error_type: str, description: str) -> None:
    span.set_attribute(sc.ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, description))


def _end_unfinished(spans: Iterable[Span], reason: str, end: int | None = None) -> None:
    """End ``spans`` (children before their parents) as unfinished, at ``end``."""
    for span in spans:
        _fail(span, sc.UNFINISHED, reason)
        span.end(end)


#: What ends a span left open inside the turn (or sub-agent) that ended first.
TURN_ENDED = "the turn ended before this span did"
SUBAGENT_ENDED = "the subagent ended before this span did"
SUBAGENT_FAILED = "the subagent failed"


def _end_subagent(spans: list[Span], error: tuple[str, str] | None, end: int | None) -> None:
    """End a sub-agent's ``spans`` at ``end``: its open tool calls (all but the last) as
    unfinished, then its own span, failed with ``error`` (error.type, description) if any."""
    *tools, span = spans
    _end_unfinished(tools, SUBAGENT_ENDED, end)
    if error is not None:
        _fail(span, *error)
    span.end(end)


#: Drops one open span from a turn (call with the lock held): the spans to end, children
#: before their parents.
_Drop = Callable[[], list[Span]]


class _Subagent:
    __slots__ = ("call", "closed", "context", "span", "tools")

    def __init__(self, span: Span, call: Span | None) -> None:
        self.span = span
        self.call = call  # the execute_tool span it nests in; None when under the turn
        self.context = trace.set_span_in_context(span)
        self.tools: dict[str, deque[Span]] = {}  # the subagent's open tool calls, by tool name
        self.closed = False  # ended: a tool call of it that comes now is ended at once


class _Turn:
    """A turn's open spans. Its methods change them: call them with the exporter's lock
    held; the spans they return are for the caller to end, outside the lock."""

    __slots__ = (
        "asked_again",
        "chat",
        "chat_end",
        "chat_named",
        "closed",
        "context",
        "cost",
        "dropped",
        "failed",
        "held",
        "key",
        "llm_calls",
        "max_open_spans",
        "root",
        "subagents",
        "tool_calls",
        "tools",
        "usage",
        "waiting",
    )

    def __init__(self, root: Span, key: TurnKey, max_open_spans: int) -> None:
        self.root = root
        self.key = key
        self.context: OtelContext = trace.set_span_in_context(root)
        self.failed = False
        self.closed = False  # no longer open (ended, abandoned): nothing more opens in it
        self.chat: Span | None = None  # the LLM call in flight
        self.chat_named = False  # its name carries the model
        self.chat_end: int | None = None  # when its response ended (ns), once known
        self.tools: dict[str, deque[Span]] = {}  # open execute_tool spans, by tool_call_id
        self.asked_again: set[str] = set()  # open calls whose tool_call came again
        self.subagents: dict[str, _Subagent] = {}  # by the subagent call's tool_call_id
        #: Sub-agents started before their tool call (KIT's order): when each started (ns),
        #: by tool_call_id; their span opens under the call's span at its ``tool_call``.
        self.waiting: OrderedDict[str, int] = OrderedDict()
        #: Every open child span (tool calls, sub-agents, their tool calls), oldest first, by
        #: id(): how to drop it when more than ``max_open_spans`` are open.
        self.held: OrderedDict[int, _Drop] = OrderedDict()
        self.max_open_spans = max_open_spans
        self.dropped = 0  # spans ended for that so far
        # What the root span states at agent_end: the tool_call and llm_usage events it saw.
        self.tool_calls = 0
        self.llm_calls = 0
        self.usage = (0, 0, 0, 0)  # summed input, output, cache-read, cache-write tokens
        self.cost = 0.0

    def _hold(self, span: Span, drop: _Drop, parents: Iterable[Span | None] = ()) -> list[Span]:
        """Hold ``span`` open, inside ``parents`` (which count as new again, so that a
        span with a child that just opened is not the oldest); the spans dropped to keep
        ``max_open_spans``: the oldest, with the spans inside it."""
        for parent in parents:
            if parent is not None and id(parent) in self.held:
                self.held.move_to_end(id(parent))
        self.held[id(span)] = drop
        dropped: list[Span] = []
        while len(self.held) > self.max_open_spans:
            dropped += self.held.popitem(last=False)[1]()
        return dropped

    def add_tool(self, call_id: str, span: Span) -> list[Span] | None:
        """Hold a tool call's span (None when the turn is closed: end it now)."""
        if self.closed:
            return None
        self.tools.setdefault(call_id, deque()).append(span)

        def drop() -> list[Span]:
            taken = self.take_tool(call_id, span)
            return [] if taken is None else [*taken[1], span]

        return self._hold(span, drop)

    def take_tool(self, call_id: str, span: Span | None = None) -> tuple[Span, list[Span]] | None:
        """Forget the tool call's span (``span``, else the call's oldest), and the
        sub-agent nested in it: the span, and the sub-agent's spans to end before it (its
        tool calls, then its own; empty when none)."""
        spans = self.tools.get(call_id)
        if not spans:
            return None
        if span is None:
            span = spans.popleft()
        else:
            spans.remove(span)
        if not spans:
            del self.tools[call_id]
            self.asked_again.discard(call_id)
        self.held.pop(id(span), None)
        return span, self.take_nested(call_id, span)

    def take_nested(self, call_id: str, call: Span) -> list[Span]:
        """Forget the sub-agent nested in the tool call span ``call``: its spans, children
        first (its tool calls, as unfinished, then its own), or none."""
        sub = self.subagents.get(call_id)
        if sub is None or sub.call is not call:
            return []
        return self.take_subagent(call_id, sub)

    def add_subagent(self, call_id: str, sub: _Subagent) -> tuple[list[Span], list[Span]] | None:
        """Hold a sub-agent's span (None when the turn is closed: end it now): the spans of
        the one it replaces (children first), and the spans dropped."""
        if self.closed:
            return None
        replaced = self.take_subagent(call_id)
        self.subagents[call_id] = sub

        def drop() -> list[Span]:
            return self.take_subagent(call_id, sub)

        return replaced, self._hold(sub.span, drop, (sub.call,))

    def take_subagent(self, call_id: str, sub: _Subagent | None = None) -> list[Span]:
        """Forget the sub-agent of ``call_id`` (only if it is ``sub``, when given): its open
        tool calls' spans then its own, or none."""
        found = self.subagents.get(call_id)
        if found is None or (sub is not None and found is not sub):
            return []
        del self.subagents[call_id]
        found.closed = True
        spans = [s for q in found.tools.values() for s in q]
        found.tools.clear()
        spans.append(found.span)
        for span in spans:
            self.held.pop(id(span), None)
        return spans

    def add_subtool(self, sub: _Subagent, name: str, span: Span) -> list[Span] | None:
        """Hold a sub-agent's tool call span (None when the sub-agent ended: end it now)."""
        if sub.closed:
            return None
        sub.tools.setdefault(name, deque()).append(span)

        def drop() -> list[Span]:
            spans = sub.tools.get(name)
            if spans is None or span not in spans:
                return []
            spans.remove(span)
            if not spans:
                del sub.tools[name]
            return [span]

        return self._hold(span, drop, (sub.call, sub.span))

    def take_subtool(self, sub: _Subagent, name: str) -> Span | None:
        """Forget the oldest open span of the sub-agent's calls of tool ``name``."""
        spans = sub.tools.get(name)
        if not spans:
            return None
        span = spans.popleft()
        if not spans:
            del sub.tools[name]
        self.held.pop(id(span), None)
        return span

    def add_waiting(self, call_id: str, start: int) -> tuple[str, int] | None:
        """Keep a sub-agent waiting for its tool call; the oldest one dropped to keep
        ``max_open_spans`` waiting, as (its tool_call_id, when it started)."""
        if self.closed:
            return None
        self.waiting[call_id] = start
        self.waiting.move_to_end(call_id)
        if len(self.waiting) > self.max_open_spans:
            return self.waiting.popitem(last=False)
        return None

    def close(self) -> list[Span]:
        """Close the turn: every span still open in it, children before their parents."""
        self.closed = True
        spans: list[Span] = []
        for call_id in list(self.subagents):
            spans += self.take_subagent(call_id)
        spans += [s for q in self.tools.values() for s in q]
        if self.chat is not None:
            spans.append(self.chat)
        self.tools.clear()
        self.asked_again.clear()
        self.held.clear()
        self.chat = None
        return spans


class OtelExporter:
    """Turns the event stream into OpenTelemetry traces (GenAI semantic conventions).

    One trace per turn: a root span ``invoke_agent {agent_name}`` (kind INTERNAL) from
    ``agent_start`` to ``agent_end``, holding the turn's tool and LLM call counts and summed
    usage and cost (counted by the exporter from the ``tool_call`` and ``llm_usage`` events
    it saw, so without the turn aggregator too); a child span
    ``chat {model}`` (kind CLIENT) per LLM call, from ``step_start`` until its response
    ended (the step's first ``tool_call``, else ``step_finish`` / ``llm_usage``), with its
    usage, cost and finish reason; a child span ``execute_tool {tool}`` (kind INTERNAL) per
    tool call, from ``tool_call`` to ``tool_result`` (status ERROR when the result is an
    error, or at the block when a guard blocked the call, with the guard's reason; a call
    asked again keeps its span). An ``error`` while an LLM call is in flight ends its
    ``chat`` span as failed, and marks the turn failed. A
    sub-agent is a nested ``invoke_agent`` span under its tool call (the ``execute_tool``
    span with the same ``tool_call_id``), its tool calls nested in it, until
    ``subagent_end`` or its call's result or block, whichever comes first (KIT's order: the
    call's ``tool_result``, then ``subagent_end``), ending with its call's span. KIT emits
    ``subagent_start`` before that ``tool_call``: the sub-agent's span then starts with the
    call's. One whose call never comes (or with no ``tool_call_id``) is under the turn, from
    its ``subagent_start``. Compactions and model changes are span events on the turn (on
    the session's next turn when they happen between turns).

    No span ends after its parent: a span that ends (a tool call's, a sub-agent's, the
    turn's root) first ends the spans still open inside it, at the same time, status ERROR
    with ``error.type`` ``kithooks.unfinished`` and the reason (a sub-agent's own span
    takes its call's outcome instead: blocked, or failed when the result is an error; an
    LLM call in flight at ``agent_end`` ends there as it is).

    The root span's parent is the OpenTelemetry context current at ``agent_start``: a turn
    run inside a host's own span nests in it, and is a trace of its own otherwise.

    A turn whose events come with no root open (revived after its ``agent_end`` by a retry,
    resumed in another process, or whose ``agent_start`` the exporter missed) gets a
    continuation root, marked ``kithooks.turn.continued``, at its first ``step_start``,
    ``llm_usage``, ``tool_call`` or ``subagent_start``; it links to the turn's previous
    root span while the exporter remembers it (the last ``max_open_turns`` ended roots).
    Events with no ``ctx.turn_id`` open none.

    Turns are keyed by ``(ctx.session_id, ctx.turn_id)``, so concurrent turns on many
    threads never mix. At most ``max_open_turns`` turns are open; one more ends the oldest
    (status ERROR, ``error.type`` ``kithooks.unfinished``), as ``session_shutdown`` ends the
    session's unfinished turns and :meth:`end_open_turns` all of them.

    A turn that never ends keeps bounded memory: at most ``max_open_spans`` spans are open
    inside it (tool calls waiting for their result, sub-agents and their tool calls; and
    as many sub-agents waiting for their tool call). One more ends the oldest (a span
    counts as new again when a span opens inside it), with any spans open inside it, as
    unfinished, described ``more than N spans were open in the turn``; the turn's first
    such drop is logged as a warning naming the turn, later ones at debug level. Ended spans
    are never kept.

    Blocks and rewrites come from the ``on_outcome`` hook, which sees the merged result of
    every guard and transform event.

    Args:
        tracer_provider: where the spans go; the global tracer provider when None.
        agent_name: the agent's name, in the root span's name and ``gen_ai.agent.name``.
        max_open_turns: how many turns may be open at once.
        max_open_spans: how many spans may be open at once inside one turn.
        capture_content: also record each tool call's final arguments and result
            (``gen_ai.tool.call.arguments`` / ``gen_ai.tool.call.result``, after every
            rewrite). Off by default: they may hold secrets and personal data.
    """

    NAME = "otel-exporter"

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        *,
        agent_name: str = "",
        max_open_turns: int = 1024,
        max_open_spans: int = 1024,
        capture_content: bool = False,
    ) -> None:
        if max_open_turns < 1:
            raise ValueError(f"max_open_turns must be >= 1, got {max_open_turns}")
        if max_open_spans < 1:
            raise ValueError(f"max_open_spans must be >= 1, got {max_open_spans}")
        self.agent_name = agent_name
        self.capture_content = capture_content
        self.max_open_turns = max_open_turns
        self.max_open_spans = max_open_spans
        self._tracer = trace.get_tracer("kithooks", __version__, tracer_provider)
        self._agent_span = f"{sc.INVOKE_AGENT} {agent_name}" if agent_name else sc.INVOKE_AGENT
        self._turns: OrderedDict[TurnKey, _Turn] = OrderedDict()
        #: The root span of each recently ended turn (at most ``max_open_turns``), for the
        #: link from the root of the turn's continuation.
        self._ended: OrderedDict[TurnKey, SpanContext] = OrderedDict()
        self._reviving = threading.Lock()  # one continuation root per turn
        self._pending: OrderedDict[str, list[tuple[str, Attributes, int]]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<OtelExporter open_turns={len(self._turns)}>"

    @property
    def open_turns(self) -> int:
        """How many turns have a root span open."""
        return len(self._turns)

    def end_open_turns(self, reason: str = "turn unfinished when the exporter closed") -> int:
        """End every open turn (status ERROR with ``reason``); returns how many there were."""
        with self._lock:
            turns = list(self._turns.values())
            self._turns.clear()
            self._pending.clear()
            for turn in turns:
                turn.closed = True
        for turn in turns:
            self._abandon(turn, reason)
        return len(turns)

    # -- turns ---------------------------------------------------------------------------

    def _turn(self, ctx: Context, *, revive: bool = False) -> _Turn | None:
        """The open turn of ``ctx``; with ``revive``, a turn with an id and no open span
        gets a continuation root (see :meth:`_continue`)."""
        key = (ctx.session_id, ctx.turn_id)
        with self._lock:
            turn = self._turns.get(key)
        if turn is not None or not revive or not ctx.turn_id:
            return turn
        return self._continue(ctx, key)

    def _continue(self, ctx: Context, key: TurnKey) -> _Turn:
        """Open the root span of a turn whose events come with no open root: one revived
        after its ``agent_end`` (a LangChain retry around a failed turn), resumed by another
        process, or whose ``agent_start`` this exporter did not see. The root is marked
        ``kithooks.turn.continued`` and linked to the turn's last root span, when this
        exporter still remembers it."""
        with self._reviving:
            with self._lock:
                turn = self._turns.get(key)
                earlier = self._ended.get(key)
            if turn is not None:  # another thread revived it first
                return turn
            attributes = self._root_attributes(ctx)
            attributes[sc.TURN_CONTINUED] = True
            root = self._tracer.start_span(
                self._agent_span,
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                links=None if earlier is None else [Link(earlier)],
            )
            return self._open(key, root)

    def _root_attributes(self, ctx: Context) -> Attributes:
        provider, model = _split_model(ctx.model)
        return _clean(
            {
                sc.OPERATION_NAME: sc.INVOKE_AGENT,
                sc.AGENT_NAME: self.agent_name,
                sc.CONVERSATION_ID: ctx.session_id,
                sc.PROVIDER_NAME: provider,
                sc.REQUEST_MODEL: model,
                sc.TURN_ID: ctx.turn_id,
            }
        )

    def _open(self, key: TurnKey, root: Span) -> _Turn:
        """Hold the turn of ``root`` open: a turn open under the same key and the oldest
        beyond ``max_open_turns`` end as unfinished; the session's pending events go on it."""
        turn = _Turn(root, key, self.max_open_spans)
        evicted: list[_Turn] = []
        with self._lock:
            replaced = self._turns.pop(key, None)
            self._turns[key] = turn
            while len(self._turns) > self.max_open_turns:
                evicted.append(self._turns.popitem(last=False)[1])
            pending = self._pending.pop(key[0], [])
            for old in (replaced, *evicted):
                if old is not None:
                    old.closed = True
        for name, attributes, timestamp in pending:
            root.add_event(name, attributes, timestamp)
        if replaced is not None:
            self._abandon(replaced, "a new agent_start came for the same session and turn id")
        for old in evicted:
            self._abandon(old, f"more than {self.max_open_turns} turns were open")
        return turn

    def _end_root(self, turn: _Turn, end: int | None = None) -> None:
        """End the turn's root span, remembered for a continuation's link."""
        with self._lock:
            self._ended.pop(turn.key, None)
            self._ended[turn.key] = turn.root.get_span_context()
            while len(self._ended) > self.max_open_turns:
                self._ended.popitem(last=False)
        turn.root.end(end)

    def _abandon(self, turn: _Turn, reason: str) -> None:
        """End the turn and every span open in it, as unfinished."""
        end = self._abandon_children(turn, reason)
        _fail(turn.root, sc.UNFINISHED, reason)
        self._end_root(turn, end)

    def _abandon_children(self, turn: _Turn, reason: str) -> int:
        """End every span still open in the closed ``turn`` (sub-agents still waiting for
        their tool call included, under the turn), children before their parents, all at
        one time, which it returns: the root's end, so none ends after it."""
        with self._lock:
            waiting = list(turn.waiting.items())
            turn.waiting.clear()
            spans = turn.close()
        spans += [self._subagent_span(turn, call_id, turn.context, t) for call_id, t in waiting]
        end = time.time_ns()
        _end_unfinished(spans, reason, end)
        return end

    def _drop(self, turn: _Turn, spans: list[Span]) -> None:
        """End the spans dropped to keep ``max_open_spans`` open in the turn, as unfinished;
        the turn's first drop is logged as a warning, the others at debug level."""
        if not spans:
            return
        with self._lock:
            first = turn.dropped == 0
            turn.dropped += len(spans)
        log = logger.warning if first else logger.debug
        log(
            "otel: turn %r has more than %d spans open; its oldest open span%s ended as "
            "unfinished (error.type %s)",
            turn.key,
            self.max_open_spans,
            " is" if len(spans) == 1 else "s are",
            sc.UNFINISHED,
        )
        _end_unfinished(spans, f"more than {self.max_open_spans} spans were open in the turn")

    @hookimpl
    def on_agent_start(self, event: AgentStartEvent, ctx: Context) -> None:
        """Open the turn's root span ``invoke_agent``."""
        root = self._tracer.start_span(
            self._agent_span, kind=SpanKind.INTERNAL, attributes=self._root_attributes(ctx)
        )
        self._open((ctx.session_id, ctx.turn_id), root)

    @hookimpl
    def on_error(self, event: ErrorEvent, ctx: Context) -> None:
        """Mark the turn failed, with the error's message, and end the LLM call in flight
        (its response not complete yet: the call that failed) as failed too."""
        turn = self._turn(ctx)
        if turn is None:
            return
        with self._lock:
            turn.failed = True
            chat = turn.chat if turn.chat_end is None else None
            if chat is not None:
                turn.chat = None
        _fail(turn.root, sc.AGENT_ERROR, event.error)
        if chat is not None:
            _fail(chat, sc.LLM_ERROR, event.error)
            chat.end()

    @hookimpl
    def on_agent_end(self, event: AgentEndEvent, ctx: Context) -> None:
        """End the turn: its tool and LLM calls, usage and cost on the root span.

        The exporter counts them itself, from the ``tool_call`` and ``llm_usage`` events the
        root span saw, so they are right without the turn aggregator too.
        """
        with self._lock:
            turn = self._turns.pop((ctx.session_id, ctx.turn_id), None)
            if turn is not None:
                turn.closed = True
        if turn is None:
            return
        self._end_chat(turn)
        end = self._abandon_children(turn, TURN_ENDED)
        root = turn.root
        with self._lock:
            attributes: Attributes = {
                sc.TOOL_CALL_COUNT: turn.tool_calls,
                sc.LLM_CALL_COUNT: turn.llm_calls,
            }
            if turn.llm_calls:
                attributes |= _usage(*turn.usage)
                attributes[sc.COST] = turn.cost
        if event.stop_reason:
            attributes[sc.STOP_REASON] = event.stop_reason
        root.set_attributes(attributes)
        if event.stop_reason == "error" and not turn.failed:
            _fail(root, sc.AGENT_ERROR, "the turn failed")
        self._end_root(turn, end)

    @hookimpl
    def on_session_shutdown(self, ctx: Context) -> None:
        """End the session's unfinished turns (status ERROR)."""
        session = ctx.session_id
        with self._lock:
            keys = [k for k in self._turns if k[0] == session]
            turns = [self._turns.pop(k) for k in keys]
            dropped = self._pending.pop(session, [])
            for turn in turns:
                turn.closed = True
        for turn in turns:
            self._abandon(turn, "turn unfinished at session_shutdown")
        if dropped:
            logger.debug(
                "otel: %d session events of %r had no turn to go on", len(dropped), session
            )

    # -- session events --------------------------------------------------------------------

    def _session_event(self, ctx: Context, name: str, attributes: Attributes) -> None:
        now = time.time_ns()
        with self._lock:
            turn = self._turns.get((ctx.session_id, ctx.turn_id))
            if turn is None:
                events = self._pending.setdefault(ctx.session_id, [])
                self._pending.move_to_end(ctx.session_id)
                events.append((name, attributes, now))
                del events[:-MAX_PENDING_EVENTS]
                while len(self._pending) > self.max_open_turns:
                    self._pending.popitem(last=False)
                return
        turn.root.add_event(name, attributes, now)

    @hookimpl
    def on_model_change(self, event: ModelChangeEvent, ctx: Context) -> None:
        """A span event ``kithooks.model_change`` on the turn."""
        self._session_event(
            ctx,
            sc.MODEL_CHANGE_EVENT,
            _clean(
                {
                    "kithooks.model_change.new_model": event.new_model,
                    "kithooks.model_change.previous_model": event.previous_model,
                    "kithooks.model_change.source": event.source,
                }
            ),
        )

    @hookimpl
    def on_before_compact(self, event: BeforeCompactEvent) -> None:
        """Subscribes the exporter to compactions; each is recorded in :meth:`on_outcome`,
        which knows whether a guard cancelled it."""

    def _compaction(self, event: BeforeCompactEvent, result: Result | None, ctx: Context) -> None:
        cancelled = isinstance(result, BeforeCompactResult) and result.cancel
        summary = isinstance(result, BeforeCompactResult) and bool(result.summary)
        attributes: Attributes = {
            "kithooks.compaction.estimated_tokens": event.estimated_tokens,
            "kithooks.compaction.context_limit": event.context_limit,
            "kithooks.compaction.usage_percent": event.usage_percent,
            "kithooks.compaction.message_count": event.message_count,
            "kithooks.compaction.is_automatic": event.is_automatic,
            "kithooks.compaction.cancelled": cancelled,
            "kithooks.compaction.plugin_summary": summary and not cancelled,
        }
        if cancelled and isinstance(result, BeforeCompactResult):
            attributes["kithooks.compaction.reason"] = (
                result.reason or "compaction cancelled by extension"
            )
        self._session_event(ctx, sc.COMPACTION_EVENT, attributes)

    # -- LLM calls -------------------------------------------------------------------------

    def _start_chat(self, turn: _Turn, ctx: Context) -> tuple[Span, bool]:
        provider, model = _split_model(ctx.model)
        span = self._tracer.start_span(
            f"{sc.CHAT} {model}" if model else sc.CHAT,
            context=turn.context,
            kind=SpanKind.CLIENT,
            attributes=_clean(
                {sc.OPERATION_NAME: sc.CHAT, sc.PROVIDER_NAME: provider, sc.REQUEST_MODEL: model}
            ),
        )
        return span, bool(model)

    def _end_chat(self, turn: _Turn) -> None:
        with self._lock:
            span, end = turn.chat, turn.chat_end
            turn.chat = turn.chat_end = None
        if span is not None:
            span.end(end)

    @hookimpl
    def on_step_start(self, event: StepStartEvent, ctx: Context) -> None:
        """Open the step's ``chat`` span (ending one left open by the step before)."""
        turn = self._turn(ctx, revive=True)
        if turn is None:
            return
        self._end_chat(turn)
        span, named = self._start_chat(turn, ctx)
        with self._lock:
            closed = turn.closed
            if not closed:
                turn.chat, turn.chat_named, turn.chat_end = span, named, None
        if closed:  # agent_end came meanwhile, on another thread
            _end_unfinished([span], TURN_ENDED)

    @hookimpl
    def on_step_finish(self, event: StepFinishEvent, ctx: Context) -> None:
        """The call's usage and finish reason; the span stays open for ``llm_usage``."""
        turn = self._turn(ctx)
        if turn is None:
            return
        with self._lock:
            span = turn.chat
            if span is not None and turn.chat_end is None:
                turn.chat_end = time.time_ns()
        if span is None:  # llm_usage came first and ended it
            return
        span.set_attributes(_call_usage(event))

    @hookimpl
    def on_llm_usage(self, event: LLMUsageEvent, ctx: Context) -> None:
        """Complete and end the ``chat`` span: models, usage, cost, finish reason."""
        turn = self._turn(ctx, revive=True)
        if turn is None:
            return
        with self._lock:
            span, named, end = turn.chat, turn.chat_named, turn.chat_end
            turn.chat = turn.chat_end = None
            turn.llm_calls += 1
            inp, out, read, write = turn.usage
            turn.usage = (
                inp + event.input_tokens,
                out + event.output_tokens,
                read + event.cache_read_tokens,
                write + event.cache_write_tokens,
            )
            turn.cost += event.cost
        if span is None:  # no step_start: the call's start is unknown
            span, named = self._start_chat(turn, ctx)
        attributes = _call_usage(event)
        attributes |= _clean(
            {
                sc.PROVIDER_NAME: sc.provider_name(event.provider),
                sc.RESPONSE_MODEL: event.model,
                sc.RESPONSE_ID: event.request_id,
            }
        )
        attributes[sc.COST] = event.cost
        if not named and event.model:
            attributes[sc.REQUEST_MODEL] = event.model
            span.update_name(f"{sc.CHAT} {event.model}")
        span.set_attributes(attributes)
        span.end(end)

    @hookimpl
    def on_retry(self, event: RetryEvent, ctx: Context) -> None:
        """A span event ``kithooks.retry`` on the LLM call being retried."""
        turn = self._turn(ctx)
        span = None if turn is None else turn.chat
        if span is not None:
            span.add_event(
                sc.RETRY_EVENT,
                _clean(
                    {"kithooks.retry.attempt": event.attempt, "kithooks.retry.error": event.error}
                ),
            )

    # -- tool calls ------------------------------------------------------------------------

    def _start_tool(
        self, name: str, call_id: str, kind: str, parent: OtelContext, start: int | None = None
    ) -> Span:
        return self._tracer.start_span(
            f"{sc.EXECUTE_TOOL} {name}" if name else sc.EXECUTE_TOOL,
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes=_clean(
                {
                    sc.OPERATION_NAME: sc.EXECUTE_TOOL,
                    sc.TOOL_NAME: name,
                    sc.TOOL_CALL_ID: call_id,
                    sc.TOOL_TYPE: sc.FUNCTION,
                    sc.TOOL_KIND: kind,
                }
            ),
            start_time=start,
        )

    @hookimpl(tryfirst=True)
    def on_tool_call(self, event: ToolCallEvent, ctx: Context) -> None:
        """Open the call's ``execute_tool`` span, before any guard runs.

        A call asked again while its span is open (same ``tool_call_id``: a tool paused by
        an interrupt and resumed) keeps that span, with a ``kithooks.tool.asked_again``
        span event; it ends at the call's result.
        """
        turn = self._turn(ctx, revive=True)
        if turn is None:
            return
        now = time.time_ns()
        call_id = event.tool_call_id
        with self._lock:
            if turn.chat is not None and turn.chat_end is None:
                turn.chat_end = now  # tools run once the model's response is complete
            calls = turn.tools.get(call_id) if call_id else None
            span = calls[-1] if calls else None
            if span is not None:
                turn.asked_again.add(call_id)
        if span is not None:
            span.add_event(sc.ASKED_AGAIN_EVENT, timestamp=now)
            return
        span = self._start_tool(event.tool_name, call_id, event.tool_kind, turn.context, now)
        with self._lock:
            dropped = turn.add_tool(call_id, span)
        if dropped is None:  # agent_end came meanwhile, on another thread
            _end_unfinished([span], TURN_ENDED)
            return
        self._drop(turn, dropped)
        self._adopt_subagent(turn, call_id, span, now)

    @hookimpl
    def on_tool_result(self, event: ToolResultEvent) -> None:
        """Subscribes the exporter to tool results; the span ends in :meth:`on_outcome`,
        with the result the model receives after every rewrite."""

    def _end_tool(self, span: Span, nested: list[Span], error: tuple[str, str] | None) -> None:
        """End a tool call's span and, first, the spans of the sub-agent nested in it
        (``nested``: its open tool calls, as unfinished, then its own span, failed with
        ``error``, an error.type and description, when not None), all at one time: no child
        ends after its parent."""
        end = time.time_ns()
        if nested:
            _end_subagent(nested, error, end)
        span.end(end)

    def _tool_call_outcome(self, event: ToolCallEvent, result: Result | None, turn: _Turn) -> None:
        call = result if isinstance(result, ToolCallResult) else ToolCallResult()
        rewritten = call.args is not None and call.args != event.parsed_args
        with self._lock:
            turn.tool_calls += 1
            again = event.tool_call_id in turn.asked_again
        if not (call.block or rewritten or again or self.capture_content):
            return
        attributes: Attributes = {}
        if rewritten or again:  # asked again: the last ask's arguments are the ones that run
            attributes[sc.ARGS_REWRITTEN] = rewritten
        if self.capture_content:
            args = json.dumps(thaw(call.args)) if rewritten else event.input
            attributes[sc.TOOL_ARGUMENTS] = args
        if not call.block:
            with self._lock:
                spans = turn.tools.get(event.tool_call_id)
                span = spans[-1] if spans else None
            if span is not None:
                span.set_attributes(attributes)
            return
        call_id = event.tool_call_id
        with self._lock:
            taken = turn.take_tool(call_id)
        if taken is None:  # a guard ran before the exporter's handler
            now = time.time_ns()
            span = self._start_tool(event.tool_name, call_id, event.tool_kind, turn.context, now)
            self._adopt_subagent(turn, call_id, span, now)
            with self._lock:
                taken = span, turn.take_nested(call_id, span)
        span, nested = taken
        span.set_attributes(attributes)
        blocked = (sc.BLOCKED, call.reason or "blocked by extension")
        _fail(span, *blocked)
        self._end_tool(span, nested, blocked)  # the blocked sub-agent never runs

    def _tool_result_outcome(
        self, event: ToolResultEvent, result: Result | None, turn: _Turn
    ) -> None:
        with self._lock:
            taken = turn.take_tool(event.tool_call_id)
        if taken is None:
            return
        span, nested = taken
        is_error, content = event.is_error, event.content
        if isinstance(result, ToolResultResult):
            if result.is_error is not None:
                is_error = result.is_error
            if result.content is not None:
                content = result.content
            if is_error != event.is_error or content != event.content:
                span.set_attribute(sc.RESULT_REWRITTEN, True)
        if self.capture_content:
            span.set_attribute(sc.TOOL_RESULT, content)
        # A sub-agent's result is its call's (KIT's subagent_end, after tool_result, states
        # it again): its span ends with the call's, failed when the final result is an error.
        if is_error:
            _fail(span, sc.TOOL_ERROR, "the tool's result is an error")
        self._end_tool(span, nested, (sc.SUBAGENT_ERROR, SUBAGENT_FAILED) if is_error else None)

    @hookimpl
    def on_outcome(self, event: Event, result: Result | None, ctx: Context) -> None:
        """Record what the guards and transforms decided: blocked and rewritten tool calls,
        rewritten tool results, cancelled compactions."""
        if isinstance(event, BeforeCompactEvent):
            self._compaction(event, result, ctx)
            return
        if isinstance(event, ToolCallEvent):
            # A guard that ran before the exporter's handler may have stopped the dispatch:
            # the call is counted here, and its turn revived here when no turn is open.
            turn = self._turn(ctx, revive=True)
            if turn is not None:
                self._tool_call_outcome(event, result, turn)
        elif isinstance(event, ToolResultEvent):
            turn = self._turn(ctx)
            if turn is not None:
                self._tool_result_outcome(event, result, turn)

    # -- sub-agents ------------------------------------------------------------------------

    def _subagent_span(
        self, turn: _Turn, call_id: str, parent: OtelContext, start: int | None = None
    ) -> Span:
        return self._tracer.start_span(
            sc.INVOKE_AGENT,
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes=_clean(
                {
                    sc.OPERATION_NAME: sc.INVOKE_AGENT,
                    sc.CONVERSATION_ID: turn.key[0],
                    "kithooks.subagent.tool_call_id": call_id,
                }
            ),
            start_time=start,
        )

    def _start_subagent(
        self, turn: _Turn, call_id: str, call: Span | None, start: int | None = None
    ) -> None:
        """Open the sub-agent's ``invoke_agent`` span under its tool call's span ``call``
        (under the turn when None); one open for the same call is ended as unfinished."""
        parent = turn.context if call is None else trace.set_span_in_context(call)
        span = self._subagent_span(turn, call_id, parent, start)
        with self._lock:
            added = turn.add_subagent(call_id, _Subagent(span, call))
        if added is None:  # agent_end came meanwhile, on another thread
            _end_unfinished([span], TURN_ENDED)
            return
        replaced, dropped = added
        if replaced:
            reason = "a new subagent_start came for the same tool call"
            _end_subagent(replaced, (sc.UNFINISHED, reason), time.time_ns())
        self._drop(turn, dropped)

    def _adopt_subagent(self, turn: _Turn, call_id: str, call: Span, start: int) -> None:
        """Open the span of a sub-agent that started before its tool call, under the call."""
        with self._lock:
            waiting = turn.waiting.pop(call_id, None)
        if waiting is not None:
            self._start_subagent(turn, call_id, call, start)

    def _open_waiting(self, turn: _Turn, call_id: str) -> None:
        """Open, under the turn, the span of the sub-agent of ``call_id`` if it still waits
        for its tool call (which never came), from when it started."""
        with self._lock:
            start = turn.waiting.pop(call_id, None)
        if start is not None:
            self._start_subagent(turn, call_id, None, start)

    @hookimpl
    def on_subagent_start(self, event: SubagentStartEvent, ctx: Context) -> None:
        """Open a nested ``invoke_agent`` span under the sub-agent's tool call.

        In KIT's order ``subagent_start`` comes before the ``tool_call`` with the same
        ``tool_call_id``: the span opens at that ``tool_call``, under its ``execute_tool``
        span. When the call's span is already open, it opens now, under it. Without a
        ``tool_call_id`` (nothing to match) it opens now, under the turn. At most
        ``max_open_spans`` sub-agents wait for their call: one more opens the span of the
        one waiting longest, under the turn, and ends it as unfinished.
        """
        turn = self._turn(ctx, revive=True)
        if turn is None:
            return
        call_id = event.tool_call_id
        # One lock section: a tool_call on another thread either sees this sub-agent
        # waiting, or opened its span before this looks.
        with self._lock:
            calls = turn.tools.get(call_id)
            call = calls[-1] if calls else None
            earlier = too_many = None
            if call is None and call_id != "":
                earlier = turn.waiting.pop(call_id, None)  # one that never got its call
                too_many = turn.add_waiting(call_id, time.time_ns())
        if call is not None or call_id == "":
            self._start_subagent(turn, call_id, call)
        elif earlier is not None:
            self._start_subagent(turn, call_id, None, earlier)
        if too_many is not None:
            dropped_id, start = too_many
            self._drop(turn, [self._subagent_span(turn, dropped_id, turn.context, start)])

    @hookimpl
    def on_subagent_chunk(self, event: SubagentChunkEvent, ctx: Context) -> None:
        """The sub-agent's tool calls, as ``execute_tool`` spans nested in its span."""
        if event.chunk_type not in ("tool_call", "tool_result"):
            return
        turn = self._turn(ctx)
        if turn is None:
            return
        self._open_waiting(turn, event.tool_call_id)  # its tool call never came
        with self._lock:
            sub = turn.subagents.get(event.tool_call_id)
        if sub is None:
            return
        if event.chunk_type == "tool_call":
            span = self._start_tool(event.tool_name, "", "", sub.context)
            with self._lock:
                dropped = turn.add_subtool(sub, event.tool_name, span)
            if dropped is None:  # the sub-agent ended meanwhile, on another thread
                _end_unfinished([span], SUBAGENT_ENDED)
            else:
                self._drop(turn, dropped)
            return
        with self._lock:
            done = turn.take_subtool(sub, event.tool_name)
        if done is not None:
            if event.is_error:
                _fail(done, sc.TOOL_ERROR, "the tool's result is an error")
            done.end()

    @hookimpl
    def on_subagent_end(self, event: SubagentEndEvent, ctx: Context) -> None:
        """End the sub-agent's span (status ERROR when it failed), unless its tool call's
        result or block (KIT's order: before ``subagent_end``) ended it already."""
        turn = self._turn(ctx)
        if turn is None:
            return
        self._open_waiting(turn, event.tool_call_id)  # its tool call never came
        with self._lock:
            spans = turn.take_subagent(event.tool_call_id)
        if spans:
            failed = (sc.SUBAGENT_ERROR, SUBAGENT_FAILED) if event.error_msg else None
            _end_subagent(spans, failed, time.time_ns())
