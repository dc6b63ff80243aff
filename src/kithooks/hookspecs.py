"""The 34 hookspecs, one per event: the single source of the hook documentation.

Each hook is ``on_<wire name>(event, ctx)``; an implementation may take any subset of the
two arguments. ``hookspecs.md`` is generated from these docstrings and the payload classes
(``python -m kithooks.docgen``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, TypeVar, overload

import attrs
import pluggy

from .context import Context
from .events import (
    AgentEndEvent,
    AgentStartEvent,
    BeforeAgentStartEvent,
    BeforeAgentStartResult,
    BeforeCompactEvent,
    BeforeCompactResult,
    BeforeForkEvent,
    BeforeForkResult,
    BeforeSessionSwitchEvent,
    BeforeSessionSwitchResult,
    ContextPrepareEvent,
    ContextPrepareResult,
    ErrorEvent,
    Event,
    InputEvent,
    InputResult,
    LLMUsageEvent,
    MessageEndEvent,
    MessageStartEvent,
    MessageUpdateEvent,
    ModelChangeEvent,
    PrepareStepEvent,
    PrepareStepResult,
    ReasoningStartEvent,
    Result,
    RetryEvent,
    SessionShutdownEvent,
    SessionStartEvent,
    SourceEvent,
    StepFinishEvent,
    StepStartEvent,
    SubagentChunkEvent,
    SubagentEndEvent,
    SubagentStartEvent,
    ToolCallEvent,
    ToolCallInputDeltaEvent,
    ToolCallInputEndEvent,
    ToolCallInputStartEvent,
    ToolCallResult,
    ToolExecutionEndEvent,
    ToolExecutionStartEvent,
    ToolOutputEvent,
    ToolResultEvent,
    ToolResultResult,
    WarningsEvent,
)
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
    """The hook specifications. Plugins implement any of these with ``@kithooks.hookimpl``."""

    @hookspec
    def on_tool_call(self, event: ToolCallEvent, ctx: Context) -> ToolCallResult | None:
        """A tool is about to run. Guard: return ``ToolCallResult(block=True)`` to stop it.

        Emitted once per tool call the agent executes, after the model's stream ended and the
        call was parsed, before ``tool_execution_start``. When a handler blocks, the tool never
        runs, no ``tool_execution_*`` or ``tool_result`` events follow, and the model receives
        the error result ``Error: <reason>`` (``blocked by extension`` when the reason is
        empty). The turn aggregator counts every ``tool_call``, blocked ones included.
        """

    @hookspec
    def on_tool_call_input_start(self, event: ToolCallInputStartEvent, ctx: Context) -> None:
        """The model began streaming the arguments of a tool call. Observe.

        Emitted during the step's stream, before the call is complete; ``tool_call`` for it
        comes later, once the stream has ended.
        """

    @hookspec
    def on_tool_call_input_delta(self, event: ToolCallInputDeltaEvent, ctx: Context) -> None:
        """One streamed fragment of a tool call's JSON arguments. Observe.

        Emitted once per fragment, between ``tool_call_input_start`` and
        ``tool_call_input_end`` of the same ``tool_call_id``. Fragments of different calls may
        interleave when the provider interleaves them.
        """

    @hookspec
    def on_tool_call_input_end(self, event: ToolCallInputEndEvent, ctx: Context) -> None:
        """The model finished streaming a tool call's arguments. Observe.

        Emitted still during the stream, before the call is executed.
        """

    @hookspec
    def on_tool_execution_start(self, event: ToolExecutionStartEvent, ctx: Context) -> None:
        """A tool starts running. Observe.

        Emitted after ``tool_call`` did not block, immediately before the tool runs.
        """

    @hookspec
    def on_tool_execution_end(self, event: ToolExecutionEndEvent, ctx: Context) -> None:
        """A tool returned. Observe.

        Emitted right after the tool returns, also when it failed; ``tool_result`` follows.
        """

    @hookspec
    def on_tool_output(self, event: ToolOutputEvent, ctx: Context) -> None:
        """A running tool streamed a chunk of output. Observe.

        Emitted by streaming tools (a shell command, say) between ``tool_execution_start`` and
        ``tool_execution_end``, possibly from another thread than the agent loop; it is on the
        hot path, once per line a tool prints.
        """

    @hookspec
    def on_tool_result(self, event: ToolResultEvent, ctx: Context) -> ToolResultResult | None:
        """A tool's result, before the model sees it. Transform: return ``ToolResultResult``.

        Emitted after ``tool_execution_end``. A handler may replace the ``content`` and the
        ``is_error`` flag; ``None`` fields leave them as they are. Each handler's event
        carries the changes of the handlers before it, and the host applies the merged
        result: that is what the model receives.
        """

    @hookspec
    def on_input(self, event: InputEvent, ctx: Context) -> InputResult | None:
        """The user's prompt arrived. Transform: return ``InputResult``.

        Emitted first in every turn. ``action='transform'`` replaces the prompt (later
        handlers see the new text); ``action='handled'`` consumes it: dispatch stops and the
        prompt never reaches the model (the turn ends there); ``action='continue'`` leaves it.
        """

    @hookspec
    def on_before_agent_start(
        self, event: BeforeAgentStartEvent, ctx: Context
    ) -> BeforeAgentStartResult | None:
        """The prompt was accepted. Transform: return ``BeforeAgentStartResult``.

        Emitted after ``input``, before the context is prepared. ``inject_text`` adds a user
        message ahead of the prompt and ``system_prompt`` an extra system message, for this
        turn. Every handler's ``inject_text`` is kept.
        """

    @hookspec
    def on_agent_start(self, event: AgentStartEvent, ctx: Context) -> None:
        """The agent starts generating for the turn. Observe.

        Emitted after ``context_prepare``, immediately before the first step; the turn
        aggregator starts timing the turn here.
        """

    @hookspec
    def on_agent_end(self, event: AgentEndEvent, ctx: Context) -> None:
        """The turn is over. Observe.

        Emitted last in every turn, after ``message_end`` on success, right after ``error``
        on failure. The host gives only ``response`` and ``stop_reason``; the turn aggregator
        fills in the tool calls, LLM calls, tokens, cost and duration of the turn
        ``(ctx.session_id, ctx.turn_id)`` before any handler sees the event.
        """

    @hookspec
    def on_message_start(self, event: MessageStartEvent, ctx: Context) -> None:
        """The assistant's message begins. Observe.

        Emitted once per turn, right after ``agent_start`` (not once per step).
        """

    @hookspec
    def on_message_update(self, event: MessageUpdateEvent, ctx: Context) -> None:
        """One streamed delta of the assistant's text. Observe.

        Emitted for every text delta of every step: the hottest event of all. Reasoning text
        is not included.
        """

    @hookspec
    def on_message_end(self, event: MessageEndEvent, ctx: Context) -> None:
        """The assistant's message is complete. Observe.

        Emitted once per successful turn, before ``agent_end``, with the final step's text.
        Not emitted when the turn fails.
        """

    @hookspec
    def on_session_start(self, event: SessionStartEvent, ctx: Context) -> None:
        """A session starts. Observe.

        Emitted when the host starts or loads a session, and to the new set of plugins after
        ``PluginManager.reload()``.
        """

    @hookspec
    def on_session_shutdown(self, event: SessionShutdownEvent, ctx: Context) -> None:
        """The session ends. Observe.

        Emitted when the host closes, and to the old set of plugins at the start of
        ``PluginManager.reload()``.
        """

    @hookspec
    def on_model_change(self, event: ModelChangeEvent, ctx: Context) -> None:
        """The active model changed. Observe.

        Emitted after a plugin (``ctx.set_model``, source ``extension``) or the user (source
        ``user``) switched models.
        """

    @hookspec
    def on_context_prepare(
        self, event: ContextPrepareEvent, ctx: Context
    ) -> ContextPrepareResult | None:
        """The turn's context window is ready. Transform: return ``ContextPrepareResult``.

        Emitted once per turn, after ``before_agent_start`` and before ``agent_start``. A
        handler may filter, reorder or add messages: a kept message is given by its ``index``
        into the original window, a new message has ``index < 0`` (its ``role`` and
        ``content`` make it). The change lasts for this turn only.
        """

    @hookspec
    def on_before_fork(self, event: BeforeForkEvent, ctx: Context) -> BeforeForkResult | None:
        """The user asked to fork the session. Guard: return ``BeforeForkResult(cancel=True)``.

        Emitted before the session is branched from ``target_id``. A cancel stops the fork;
        the user is shown the reason (``Fork cancelled by extension.`` when empty).
        """

    @hookspec
    def on_before_session_switch(
        self, event: BeforeSessionSwitchEvent, ctx: Context
    ) -> BeforeSessionSwitchResult | None:
        """The user asked for another session. Guard: return ``BeforeSessionSwitchResult``.

        Emitted before the host switches (``reason`` says why). A cancel keeps the current
        session (``Session switch cancelled by extension.`` when the reason is empty).
        """

    @hookspec
    def on_before_compact(
        self, event: BeforeCompactEvent, ctx: Context
    ) -> BeforeCompactResult | None:
        """The context is about to be compacted. Guard: return ``BeforeCompactResult``.

        Emitted before a manual or automatic compaction. ``cancel=True`` stops it
        (``compaction cancelled by extension`` when the reason is empty); a non-empty
        ``summary`` is used instead of asking the model for one.
        """

    @hookspec
    def on_subagent_start(self, event: SubagentStartEvent, ctx: Context) -> None:
        """A subagent tool call was parsed. Observe.

        Emitted once per ``subagent`` call, before its ``tool_call`` (which may still block
        it: then ``subagent_end`` with the error follows and no chunks).
        """

    @hookspec
    def on_subagent_chunk(self, event: SubagentChunkEvent, ctx: Context) -> None:
        """A running subagent did something. Observe.

        Emitted for each event of the subagent (text, its turn start and end, its tool
        calls and results), between ``subagent_start`` and ``subagent_end``, possibly from
        another thread.
        """

    @hookspec
    def on_subagent_end(self, event: SubagentEndEvent, ctx: Context) -> None:
        """A subagent tool call finished. Observe.

        Emitted after the call's ``tool_result``, with the (possibly rewritten) result as
        ``response`` or ``error_msg``.
        """

    @hookspec
    def on_step_start(self, event: StepStartEvent, ctx: Context) -> None:
        """One LLM call of the turn begins. Observe.

        Emitted after ``prepare_step``, before the provider is called, once per step.
        """

    @hookspec
    def on_step_finish(self, event: StepFinishEvent, ctx: Context) -> None:
        """A step finished: its LLM call and all its tool runs. Observe.

        Emitted once per completed step, beside ``llm_usage`` for the same call; not emitted
        for a step that failed.
        """

    @hookspec
    def on_reasoning_start(self, event: ReasoningStartEvent, ctx: Context) -> None:
        """The model opened a reasoning block. Observe.

        Emitted during a step's stream; reasoning text itself has no event.
        """

    @hookspec
    def on_warnings(self, event: WarningsEvent, ctx: Context) -> None:
        """The provider returned warnings. Observe.

        Emitted during a step's stream, usually at its start.
        """

    @hookspec
    def on_source(self, event: SourceEvent, ctx: Context) -> None:
        """The model referenced a source. Observe.

        Emitted during a step's stream, once per source part (a web search result, say).
        """

    @hookspec
    def on_error(self, event: ErrorEvent, ctx: Context) -> None:
        """A step failed after its retries. Observe.

        Emitted when the turn fails (including cancellation); ``agent_end`` with
        ``stop_reason='error'`` follows and ``message_end`` does not.
        """

    @hookspec
    def on_retry(self, event: RetryEvent, ctx: Context) -> None:
        """A provider call is retried after a transient error. Observe.

        Emitted within a step, after ``step_start``, once per retry; no new ``step_start``.
        """

    @hookspec
    def on_prepare_step(self, event: PrepareStepEvent, ctx: Context) -> PrepareStepResult | None:
        """The messages of one step are about to be sent. Transform: return ``PrepareStepResult``.

        Emitted before every step, step 0 included, before ``step_start``. The messages are
        the step's whole input, system prompt first; a handler may replace them for this step
        with the same ``index`` rules as ``context_prepare``.
        """

    @hookspec
    def on_llm_usage(self, event: LLMUsageEvent, ctx: Context) -> None:
        """The usage and cost of one LLM call. Observe.

        Emitted once per completed step, after ``step_finish``, with the call's tokens (input
        tokens exclude cache reads and writes), its cost in USD and the model and provider
        that answered. The turn aggregator sums these into ``agent_end``.
        """


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
