"""Helpers for hosts: emit a turn's events in the original's order and honour the results.

* :func:`run_tool` / :func:`arun_tool` wrap one tool call: ``tool_call`` (a block means the
  tool never runs and the model gets ``Error: <reason>``), ``tool_execution_start``, the
  tool (an exception becomes an error result), ``tool_execution_end``, ``tool_result``
  with the merged rewrite applied.
* :class:`Turn` emits a turn: ``input`` (transform; ``handled`` is honoured: the prompt does
  not reach the model), ``before_agent_start`` (always, even after a transform),
  ``context_prepare`` / ``prepare_step`` with the ``index`` rules, ``agent_start``,
  ``message_start``, steps, usage and ``agent_end``.
* :func:`before_fork`, :func:`before_session_switch`, :func:`before_compact` ask the guards
  and give the original's default reasons.

Every helper first asks whether a plugin handles the event (``pm.handled``, or
``has_handlers`` for a tool), so no payload is built that nobody reads.
"""

from __future__ import annotations

import inspect
import json
import math
import uuid
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from typing import Any, TypeVar, cast

import attrs

from . import logs
from .context import Context, handler_view
from .dispatch import RULES
from .events import (
    AgentEndEvent,
    AgentStartEvent,
    BeforeAgentStartEvent,
    BeforeCompactEvent,
    BeforeForkEvent,
    BeforeSessionSwitchEvent,
    ContextMessage,
    ContextPrepareEvent,
    ErrorEvent,
    Event,
    EventType,
    InputEvent,
    LLMUsageEvent,
    MessageEndEvent,
    MessageStartEvent,
    MessageUpdateEvent,
    PrepareStepEvent,
    StepFinishEvent,
    StepStartEvent,
    ToolCallEvent,
    ToolExecutionEndEvent,
    ToolExecutionStartEvent,
    ToolOutputEvent,
    ToolResultEvent,
    parse_json_object,
    thaw,
    tool_kind_for,
)
from .manager import PluginManager
from .usage import ModelPrice, Usage, usage_event

logger = logs.get("kithooks")

# The per-call paths name an event as ``ToolCallEvent.event_type``, not
# ``EventType.TOOL_CALL``: on Python 3.11 every attribute read on an Enum class goes through
# ``EnumType.__getattr__``'s hook (about 60 ns more than a plain class attribute, a few
# dozen times per agent run). The adapters do the same.

__all__ = [
    "Cancellation",
    "CompactDecision",
    "Injection",
    "Prompt",
    "ToolOutcome",
    "ToolResponse",
    "ToolRun",
    "Turn",
    "adrive",
    "apply_messages",
    "arun_tool",
    "before_compact",
    "before_fork",
    "before_session_switch",
    "context_window",
    "counted_step_events",
    "drive",
    "parse_args",
    "run_tool",
    "step_events",
    "tool_output",
]

M = TypeVar("M")
R = TypeVar("R")

_ROLES = ("system", "user", "assistant", "tool")


@attrs.frozen(kw_only=True)
class ToolResponse:
    """What a tool returns when it has more to say than its text."""

    content: str = ""
    is_error: bool = False
    metadata: str = ""


@attrs.frozen(kw_only=True)
class ToolOutcome:
    """What the model receives for one tool call, and what happened on the way."""

    content: str
    is_error: bool
    metadata: str = ""
    blocked: bool = False  #: a ``tool_call`` handler blocked it: the tool never ran
    reason: str = ""  #: the block's reason (the default one when the plugin gave none)


def parse_args(text: str) -> Mapping[str, Any] | None:
    """The tool input as a JSON object, or None when it is not one."""
    return parse_json_object(text)


def _response(value: object) -> ToolResponse:
    """A tool's return value as a :class:`ToolResponse` (a str is its content)."""
    if isinstance(value, ToolResponse):
        return value
    if isinstance(value, str):
        return ToolResponse(content=value)
    raise TypeError(f"a tool must return str or ToolResponse, not {type(value).__name__}")


def _failed(exc: Exception) -> ToolResponse:
    return ToolResponse(content=f"Error: {type(exc).__name__}: {exc}", is_error=True)


def _plain_json(value: object) -> bool:
    """True when ``value`` is made only of dicts with str keys, lists, tuples, str, int,
    finite float, bool and None, all of exactly these types, and its strings hold no
    surrogate code points (the JSON round trip joins a surrogate pair into one character):
    then ``json.loads`` of its ``json.dumps`` gives it back, and it can stand for the
    parsed text."""
    cls = value.__class__
    if cls is str:
        return value.isascii() or _encodable(value)  # type: ignore[attr-defined, arg-type]
    if cls is int or cls is bool or value is None:
        return True
    if cls is float:
        return math.isfinite(value)  # type: ignore[arg-type]
    if cls is dict:
        for k, v in value.items():  # type: ignore[attr-defined]
            if k.__class__ is not str or not (k.isascii() or _encodable(k)):
                return False
            if v.__class__ is str:  # the usual value, without a call
                if not (v.isascii() or _encodable(v)):
                    return False
            elif not _plain_json(v):
                return False
        return True
    if cls is list or cls is tuple:
        return all(_plain_json(v) for v in value)  # type: ignore[attr-defined]
    return False


def _plain_encoder() -> Callable[[object], str]:
    """``json.dumps`` with its default options, for data :func:`_plain_json` accepted: the
    C encoder ``json.dumps`` makes on every call is made once (a third of its cost for a
    tool's arguments). Without the C encoder (another Python), ``json.dumps`` itself."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.dumps
    # No circular check (markers None) and no default: plain data has neither cycles nor
    # objects json cannot write, so the output is json.dumps(value)'s.
    encode = make(
        None, None, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True
    )
    join = "".join

    def dumps_plain(value: object) -> str:
        return join(encode(value, 0))

    return dumps_plain


#: ``json.dumps(value)`` for plain JSON data (:func:`_plain_json`); anything else is
#: ``json.dumps``' business.
dumps_plain: Callable[[object], str] = _plain_encoder()


def _encodable(text: str) -> bool:
    """True when ``text`` holds no surrogate code points (UTF-8 can encode it)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def drive(pm: PluginManager, steps: Generator[Event, Any, R], ctx: Context | None) -> R:
    """Run a host sequence with ``emit``: each event it yields is emitted, the answer sent back."""
    try:
        event = next(steps)
        while True:
            event = steps.send(pm.emit(event, ctx))
    except StopIteration as done:
        return cast("R", done.value)


async def adrive(pm: PluginManager, steps: Generator[Event, Any, R], ctx: Context | None) -> R:
    """Run a host sequence with ``aemit`` (coroutine handlers are awaited)."""
    try:
        event = next(steps)
        while True:
            event = steps.send(await pm.aemit(event, ctx))
    except StopIteration as done:
        return cast("R", done.value)


class ToolRun:
    """The events around one tool call: one sequence for sync and async hosts and adapters.

    ::

        run = ToolRun(pm, tool_name="bash", tool_call_id="c1", input='{"command": "ls"}')
        blocked = run.start()              # or: await run.astart()
        if blocked is None:
            outcome = run.finish(tool(run.input))   # or: await run.afinish(...)

    :meth:`start` emits ``tool_call`` (a block returns the outcome the model must get,
    ``Error: <reason>``, and the tool must not run; an ``args`` rewrite sets :attr:`input`
    and :attr:`args`, what the tool must get) and then ``tool_execution_start``.
    :meth:`finish` emits ``tool_execution_end`` and ``tool_result`` and returns what the
    model receives, with the plugins' rewrite applied. Every payload is built only when a
    plugin handles its event.

    The arguments come either as ``input``, the JSON text the model produced, or as
    ``args``, a mapping the host has already parsed (then :attr:`input` is
    ``json.dumps(args)``, so the two always agree, and ``tool_call`` handlers get
    ``parsed_args`` without the text being parsed again). Giving both, or neither, is a
    ``TypeError``.
    """

    __slots__ = ("_given", "args", "ctx", "id", "input", "kind", "name", "pm", "rewritten")

    def __init__(
        self,
        pm: PluginManager,
        *,
        tool_name: str,
        tool_call_id: str,
        input: str | None = None,
        args: Mapping[str, Any] | None = None,
        tool_kind: str | None = None,
        ctx: Context | None = None,
    ) -> None:
        self.pm, self.ctx = pm, ctx
        self.name, self.id = tool_name, tool_call_id
        self.kind = tool_kind or tool_kind_for(tool_name)
        #: The parsed arguments the host gave, when they are plain JSON data (they then are
        #: what parsing :attr:`input` would give); None: derive them from :attr:`input`.
        self._given: Mapping[str, Any] | None = None
        if args is not None:
            if input is not None:
                raise TypeError("ToolRun takes input (JSON text) or args (a mapping), not both")
            try:
                plain = args.__class__ is dict and _plain_json(args)
            except RecursionError:
                plain = False
            if plain:
                self._given = args
            # A TypeError for what is not JSON data (json's own); read-only mappings thawed.
            input = dumps_plain(args) if plain else json.dumps(thaw(args))
        elif input is None:
            raise TypeError("ToolRun needs the tool's arguments: input (JSON text) or args")
        #: The arguments the tool must get: the model's JSON text, or the plugins' rewrite.
        self.input: str = input
        #: :attr:`input` as a read-only mapping (None when it is not a JSON object).
        self.args: Mapping[str, Any] | None = None
        #: True when a plugin rewrote the arguments.
        self.rewritten = False

    def _start(self) -> Generator[Event, Any, ToolOutcome | None]:
        pm = self.pm
        if pm.has_handlers(ToolCallEvent.event_type, self.name):
            try:
                event = ToolCallEvent(
                    tool_name=self.name,
                    tool_call_id=self.id,
                    tool_kind=self.kind,
                    input=self.input,
                    parsed_args=self._given,
                    source="llm",
                )
            except ValueError as exc:  # a JSON object Python cannot read: the guards can't
                reason = f"kithooks could not check this call: {exc}"
                logger.warning("tool call %r (%s) not run: %s", self.id, self.name, reason)
                return ToolOutcome(
                    content=f"Error: {reason}", is_error=True, blocked=True, reason=reason
                )
            self.args = event.parsed_args
            result = yield event
            if result is not None:
                if result.block:
                    reason = result.reason or RULES[ToolCallEvent.event_type].default_reason
                    return ToolOutcome(
                        content=f"Error: {reason}", is_error=True, blocked=True, reason=reason
                    )
                if result.args is not None:
                    self.args = result.args
                    self.input = json.dumps(thaw(result.args), ensure_ascii=False)
                    self.rewritten = True
        # handled[] first: a C lookup that answers for the events hosts rarely hook
        if pm.handled[ToolExecutionStartEvent.event_type] and pm.has_handlers(
            ToolExecutionStartEvent.event_type, self.name
        ):
            yield ToolExecutionStartEvent(
                tool_call_id=self.id, tool_name=self.name, tool_kind=self.kind
            )
        return None

    def _end_event(self) -> ToolExecutionEndEvent | None:
        pm = self.pm
        if pm.handled[ToolExecutionEndEvent.event_type] and pm.has_handlers(  # as in _start
            ToolExecutionEndEvent.event_type, self.name
        ):
            return ToolExecutionEndEvent(
                tool_call_id=self.id, tool_name=self.name, tool_kind=self.kind
            )
        return None

    def _end(self) -> Generator[Event, Any, None]:
        if (end := self._end_event()) is not None:
            yield end

    def _finish(self, response: ToolResponse) -> Generator[Event, Any, ToolOutcome]:
        return self._result(response, ended=False)

    def _result(
        self, response: ToolResponse, *, ended: bool = True
    ) -> Generator[Event, Any, ToolOutcome]:
        """``tool_result``, after ``tool_execution_end`` unless the execution ``ended``
        already: one generator on every tool call's way out (a ``yield from`` of two would
        cost a run more than its events' building)."""
        pm = self.pm
        if not ended and (end := self._end_event()) is not None:
            yield end
        content, is_error = response.content, response.is_error
        if pm.has_handlers(ToolResultEvent.event_type, self.name):
            result = yield ToolResultEvent(
                tool_call_id=self.id,
                tool_name=self.name,
                tool_kind=self.kind,
                input=self.input,
                content=content,
                is_error=is_error,
                metadata=response.metadata,
            )
            if result is not None:
                if result.content is not None:
                    content = result.content
                if result.is_error is not None:
                    is_error = result.is_error
        return ToolOutcome(content=content, is_error=is_error, metadata=response.metadata)

    def start(self) -> ToolOutcome | None:
        """Emit ``tool_call`` and ``tool_execution_start``; an outcome means: blocked."""
        return drive(self.pm, self._start(), self.ctx)

    async def astart(self) -> ToolOutcome | None:
        """:meth:`start` with ``aemit``."""
        return await adrive(self.pm, self._start(), self.ctx)

    def finish(self, response: ToolResponse | str) -> ToolOutcome:
        """Emit ``tool_execution_end`` and ``tool_result``; returns what the model gets."""
        return drive(self.pm, self._finish(_response(response)), self.ctx)

    async def afinish(self, response: ToolResponse | str) -> ToolOutcome:
        """:meth:`finish` with ``aemit``."""
        return await adrive(self.pm, self._finish(_response(response)), self.ctx)

    async def aend(self) -> None:
        """``tool_execution_end`` alone, with ``aemit``: the execution ended with no result
        for the model now (a deferred call, whose result comes when the run resumes)."""
        await adrive(self.pm, self._end(), self.ctx)

    async def aresult(self, response: ToolResponse | str) -> ToolOutcome:
        """``tool_result`` alone, with ``aemit``; returns what the model gets: a result that
        comes after the execution ended without one (:meth:`aend`: a deferred call answered
        later) or that stands in for a blocked call's error."""
        return await adrive(self.pm, self._result(_response(response)), self.ctx)


def run_tool(
    pm: PluginManager,
    tool: Callable[[str], str | ToolResponse],
    *,
    tool_name: str,
    tool_call_id: str,
    input: str,
    tool_kind: str | None = None,
    ctx: Context | None = None,
) -> ToolOutcome:
    """Run ``tool(input)`` between the tool events; returns what the model should receive.

    The tool gets the arguments as the plugins left them (a ``ToolCallResult(args=...)``
    rewrite replaces ``input``). ``tool_kind`` defaults to the original's table. An
    exception from the tool becomes an error result (``Error: <type>: <message>``); it does
    not propagate.
    """
    run = ToolRun(
        pm,
        tool_name=tool_name,
        tool_call_id=tool_call_id,
        input=input,
        tool_kind=tool_kind,
        ctx=ctx,
    )
    blocked = run.start()
    if blocked is not None:
        return blocked
    try:
        response = _response(tool(run.input))
    except Exception as exc:
        response = _failed(exc)
    return run.finish(response)


async def arun_tool(
    pm: PluginManager,
    tool: Callable[[str], str | ToolResponse | Awaitable[str | ToolResponse]],
    *,
    tool_name: str,
    tool_call_id: str,
    input: str,
    tool_kind: str | None = None,
    ctx: Context | None = None,
) -> ToolOutcome:
    """:func:`run_tool` for async code: ``tool`` may be a coroutine function, and the events
    are dispatched with ``aemit`` (coroutine handlers are awaited)."""
    run = ToolRun(
        pm,
        tool_name=tool_name,
        tool_call_id=tool_call_id,
        input=input,
        tool_kind=tool_kind,
        ctx=ctx,
    )
    blocked = await run.astart()
    if blocked is not None:
        return blocked
    try:
        value = tool(run.input)
        if inspect.isawaitable(value):
            value = await value
        response = _response(value)
    except Exception as exc:
        response = _failed(exc)
    return await run.afinish(response)


def tool_output(
    pm: PluginManager,
    chunk: str,
    *,
    tool_call_id: str,
    tool_name: str,
    is_stderr: bool = False,
    ctx: Context | None = None,
) -> None:
    """Emit one ``tool_output`` chunk of a running tool (with its ``tool_kind`` filled in)."""
    if pm.handled[ToolOutputEvent.event_type]:
        pm.emit(
            ToolOutputEvent(
                tool_call_id=tool_call_id,
                tool_name=tool_name,
                tool_kind=tool_kind_for(tool_name),
                chunk=chunk,
                is_stderr=is_stderr,
            ),
            ctx,
        )


def apply_messages(
    originals: Sequence[M],
    messages: Sequence[ContextMessage],
    make: Callable[[str, str], M],
) -> list[M]:
    """Rebuild a host's message list from plugin-returned context messages.

    A message whose ``index`` is within ``originals`` is that original message, unchanged
    (its role and content in the result are ignored, as in the original); any other index is
    a new message ``make(role, content)``, its role ``user`` unless it is one of
    ``system``, ``user``, ``assistant`` or ``tool``.
    """
    out: list[M] = []
    for m in messages:
        if 0 <= m.index < len(originals):
            out.append(originals[m.index])
        else:
            out.append(make(m.role if m.role in _ROLES else "user", m.content))
    return out


def context_window(
    messages: Sequence[M], describe: Callable[[M], tuple[str, str]]
) -> tuple[ContextMessage, ...]:
    """A host's messages as the plugins see them: ``describe(m)`` gives ``(role, text)``,
    and each message's ``index`` is its position (the inverse of :func:`apply_messages`)."""
    return tuple(
        ContextMessage(index=i, role=role, content=content)
        for i, (role, content) in enumerate(describe(m) for m in messages)
    )


def step_events(
    pm: PluginManager,
    step_number: int,
    *,
    provider: str,
    model: str,
    usage: Usage,
    finish_reason: str = "",
    has_tool_calls: bool = False,
    request_id: str = "",
    oauth: bool = False,
    prices: Mapping[str, ModelPrice] | None = None,
) -> list[Event]:
    """The ``step_finish`` and ``llm_usage`` events of one finished step, in that order.

    ``usage`` holds the call's tokens (``input_tokens`` excludes cache reads and writes).
    Each event (and the price) is built only when some plugin handles it.
    """
    return counted_step_events(
        pm,
        step_number,
        provider=provider,
        model=model,
        **usage.counts(),
        finish_reason=finish_reason,
        has_tool_calls=has_tool_calls,
        request_id=request_id,
        oauth=oauth,
        prices=prices,
    )


def counted_step_events(
    pm: PluginManager,
    step_number: int,
    *,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    finish_reason: str = "",
    has_tool_calls: bool = False,
    request_id: str = "",
    oauth: bool = False,
    prices: Mapping[str, ModelPrice] | None = None,
) -> list[Event]:
    """:func:`step_events` from the token counts themselves, for the adapters: building a
    :class:`~kithooks.Usage` first costs more than the two events (``input_tokens``
    excludes cache reads and writes)."""
    events: list[Event] = []
    if pm.handled[StepFinishEvent.event_type]:
        events.append(
            StepFinishEvent(
                step_number=step_number,
                has_tool_calls=has_tool_calls,
                finish_reason=finish_reason,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cache_read_tokens=cache_read_tokens,
                cache_write_tokens=cache_write_tokens,
            )
        )
    if pm.handled[LLMUsageEvent.event_type]:
        events.append(
            usage_event(
                provider=provider,
                model=model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cache_read_tokens=cache_read_tokens,
                cache_write_tokens=cache_write_tokens,
                step_number=step_number,
                finish_reason=finish_reason,
                request_id=request_id,
                oauth=oauth,
                prices=prices,
            )
        )
    return events


@attrs.frozen(kw_only=True)
class Prompt:
    """The prompt after ``input``: possibly transformed, or handled (do not send it)."""

    text: str
    handled: bool = False
    transformed: bool = False


@attrs.frozen(kw_only=True)
class Injection:
    """What ``before_agent_start`` asks the host to add to the turn (None: nothing)."""

    inject_text: str | None = None
    system_prompt: str | None = None


@attrs.frozen(kw_only=True)
class Cancellation:
    """A guard's answer: cancelled or not, with the reason to show the user."""

    cancelled: bool
    reason: str = ""


@attrs.frozen(kw_only=True)
class CompactDecision:
    """``before_compact``'s answer: cancelled (with a reason), or a summary to use ('')."""

    cancelled: bool
    reason: str = ""
    summary: str = ""


def _guard(pm: PluginManager, event: Any, ctx: Context | None) -> tuple[bool, str, Any]:
    et = event.event_type
    result = pm.emit(event, ctx)
    if result is not None and result.cancel:
        return True, result.reason or RULES[et].default_reason, result
    return False, "", result


def before_fork(
    pm: PluginManager,
    *,
    target_id: str,
    is_user_message: bool = False,
    user_text: str = "",
    ctx: Context | None = None,
) -> Cancellation:
    """Ask plugins whether the session may fork from ``target_id``."""
    if not pm.handled[BeforeForkEvent.event_type]:
        return Cancellation(cancelled=False)
    event = BeforeForkEvent(
        target_id=target_id, is_user_message=is_user_message, user_text=user_text
    )
    cancelled, reason, _ = _guard(pm, event, ctx)
    return Cancellation(cancelled=cancelled, reason=reason)


def before_session_switch(
    pm: PluginManager, *, reason: str = "new", ctx: Context | None = None
) -> Cancellation:
    """Ask plugins whether the host may switch sessions (``reason``: new, clear, resume)."""
    if not pm.handled[BeforeSessionSwitchEvent.event_type]:
        return Cancellation(cancelled=False)
    cancelled, why, _ = _guard(pm, BeforeSessionSwitchEvent(reason=reason), ctx)
    return Cancellation(cancelled=cancelled, reason=why)


def before_compact(
    pm: PluginManager,
    *,
    estimated_tokens: int,
    context_limit: int,
    message_count: int,
    is_automatic: bool = False,
    ctx: Context | None = None,
) -> CompactDecision:
    """Ask plugins whether to compact, and whether one brings its own summary."""
    if not pm.handled[BeforeCompactEvent.event_type]:
        return CompactDecision(cancelled=False)
    usage = estimated_tokens / context_limit if context_limit else 0.0
    event = BeforeCompactEvent(
        estimated_tokens=estimated_tokens,
        context_limit=context_limit,
        usage_percent=usage,
        message_count=message_count,
        is_automatic=is_automatic,
    )
    cancelled, reason, result = _guard(pm, event, ctx)
    summary = "" if cancelled or result is None else result.summary
    return CompactDecision(cancelled=cancelled, reason=reason, summary=summary)


class Turn:
    """Emits one turn's events in the original's order, and applies what plugins return.

    ::

        turn = Turn(pm, turn_id="t1")
        prompt = turn.input("fix the bug")
        if prompt.handled:
            return                      # a plugin consumed it: nothing reaches the model
        injection = turn.before_agent_start(prompt.text)
        messages = turn.context_prepare(history, describe=..., make=...)
        turn.agent_start(prompt.text)
        ...                             # per step: prepare_step, step_start, text, tools, usage
        turn.end(response="done", stop_reason="stop")

    The turn runs with a copy of the manager's context whose ``turn_id`` is this turn's
    (a new random id unless given), so the aggregator counts it apart from other turns.
    """

    def __init__(
        self, pm: PluginManager, *, turn_id: str | None = None, ctx: Context | None = None
    ) -> None:
        self.pm = pm
        base = ctx if ctx is not None else pm.context
        self.ctx = base.for_turn(turn_id or uuid.uuid4().hex)
        handler_view(self.ctx, pm)  # bind it: the host's ctx.get_state reaches pm.state at once
        self._text: list[str] = []

    def _emit(self, cls: type[Event], **fields: Any) -> Any:
        """Emit ``cls(**fields)``; the payload is built only when a plugin handles it."""
        if not self.pm.handled[cls.event_type]:
            return None
        return self.pm.emit(cls(**fields), self.ctx)

    def input(self, text: str, *, source: str = "") -> Prompt:
        """Emit ``input``: the prompt as plugins transformed it, or handled."""
        result = self._emit(InputEvent, text=text, source=source)
        if result is None:
            return Prompt(text=text)
        if result.action == "handled":
            return Prompt(text=text, handled=True)
        if result.action == "transform":
            return Prompt(text=result.text, transformed=True)
        return Prompt(text=text)

    def before_agent_start(self, prompt: str) -> Injection:
        """Emit ``before_agent_start``: the text and system prompt to add to the turn."""
        result = self._emit(BeforeAgentStartEvent, prompt=prompt)
        if result is None:
            return Injection()
        return Injection(inject_text=result.inject_text, system_prompt=result.system_prompt)

    def _messages(
        self,
        event_type: EventType,
        event_factory: Callable[[tuple[ContextMessage, ...]], Any],
        messages: Sequence[M],
        describe: Callable[[M], tuple[str, str]],
        make: Callable[[str, str], M],
    ) -> list[M]:
        if not self.pm.handled[event_type]:
            return list(messages)
        result = self.pm.emit(event_factory(context_window(messages, describe)), self.ctx)
        if result is None or result.messages is None:
            return list(messages)
        return apply_messages(messages, result.messages, make)

    def context_prepare(
        self,
        messages: Sequence[M],
        *,
        describe: Callable[[M], tuple[str, str]],
        make: Callable[[str, str], M],
    ) -> list[M]:
        """Emit ``context_prepare`` and return the window plugins made of ``messages``.

        ``describe(message)`` gives a host message's ``(role, text)``; ``make(role, text)``
        builds a host message for one a plugin added.
        """
        return self._messages(
            ContextPrepareEvent.event_type,
            lambda w: ContextPrepareEvent(messages=w),
            messages,
            describe,
            make,
        )

    def prepare_step(
        self,
        step_number: int,
        messages: Sequence[M],
        *,
        describe: Callable[[M], tuple[str, str]],
        make: Callable[[str, str], M],
    ) -> list[M]:
        """Emit ``prepare_step`` for one step and return its (possibly replaced) messages."""
        return self._messages(
            PrepareStepEvent.event_type,
            lambda w: PrepareStepEvent(step_number=step_number, messages=w),
            messages,
            describe,
            make,
        )

    def agent_start(self, label: str) -> None:
        """Emit ``agent_start`` (the turn's label) and ``message_start``."""
        self._emit(AgentStartEvent, prompt=label)
        self._emit(MessageStartEvent)

    def step_start(self, step_number: int) -> None:
        """Emit ``step_start``; text from here on belongs to this step."""
        self._text = []
        self._emit(StepStartEvent, step_number=step_number)

    def text(self, chunk: str) -> None:
        """Emit one ``message_update`` delta."""
        self._text.append(chunk)
        self._emit(MessageUpdateEvent, chunk=chunk)

    def run_tool(
        self,
        tool: Callable[[str], str | ToolResponse],
        *,
        tool_name: str,
        tool_call_id: str,
        input: str,
    ) -> ToolOutcome:
        """:func:`run_tool` within this turn."""
        return run_tool(
            self.pm, tool, tool_name=tool_name, tool_call_id=tool_call_id, input=input, ctx=self.ctx
        )

    def step_finish(
        self,
        step_number: int,
        *,
        provider: str,
        model: str,
        usage: Usage,
        finish_reason: str = "",
        has_tool_calls: bool = False,
        oauth: bool = False,
        prices: Mapping[str, ModelPrice] | None = None,
    ) -> None:
        """Emit ``step_finish`` and ``llm_usage`` (priced with ``compute_cost``), in that order."""
        for event in step_events(
            self.pm,
            step_number,
            provider=provider,
            model=model,
            usage=usage,
            finish_reason=finish_reason,
            has_tool_calls=has_tool_calls,
            oauth=oauth,
            prices=prices,
        ):
            self.pm.emit(event, self.ctx)

    def end(self, *, response: str = "", stop_reason: str = "", error: str | None = None) -> None:
        """End the turn: ``message_end`` (the last step's text) or ``error``, then ``agent_end``.

        ``stop_reason`` is the final step's finish reason; empty becomes ``completed``. With
        ``error``, ``agent_end`` has ``stop_reason='error'`` and an empty response.
        """
        if error is not None:
            self._emit(ErrorEvent, error=error)
            self._emit(AgentEndEvent, response="", stop_reason="error")
            return
        self._emit(MessageEndEvent, content="".join(self._text))
        self._emit(AgentEndEvent, response=response, stop_reason=stop_reason or "completed")
