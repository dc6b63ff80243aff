"""kithooks inside pydantic-ai: ``Agent(model, capabilities=[KitHooks(pm)])``.

:class:`KitHooks` is a pydantic-ai capability that makes every run of the agent emit the
kithooks events through a :class:`~kithooks.PluginManager` in the original's order, and
honours every result:

=====================  ==============================================================
kithooks event         where it comes from in the run
=====================  ==============================================================
input                  the run's prompt (source ``script``), first: a multimodal prompt's
                       text items joined by a blank line; ``transform`` rewrites the
                       prompt the model sees (its text items only, each from its own
                       blank-line-separated piece when the counts match, else the first
                       gets all the text; images and files stay), ``handled`` ends the
                       run before any model call
before_agent_start     next; ``inject_text`` / ``system_prompt`` are added to the turn
context_prepare        before the first model request: rewrites that request's messages
agent_start,           then (before the first tool event when tools run first: on
message_start          resuming a run with ``DeferredToolResults``)
prepare_step,          before every model request (step 0 included): rewrites its messages
step_start
message_update,        the model's text deltas (with ``stream=True``, per streamed delta;
tool_call_input_*      otherwise once per text part); tool-call argument deltas
reasoning_start        a thinking part starts
tool_call ...          every tool execution, through ``hosting.ToolRun``, with the arguments
tool_result            the tool gets: the ones pydantic-ai validated (any capability's
                       ``before_tool_validate`` / ``on_tool_validate_error`` /
                       ``after_tool_validate`` included; defaults filled in), as every
                       capability's ``wrap_tool_execute`` and the ``before_tool_execute``
                       of those listed before ``KitHooks`` left them, as JSON data,
                       not the model's raw text, in the shape of the tool's JSON schema (a
                       tool whose one parameter is a model, dataclass or TypedDict shows
                       its fields flat; bytes as UTF-8 text): a block means the tool never
                       runs and the model receives the failed result ``Error: <reason>``;
                       an ``args`` rewrite is what the tool gets: the arguments it changed
                       validated by the tool's validator and ``args_validator``, the others
                       the objects pydantic-ai validated (one that does not fit, or that
                       changes an argument holding a value the plugins saw masked or left
                       out, a secret or a field a serializer hides, is a ``TypeError``);
                       ``tool_result`` rewrites what the model receives (``is_error=True``
                       makes it a failed result; a ``ToolFailed`` / ``ModelRetry`` the
                       tool raised is shown, and rewritten, as the message the model
                       receives, and ``is_error=False`` makes it a successful result; a
                       result that is not text is shown as the JSON text the model gets,
                       a ``ToolReturn`` or a result holding files as its Python form,
                       metadata and files included, and a rewrite replaces it all with
                       the text). The guard is ``KitHooks.before_tool_execute``, which
                       pydantic-ai runs in the order of the capabilities, after all of
                       their ``wrap_tool_execute``: list ``KitHooks`` after every
                       capability whose ``before_tool_execute`` changes arguments. A
                       result another capability substitutes (``SkipToolExecution``) is
                       a successful result (guarded first when it came before the guard
                       ran); a failure a capability raises before the guard is guarded
                       the same way. A capability listed after ``KitHooks`` that runs the
                       tool again for one call (its own retry: its ``handler`` called again)
                       makes each run an execution of its own: ``tool_call`` again, with the
                       arguments that run gets (the aggregator counts each; a block stops
                       only that run), the one before ending with ``tool_execution_end``
                       alone; ``tool_result`` shows what comes out to the model, and an
                       answer such a capability gives in place of a blocked run is a
                       ``tool_result`` alone. A deferral (``CallDeferred``,
                       ``ApprovalRequired``) ends with ``tool_execution_end`` and no
                       ``tool_result``; its result, when it comes, is a ``tool_result``
                       alone, rewritten as the model gets it: a value, ``ToolReturn``,
                       ``ToolFailed`` or ``ModelRetry`` the host gives in
                       ``DeferredToolResults(calls=...)`` on resuming the run, and the
                       answer a ``handle_deferred_tool_calls`` hook gives during the run to
                       a question (``CallDeferred(kind="question")``). What such a hook
                       gives during the run for any other deferral, and a denial
                       (``ToolDenied``), reach the model with no event (pydantic-ai runs no
                       hook on them). An approved call runs, and is guarded, when the run
                       resumes (or when such a hook approves it)
tool_call ...          an output function (``ToolOutput(fn)``, ``TextOutput(fn)``, a
tool_result            ``NativeOutput`` / ``PromptedOutput`` of functions), each time
                       pydantic-ai calls it (in ``run_stream`` also on partial output):
                       named as the model called it (else the function's name), with the
                       arguments the function gets (a model's or dataclass's fields, text
                       as ``{"value": text}``); a ``Choices`` action (a callable choice
                       value), named after the action, as ``{"choice": key}``; a block
                       means the function never runs and the model is asked again with
                       ``Error: <reason>`` (``run_stream`` cannot ask again: the run
                       fails). Rewrites are passed as JSON data, not validated again; a
                       model result is rebuilt from its rewritten JSON. A union of
                       several output types with a function among them is one tool named
                       ``output`` (pydantic-ai does not say which member it resolved),
                       plain members included: filter on ``output``, not on the function.
                       Another capability's ``before_output_process`` or
                       ``before_tool_execute`` runs inside this one, after the guard: give
                       ``KitHooks`` the last place among capabilities that change arguments
step_finish,           each model response's usage, after the step's tools ran (or when the
llm_usage              run fails after it); cost from ``compute_cost``, model and provider
                       from the response; each attempt a fallback rejected before it
                       (``ModelFallback``'s ``fallback_on``) is an ``llm_usage`` of its own
                       (``finish_reason="error"``), after the step's
retry                  a further attempt at a model request (``error`` does not say why:
                       pydantic-ai tells only after the attempt)
error, agent_end       the run failed / ended; ``agent_end`` is enriched by the aggregator.
                       A cancelled run (``task.cancel()``, a ``break`` out of
                       ``agent.iter``, a ``run_stream`` left unread) fails with
                       ``CancelledError``, its running tools ending with that failed
                       result first
message_end            the final step's text, on success
=====================  ==============================================================

Not emitted, because pydantic-ai has no equivalent: ``tool_output`` (tools do not stream
output), ``subagent_*``, ``warnings``, ``source``, ``model_change``, ``before_fork``,
``before_session_switch``, ``before_compact``, ``session_start`` and ``session_shutdown``
(a host emits those around its sessions).

``ctx.turn_id`` is the run's ``run_id``; ``ctx.session_id`` is the manager context's, or
the run's ``conversation_id`` when that is empty. Plugins see the manager's state store.
Install with ``pip install 'kithooks[pydantic-ai]'``.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import anyio
from pydantic import BaseModel, Secret, SecretBytes, SecretStr, TypeAdapter, ValidationError
from pydantic_ai import CallToolsNode
from pydantic_ai.capabilities import AbstractCapability, CombinedCapability
from pydantic_ai.exceptions import (
    ApprovalRequired,
    CallDeferred,
    ModelRetry,
    SkipToolExecution,
    ToolFailed,
    ToolFailedError,
    ToolRetryError,
)
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    PartDeltaEvent,
    PartEndEvent,
    PartStartEvent,
    SystemPromptPart,
    TextContent,
    TextPart,
    TextPartDelta,
    ThinkingPart,
    ToolCallPart,
    ToolCallPartDelta,
    ToolReturn,
    ToolReturnPart,
    UserPromptPart,
    is_multi_modal_content,
)
from pydantic_ai.run import AgentRunResult
from pydantic_core import PydanticSerializationError, to_jsonable_python

from ..context import Context
from ..events import (
    AgentEndEvent,
    AgentStartEvent,
    BeforeAgentStartEvent,
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
    ReasoningStartEvent,
    RetryEvent,
    StepFinishEvent,
    StepStartEvent,
    ToolCallEvent,
    ToolCallInputDeltaEvent,
    ToolCallInputEndEvent,
    ToolCallInputStartEvent,
    ToolExecutionEndEvent,
    ToolExecutionStartEvent,
    ToolResultEvent,
    thaw,
    tool_kind_for,
)
from ..hosting import (
    ToolOutcome,
    ToolResponse,
    ToolRun,
    apply_messages,
    context_window,
    counted_step_events,
)
from ..listeners import describe_error
from ..manager import PluginManager
from ..usage import ModelPrice, usage_event
from . import RUN_EVENTS

__all__ = ["EMITTED", "KitHooks", "describe_message", "make_message"]

# The per-call paths name an event as ``ToolCallEvent.event_type``, not
# ``EventType.TOOL_CALL``: an Enum class's attribute costs more on Python 3.11 (see
# kithooks.hosting).

_FINISH = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content-filter",
    "tool_call": "tool-calls",
    "error": "error",
}


#: Between the text items of a multimodal prompt, as the plugins see it.
_TEXT_SEP = "\n\n"


def _item_text(item: Any) -> str | None:
    """The text of one item of a user prompt (a string or ``TextContent``), else None."""
    if isinstance(item, str):
        return item
    if isinstance(item, TextContent):
        return item.content
    return None


def _text(content: Any) -> str:
    """A user prompt's text: a multimodal prompt's text items, joined by a blank line."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        texts = (_item_text(c) for c in content)
        return _TEXT_SEP.join(t for t in texts if t is not None)
    return ""


def _with_text(content: Any, text: str) -> Any:
    """A user prompt's ``content`` with its text (see :func:`_text`) replaced by ``text``,
    its images, documents and other items kept in place.

    When ``text`` has as many blank-line-separated pieces as the prompt has text items,
    each piece replaces its item; otherwise the first text item gets all of ``text`` and
    the other text items are dropped (a prompt without text gets ``text`` first)."""
    if isinstance(content, str):
        return text
    items = list(content)
    where = [i for i, item in enumerate(items) if _item_text(item) is not None]
    if not where:
        return [text, *items] if text else items
    pieces: list[str | None] = list(text.split(_TEXT_SEP))
    if len(pieces) != len(where):
        pieces = [text] + [None] * (len(where) - 1)
    for i, piece in zip(where, pieces, strict=True):
        item = items[i]
        if piece is None:
            items[i] = None
        elif isinstance(item, TextContent):
            items[i] = dataclasses.replace(item, content=piece)
        else:
            items[i] = piece
    return [item for item in items if item is not None]


def describe_message(message: ModelMessage) -> tuple[str, str]:
    """A pydantic-ai message as ``(role, text)`` for a :class:`ContextMessage`.

    A response is ``assistant`` (its text parts); a request is ``system`` when it holds only
    system prompt parts, ``tool`` when it holds only tool returns, else ``user`` (its user and
    system text).
    """
    if isinstance(message, ModelResponse):
        return "assistant", "".join(p.content for p in message.parts if isinstance(p, TextPart))
    parts = list(message.parts)
    if parts and all(isinstance(p, SystemPromptPart) for p in parts):
        return "system", "\n\n".join(p.content for p in parts if isinstance(p, SystemPromptPart))
    if parts and all(isinstance(p, ToolReturnPart) for p in parts):
        return "tool", "\n\n".join(
            p.model_response_str() for p in parts if isinstance(p, ToolReturnPart)
        )
    texts = [
        p.content if isinstance(p, SystemPromptPart) else _text(p.content)
        for p in parts
        if isinstance(p, UserPromptPart | SystemPromptPart)
    ]
    return "user", "\n\n".join(t for t in texts if t)


def make_message(role: str, content: str) -> ModelMessage:
    """A new pydantic-ai message for one a plugin added (``tool`` becomes user text)."""
    if role == "assistant":
        return ModelResponse(parts=[TextPart(content=content)])
    if role == "system":
        return ModelRequest(parts=[SystemPromptPart(content=content)])
    return ModelRequest(parts=[UserPromptPart(content=content)])


def _counts(usage: Any) -> tuple[int, int, int, int]:
    """A pydantic-ai ``RequestUsage`` as input tokens without the cache's (pydantic-ai counts
    cache reads and writes inside input), output, cache read and cache write tokens."""
    read, write = usage.cache_read_tokens, usage.cache_write_tokens
    return max(0, usage.input_tokens - read - write), usage.output_tokens, read, write


def _tool_text(result: Any) -> str:
    """A tool's result, not text, as tool_result text: the JSON text the model gets
    (pydantic's, as pydantic-ai sends it); a ``ToolReturn`` or a result holding files
    (images, documents), whose files and metadata the model's text leaves out, as its
    Python form, every part included."""
    items = result if isinstance(result, list | tuple) else (result,)
    if isinstance(result, ToolReturn) or any(is_multi_modal_content(i) for i in items):
        return json.dumps(result, default=str)
    return ToolReturnPart(tool_name="", content=result).model_response_str()


def _name(run: ToolRun | _ToolCall) -> str:
    """The tool (or output function) name of ``run``."""
    return run.name if isinstance(run, ToolRun) else run.call.tool_name


#: What a host's ``DeferredToolResults(calls=...)`` holds for a call, once pydantic-ai
#: wrapped a plain value in a ``ToolReturn``.
_GIVEN = (ToolReturn, ToolFailed, ModelRetry)


async def _answered(run: ToolRun, given: Any) -> Any:
    """A result the tool did not return itself (a question's answer, a result the host gave
    for a deferred call) after ``tool_result`` alone: what the model gets. A ``ToolFailed``
    or ``ModelRetry`` is shown as its message; a rewrite makes a ``ToolReturn`` of the text,
    or, when the plugins made it a failure, a ``ToolFailed`` (a ``ModelRetry`` stays one)."""
    if isinstance(given, ToolFailed | ModelRetry):
        content, is_error = given.message, True
    else:
        value = given
        if isinstance(given, ToolReturn) and given.content is given.metadata is given.tools is None:
            value = given.return_value  # a plain value the host gave, wrapped by pydantic-ai
        content, is_error = (value if isinstance(value, str) else _tool_text(value)), False
    outcome = await run.aresult(ToolResponse(content=content, is_error=is_error))
    if outcome.content == content and outcome.is_error == is_error:
        return given
    if not outcome.is_error:
        return ToolReturn(outcome.content) if isinstance(given, _GIVEN) else outcome.content
    return (
        ModelRetry(outcome.content)
        if isinstance(given, ModelRetry)
        else ToolFailed(outcome.content)
    )


def _args_text(args: Any) -> str:
    if args is None:
        return ""
    return args if isinstance(args, str) else json.dumps(args)


#: Every event a run can emit. A run starts with no hook at all when none of them has a
#: handler then (see :meth:`KitHooks.for_run`); a test checks that the list is complete.
EMITTED: tuple[EventType, ...] = (*RUN_EVENTS, EventType.RETRY)

_STREAM_EVENTS = (PartStartEvent, PartDeltaEvent, PartEndEvent)


class _Run:
    """What one run has seen so far."""

    __slots__ = (
        "asked",
        "ctx",
        "finish",
        "injection",
        "new_prompt",
        "open_tools",
        "opened",
        "pending",
        "pending_step",
        "prompt",
        "started",
        "step",
        "step_text",
        "streaming_parts",
    )

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.prompt: str | None = None
        self.new_prompt: str | None = None
        self.injection: tuple[str | None, str | None] = (None, None)
        self.started = False  # the first model request was prepared
        self.opened = False  # agent_start and message_start were emitted
        self.step = -1
        self.pending: ModelResponse | None = None
        self.pending_step = 0
        self.step_text: list[str] = []
        self.finish = ""
        self.streaming_parts: dict[int, tuple[str, str]] = {}
        #: Tool calls whose guard ran and whose end has not been reported yet.
        self.open_tools: set[_ToolCall] = set()
        #: Executions a tool's question ended (``CallDeferred(kind="question")``), by call id.
        self.asked: dict[str, ToolRun] = {}


class _ToolCall:
    """One tool call between :meth:`KitHooks.wrap_tool_execute`, which reports its end, and
    :meth:`KitHooks.before_tool_execute`, its guard.

    A capability listed after ``KitHooks`` may run the tool more than once for the call
    (its own retry, calling its ``handler`` again): each time is an execution of its own,
    guarded with the arguments it gets; :attr:`run` is the latest."""

    __slots__ = ("blocks", "call", "run")

    def __init__(self, call: ToolCallPart) -> None:
        self.call = call
        self.run: ToolRun | None = None  # the latest execution's, set when the guard ran
        #: The failures the guard raised for its blocks, each the guard's own answer.
        self.blocks: list[ToolFailed] = []

    def is_block(self, exc: BaseException) -> bool:
        """True when ``exc`` is a failure the guard raised for a block of this call."""
        return any(exc is block for block in self.blocks)


@dataclasses.dataclass(init=False)
class KitHooks(AbstractCapability[Any]):
    """Make a pydantic-ai agent a kithooks host (see the module docs for the event map).

    Args:
        pm: the plugin manager whose plugins see the agent's events.
        stream: emit ``message_update`` and ``tool_call_input_*`` per streamed delta. This
            puts runs in pydantic-ai's streaming mode (a ``FunctionModel`` then needs a
            ``stream_function``). Without it, each text part is one ``message_update``.
        prices: host prices for models genai-prices lacks (see :class:`ModelPrice`).
        handled_output: the run's output when an ``input`` handler consumed the prompt.

    The manager is asked when each run starts: a run that starts while no plugin handles
    any event the adapter emits (the turn aggregator aside: alone, it counts for no one)
    runs with no hook at all (pydantic-ai then charges nothing for the capability); plugins
    registered meanwhile take part from the next run. During a
    run, every event is emitted when some plugin handles it at that moment, except
    ``retry``, whose hook is installed for the run only when ``retry`` was handled at its
    start.
    """

    pm: PluginManager
    stream: bool
    prices: Mapping[str, ModelPrice] | None
    handled_output: Any

    def __init__(
        self,
        pm: PluginManager,
        *,
        stream: bool = False,
        prices: Mapping[str, ModelPrice] | None = None,
        handled_output: Any = "",
    ) -> None:
        self.pm = pm
        self.stream = stream
        self.prices = prices
        self.handled_output = handled_output
        # Each run's state, set by wrap_run: pydantic-ai carries the context variables a
        # wrap_run sets into the run's body, so concurrent runs of one agent never mix.
        self._runs: ContextVar[_Run] = ContextVar(f"kithooks-run-{id(self):x}")
        # The tool call being executed, set by wrap_tool_execute for before_tool_execute
        # (each tool call runs in its own task, or in the run's, one at a time).
        self._calls: ContextVar[_ToolCall | None] = ContextVar(
            f"kithooks-call-{id(self):x}", default=None
        )

    @property
    def has_on_event(self) -> bool:
        """Listen to the event stream only when streaming was asked for."""
        return self.stream

    def listens_to(self, event: Any) -> bool:
        """Only the streamed parts, and only with ``stream=True``."""
        return self.stream and isinstance(event, _STREAM_EVENTS)

    async def for_run(self, ctx: Any) -> AbstractCapability[Any]:
        """This run's capability: none at all when no plugin handles any event we emit.

        Otherwise this one (its run state lives in a context variable, so pydantic-ai keeps
        its cheaper path for capabilities that do not change per run), or, when ``retry`` is
        handled, a copy that also hooks every attempt at a model request.
        """
        pm = self.pm
        if not pm.plugins_handle(EMITTED):  # the turn aggregator alone counts for no one
            return CombinedCapability([])  # flattened away: no hook of this run is ours
        if pm.handled[RetryEvent.event_type]:
            return _RetryingKitHooks(
                pm, stream=self.stream, prices=self.prices, handled_output=self.handled_output
            )
        return self

    # -- helpers -------------------------------------------------------------------------

    def _state(self) -> _Run:
        try:
            return self._runs.get()
        except LookupError:
            raise RuntimeError("KitHooks used outside a run") from None

    async def _flush_step(self, r: _Run) -> None:
        """step_finish + llm_usage of the previous response, once its tools have run."""
        response, r.pending = r.pending, None
        if response is None:
            return
        has_tools = any(isinstance(p, ToolCallPart) for p in response.parts)
        finish = _FINISH.get(response.finish_reason or "", "") or (
            "tool-calls" if has_tools else "stop"
        )
        r.finish = finish
        pm = self.pm
        if not (pm.handled[StepFinishEvent.event_type] or pm.handled[LLMUsageEvent.event_type]):
            return
        fresh, out, read, write = _counts(response.usage)
        events = counted_step_events(
            pm,
            r.pending_step,
            provider=response.provider_name or "",
            model=response.model_name or "",
            input_tokens=fresh,
            output_tokens=out,
            cache_read_tokens=read,
            cache_write_tokens=write,
            finish_reason=finish,
            has_tool_calls=has_tools,
            request_id=response.provider_response_id or "",
            prices=self.prices,
        )
        for event in events:
            await pm.aemit(event, r.ctx)
        if response.failed_attempts and pm.handled[LLMUsageEvent.event_type]:
            # Attempts a fallback rejected (ModelFallback's fallback_on) were billed too: an
            # llm_usage each, after the step's own, so that step_finish and the step's
            # llm_usage describe the call that answered (an OTel chat span is that call's).
            for attempt in response.failed_attempts:
                fresh, out, read, write = _counts(attempt.usage)
                if fresh or out or read or write:
                    failed = usage_event(
                        provider=attempt.provider_name or "",
                        model=attempt.model_name,
                        input_tokens=fresh,
                        output_tokens=out,
                        cache_read_tokens=read,
                        cache_write_tokens=write,
                        step_number=r.pending_step,
                        finish_reason="error",
                        prices=self.prices,
                    )
                    await pm.aemit(failed, r.ctx)

    async def _rewrite(
        self, r: _Run, event_factory: Any, messages: list[ModelMessage]
    ) -> list[ModelMessage]:
        """``messages`` as the plugins rewrote them (the caller checked that some listen)."""
        result = await self.pm.aemit(
            event_factory(context_window(messages, describe_message)), r.ctx
        )
        if result is None or result.messages is None:
            return messages
        return apply_messages(messages, result.messages, make_message)

    def _part_events(self, r: _Run, part: Any) -> list[Event]:
        """The events of a response part beginning (text, reasoning, a tool call's arguments),
        each built only when some plugin handles it."""
        handled = self.pm.handled
        if isinstance(part, TextPart):
            return self._text_events(r, part.content)
        if isinstance(part, ThinkingPart):
            if handled[ReasoningStartEvent.event_type]:
                return [ReasoningStartEvent(id=part.id or "")]
            return []
        if not isinstance(part, ToolCallPart):
            return []
        events: list[Event] = []
        call_id, name = part.tool_call_id, part.tool_name
        if handled[ToolCallInputStartEvent.event_type]:
            events.append(
                ToolCallInputStartEvent(
                    tool_call_id=call_id, tool_name=name, tool_kind=tool_kind_for(name)
                )
            )
        if part.args and handled[ToolCallInputDeltaEvent.event_type]:
            events.append(
                ToolCallInputDeltaEvent(tool_call_id=call_id, delta=_args_text(part.args))
            )
        return events

    def _text_events(self, r: _Run, chunk: str) -> list[Event]:
        """One piece of the step's text: message_update."""
        if not chunk:
            return []
        r.step_text.append(chunk)
        if self.pm.handled[MessageUpdateEvent.event_type]:
            return [MessageUpdateEvent(chunk=chunk)]
        return []

    # -- the run -------------------------------------------------------------------------

    async def wrap_run(self, ctx: Any, *, handler: Any) -> Any:
        """input (handled ends the run), before_agent_start; error / agent_end at the end."""
        base = self.pm.context
        r = _Run(
            base.for_turn(
                ctx.run_id or "", session_id=base.session_id or (ctx.conversation_id or "")
            )
        )
        token = self._runs.set(r)
        try:
            return await self._run(r, ctx, handler)
        finally:
            self._runs.reset(token)

    async def _run(self, r: _Run, ctx: Any, handler: Any) -> Any:
        pm = self.pm
        prompt = ctx.prompt if isinstance(ctx.prompt, str) else _text(ctx.prompt)
        r.prompt = prompt
        if pm.handled[InputEvent.event_type]:
            result = await pm.aemit(InputEvent(text=prompt, source="script"), r.ctx)
            if result is not None and result.action == "handled":
                return AgentRunResult(output=self.handled_output)
            if result is not None and result.action == "transform" and result.text != prompt:
                r.new_prompt = result.text
        if pm.handled[BeforeAgentStartEvent.event_type]:
            current = r.new_prompt if r.new_prompt is not None else prompt
            injection = await pm.aemit(BeforeAgentStartEvent(prompt=current), r.ctx)
            if injection is not None:
                r.injection = (injection.inject_text, injection.system_prompt)
        try:
            run_result = await handler()
        except BaseException as exc:
            # Cancelled too (``task.cancel()``, a ``break`` out of ``agent.iter``, a
            # ``run_stream`` left unread: pydantic-ai cancels this task): the turn ends here,
            # shielded from pydantic-ai's cancel scope, which would cut every await short.
            with anyio.CancelScope(shield=True):
                await self._end_failed(r, exc)
            raise
        if r.pending is not None:
            await self._flush_step(r)
        if pm.handled[MessageEndEvent.event_type]:
            await pm.aemit(MessageEndEvent(content="".join(r.step_text)), r.ctx)
        if pm.handled[AgentEndEvent.event_type]:
            output = run_result.output
            response = output if isinstance(output, str) else json.dumps(output, default=str)
            await pm.aemit(
                AgentEndEvent(response=response, stop_reason=r.finish or "completed"), r.ctx
            )
        return run_result

    async def _end_failed(self, r: _Run, exc: BaseException) -> None:
        """The usage of the model's last response (billed whatever failed after it), then
        ``error`` and ``agent_end``."""
        pm = self.pm
        text = describe_error(exc)
        failed = ToolResponse(content=text, is_error=True)
        while r.open_tools:  # a cancelled run's tools are cancelled after it ended
            call = r.open_tools.pop()
            if call.run is not None:
                await call.run.afinish(failed)
        if r.pending is not None:
            await self._flush_step(r)
        if pm.handled[ErrorEvent.event_type]:
            await pm.aemit(ErrorEvent(error=text), r.ctx)
        if pm.handled[AgentEndEvent.event_type]:
            await pm.aemit(AgentEndEvent(response="", stop_reason="error"), r.ctx)

    def _prepare_prompt(
        self, r: _Run, ctx: Any, messages: list[ModelMessage]
    ) -> list[ModelMessage]:
        """Apply the input transform and the injection to the prompt's message, persistently."""
        inject_text, system_prompt = r.injection
        if r.new_prompt is None and inject_text is None and system_prompt is None:
            return messages
        history: list[ModelMessage] = ctx.messages
        for position in range(len(history) - 1, -1, -1):
            message = history[position]
            if not isinstance(message, ModelRequest):
                continue
            if not any(isinstance(p, UserPromptPart) for p in message.parts):
                continue
            new = message
            if r.new_prompt is not None:
                parts = [
                    dataclasses.replace(p, content=_with_text(p.content, r.new_prompt))
                    if isinstance(p, UserPromptPart) and _text(p.content) == r.prompt
                    else p
                    for p in message.parts
                ]
                new = dataclasses.replace(message, parts=parts)
            extra: list[Any] = []
            if system_prompt is not None:
                extra.append(SystemPromptPart(content=system_prompt))
            if inject_text is not None:
                extra.append(UserPromptPart(content=inject_text))
            replacement: list[ModelMessage] = [new]
            if extra:
                replacement.insert(0, ModelRequest(parts=extra))
            history[position : position + 1] = replacement
            messages = [m for old in messages for m in (replacement if old is message else [old])]
            break
        return messages

    async def _open_turn(self, r: _Run) -> None:
        """agent_start and message_start, once: before the first model request, or before
        the first tool event when tools run first (on resuming a run: approved calls, the
        host's results)."""
        if r.opened:
            return
        r.opened = True
        pm = self.pm
        if pm.handled[AgentStartEvent.event_type]:
            await pm.aemit(AgentStartEvent(prompt=r.prompt or ""), r.ctx)
        if pm.handled[MessageStartEvent.event_type]:
            await pm.aemit(MessageStartEvent(), r.ctx)

    async def before_model_request(self, ctx: Any, request_context: Any) -> Any:
        """Turn start (once), then prepare_step and step_start for each request."""
        r = self._state()
        pm = self.pm
        if r.pending is not None:
            await self._flush_step(r)
        original = request_context.messages
        messages: list[ModelMessage] = original
        if not r.started:
            r.started = True
            messages = self._prepare_prompt(r, ctx, list(original))
            if pm.handled[ContextPrepareEvent.event_type]:
                messages = await self._rewrite(
                    r, lambda w: ContextPrepareEvent(messages=w), messages
                )
        await self._open_turn(r)
        r.step += 1
        step = r.step
        if pm.handled[PrepareStepEvent.event_type]:
            messages = await self._rewrite(
                r, lambda w: PrepareStepEvent(step_number=step, messages=w), messages
            )
        r.step_text = []
        if r.streaming_parts:
            r.streaming_parts = {}
        if pm.handled[StepStartEvent.event_type]:
            await pm.aemit(StepStartEvent(step_number=step), r.ctx)
        if messages is not original and messages != list(original):
            request_context = dataclasses.replace(request_context, messages=messages)
        return request_context

    async def after_model_request(
        self, ctx: Any, *, request_context: Any, response: ModelResponse
    ) -> ModelResponse:
        """Keep the response for step_finish / llm_usage; without streaming, emit its parts."""
        r = self._state()
        r.pending, r.pending_step = response, r.step
        if not self.stream:
            pm = self.pm
            for part in response.parts:
                for event in self._part_events(r, part):
                    await pm.aemit(event, r.ctx)
                if isinstance(part, ToolCallPart) and pm.has_handlers(
                    ToolCallInputEndEvent.event_type
                ):
                    await pm.aemit(ToolCallInputEndEvent(tool_call_id=part.tool_call_id), r.ctx)
        return response

    async def on_event(self, ctx: Any, *, event: Any) -> None:
        """With ``stream=True``: text and tool-argument deltas as they stream."""
        r = self._state()
        pm = self.pm
        events: list[Event] = []
        if isinstance(event, PartStartEvent):
            if isinstance(event.part, ToolCallPart):
                r.streaming_parts[event.index] = (event.part.tool_call_id, event.part.tool_name)
            events = self._part_events(r, event.part)
        elif isinstance(event, PartDeltaEvent):
            delta = event.delta
            if isinstance(delta, TextPartDelta):
                events = self._text_events(r, delta.content_delta)
            elif (
                isinstance(delta, ToolCallPartDelta)
                and delta.args_delta
                and pm.handled[ToolCallInputDeltaEvent.event_type]
            ):
                call_id = r.streaming_parts.get(event.index, (delta.tool_call_id or "", ""))[0]
                events = [
                    ToolCallInputDeltaEvent(
                        tool_call_id=call_id, delta=_args_text(delta.args_delta)
                    )
                ]
        elif (
            isinstance(event, PartEndEvent)
            and isinstance(event.part, ToolCallPart)
            and pm.handled[ToolCallInputEndEvent.event_type]
        ):
            events = [ToolCallInputEndEvent(tool_call_id=event.part.tool_call_id)]
        for kit_event in events:
            await pm.aemit(kit_event, r.ctx)

    def _listens(self, name: str) -> bool:
        """True when some plugin handles a tool event of the tool ``name``."""
        has = self.pm.has_handlers
        return (
            has(ToolCallEvent.event_type, name)
            or has(ToolResultEvent.event_type, name)
            or has(ToolExecutionStartEvent.event_type, name)
            or has(ToolExecutionEndEvent.event_type, name)
        )

    def _new_run(self, name: str, call_id: str, raw: Any) -> ToolRun:
        """A ToolRun for a call of ``name`` with the arguments ``raw`` (a dict of JSON data,
        or JSON text); the caller asked :meth:`_listens` first."""
        parsed = raw if isinstance(raw, dict) else None  # parsed already: not parsed again
        return ToolRun(
            self.pm,
            tool_name=name,
            tool_call_id=call_id,
            input=None if parsed is not None else _args_text(raw),
            args=parsed,
            ctx=self._state().ctx,
        )

    async def _execute(
        self,
        run: ToolRun | _ToolCall,
        handler: Any,
        value: Any,
        text: Callable[[Any], str] = _tool_text,
        *,
        answers: bool = True,
        ctx: Any = None,
        tool_def: Any = None,
    ) -> tuple[Any, Any, ToolOutcome | None]:
        """``handler(value)`` between tool_execution_end / tool_result: its result, the value
        to hand on, and the outcome (None when nothing could rewrite it).

        ``run`` is an output function's run, started, or a tool call's, which the guard
        (:meth:`before_tool_execute`, inside ``handler``) starts. A result another
        capability substituted for the tool's (``SkipToolExecution``) is a successful
        result. A failure the model receives (``ToolFailed`` or ``ModelRetry``, raised by the
        tool or an output function, or by another capability's hooks; pydantic-ai's
        ``ToolFailedError`` / ``ToolRetryError`` carry the part it sends) is shown as the
        text the model gets: a ``tool_result`` rewrite of it is what the model gets, and
        ``is_error=False`` makes it the tool's successful result (``answers``; an output
        function's failure cannot become its result: a TypeError). Either, when it comes
        before the guard ran (from a capability listed before this one), is guarded first
        with the arguments given here. A deferral (``CallDeferred``, ``ApprovalRequired``)
        ends the execution without a result. Any other exception, a cancellation included,
        is reported as the failed result (when the guard ran) and propagates.
        """
        try:
            result = await handler(value)
        except SkipToolExecution as exc:
            substitute = exc.result
            content = substitute if isinstance(substitute, str) else text(substitute)
            outcome = await self._finish(run, ctx, tool_def, value, ToolResponse(content=content))
            if outcome.is_error:
                raise ToolFailed(outcome.content) from exc
            if outcome.content == content:
                raise
            raise SkipToolExecution(outcome.content) from exc
        except (CallDeferred, ApprovalRequired) as exc:
            started_run = self._ending(run)
            if started_run is not None:
                await started_run.aend()
                question = isinstance(exc, CallDeferred) and exc.kind == "question"
                if question and isinstance(run, _ToolCall):  # answered: after_tool_execute
                    self._state().asked[started_run.id] = started_run
            raise
        except (ToolFailedError, ToolRetryError, ToolFailed, ModelRetry) as exc:
            if isinstance(run, _ToolCall) and run.is_block(exc):
                # The guard's own block reaches the model; an execution the guard let run
                # since (another capability ran the tool again) ends without a result.
                started_run = self._ending(run)
                if started_run is not None:
                    await started_run.aend()
                raise
            part: Any = None
            if isinstance(exc, ToolFailedError | ToolRetryError):
                part = exc.tool_failed if isinstance(exc, ToolFailedError) else exc.tool_retry
                shown = part.content if isinstance(part.content, str) else str(exc)
            else:
                shown = exc.message
            failed = ToolResponse(content=shown, is_error=True)
            outcome = await self._finish(run, ctx, tool_def, value, failed)
            if not outcome.is_error:  # a plugin answered for the failed call
                if not answers:
                    raise TypeError(
                        f"kithooks: a tool_result handler made the failure of output "
                        f"function {_name(run)!r} a result (is_error=False); an output "
                        "function's result must come from the function"
                    ) from exc
                return outcome.content, outcome.content, outcome
            if outcome.content == shown:
                raise
            if part is None:
                error = ToolFailed if isinstance(exc, ToolFailed) else ModelRetry
                raise error(outcome.content) from exc
            part = dataclasses.replace(part, content=outcome.content)
            if isinstance(exc, ToolFailedError):
                raise ToolFailedError(part) from exc
            raise ToolRetryError(part) from exc
        except BaseException as exc:
            started_run = self._ending(run)
            if started_run is not None:
                failed = ToolResponse(content=describe_error(exc), is_error=True)
                with anyio.CancelScope(shield=True):  # a cancelled tool ends too
                    await started_run.afinish(failed)
            raise
        if isinstance(result, str):
            content = result  # ToolRun asks whether anyone handles tool_result
        elif self.pm.has_handlers(ToolResultEvent.event_type, _name(run)):
            content = text(result)
        else:
            await self._finish(run, ctx, tool_def, value, ToolResponse())
            return result, result, None
        outcome = await self._finish(run, ctx, tool_def, value, ToolResponse(content=content))
        return result, (result if outcome.content == content else outcome.content), outcome

    async def _finish(
        self, run: ToolRun | _ToolCall, ctx: Any, tool_def: Any, args: Any, response: ToolResponse
    ) -> ToolOutcome:
        """The end of ``run`` with ``response``: what the model gets.

        A tool call that ended before its guard ran (another capability's hook answered for
        it) is guarded now, with the arguments ``args``; a block makes the model get
        ``Error: <reason>`` instead of that answer. A call whose latest execution the guard
        blocked, and for which another capability answered anyway, gets ``tool_result``
        alone (that execution never started)."""
        if isinstance(run, ToolRun):
            return await run.afinish(response)
        if run.run is None:
            await self._guard(ctx, run, tool_def, args)
        assert run.run is not None  # set by _guard
        started = self._ending(run)
        if started is None:
            return await run.run.aresult(response)
        return await started.afinish(response)

    def _ending(self, run: ToolRun | _ToolCall) -> ToolRun | None:
        """The started run of ``run``, to finish; None when the guard did not run or
        blocked, or when the end of the agent run reported the call's end already."""
        if isinstance(run, ToolRun):
            return run
        open_tools = self._state().open_tools
        if run not in open_tools:
            return None
        open_tools.discard(run)
        return run.run

    async def wrap_tool_execute(
        self, ctx: Any, *, call: ToolCallPart, tool_def: Any, args: Any, handler: Any
    ) -> Any:
        """The tool's end: ``tool_execution_end`` and ``tool_result`` around what every
        capability's hooks and the tool made of the call (the guard is
        :meth:`before_tool_execute`, inside ``handler``).

        A result another capability substituted (``SkipToolExecution``) is the tool's
        successful result, rewritten as the model gets it; a deferral (``CallDeferred``,
        ``ApprovalRequired``) ends the execution with no result (its result comes later:
        :meth:`after_tool_execute`, :meth:`before_node_run`). A capability listed after this
        one that runs the tool again makes each run an execution of its own (see
        :meth:`before_tool_execute`); ``tool_result`` shows what comes out of ``handler``.
        """
        if not self._listens(call.tool_name):
            return await handler(args)
        pending = _ToolCall(call)
        token = self._calls.set(pending)
        try:
            _, result, outcome = await self._execute(
                pending, handler, args, ctx=ctx, tool_def=tool_def
            )
        finally:
            self._calls.reset(token)
        if outcome is not None and outcome.is_error:
            raise ToolFailed(outcome.content)
        return result

    async def before_tool_execute(
        self, ctx: Any, *, call: ToolCallPart, tool_def: Any, args: Any
    ) -> Any:
        """The guard: ``tool_call`` (a block means the tool never runs and the model gets
        ``Error: <reason>``) and ``tool_execution_start``, on the arguments the tool gets.

        pydantic-ai runs every capability's ``before_tool_execute`` in the order of the
        capabilities, after all of their ``wrap_tool_execute``, right before the tool, so
        the plugins see ``args`` as every capability listed before this one left them:
        the arguments pydantic-ai validated (any capability's validation hooks included)
        as JSON data, never the model's raw text. An ``args`` rewrite is validated again by
        the tool's own argument validator, so the tool gets typed arguments, as from the
        model.

        A capability listed after this one that calls its ``handler`` again for the same
        call (its own retry) runs this again: each run is an execution of its own, guarded
        with the arguments it gets, and the one before it, whose outcome that capability
        kept, ends here with ``tool_execution_end`` alone.
        """
        pending = self._calls.get()
        if pending is None or pending.call is not call:
            return args  # no plugin handles this tool's events (wrap_tool_execute asked)
        return await self._guard(ctx, pending, tool_def, args)

    async def after_tool_execute(
        self, ctx: Any, *, call: ToolCallPart, tool_def: Any, args: Any, result: Any
    ) -> Any:
        """The answer to a question a tool asked (``CallDeferred(kind="question")``) that a
        ``handle_deferred_tool_calls`` hook gave during the run, which pydantic-ai passes
        through ``after_tool_execute`` as if the tool had returned it: ``tool_result``
        alone (its execution ended when the tool asked), rewritten as the model gets it.
        A tool's own results are reported by :meth:`wrap_tool_execute`."""
        r = self._runs.get(None)
        if r is None or not r.asked:  # the common case: the tool's own result
            return result
        run = r.asked.pop(call.tool_call_id, None)
        if run is None:
            return result
        answer = await _answered(run, result)
        if isinstance(answer, ToolFailed):
            raise answer
        return answer

    async def before_node_run(self, ctx: Any, *, node: Any) -> Any:
        """Results the host gives on resuming a run (``DeferredToolResults(calls=...)``: a
        value, ``ToolReturn``, ``ToolFailed`` or ``ModelRetry``), which pydantic-ai hands the
        model with no tool hook: ``tool_result`` alone for each (its execution ended in the
        run that deferred it), before the run's tools run, rewritten as the model gets it."""
        given = node.tool_call_results if isinstance(node, CallToolsNode) else None
        if not given:
            return node
        r = self._runs.get(None)
        if r is None:
            return node
        for call in node.model_response.tool_calls:
            result = given.get(call.tool_call_id)
            if isinstance(result, _GIVEN) and self.pm.has_handlers(
                ToolResultEvent.event_type, call.tool_name
            ):
                await self._open_turn(r)
                run = self._new_run(call.tool_name, call.tool_call_id, call.args)
                given[call.tool_call_id] = await _answered(run, result)
        return node

    async def _guard(self, ctx: Any, pending: _ToolCall, tool_def: Any, args: Any) -> Any:
        """``tool_call`` and ``tool_execution_start`` for ``args``: what the tool must get."""
        call = pending.call
        tool = _tool_of(ctx, call.tool_name)
        single = _single_arg(tool, tool_def, args)
        # Built only now: what pydantic cannot serialize costs nothing when nobody listens.
        shown = _tool_args(args[single] if single is not None else args)
        r = self._state()
        await self._open_turn(r)
        previous = self._ending(pending)
        if previous is not None:
            # Another capability runs the tool again (its own retry) and kept what the
            # earlier execution gave: that execution ends with no result for the model.
            await previous.aend()
        run = pending.run = self._new_run(call.tool_name, call.tool_call_id, shown)
        blocked = await run.astart()
        if blocked is not None:
            # A failed tool result: the model sees the error, and the tool never runs.
            block = ToolFailed(blocked.content)
            pending.blocks.append(block)
            raise block
        r.open_tools.add(pending)
        if run.rewritten:
            return await _rewritten_tool_args(
                ctx, call.tool_name, args, shown, run, tool=tool, single=single
            )
        return args

    async def wrap_output_process(
        self, ctx: Any, *, output_context: Any, output: Any, handler: Any
    ) -> Any:
        """An output function or a ``Choices`` action is host code the model calls: the tool
        events around it.

        Only output with a function to run (``ToolOutput(fn)``, ``TextOutput(fn)``, a
        ``NativeOutput``/``PromptedOutput`` of functions) or a picked choice whose value is
        callable; plain structured or text output passes through. The arguments are what
        the function gets (pydantic-ai's validated value, also for a partial output in
        ``run_stream``). A block means the function never runs and the model is asked to
        try again with ``Error: <reason>`` (``run_stream`` cannot retry: the run fails).
        """
        call = output_context.tool_call
        action = None
        if output_context.has_function:
            name = call.tool_name if call is not None else output_context.function_name or "output"
        else:
            action = _choice_action(ctx, output)
            if action is None:
                return await handler(output)
            name = getattr(action, "__name__", "") or str(output)
        if not self._listens(name):
            return await handler(output)
        # Built only now: what pydantic cannot serialize costs nothing when nobody listens.
        args, key = (
            ({"choice": output}, "choice")
            if action is not None
            else _output_args(output, output_context.object_def)
        )
        run = self._new_run(name, call.tool_call_id if call is not None else "", args)
        blocked = await run.astart()
        if blocked is not None:
            raise ModelRetry(blocked.content)
        if run.rewritten:
            output = _rewritten_output(output, args, key, run)
        result, new, outcome = await self._execute(
            run, handler, output, _output_text, answers=False
        )
        if outcome is None:
            return result
        if outcome.is_error:
            raise ModelRetry(outcome.content)
        if new is result or isinstance(result, str):
            return new
        return _rewritten_result(run.name, result, outcome.content)


def _jsonable(value: Any) -> Any:
    """``value`` as JSON data for a payload: what pydantic cannot serialize becomes its text.

    Bytes are text, as pydantic-ai reads a tool's JSON bytes (UTF-8); other bytes are text
    that cannot be serialized."""
    try:
        return to_jsonable_python(value, fallback=str, bytes_mode="utf8")
    except (PydanticSerializationError, ValueError):  # UnicodeDecodeError is a ValueError
        return str(value)


def _fields(value: Any) -> dict[str, tuple[str, Any]] | None:
    """A mapping's, pydantic model's or dataclass's values by their key in its JSON data,
    each with the attribute that holds it (a mapping's key); None for other values."""
    if isinstance(value, Mapping):
        return {str(k): (k, v) for k, v in value.items()}
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        return {
            (f.serialization_alias or f.alias or name): (name, getattr(value, name))
            for name, f in fields.items()
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: (f.name, getattr(value, f.name)) for f in dataclasses.fields(value)}
    return None


def _json_fields(value: Any) -> Any:
    """``value`` as JSON data; a mapping, model or dataclass one value of which pydantic
    cannot serialize (a cycle, bytes that are not UTF-8) as a dict of each value on its
    own."""
    shown = _jsonable(value)
    if isinstance(shown, dict):
        return shown
    fields = _fields(value)
    if fields is not None:
        return {k: _jsonable(v) for k, (_, v) in fields.items()}
    return shown


def _tool_args(args: Any) -> dict[str, Any] | str:
    """A tool's validated arguments as the plugins see them: JSON data (a value pydantic
    cannot serialize as its text), or JSON text when they are not a mapping."""
    shown = _json_fields(args)
    return shown if isinstance(shown, dict) else json.dumps(shown)


def _tool_of(ctx: Any, name: str) -> Any:
    """The tool ``name`` from the run step's tool manager, or None."""
    manager = getattr(ctx, "tool_manager", None)
    tools = getattr(manager, "tools", None) or {}
    return tools.get(name)


def _lossy(value: Any, depth: int = 0) -> bool:
    """True when the JSON form of ``value`` the plugins are shown does not give ``value``
    back: a secret (shown masked), a field a serializer masks or leaves out, bytes that are
    not UTF-8; inside models, dataclasses, mappings and sequences. A rewrite that changes
    an argument holding such a value would hand the tool the mask."""
    if depth > 32 or value is None or isinstance(value, str | int | float | bool):
        return False
    if isinstance(value, bytes):
        try:
            value.decode()
        except UnicodeDecodeError:
            return True
        return False
    if isinstance(value, Secret | SecretStr | SecretBytes):
        return True
    if isinstance(value, BaseModel) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    ):
        adapter: TypeAdapter[Any] = TypeAdapter(type(value))
        try:
            again = adapter.validate_python(adapter.dump_python(value, mode="json"))
        except (ValidationError, PydanticSerializationError, TypeError, ValueError):
            return True
        return bool(again != value)
    if isinstance(value, Mapping):
        return any(_lossy(v, depth + 1) for v in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_lossy(v, depth + 1) for v in value)
    return False


def _function_schema(tool: Any) -> Any:
    """The function schema of a function tool (whose ``call_func`` is its bound ``call``),
    found through the toolsets that wrap it (an agent's tool manager holds each tool as a
    combined toolset's, whose ``source_tool`` is the one below), or None."""
    for _ in range(16):  # wrappers of wrappers; never a cycle in pydantic-ai
        if tool is None:
            return None
        schema = getattr(getattr(tool, "call_func", None), "__self__", None)
        if hasattr(schema, "single_arg_name"):
            return schema
        tool = getattr(tool, "source_tool", None)
    return None


def _single_arg(tool: Any, tool_def: Any, args: Any) -> str | None:
    """The parameter of a tool whose one argument is a model, dataclass or TypedDict: the
    model sends its fields flat (the tool's JSON schema), pydantic-ai validates them into
    ``{parameter: value}``. None for other tools.

    pydantic-ai's function schema says which; without it (a tool of another toolset), one
    argument holding a model or dataclass that the tool's JSON schema does not name."""
    if not isinstance(args, Mapping) or len(args) != 1:
        return None
    name = str(next(iter(args)))
    schema = _function_schema(tool)
    if schema is not None:
        return name if schema.single_arg_name == name else None
    params = getattr(tool_def, "parameters_json_schema", None) or {}
    if _structured(args[name]) and name not in (params.get("properties") or {}):
        return name
    return None


def _same(a: Any, b: Any) -> bool:
    """The same JSON data (``1``, ``1.0`` and ``true`` differ)."""
    try:
        return json.dumps(a, sort_keys=True, default=str) == json.dumps(
            b, sort_keys=True, default=str
        )
    except (TypeError, ValueError):
        return False


def _with_values(value: Any, updates: dict[Any, Any]) -> Any:
    """``value`` (a model, dataclass or mapping) with the attributes ``updates`` set, not
    validated again."""
    if not updates:
        return value
    if isinstance(value, BaseModel):
        return value.model_copy(update=updates)
    if isinstance(value, Mapping):
        return {**value, **updates}
    new = copy.copy(value)
    for attr, v in updates.items():
        object.__setattr__(new, attr, v)  # a frozen dataclass too
    return new


async def _rewritten_tool_args(
    ctx: Any,
    name: str,
    args: Any,
    shown: dict[str, Any] | str,
    run: ToolRun,
    *,
    tool: Any = None,
    single: str | None = None,
) -> dict[str, Any]:
    """The tool's arguments after a ``tool_call`` args rewrite (``run.args``, in the shape
    the plugins saw: a single model's fields flat), validated by the tool's own argument
    validator (from the run step's tool manager) and then its ``args_validator`` function,
    as pydantic-ai validates the model's.

    Only what the rewrite changed or added is validated from JSON data: a field it left as
    shown keeps the object pydantic-ai validated (a secret stays a secret, bytes stay bytes,
    a validator is not applied twice), and so does a field the plugins were not shown (one
    excluded from serialization). Without the validator, the rewrite as JSON data when the
    tool took JSON data. A rewrite that does not fit is a TypeError naming the tool; what
    the ``args_validator`` function raises (``ModelRetry``, ``ToolFailed``, a deferral)
    propagates as pydantic-ai's would."""
    new = thaw(run.args) if run.args is not None else json.loads(run.input)
    if tool is None:
        tool = _tool_of(ctx, name)
    if tool is None:
        if single is None and shown == args and isinstance(new, dict):
            return new
        raise TypeError(
            f"kithooks: the tool_call rewrite of tool {name!r} cannot be validated (the run "
            "context has no tool manager holding it) and the tool takes more than JSON data"
        )
    original = args[single] if single is not None else args
    fields = _fields(original) or {}
    old = shown if isinstance(shown, dict) else {}
    kept: dict[Any, Any] = {}  # attribute -> the original object
    merged: Any = new
    if isinstance(new, dict):
        merged = {}
        for key, value in new.items():
            if key in old and key in fields and _same(value, old[key]):
                attr, merged[key] = fields[key]
                kept[attr] = merged[key]
            elif key in fields and _lossy(fields[key][1]):
                # Rebuilt from what the plugins saw, its secret would be the mask.
                raise TypeError(
                    f"kithooks: the tool_call rewrite of tool {name!r} changes argument "
                    f"{key!r}, which holds a value the plugins saw masked or left out (a "
                    "secret, a field a serializer hides); rewrite the arguments around it"
                )
            else:
                merged[key] = value
        if single is not None:  # fields the plugins did not see (excluded) stay as they were
            for key, (attr, value) in fields.items():
                if key not in old and key not in merged:
                    merged[key] = value
                    kept[attr] = value
    context = getattr(ctx, "validation_context", None)
    schema = _function_schema(tool)
    try:
        if (
            single is not None
            and schema is not None
            and tool.args_validator is schema.validator
            and isinstance(merged, dict)
        ):
            # The single argument's own fields, never read as a {parameter: ...} envelope.
            validated: dict[str, Any] = schema.revalidate({single: merged}, context=context)
        else:
            validated = tool.args_validator.validate_python(merged, context=context)
    except ValidationError as exc:
        raise TypeError(
            f"kithooks: the tool_call rewrite of tool {name!r} gives {run.input}, which does "
            f"not fit the tool's arguments: {exc}"
        ) from None
    if single is not None and single in validated:
        validated = {**validated, single: _with_values(validated[single], kept)}
    else:
        validated = {k: kept.get(k, v) for k, v in validated.items()}
    check = getattr(tool, "args_validator_func", None)
    if check is not None:
        checked = check(ctx, **validated)
        if inspect.isawaitable(checked):
            await checked
    return validated


def _structured(value: Any) -> bool:
    """A pydantic model or a dataclass instance: its fields are the arguments."""
    return isinstance(value, BaseModel) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    )


def _choices_in(spec: Any, depth: int = 0) -> Iterator[Any]:
    """The ``Choices`` sets in an agent's ``output_type`` (through ``ToolOutput``,
    ``NativeOutput``, ``PromptedOutput`` and lists)."""
    if depth > 4 or spec is None:
        return
    if isinstance(spec, type) and isinstance(getattr(spec, "values", None), Mapping):
        if hasattr(spec, "keys_type"):
            yield spec
        return
    if isinstance(spec, (list, tuple)):
        for item in spec:
            yield from _choices_in(item, depth + 1)
        return
    for attr in ("output", "outputs"):
        inner = getattr(spec, attr, None)
        if inner is not None:
            yield from _choices_in(inner, depth + 1)


def _choice_action(ctx: Any, output: Any) -> Any:
    """The callable value of the choice ``output`` picks, which pydantic-ai calls (final
    output only), or None."""
    if not isinstance(output, str) or getattr(ctx, "partial_output", False):
        return None
    agent = getattr(ctx, "agent", None)
    for choices in _choices_in(getattr(agent, "output_type", None)):
        value = choices.values.get(output)
        if callable(value):
            return value
    return None


def _output_args(output: Any, object_def: Any) -> tuple[dict[str, Any], str | None]:
    """An output function's input as tool arguments (JSON data), and the key the value was
    put under when the function takes it whole (None: the arguments are the value's own).

    A model or dataclass is its fields, a dict (several arguments) itself; a single
    argument is put under its name from the output schema, text (no schema) under
    ``value``.
    """
    if _structured(output):
        fields = _json_fields(output)
        if isinstance(fields, dict):
            return fields, None
    schema = getattr(object_def, "json_schema", None) or {}
    names = list(schema.get("properties") or {})
    if len(names) == 1 and not (isinstance(output, dict) and list(output) == names):
        key = names[0]
    elif isinstance(output, dict):
        return _json_fields(output), None
    else:
        key = "value"
    return {key: _jsonable(output)}, key


def _rewritten_output(output: Any, args: dict[str, Any], key: str | None, run: ToolRun) -> Any:
    """The output function's input after a ``tool_call`` args rewrite (``run.args``): a
    model or dataclass validated again from it, other values passed as JSON data (not
    validated again)."""
    new = thaw(run.args) if run.args is not None else json.loads(run.input)
    if isinstance(new, dict) and new.keys() == args.keys():
        if key is None and _structured(output):
            try:
                return TypeAdapter(type(output)).validate_python(new)
            except ValidationError as exc:
                raise TypeError(
                    f"kithooks: the tool_call rewrite of output function {run.name!r} is not "
                    f"a valid {type(output).__name__}: {exc}"
                ) from None
        return new if key is None else new[key]
    raise TypeError(
        f"kithooks: the tool_call rewrite of output function {run.name!r} gives "
        f"{run.input}, which does not fit the function's arguments {sorted(args)}"
    )


def _output_text(result: Any) -> str:
    """An output function's result as tool_result text (JSON)."""
    if isinstance(result, BaseModel):
        return result.model_dump_json()
    return json.dumps(_jsonable(result), ensure_ascii=False)


def _rewritten_result(name: str, result: Any, content: str) -> Any:
    """An output function's result, not text, after a ``tool_result`` content rewrite: a
    model or dataclass validated from it, JSON data of the same type parsed; anything else
    cannot be rebuilt."""
    what = type(result).__name__
    try:
        if _structured(result):
            return TypeAdapter(type(result)).validate_json(content)
        if result is None or isinstance(result, (dict, list, int, float, bool)):
            new = json.loads(content)
            if type(new) is type(result):
                return new
            raise ValueError(f"the rewrite is a {type(new).__name__}")
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise TypeError(
            f"kithooks: the tool_result rewrite of output function {name!r} cannot stand "
            f"for its {what} result: {exc}"
        ) from None
    raise TypeError(
        f"kithooks: the tool_result rewrite of output function {name!r} cannot stand for its "
        f"{what} result (only text, JSON data, pydantic models and dataclasses can be "
        "rewritten)"
    )


@dataclasses.dataclass(init=False)
class _RetryingKitHooks(KitHooks):
    """:class:`KitHooks` for a run whose start saw a ``retry`` handler.

    Hooking every attempt at a model request makes pydantic-ai copy the request's tool
    definitions for each attempt, so only runs that emit ``retry`` pay for it.
    """

    async def for_run(self, ctx: Any) -> AbstractCapability[Any]:
        return self

    async def prepare_model_request(self, ctx: Any, request_context: Any) -> Any:
        """A further attempt at the same request is a retry."""
        attempt = request_context.attempt
        if attempt > 1 and self.pm.handled[RetryEvent.event_type]:
            await self.pm.aemit(
                RetryEvent(attempt=attempt - 1, error="model request retried"), self._state().ctx
            )
        return request_context
