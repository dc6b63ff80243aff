"""kithooks inside LangChain v1 agents: ``create_agent(..., middleware=[KitHooksMiddleware(pm)])``.

:class:`KitHooksMiddleware` is a LangChain agent middleware that makes every run of the agent
(``invoke``, ``ainvoke``, ``stream``, ``astream``) emit the kithooks events through a
:class:`~kithooks.PluginManager`, with the same meaning as the pydantic-ai adapter, and
honours every result. Sync and async plugins work in sync and async runs alike: a sync run
awaits coroutine handlers on its manager's event loop, on a daemon thread, that every sync
run of the manager shares for as long as the manager lives (so loop-bound plugin state, a
pooled ``httpx.AsyncClient`` say, works on every call; another manager's slow handler never
delays it, but within one manager a plain handler of an event that also has coroutine
handlers (for a tool call, of any of its events once one has) runs on that thread, so a
slow one delays, and counts against the timeouts of, the manager's coroutine handlers in
its other sync runs). A ``SystemExit`` or
``KeyboardInterrupt`` from a handler is raised in the run; a sync run started inside a
handler (a sub-agent) uses its own manager's loop, or, on the same manager (whose loop the
handler may be blocking), a fresh loop per event in a copy of the caller's context. Tools
run where LangChain runs them, never on that loop, whatever kind of plugin listens.

=====================  ==============================================================
kithooks event         where it comes from in the run
=====================  ==============================================================
input                  the run's last user message, first; ``transform`` rewrites its text
                       (in the agent's state too; images and other blocks are kept),
                       ``handled`` ends the run before any model call (with
                       ``handled_output`` as the answer when given)
before_agent_start     next; ``system_prompt`` is added to the system message and
                       ``inject_text`` placed before the prompt, for every model call of
                       the run
context_prepare        before the first model call: rewrites that call's messages
agent_start,           then
message_start
prepare_step,          before every model call (step 0 included): rewrites its messages
step_start
message_update         the model's answer text (once per model call)
reasoning_start        a reasoning block in the answer
tool_call_input_*      each tool call of the answer (its arguments as one delta)
tool_call ...          every tool execution: a block means the tool never runs and the model
tool_result            receives an error ``ToolMessage`` reading ``Error: <reason>``; an
                       ``args`` rewrite reaches the tool; ``tool_result`` sees and rewrites
                       the call's ``ToolMessage``, also one a tool's ``Command`` carries
                       (``is_error=True`` makes it an error ``ToolMessage``); a rewrite
                       with no single such message to go to fails the run (RuntimeError).
                       Content blocks are all seen: text blocks as their text, any other
                       block (``json``, ``image`` ...) as its JSON on a line of its own; a
                       rewrite replaces the whole content with its text (a str)
step_finish,           each answer's ``usage_metadata``, after the step's tools ran; cost
llm_usage              from ``compute_cost``, model and provider from its response metadata
error, agent_end       the run failed (a failed tool's answer gets its ``step_finish`` and
                       ``llm_usage`` first; with parallel calls, once the step's other
                       running calls ended; a call of the step that starts later runs in
                       the failed turn and another ``agent_end`` follows it) / ended;
                       ``agent_end`` is enriched by the aggregator,
                       its ``response`` the structured response as JSON
                       (``response_format``), else the last AI or tool message's text (a
                       ``return_direct`` tool's result)
message_end            the final step's text, on success
=====================  ==============================================================

A run that fails in another middleware's node between this one's ``before_agent`` and
``after_agent`` (a ``ToolCallLimitMiddleware`` with ``exit_behavior="error"``, a
``PIIMiddleware`` blocking in ``after_model``) emits no ``error`` and no ``agent_end``: the
middleware never sees the failure, and the turn stays open here until ``max_open_runs``
forgets it. One that fails in the ``before_agent`` of a middleware placed before this one
emits nothing (no turn opened); one that fails in its ``after_agent``, which runs after this
one's, fails after a normal ``message_end`` and ``agent_end``.

Not emitted: ``retry`` (a retrying middleware inside this one is invisible to it),
``tool_output``, ``subagent_*``, ``warnings``, ``source``, ``model_change``, ``before_fork``,
``before_session_switch``, ``before_compact``, ``session_start``, ``session_shutdown``.

Streams: every surface built from the state and the nodes' outputs shows the results as
the plugins left them: the final state, ``stream`` / ``astream`` chunks of ``updates``,
``messages`` and ``values``, and the ``tools`` node's ``on_chain_stream`` / ``on_chain_end``
in ``astream_events`` (a ``tool_result`` rewrite; a block's ``Error: <reason>`` message).
The tool's own callbacks fire inside the tool, before the middleware sees its result, so
they carry its raw output, before any ``tool_result`` rewrite (a secret the redactor
removed): ``on_tool_end`` in ``astream_events`` (and in any callback handler, a LangSmith
tracer too) and LangGraph's ``tools`` stream mode (``tool-finished``; ``tool_calls`` of
``stream_events(version="v3")``). They, ``on_tool_start`` and ``tool-started`` too, show
the arguments the tool ran with (an ``args`` rewrite); the model's ``AIMessage`` in the
state keeps those it asked for. A blocked call has no such entry: the tool never starts. A
rewrite replaces a ``ToolMessage``'s content, not its ``artifact``
(``response_format="content_and_artifact"``), which LangChain does not send to the model.

``ctx.session_id`` is the run's ``thread_id`` (``config={"configurable": {"thread_id": ...}}``)
when there is one, else the manager context's; ``ctx.turn_id`` is the run's ``run_id`` when
the caller gave one, else a fresh id per run, so concurrent runs of one agent never mix.
An interrupt (human in the loop) pauses the turn; it goes on when the run is resumed. A tool
call paused inside the tool goes on without asking ``tool_call`` again while it is the call
the guards approved; one whose name or arguments changed meanwhile (the state edited) is
asked again, and emits ``tool_execution_start`` a second time. The state marks the turn
ended when it ends, so a later run that a middleware placed before this one ends in its
``before_agent`` (a refusal, ``jump_to: "end"``) emits nothing, while a call after the end
(that middleware's ``after_agent`` jumps back to the model) revives the turn (below).
Install with ``pip install 'kithooks[langchain]'``.

Register plugins before building the middleware. LangChain charges for a middleware's hooks
in every run even when they do nothing (about 22 % of a short agent run), so a middleware
built while no plugin listens to any event the agent can emit (:data:`EMITTED`; a turn
aggregator alone counts for no one) adds no hook and no state to its agent, which runs at
the bare agent's cost. Since the agent would never ask a plugin registered later, the
manager then refuses one for good: ``pm.register`` raises ``ValueError`` naming the plugin,
the event and the file and line the middleware was built at. Built while plugins listen but
none to ``input``, its ``before_agent`` declares no jump to the end: only an ``input``
plugin's ``handled`` takes that jump, and ``create_agent`` gives a hook that may jump a
conditional edge whose routing every run pays for (about 1 % of a short run). An ``input``
plugin registered later still runs and its ``transform`` is applied, but its ``handled``
fails the run with a ``RuntimeError`` naming where the middleware was built, before any
model call (``error`` and ``agent_end`` end the turn): the run never sends the prompt it
consumed to the model (so does a ``handled`` in a subclass whose
``before_agent`` declares no jump to the end; :attr:`KitHooksMiddleware.honours_handled`
says which). A host that gets its plugins after building the agent (plugins enabled at run
time, file or entry-point plugins loaded later, a plugin holding a sub-agent on the same
manager) builds it with ``KitHooksMiddleware(pm, hooks="always")``.

Put the middleware last in the list, or at least after every middleware that wraps tool
calls. LangChain nests ``wrap_tool_call`` and ``wrap_model_call`` in list order, the first
outermost, so a tool wrapper placed after this one runs after ``tool_call`` approved the
call and can change its arguments or its tool unseen (``HumanInTheLoopMiddleware`` applies a
reviewer's edit there). Last, the guard sees each call as the tool runs it, and the model
events see each model call as the model gets it. What that costs: ``before_agent`` hooks run
in list order and ``after_agent`` hooks in reverse, so ``input`` sees the prompt after the
other middleware's ``before_agent`` and ``agent_end`` the state before their
``after_agent``; a middleware placed before this one that retries or catches a failed model
or tool call turns the failure into ``error`` and ``agent_end`` and the run going on into a
revived turn (below), and one that answers a call itself hides it. A middleware that only
wraps model calls (``ModelRetryMiddleware``, ``ModelFallbackMiddleware``), or only repeats
or catches the same tool call unchanged (``ToolRetryMiddleware``, ``ToolErrorMiddleware``),
can go after it instead: its retries are then one call to the events, and the model events
do not see its edits.

A model or tool call never runs without its events just because the middleware does not
hold its turn. The turn's id lives in the agent's state (the private ``kithooks_turn``
channel), the rest of the turn in the middleware, which holds at most ``max_open_runs``
turns (the oldest is forgotten, logged at info level). A call of a turn the middleware does
not hold revives the turn: a run resumed by another instance (a per-request agent, or a
restarted process, sharing the checkpointer; logged at info level), a forgotten turn, a turn
that ended and that an ``after_agent`` of a middleware placed before this one sends back
(info; with a new human message, no ``input`` guard saw it, so it is a ``RuntimeError``),
or a turn that failed here (``error``, ``agent_end``) and that a middleware placed
before this one goes on with, a retry (logged as a warning). Only a model call reopens a
failed turn: a tool call of it (a late call of the failed step, a tool retry placed
before) runs in the failed turn, and another ``agent_end`` closes it once the last such
call ended (info). A revived turn keeps its ``turn_id``; its
``session_id`` is the run's ``thread_id`` again. It does not emit ``input``,
``before_agent_start``, ``context_prepare``, ``agent_start`` or ``message_start`` again;
its step numbers go on from the model's answers in the state since the last user message
(a retried model call has the failed call's number); the answer waiting for its tools gets
its ``step_finish`` and ``llm_usage`` once they ran; a tool call that ``interrupt()``
paused inside the tool is asked ``tool_call`` again. Rebuilt from the state (another
instance, a forgotten turn), it has no ``before_agent_start`` injection on its model calls;
after a failure here it keeps the failed run's. It ends with ``message_end`` and
``agent_end`` as usual, after a failure or an end a second ``agent_end`` for the turn. The
aggregator counts a revived turn from its start while the manager's aggregator still holds
it (say, another instance on the same manager); otherwise (a new manager, or after an
earlier ``agent_end``) from the revival, with ``duration_ms`` 0. A state without a turn
id (the middleware's ``before_agent`` never ran on this graph, so neither did ``input``
nor ``before_agent_start``) is a ``RuntimeError`` naming that cause, at the first model
call or tool call a plugin listens to.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import inspect
import json
import os
import sys
import threading
import types
import uuid
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping
from typing import Annotated, Any, Literal, NotRequired, TypeVar

import pydantic_core
from langchain.agents.middleware.types import (
    AgentMiddleware,
    AgentState,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
    PrivateStateAttr,
    hook_config,
)
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
)
from langgraph.config import get_config
from langgraph.errors import GraphBubbleUp
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.runtime import Runtime
from langgraph.types import Command
from pydantic import BaseModel

from .. import logs
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
    StepFinishEvent,
    StepStartEvent,
    ToolCallInputDeltaEvent,
    ToolCallInputEndEvent,
    ToolCallInputStartEvent,
    tool_kind_for,
)
from ..hosting import (
    ToolOutcome,
    ToolResponse,
    ToolRun,
    adrive,
    apply_messages,
    context_window,
    counted_step_events,
)
from ..manager import PluginManager
from ..usage import ModelPrice
from . import RUN_EVENTS, TOOL_EVENTS

__all__ = ["EMITTED", "KitHooksMiddleware", "describe_message", "make_message"]

# The per-call paths name an event as ``ToolCallEvent.event_type``, not
# ``EventType.TOOL_CALL``: an Enum class's attribute costs more on Python 3.11 (see
# kithooks.hosting).

logger = logs.get("kithooks")

T = TypeVar("T")
Steps = Generator[Event, Any, T]
"""A piece of the event sequence: yields each event to emit, receives its merged result."""

TURN_KEY = "kithooks_turn"

#: Every event a run can emit. A middleware built while no plugin handles any of them adds no
#: hook to its agent (``hooks="auto"``, see :class:`KitHooksMiddleware`); a test checks that
#: the list is complete.
EMITTED: tuple[EventType, ...] = RUN_EVENTS
_FINISH = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "STOP": "stop",
    "length": "length",
    "max_tokens": "length",
    "MAX_TOKENS": "length",
    "content_filter": "content-filter",
    "SAFETY": "content-filter",
    "tool_calls": "tool-calls",
    "tool_use": "tool-calls",
}


class KitHooksState(AgentState[Any]):
    """The agent state with the running turn's id (private: not in the input or the
    ``invoke`` output, though ``stream_mode="values"`` chunks show it)."""

    kithooks_turn: NotRequired[Annotated[str, PrivateStateAttr]]


def describe_message(message: BaseMessage) -> tuple[str, str]:
    """A LangChain message as ``(role, text)`` for a :class:`~kithooks.ContextMessage`."""
    if isinstance(message, AIMessage):
        role = "assistant"
    elif isinstance(message, SystemMessage):
        role = "system"
    elif isinstance(message, ToolMessage):
        role = "tool"
    else:
        role = "user"
    return role, str(message.text)


def make_message(role: str, content: str) -> AnyMessage:
    """A new LangChain message for one a plugin added (``tool`` becomes user text)."""
    if role == "assistant":
        return AIMessage(content=content)
    if role == "system":
        return SystemMessage(content=content)
    return HumanMessage(content=content)


class _Run:
    """What one run (one turn) has seen so far."""

    __slots__ = (
        "answer",
        "answer_text",
        "ctx",
        "failed",
        "failure",
        "finish",
        "handled",
        "inject_text",
        "label",
        "paused",
        "pending",
        "pending_step",
        "prompt",
        "prompt_id",
        "running",
        "started",
        "step",
        "system_prompt",
    )

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.prompt = ""
        self.label = ""  #: agent_start's prompt: the original, never the transformed text
        self.prompt_id: str | None = None
        self.inject_text: str | None = None
        self.system_prompt: str | None = None
        self.handled = False
        self.started = False
        self.step = -1
        self.pending: AIMessage | None = None
        self.pending_step = 0
        #: The model's last answer (its text is message_update's and message_end's).
        self.answer: AIMessage | None = None
        #: Its text, kept when it answered while message_end had a plugin (another middleware
        #: may change the message in place before the turn ends).
        self.answer_text: str | None = None
        self.finish = ""
        #: Tool calls an interrupt paused after ``tool_call``, by id, with the call (name and
        #: arguments, :func:`_call_key`) the guards approved: resumed without asking again
        #: only while the call is still that one.
        self.paused: dict[str, tuple[ToolRun, str]] = {}
        #: Tool calls of the turn running now (the lock held), and the failure of one of
        #: them, emitted (error, agent_end) once the last of them is done.
        self.running = 0
        self.failure: Exception | None = None
        #: The turn failed here (error and agent_end emitted) and no model call revived it:
        #: tool calls of it that run now are closed by another agent_end once they ended.
        self.failed = False


def _call_key(call: Mapping[str, Any]) -> str:
    """A tool call's name and arguments as one comparable text."""
    return json.dumps([call["name"], call["args"]], sort_keys=True, default=repr)


def _with_text(message: HumanMessage, text: str) -> HumanMessage:
    """``message`` with its text replaced by ``text`` (an ``input`` transform): a list of
    content blocks keeps its other blocks (images, files ...) where they are; the text goes
    in the first text block, the other text blocks are dropped."""
    content = message.content
    if isinstance(content, str):
        return message.model_copy(update={"content": text})
    blocks: list[Any] = []
    placed = False
    for block in content:
        if not _is_text_block(block):
            blocks.append(block)
        elif not placed:
            blocks.append(text if isinstance(block, str) else {**block, "text": text})
            placed = True
    if not placed:
        blocks.insert(0, {"type": "text", "text": text})
    return message.model_copy(update={"content": blocks})


def _start_tool(tool_run: ToolRun, loop: _SyncLoop | None) -> ToolOutcome | None:
    """:meth:`ToolRun.start` from sync code (on ``loop`` when a handler is async)."""
    return tool_run.start() if loop is None else loop.run(tool_run.astart())


def _finish_tool(tool_run: ToolRun, response: ToolResponse, loop: _SyncLoop | None) -> ToolOutcome:
    """:meth:`ToolRun.finish` from sync code (on ``loop`` when a handler is async)."""
    return tool_run.finish(response) if loop is None else loop.run(tool_run.afinish(response))


def _raised(exc: BaseException) -> ToolResponse:
    """What ``tool_result`` sees of a tool call that raised."""
    return ToolResponse(content=f"{type(exc).__name__}: {exc}", is_error=True)


_on_loop: contextvars.ContextVar[frozenset[asyncio.AbstractEventLoop]] = contextvars.ContextVar(
    "kithooks_langchain_on_loop", default=frozenset()
)
"""The managers' loops that the coroutine running here (and what it starts: LangGraph copies
the context into its pool threads) is inside of, on a loop of this module: a sync agent run
from there must not wait for one of them, which may be blocked in the handler that runs it.
Another manager's loop is free: the nested run uses it (its plugins' loop-bound state
works)."""

_WAIT_SLICE = 1.0
"""Seconds a sync run waits for its handlers before it looks whether the loop still runs."""

_STOPPED = (
    "KitHooksMiddleware: the event loop thread awaiting the plugins' coroutine handlers "
    "stopped before they finished"
)


async def _settled(coro: Coroutine[Any, Any, T], done: concurrent.futures.Future[T]) -> None:
    """Await ``coro`` (on a manager's loop) and put its outcome in ``done``. Any exception,
    ``SystemExit`` and ``KeyboardInterrupt`` too, goes to the waiting thread, which raises
    it: asyncio would let those two out of the loop, ending its thread under every waiter."""
    # in this task's own context (a copy of the caller's)
    _on_loop.set(_on_loop.get() | {asyncio.get_running_loop()})
    try:
        result = await coro
    except asyncio.CancelledError:  # the waiting thread gave up, or the loop stopped
        done.set_exception(RuntimeError(_STOPPED))
        raise
    except BaseException as exc:  # raised again by the waiting thread
        done.set_exception(exc)
    else:
        done.set_result(result)


def _wait(done: concurrent.futures.Future[T], thread: threading.Thread) -> T:
    """``done``'s result, failing (RuntimeError) instead of hanging if the loop's thread
    ends first."""
    while True:
        try:
            return done.result(_WAIT_SLICE)
        except TimeoutError:
            if done.done():  # it ended meanwhile, or the handler raised TimeoutError itself
                return done.result()
            if not thread.is_alive():
                raise RuntimeError(_STOPPED) from None


def _run_apart(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on a fresh event loop in a thread of its own, in a copy of the caller's
    context (LangGraph's config, the plugin holds of kithooks' locks): a sync run started
    from inside a handler on a loop here (a sub-agent), which may wait for that loop."""
    context = contextvars.copy_context()
    outcome: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            outcome.append((True, context.run(asyncio.run, coro)))
        except BaseException as exc:  # raised again by the caller
            outcome.append((False, exc))

    thread = threading.Thread(target=target, name="kithooks-langchain-nested", daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


class _SyncLoop:
    """The event loop on which sync runs await one manager's coroutine handlers, on a
    daemon thread (:class:`_Loops`).

    One loop per :class:`~kithooks.PluginManager`, for as long as it lives, so a plugin that
    keeps loop-bound state (a pooled ``httpx.AsyncClient``, an ``asyncio.Lock``) sees the
    same loop on every event of every run; a loop per event or per run would close under
    it, fail its handler and leave a guard out. One per manager, not one for the process,
    so a slow handler of one manager never eats into another's deadlines. Any thread can
    hand it a coroutine (sync runs on many threads, parallel tool calls on LangGraph's
    pool); the caller's context variables go with it. A sync run started inside one of its
    coroutines (a sub-agent) on the same manager awaits its own handlers on a fresh loop per
    event instead (:func:`_run_apart`): this one may be blocked in that coroutine; a
    sub-agent on another manager uses that manager's loop. The thread starts at
    the first coroutine and again after a fork or if it ended; it stops when the manager
    is garbage-collected and at interpreter exit.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: The running loop and its thread (one tuple, so a reader gets a matching pair).
        self._current: tuple[asyncio.AbstractEventLoop, threading.Thread] | None = None

    def _start(self) -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
        with self._lock:
            if self._current is None:
                # In an empty context: the loop keeps the one it is made in (its self-pipe
                # reader's), which here would hold the first run's config and graph.
                loop = contextvars.Context().run(asyncio.new_event_loop)
                thread = threading.Thread(
                    target=self._serve, args=(loop,), name="kithooks-langchain-loop", daemon=True
                )
                self._current = loop, thread
                thread.start()
            return self._current

    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.run_forever()
        except BaseException:  # a callback's SystemExit, say (a handler's is caught)
            logger.exception(
                "KitHooksMiddleware: the event loop of the sync runs' coroutine handlers "
                "stopped: a callback on it raised; the handlers running there fail the "
                "events that wait for them, and the next event starts a new loop"
            )
        finally:  # the next run starts anew
            with self._lock:
                if self._current is not None and self._current[0] is loop:
                    self._current = None
            self._cancel_tasks(loop)
            loop.close()

    @staticmethod
    def _cancel_tasks(loop: asyncio.AbstractEventLoop) -> None:
        """Cancel the handlers left on the stopped ``loop`` and let them unwind (their
        waiters fail, their plugins' holds end), for a few seconds at most."""
        tasks = asyncio.all_tasks(loop)
        if not tasks:
            return
        for task in tasks:
            task.cancel()
        try:
            loop.run_until_complete(asyncio.wait(tasks, timeout=_WAIT_SLICE * 5))
        except BaseException:  # the loop stopped again: what is left stays pending
            logger.exception("KitHooksMiddleware: cancelling the stopped loop's handlers")

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the loop and return its result (or raise its exception)."""
        loop, thread = self._current or self._start()
        if loop in _on_loop.get():  # inside a coroutine of this loop: it may wait for us
            return _run_apart(coro)
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        context = contextvars.copy_context()
        tasks: list[asyncio.Task[None]] = []

        def start() -> None:
            tasks.append(loop.create_task(_settled(coro, done), context=context))

        while True:
            try:
                loop.call_soon_threadsafe(start)
                break
            except RuntimeError:  # the loop closed just now (its thread ended): a new one
                loop, thread = self._start()
        try:
            return _wait(done, thread)
        except BaseException:
            if not done.done():  # the caller gave up (KeyboardInterrupt): stop the handler
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(lambda: [task.cancel() for task in tasks])
            raise

    def close(self) -> None:
        """Stop the loop (its thread closes it); a later :meth:`run` starts a new one."""
        with self._lock:
            current, self._current = self._current, None
        if current is None:
            return
        loop, thread = current
        try:
            loop.call_soon_threadsafe(loop.stop)
        except RuntimeError:  # closed already
            return
        if thread is not threading.current_thread():
            thread.join(timeout=2)

    def forget(self) -> None:
        """In a forked child: the parent's loop thread is not there."""
        self._lock = threading.Lock()
        self._current = None


class _Loops:
    """Each manager's :class:`_SyncLoop`, made at its first use and stopped when the manager
    is garbage-collected, or at exit (``weakref.finalize`` runs then too)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_manager: weakref.WeakKeyDictionary[PluginManager, _SyncLoop] = (
            weakref.WeakKeyDictionary()
        )

    def of(self, pm: PluginManager) -> _SyncLoop:
        with self._lock:
            loop = self._by_manager.get(pm)
            if loop is None:
                loop = self._by_manager[pm] = _SyncLoop()
                weakref.finalize(pm, loop.close)
        return loop

    def forget(self) -> None:
        """In a forked child: no loop thread of the parent is there."""
        self._lock = threading.Lock()
        for loop in list(self._by_manager.values()):
            loop.forget()


_LOOPS = _Loops()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_LOOPS.forget)


def _has_async_handlers(pm: PluginManager, event_types: tuple[EventType, ...]) -> bool:
    """True when a coroutine handler (of the events or of their outcome) needs ``aemit``."""
    return any(pm.has_async_handlers(et) for et in event_types)


def _answer(response: Any) -> AIMessage | None:
    """The model's answer in whatever a ``wrap_model_call`` handler returned."""
    # ModelResponse first: what a handler returns most often, and a plain class (a miss on
    # AIMessage, an ABC, costs a Python-level __instancecheck__)
    if isinstance(response, ExtendedModelResponse):
        response = response.model_response
    if isinstance(response, ModelResponse):
        for message in response.result:
            if isinstance(message, AIMessage):
                return message
        return None
    return response if isinstance(response, AIMessage) else None


def _answers(state: Mapping[str, Any]) -> int:
    """How many answers the model gave since the turn's prompt (the last user message)."""
    answers = 0
    for message in reversed(state.get("messages", [])):
        if isinstance(message, HumanMessage):
            break
        answers += isinstance(message, AIMessage)
    return answers


def _answer_text(run: _Run) -> str:
    """The text of the turn's last answer, as it was when the model gave it when
    ``message_end`` had a plugin then (the usual case), else as the message reads now."""
    if run.answer_text is not None:
        return run.answer_text
    return "" if run.answer is None else str(run.answer.text)


def _final(state: Mapping[str, Any]) -> str:
    """The turn's answer: its structured response as JSON (``response_format``), else the
    text of the last AI or tool message (a ``return_direct`` tool's result ends the run)."""
    structured = state.get("structured_response")
    if structured is not None:
        return structured if isinstance(structured, str) else _json(structured)
    messages = state.get("messages", [])
    last = next((m for m in reversed(messages) if isinstance(m, AIMessage | ToolMessage)), None)
    if last.__class__ is not AIMessage and isinstance(last, ToolMessage):
        return _content_text(last)
    return "" if last is None else str(last.text)


def _json(value: Any) -> str:
    return pydantic_core.to_json(value, fallback=str).decode()


def _finish_reason(message: AIMessage) -> str:
    if message.tool_calls:
        return "tool-calls"
    metadata = message.response_metadata
    raw = metadata.get("finish_reason") or metadata.get("stop_reason") or ""
    return _FINISH.get(str(raw), "stop")


def _blocked(request: ToolCallRequest, outcome: ToolOutcome) -> ToolMessage:
    call = request.tool_call
    return ToolMessage(
        content=outcome.content, tool_call_id=call["id"] or "", name=call["name"], status="error"
    )


_MESSAGES = "messages"
"""The agent state's messages channel (``create_agent``'s ToolNode reads and writes it)."""


def _this_call(item: Any, call_id: str) -> ToolMessage | None:
    """``item`` of a messages update as a ToolMessage, when it is the answer to ``call_id``
    (a message given as a dict, which the state turns into a message, counts too)."""
    message: Any = item
    if isinstance(item, dict):
        try:
            (message,) = convert_to_messages([item])
        except (ValueError, TypeError, NotImplementedError):
            return None
    if isinstance(message, ToolMessage) and message.tool_call_id == call_id:
        return message
    return None


def _map_messages(value: Any, call_id: str, fn: Callable[[ToolMessage], ToolMessage]) -> Any:
    """A messages update (one message or a list / tuple of them) with ``fn`` applied to the
    ToolMessages of ``call_id``."""
    if not isinstance(value, list | tuple):
        message = _this_call(value, call_id)
        return value if message is None else fn(message)
    items = []
    for item in value:
        message = _this_call(item, call_id)
        items.append(item if message is None else fn(message))
    return type(value)(items)


def _map_update(update: Any, call_id: str, fn: Callable[[ToolMessage], ToolMessage]) -> Any:
    """A Command's ``update`` with ``fn`` applied to the ToolMessages of ``call_id``, in the
    shapes LangGraph reads (``Command._update_as_tuples``): a dict, a list or tuple of
    ``(channel, value)`` pairs, a bare list of messages (a messages-list state), or a state
    object: a pydantic model or a dataclass is copied with its messages rewritten; any other
    object with ``messages`` (LangGraph reads its annotated attributes) is returned as it
    is, its messages only read (``fn`` is still called, so they are found)."""
    if isinstance(update, dict):
        if _MESSAGES not in update:
            return update
        return {**update, _MESSAGES: _map_messages(update[_MESSAGES], call_id, fn)}
    if isinstance(update, list | tuple):
        if all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in update):
            return type(update)(
                (key, _map_messages(value, call_id, fn) if key == _MESSAGES else value)
                for key, value in update
            )
        return _map_messages(update, call_id, fn)
    messages = getattr(update, _MESSAGES, None)
    if messages is None:
        return update
    messages = _map_messages(messages, call_id, fn)
    if isinstance(update, BaseModel):
        return update.model_copy(update={_MESSAGES: messages})
    if dataclasses.is_dataclass(update) and not isinstance(update, type):
        return dataclasses.replace(update, **{_MESSAGES: messages})
    return update


def _map_result(
    result: Any, call_id: str, fn: Callable[[ToolMessage], ToolMessage], *, top: bool = True
) -> Any:
    """What a tool call returned with ``fn`` applied to its ToolMessages for ``call_id``: the
    ToolMessage itself (any id, when it is the whole result), those inside a Command's
    update, and those of a list of ToolMessages and Commands (a tool may return one)."""
    if isinstance(result, ToolMessage):
        message = result if top else _this_call(result, call_id)
        return result if message is None else fn(message)
    if isinstance(result, Command):
        update = _map_update(result.update, call_id, fn)
        return result if update is result.update else dataclasses.replace(result, update=update)
    if top and isinstance(result, list):
        return [_map_result(item, call_id, fn, top=False) for item in result]
    return result


def _tool_messages(result: Any, call_id: str) -> list[ToolMessage]:
    """The ToolMessages a tool call produced for ``call_id`` (see :func:`_map_result`)."""
    if isinstance(result, ToolMessage):  # what a tool returns most often: itself, any id
        return [result]
    found: list[ToolMessage] = []

    def keep(message: ToolMessage) -> ToolMessage:
        found.append(message)
        return message

    _map_result(result, call_id, keep)
    return found


def _content_text(message: ToolMessage) -> str:
    """A ToolMessage's whole content as text: a str as it is; a list of content blocks as
    their texts run together (``message.text``) when every block is text, else every block
    on a line of its own, a text block as its text and any other block (``json``, ``image``,
    ``file`` ...) as its JSON, so a plugin sees (and can redact) all the model gets."""
    content = message.content
    if isinstance(content, str):
        return content
    if all(_is_text_block(block) for block in content):
        return str(message.text)
    return "\n".join(
        _block_text(block) if _is_text_block(block) else _block_json(block) for block in content
    )


def _is_text_block(block: Any) -> bool:
    return isinstance(block, str) or (
        isinstance(block, Mapping)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
    )


def _block_text(block: Any) -> str:
    return block if isinstance(block, str) else str(block["text"])


def _block_json(block: Any) -> str:
    return json.dumps(block, ensure_ascii=False, default=str)


def _response(messages: list[ToolMessage]) -> ToolResponse:
    """What ``tool_result`` handlers see: the call's ToolMessage's whole content as text
    (:func:`_content_text`; several messages: theirs, one per line)."""
    if not messages:
        return ToolResponse()
    if len(messages) == 1:
        (message,) = messages
        return ToolResponse(content=_content_text(message), is_error=message.status == "error")
    return ToolResponse(
        content="\n".join(_content_text(m) for m in messages),
        is_error=any(m.status == "error" for m in messages),
    )


def _rewritten(
    request: ToolCallRequest,
    result: Any,
    messages: list[ToolMessage],
    seen: ToolResponse,
    outcome: ToolOutcome,
) -> Any:
    """``result`` with the tool_result rewrite (``outcome``, against ``seen``, what the
    plugins were shown) applied to the call's one ToolMessage (``messages``, what
    :func:`_tool_messages` found), checked to be in it. The rewritten
    text replaces the message's whole content as a str: a list of content blocks (images,
    ``json`` blocks ...) becomes that one text. Content no plugin changed is left as it is.

    Raises:
        RuntimeError: a plugin rewrote the result but it cannot be put in ``result``: no
            ToolMessage for the call there (say, a Command to the parent graph that only
            moves on), several, or one in a state update the middleware cannot copy. The
            model must not get the result unrewritten; adding or dropping a message of the
            tool's state update instead could break the graph or lose its update.
    """
    if outcome.content == seen.content and outcome.is_error == seen.is_error:
        return result
    call_id = request.tool_call["id"] or ""
    if len(messages) == 1:
        status = "error" if outcome.is_error else "success"
        if result is messages[0]:  # the tool returned the message itself: a copy holds it
            return result.model_copy(update={"content": outcome.content, "status": status})
        rewritten = _map_result(
            result,
            call_id,
            lambda m: m.model_copy(update={"content": outcome.content, "status": status}),
        )
        now = _response(_tool_messages(rewritten, call_id))
        if (now.content, now.is_error) == (outcome.content, outcome.is_error):
            return rewritten
    update = (
        f" (its update a {type(result.update).__name__})" if isinstance(result, Command) else ""
    )
    raise RuntimeError(
        f"KitHooksMiddleware: a tool_result plugin rewrote the result of tool "
        f"{request.tool_call['name']!r} (call {call_id!r}), but the rewrite cannot be put in "
        f"what the tool returned, a {type(result).__name__}{update} holding "
        f"{len(messages)} ToolMessages for this call; refusing to hand the model the result "
        "unrewritten. Have the tool return a ToolMessage, or a Command whose "
        f"update[{_MESSAGES!r}] holds exactly one ToolMessage with this tool_call_id."
    )


_ENDED = "kithooks-ended:"
"""Put by ``after_agent`` before the turn's id and the id of the state's last human message
(``kithooks-ended:["<turn id>", "<message id>"]``): the turn ended. A later run that a
middleware placed before this one ends in ``before_agent`` finds it and ends no turn; a
model or tool call after it revives the turn when no human message came since (an earlier
middleware's ``after_agent`` jumped back), and is refused when one did: that prompt never
went through ``input`` (:meth:`KitHooksMiddleware._revive`). Printable: checkpointers that
store the state as JSON text (PostgreSQL's) refuse a NUL."""


def _last_human_id(state: Mapping[str, Any]) -> str | None:
    """The id of the state's last human message, if any."""
    for message in reversed(state.get("messages", ())):
        cls = message.__class__
        if cls is HumanMessage or (cls not in _NOT_HUMAN and isinstance(message, HumanMessage)):
            return message.id  # type: ignore[no-any-return]  # a HumanMessage's: str | None
    return None


#: Message classes whose instances are no HumanMessage: told apart without a call of the
#: message ABC's ``__instancecheck__`` (most of a turn's messages are one of these).
_NOT_HUMAN = frozenset({AIMessage, ToolMessage, SystemMessage})


def _ended_mark(turn_id: str, state: Mapping[str, Any]) -> str:
    return _ENDED + json.dumps([turn_id, _last_human_id(state)])


def _is_ended_mark(key: Any) -> bool:
    return isinstance(key, str) and key.startswith(_ENDED)


def _ended(key: Any) -> tuple[str, str | None] | None:
    """The turn id and last human message id of an ended mark; None for anything else."""
    if not _is_ended_mark(key):
        return None
    try:
        turn_id, human = json.loads(key[len(_ENDED) :])
    except (ValueError, TypeError):
        return None
    if not isinstance(turn_id, str) or not (human is None or isinstance(human, str)):
        return None
    return turn_id, human


#: What :meth:`KitHooksMiddleware._after_model` can emit: with no plugin for any of them, a
#: model call's answer is only kept, with no step of the sequence to drive.
_ANSWER_EVENTS = (
    EventType.REASONING_START,
    EventType.MESSAGE_UPDATE,
    EventType.TOOL_CALL_INPUT_START,
    EventType.TOOL_CALL_INPUT_DELTA,
    EventType.TOOL_CALL_INPUT_END,
)

_PLAIN_ASYNC_HOOKS = ("awrap_model_call", "awrap_tool_call")
"""The async ``wrap_*`` hooks are plain methods that return a coroutine, not ``async def``.

``create_agent`` wraps every ``wrap_*`` hook in LangSmith's ``traceable``, which picks its
wrapper by the function's kind: around an ``async def`` it hands the span's set-up and its
end to a worker thread (``run_in_executor``), two thread hand-offs per model or tool call
even when tracing is off, which cost more CPU than the whole adapter. Around a plain
function it does both inline; LangChain awaits what the hook returns either way. (With
LangSmith tracing on, the middleware's span then closes when the hook returns its coroutine
instead of enclosing the call; the model's and the tools' own spans are unchanged.)
"""


_NO_PM: Any = object()
"""``KitHooksMiddleware.__new__`` called with no argument: ``copy`` making the object."""


def _check_options(pm: Any, max_open_runs: Any, hooks: Any) -> None:
    """Refuse a manager that is not one, a ``hooks`` value that is neither, and a
    ``max_open_runs`` that is not an int >= 1."""
    if not isinstance(pm, PluginManager):
        raise TypeError(f"pm must be a kithooks.PluginManager, not {type(pm).__name__}")
    if hooks not in ("auto", "always"):
        raise ValueError(f"hooks must be 'auto' or 'always', got {hooks!r}")
    if max_open_runs.__class__ is not int or max_open_runs < 1:
        raise ValueError(f"max_open_runs must be an int >= 1, got {max_open_runs!r}")


class KitHooksMiddleware(AgentMiddleware[KitHooksState, Any, Any]):
    """Make a LangChain v1 agent a kithooks host (see the module docs for the event map).

    Args:
        pm: the plugin manager whose plugins see the agent's events.
        prices: host prices for models genai-prices lacks (see :class:`ModelPrice`).
        handled_output: the answer added to the conversation when an ``input`` handler
            consumed the prompt (``""``: none is added; the run just ends).
        max_open_runs: how many turns the middleware holds open at once (and, apart, how
            many failed ones it keeps for a retry); opening one more forgets the oldest,
            logged at info level. A forgotten turn that goes on later is revived from the
            agent's state like a turn another instance started (see the module docs).
        hooks: ``"auto"``: built while no plugin of ``pm`` handles an event the agent can
            emit (:data:`EMITTED`; a :class:`~kithooks.TurnAggregator` alone counts for no
            one), the middleware adds no hook and no state to the agent, which then runs at
            the bare agent's cost, and from then on ``pm.register`` refuses a plugin that
            handles one of those events (``ValueError`` naming where the middleware was
            built: register plugins before building the agent), so no plugin ever sits
            registered where an agent would not ask it (for the manager's whole life: see
            :meth:`PluginManager.keep_unheard`). Built while plugins listen but none to
            ``input``, its ``before_agent`` declares no jump to the end (the conditional
            edge only ``handled`` takes, which every run pays for): a later ``input``
            plugin's ``handled`` then fails the run (:attr:`honours_handled`).
            ``"always"``: hook in whole all the same, for a manager that gets its plugins
            after the agent is built. A subclass always hooks in whole. :attr:`hooked`
            says whether it hooks in.
    """

    state_schema = KitHooksState

    #: Whether the middleware hooks into the agent (False: built with ``hooks="auto"`` while
    #: no plugin listened; see the ``hooks`` argument).
    hooked = True
    #: Where a middleware built with ``hooks="auto"`` was built (file:line), for errors.
    _built_at = ""

    def __new__(cls, pm: Any = _NO_PM, *args: Any, **options: Any) -> KitHooksMiddleware:
        """With ``hooks="auto"``: an unhooked middleware (:class:`_Unhooked`) when no
        plugin of ``pm`` listens, one without the jump edge ``handled`` needs
        (:class:`_Unjumped`) when plugins listen but none to ``input``; else (and with
        ``hooks="always"``) the whole middleware. The options are checked first, so a
        middleware that fails to build leaves the manager as it was. A subclass (its own
        arguments) is always whole. (No arguments at all: ``copy`` making the object its
        state then fills.)"""
        if pm is _NO_PM and not args and not options:
            return super().__new__(cls)
        # type(a shape the base picked)(pm) is decided again, as the base is
        kind = KitHooksMiddleware if cls in (_Unhooked, _Unjumped) else cls
        if kind is not KitHooksMiddleware:
            return super().__new__(kind)
        # __init__'s own signature: a misspelt argument is a TypeError before anything
        try:
            bound = inspect.signature(KitHooksMiddleware.__init__).bind(None, pm, *args, **options)
        except TypeError as exc:
            raise TypeError(f"KitHooksMiddleware(): {exc}") from None
        bound.apply_defaults()
        hooks = bound.arguments["hooks"]
        _check_options(pm, bound.arguments["max_open_runs"], hooks)
        where = ""
        if hooks == "auto":
            caller = sys._getframe(1)
            where = f"{caller.f_code.co_filename}:{caller.f_lineno}"
            why = (
                f"the KitHooksMiddleware built at {where} while no plugin listened added no "
                "hooks to its agent, which would never ask it (register plugins before "
                "building the middleware, or build every middleware on this manager with "
                "hooks='always')"
            )
            if pm.keep_unheard(EMITTED, why):
                kind = _Unhooked
            elif not pm.has_handlers(InputEvent.event_type):
                kind = _Unjumped
        made = super().__new__(kind)
        made._built_at = where
        if not isinstance(made, cls):  # Python initialises only an instance of the class called
            KitHooksMiddleware.__init__(made, pm, *args, **options)
        return made

    def __init__(
        self,
        pm: PluginManager,
        *,
        prices: Mapping[str, ModelPrice] | None = None,
        handled_output: str = "",
        max_open_runs: int = 1024,
        hooks: Literal["auto", "always"] = "auto",
    ) -> None:
        _check_options(pm, max_open_runs, hooks)
        super().__init__()
        self.pm = pm
        self.prices = prices
        self.handled_output = handled_output
        self.max_open_runs = max_open_runs
        #: The open turns by id, oldest first (a plain dict: its ``get`` is the cheapest).
        self._runs: dict[str, _Run] = {}
        #: Turns that failed here (error and agent_end emitted), oldest first: a middleware
        #: placed before this one may still go on with one (a retry), which revives it.
        self._failed_runs: dict[str, _Run] = {}
        self._lock = threading.Lock()
        #: The manager's loop, on which sync runs await coroutine handlers (its thread
        #: starts at the first coroutine).
        self._sync_loop = _LOOPS.of(pm)

    @property
    def name(self) -> str:
        """The middleware's node name in the agent graph."""
        return "KitHooks"

    @property
    def honours_handled(self) -> bool:
        """Whether an ``input`` plugin's ``handled`` can end a run of the agent before its
        model call: its ``before_agent`` declares the jump to the end, which ``create_agent``
        makes a conditional edge. False when built with ``hooks="auto"`` while no plugin
        handled ``input`` (or by a subclass whose ``before_agent`` declares no such jump):
        there a ``handled`` fails the run with a ``RuntimeError`` instead, before any model
        call."""
        return _ends_early(type(self))

    def _why_not_handled(self) -> str:
        if type(self) is _Unjumped:
            why = (
                f"the middleware built at {self._built_at} with hooks='auto' while no plugin "
                "handled 'input' has no jump to the end, the edge 'handled' takes (register "
                "input plugins before building the middleware, or build it with "
                "hooks='always')"
            )
        else:
            why = (
                f"this middleware ({type(self).__qualname__}) cannot end the run before its "
                "model call: its before_agent hook declares no jump to the end "
                "(@hook_config(can_jump_to=['end']))"
            )
        return (
            f"KitHooksMiddleware: an 'input' plugin answered 'handled', but {why}; the "
            "prompt the plugin consumed is not sent to the model in this run"
        )

    # -- dispatch ------------------------------------------------------------------------

    def _drive(self, steps: Steps[T], ctx: Context) -> T:
        """Run a piece of the sequence from sync code (coroutine plugins are awaited too)."""
        pm = self.pm
        try:
            event = next(steps)
            while True:
                if pm.has_async_handlers(event.event_type):
                    result = self._sync_loop.run(pm.aemit(event, ctx))
                else:
                    result = pm.emit(event, ctx)
                event = steps.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _adrive(self, steps: Steps[T], ctx: Context) -> T:
        """Run a piece of the sequence from async code."""
        return await adrive(self.pm, steps, ctx)

    def _run_of(self, state: Any, what: str, *, tool: bool = False) -> _Run:
        """The turn ``state`` belongs to; one not open here is revived (:meth:`_revive`)."""
        # a dict, always in practice (isinstance of the Mapping ABC costs a Python call)
        key = state.get(TURN_KEY) if type(state) is dict or isinstance(state, Mapping) else None
        # one dict read, atomic on its own: the lock guards what changes several at once
        run = None if key is None else self._runs.get(key)
        return run if run is not None else self._revive(key, state, what, tool)

    def _revive(self, key: Any, state: Any, what: str, tool: bool) -> _Run:
        """Go on with turn ``key``, which is not open here: the run that failed here if it is
        kept, else one rebuilt from the state (after its end, too: :data:`_ENDED`). A tool
        call of a turn that failed here runs in the failed turn without reopening it (a call
        of the failed step that started late); only a model call reopens it (a retry). No
        key: ``before_agent`` never ran."""
        mark = _ended(key)
        ended = _is_ended_mark(key)
        if mark is not None:
            key, human = mark
            if human != _last_human_id(state):
                raise RuntimeError(
                    f"KitHooksMiddleware: turn {key!r} ended, and the state has a human "
                    f"message newer than its end at {what}, but the middleware's "
                    "before_agent hook did not run for it (nor did input and "
                    "before_agent_start); refusing to go on without the kithooks events. A "
                    "middleware placed before KitHooksMiddleware jumped past its "
                    "before_agent, or went back to the model from its after_agent with a new "
                    "message: place that one after KitHooksMiddleware in the list."
                )
        elif ended:
            key = None  # a mark this version cannot read: no turn to go on with
        if not isinstance(key, str) or not key:
            raise RuntimeError(
                f"KitHooksMiddleware: the agent state has no kithooks turn ({TURN_KEY!r}) at "
                f"{what}, so the middleware's before_agent hook did not run on this graph "
                "(nor did input and before_agent_start); refusing to go on without the "
                "kithooks events. Add the middleware with "
                "create_agent(..., middleware=[..., KitHooksMiddleware(pm)]); or the run was "
                "started by an agent whose KitHooksMiddleware was built while no plugin "
                "listened (hooks='auto': it added no hook)."
            )
        with self._lock:
            run = self._runs.get(key)
            if run is not None:  # a parallel tool call of the turn revived it already
                return run
            if tool and key in self._failed_runs:
                run = self._failed_runs[key]
                late = True
            else:
                late = False
                run = self._failed_runs.pop(key, None)
                if run is not None:  # a failed model call gave no answer: its retry is the
                    run.step = _answers(state) - 1  # same step again
                    run.failed = False
                    failed = True
                else:
                    failed = False
                    run = self._rebuild(key, state)
                    if mark is not None:  # its end reported the last answer's usage
                        run.pending = None
                forgotten = self._keep(self._runs, run)
        if late:
            logger.info(
                "KitHooksMiddleware: a tool call of turn %r runs after the turn failed "
                "(error and agent_end were emitted): a call of the failed step that started "
                "after the failure, or a retry of the failed call by a middleware placed "
                "before KitHooksMiddleware; its events are emitted for the failed turn and "
                "followed by another agent_end",
                key,
            )
            return run
        if forgotten:
            self._log_forgotten(forgotten)
        if failed:
            logger.warning(
                "KitHooksMiddleware: turn %r failed (error and agent_end were emitted) but "
                "goes on at %s: a middleware placed before KitHooksMiddleware retried or "
                "caught the failure (a retry that only wraps model calls, or repeats the "
                "same tool call, can go after KitHooksMiddleware); its calls emit their "
                "events and its end a second agent_end",
                key,
                what,
            )
        elif ended:
            logger.info(
                "KitHooksMiddleware: turn %r ended (agent_end was emitted) but goes on at %s: "
                "a middleware placed before KitHooksMiddleware went back from its "
                "after_agent; going on with it as a turn already started, its end a second "
                "agent_end",
                key,
                what,
            )
        else:
            logger.info(
                "KitHooksMiddleware: turn %r of session %r is not open here (resumed by "
                "another middleware instance or process, or forgotten past max_open_runs); "
                "going on with it at %s as a turn already started",
                key,
                run.ctx.session_id,
                what,
            )
        return run

    def _rebuild(self, key: str, state: Mapping[str, Any]) -> _Run:
        """Turn ``key``, already started, from the state: its step count and the last answer
        (whose step_finish / llm_usage wait for its tools)."""
        run = _Run(self._context(get_config(), key))
        run.started = True
        run.step = _answers(state) - 1
        messages = state.get("messages", [])
        if messages and isinstance(messages[-1], AIMessage):
            run.pending, run.pending_step = messages[-1], run.step
            run.answer = messages[-1]
            run.answer_text = str(messages[-1].text)  # as the model gave it (revived rarely)
        return run

    def _keep(self, table: dict[str, _Run], run: _Run) -> list[_Run]:
        """Put ``run`` in ``table`` (the lock held); returns the oldest runs it forgot to stay
        within ``max_open_runs``."""
        table[run.ctx.turn_id] = run
        forgotten = []
        while len(table) > self.max_open_runs:
            forgotten.append(table.pop(next(iter(table))))
        return forgotten

    def _log_forgotten(self, forgotten: list[_Run]) -> None:
        for run in forgotten:
            logger.info(
                "KitHooksMiddleware: more than max_open_runs=%d turns open; forgot the oldest, "
                "turn %r of session %r (an interrupt never resumed?); it is revived if it "
                "goes on",
                self.max_open_runs,
                run.ctx.turn_id,
                run.ctx.session_id,
            )

    def _close(self, run: _Run) -> None:
        with self._lock:
            self._runs.pop(run.ctx.turn_id, None)

    # -- the sequence, as steps ----------------------------------------------------------

    def _context(self, config: Mapping[str, Any], turn_id: str) -> Context:
        """A turn's context: the session is the run's ``thread_id``, else the manager's."""
        thread_id = config.get("configurable", {}).get("thread_id")
        base = self.pm.context
        session_id = str(thread_id) if thread_id else base.session_id
        return base.for_turn(turn_id, session_id=session_id)

    def _open(self, runtime: Runtime[Any]) -> _Run:
        """A new turn: its ids from the run's config."""
        config = get_config()
        info = getattr(runtime, "execution_info", None)
        run_id = getattr(info, "run_id", None) or config.get("run_id")
        turn_id = str(run_id) if run_id else uuid.uuid4().hex
        with self._lock:
            while turn_id in self._runs:  # a caller reused a run_id concurrently
                turn_id = uuid.uuid4().hex
            self._failed_runs.pop(turn_id, None)  # an earlier turn's, under a reused run_id
            run = _Run(self._context(config, turn_id))
            forgotten = self._keep(self._runs, run)
        if forgotten:
            self._log_forgotten(forgotten)
        return run

    def _start(self, run: _Run, state: Mapping[str, Any]) -> Steps[dict[str, Any]]:
        """input (transform / handled), then before_agent_start."""
        pm = self.pm
        update: dict[str, Any] = {TURN_KEY: run.ctx.turn_id}
        messages = state.get("messages", [])
        prompt_message = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
        if prompt_message is not None:
            run.prompt, run.prompt_id = str(prompt_message.text), prompt_message.id
            run.label = run.prompt
        if pm.handled[InputEvent.event_type]:
            result = yield InputEvent(text=run.prompt, source="script")
            if result is not None and result.action == "handled":
                if not self.honours_handled:
                    failure = RuntimeError(self._why_not_handled())
                    yield from self._failed(run, failure)  # error, agent_end: the turn ends
                    raise failure
                run.handled = True
                update["jump_to"] = "end"
                if self.handled_output:
                    update["messages"] = [AIMessage(content=self.handled_output)]
                return update
            if result is not None and result.action == "transform" and result.text != run.prompt:
                run.prompt = result.text
                if prompt_message is not None:
                    update["messages"] = [_with_text(prompt_message, result.text)]
        if pm.handled[BeforeAgentStartEvent.event_type]:
            injection = yield BeforeAgentStartEvent(prompt=run.prompt)
            if injection is not None:
                run.inject_text = injection.inject_text
                run.system_prompt = injection.system_prompt
        return update

    def _flush(self, run: _Run) -> Steps[None]:
        """step_finish + llm_usage of the previous answer, once its tools have run."""
        message, run.pending = run.pending, None
        if message is None:
            return
        run.finish = _finish_reason(message)
        pm = self.pm
        if not (pm.handled[StepFinishEvent.event_type] or pm.handled[LLMUsageEvent.event_type]):
            return
        usage: Mapping[str, Any] = message.usage_metadata or {}
        details: Mapping[str, Any] = usage.get("input_token_details") or {}
        read = int(details.get("cache_read") or 0)
        write = int(details.get("cache_creation") or 0)
        fresh = max(0, int(usage.get("input_tokens") or 0) - read - write)  # input counts cache
        metadata = message.response_metadata
        yield from counted_step_events(
            pm,
            run.pending_step,
            provider=str(metadata.get("model_provider") or ""),
            model=str(metadata.get("model_name") or metadata.get("model") or ""),
            input_tokens=fresh,
            output_tokens=int(usage.get("output_tokens") or 0),
            cache_read_tokens=read,
            cache_write_tokens=write,
            finish_reason=run.finish,
            has_tool_calls=bool(message.tool_calls),
            request_id=str(metadata.get("id") or ""),
            prices=self.prices,
        )

    def _rewrite(
        self,
        et: EventType,
        make_event: Callable[[Any], Event],
        messages: list[AnyMessage],
    ) -> Steps[list[AnyMessage]]:
        if not self.pm.handled[et]:
            return messages
        result = yield make_event(context_window(messages, describe_message))
        if result is None or result.messages is None:
            return messages
        return apply_messages(messages, result.messages, make_message)

    def _inject(self, run: _Run, request: ModelRequest[Any]) -> ModelRequest[Any]:
        """The before_agent_start injection, on every model call of the turn."""
        if run.inject_text is None and run.system_prompt is None:
            return request
        messages = list(request.messages)
        system = request.system_message
        if run.inject_text is not None:
            at = next(
                (i for i, m in enumerate(messages) if m.id is not None and m.id == run.prompt_id),
                len(messages),
            )
            messages.insert(at, HumanMessage(content=run.inject_text))
        if run.system_prompt is None:
            return request.override(messages=messages)
        text = run.system_prompt if system is None else f"{system.text}\n\n{run.system_prompt}"
        return request.override(messages=messages, system_message=SystemMessage(content=text))

    def _before_model(self, run: _Run, request: ModelRequest[Any]) -> Steps[ModelRequest[Any]]:
        """Flush the last step; turn start once; prepare_step and step_start."""
        pm = self.pm
        handled = pm.handled
        if run.pending is not None:
            yield from self._flush(run)
        request = self._inject(run, request)
        # A rewrite gives a new list (apply_messages), so an unchanged window is the request's
        # own list; each rewrite is asked when its turn comes (a plugin registered by an
        # earlier handler takes part).
        messages = request.messages
        if not run.started:
            run.started = True
            if handled[ContextPrepareEvent.event_type]:
                messages = yield from self._rewrite(
                    ContextPrepareEvent.event_type,
                    lambda w: ContextPrepareEvent(messages=w),
                    messages,
                )
            if handled[AgentStartEvent.event_type]:
                yield AgentStartEvent(prompt=run.label)
            if handled[MessageStartEvent.event_type]:
                yield MessageStartEvent()
        run.step += 1
        step = run.step
        if handled[PrepareStepEvent.event_type]:
            messages = yield from self._rewrite(
                PrepareStepEvent.event_type,
                lambda w: PrepareStepEvent(step_number=step, messages=w),
                messages,
            )
        run.answer = run.answer_text = None
        if handled[StepStartEvent.event_type]:
            yield StepStartEvent(step_number=step)
        if messages is not request.messages and messages != request.messages:
            request = request.override(messages=messages)
        return request

    def _answered(self, run: _Run, response: Any) -> Steps[None] | None:
        """Keep the model's answer for step_finish / llm_usage (and its text for
        message_end); the steps of its events (:meth:`_after_model`) when some plugin
        handles one (:data:`_ANSWER_EVENTS`), else None (so is a response with no answer)."""
        message = _answer(response)
        if message is None:
            return None
        run.pending, run.pending_step = message, run.step
        run.answer = message
        if self.pm.handled[MessageEndEvent.event_type]:
            run.answer_text = str(message.text)
        if any(map(self.pm.handled.__getitem__, _ANSWER_EVENTS)):
            return self._after_model(run, message)
        return None

    def _after_model(self, run: _Run, message: AIMessage) -> Steps[None]:
        """The answer's reasoning, text and tool calls (see :meth:`_answered`)."""
        pm = self.pm
        if isinstance(message.content, list) and pm.handled[ReasoningStartEvent.event_type]:
            for block in message.content:
                if isinstance(block, dict) and block.get("type") in ("reasoning", "thinking"):
                    yield ReasoningStartEvent(id=str(block.get("id") or ""))
        if pm.handled[MessageUpdateEvent.event_type] and (text := str(message.text)):
            yield MessageUpdateEvent(chunk=text)
        for call in message.tool_calls:
            call_id, name = call["id"] or "", call["name"]
            if pm.handled[ToolCallInputStartEvent.event_type]:
                yield ToolCallInputStartEvent(
                    tool_call_id=call_id, tool_name=name, tool_kind=tool_kind_for(name)
                )
            if pm.handled[ToolCallInputDeltaEvent.event_type]:
                yield ToolCallInputDeltaEvent(tool_call_id=call_id, delta=json.dumps(call["args"]))
            if pm.handled[ToolCallInputEndEvent.event_type]:
                yield ToolCallInputEndEvent(tool_call_id=call_id)

    def _failed(self, run: _Run, exc: BaseException) -> Steps[None]:
        """The turn failed: the usage of the answer whose tool failed (step_finish,
        llm_usage), error, then agent_end. The run is kept apart in case a middleware
        outside this one goes on with the turn (:meth:`_revive`)."""
        with self._lock:
            self._runs.pop(run.ctx.turn_id, None)
            self._keep(self._failed_runs, run)  # the oldest failures are dropped silently
            run.failed = True
        yield from self._flush(run)
        if self.pm.handled[ErrorEvent.event_type]:
            yield ErrorEvent(error=f"{type(exc).__name__}: {exc}")
        if self.pm.handled[AgentEndEvent.event_type]:
            yield AgentEndEvent(response="", stop_reason="error")

    def _close_late(self, run: _Run, failure: Exception | None) -> Steps[None]:
        """What :meth:`_ended_tool` left to emit: the turn's failure, or the ``agent_end``
        closing the tool calls of a failed turn that ran after its failure (so whatever
        counts the turn's calls, the aggregator say, ends them too)."""
        if failure is not None:
            yield from self._failed(run, failure)
        elif self.pm.handled[AgentEndEvent.event_type]:
            yield AgentEndEvent(response="", stop_reason="error")

    def _end(self, run: _Run, state: Mapping[str, Any]) -> Steps[None]:
        """The last step's usage, message_end, agent_end."""
        self._close(run)
        if run.handled:
            return
        yield from self._flush(run)
        if self.pm.handled[MessageEndEvent.event_type]:
            yield MessageEndEvent(content=_answer_text(run))
        if self.pm.handled[AgentEndEvent.event_type]:
            yield AgentEndEvent(response=_final(state), stop_reason=run.finish or "completed")

    # -- LangChain's hooks ---------------------------------------------------------------

    @hook_config(can_jump_to=["end"])
    def before_agent(self, state: KitHooksState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Open the turn: input and before_agent_start."""
        run = self._open(runtime)
        return self._drive(self._start(run, state), run.ctx)

    @hook_config(can_jump_to=["end"])
    async def abefore_agent(
        self, state: KitHooksState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        """Async :meth:`before_agent`."""
        run = self._open(runtime)
        return await self._adrive(self._start(run, state), run.ctx)

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> Any:
        """The step events around one model call."""
        run = self._run_of(request.state, "a model call")
        request = self._drive(self._before_model(run, request), run.ctx)
        try:
            response = handler(request)
        except GraphBubbleUp:
            raise
        except Exception as exc:
            self._drive(self._failed(run, exc), run.ctx)
            raise
        if (steps := self._answered(run, response)) is not None:
            self._drive(steps, run.ctx)
        return response

    def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> Coroutine[Any, Any, Any]:
        """Async :meth:`wrap_model_call` (a plain method returning the coroutine, see
        :data:`_PLAIN_ASYNC_HOOKS`)."""
        return self._awrap_model_call(request, handler)

    async def _awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> Any:
        run = self._run_of(request.state, "a model call")
        request = await self._adrive(self._before_model(run, request), run.ctx)
        try:
            response = await handler(request)
        except GraphBubbleUp:
            raise
        except Exception as exc:
            await self._adrive(self._failed(run, exc), run.ctx)
            raise
        if (steps := self._answered(run, response)) is not None:
            await self._adrive(steps, run.ctx)
        return response

    def _tool_run(self, request: ToolCallRequest) -> tuple[_Run, ToolRun, bool] | None:
        """The turn, a ToolRun for this call and whether it was started before (an
        interrupt paused it, and the call is still the one ``tool_call`` approved), or None
        when nobody listens."""
        call = request.tool_call
        name = call["name"]
        if not any(self.pm.has_handlers(et, name) for et in TOOL_EVENTS):
            return None
        run = self._run_of(request.state, "a tool call", tool=True)
        paused = run.paused.pop(call["id"] or "", None)  # one dict operation: atomic
        if paused is not None:
            tool_run, approved = paused
            if approved == _call_key(call):
                return run, tool_run, True
            logger.info(
                "KitHooksMiddleware: paused tool call %r changed (now %r with other "
                "arguments) before it was resumed; asking tool_call again",
                tool_run.id,
                name,
            )
        args = call["args"]  # LangChain parsed them already
        parsed = args if type(args) is dict or isinstance(args, Mapping) else None
        tool_run = ToolRun(
            self.pm,
            tool_name=call["name"],
            tool_call_id=call["id"] or "",
            input=None if parsed is not None else json.dumps(args),
            args=parsed,
            ctx=run.ctx,
        )
        return run, tool_run, False

    def _pause(self, run: _Run, tool_run: ToolRun, request: ToolCallRequest) -> None:
        """An interrupt paused the call ``tool_call`` approved (as the model made it)."""
        with self._lock:
            run.paused[tool_run.id] = (tool_run, _call_key(request.tool_call))

    def _started_tool(self, run: _Run) -> None:
        """One more tool call of ``run`` runs (:meth:`_ended_tool` when it is done)."""
        with self._lock:
            run.running += 1

    def _ended_tool(self, run: _Run, failure: Exception | None) -> list[Exception | None]:
        """A tool call of ``run`` is done (``failure``: what it raised); what to emit now
        (:meth:`_close_late`): the failure a call of the turn raised first, once the turn's
        last running call is done, so the step's other calls end before ``error`` and
        ``agent_end``; or None when the last calls of a turn that failed before ended (they
        close it again). (Two calls, not a context manager: this runs on every tool call.)"""
        with self._lock:
            run.running -= 1
            if failure is not None and run.failure is None:
                run.failure = failure
            if not run.running and (run.failure is not None or run.failed):
                failure, run.failure = run.failure, None
                return [failure]
        return []

    @staticmethod
    def _with_args(request: ToolCallRequest, tool_run: ToolRun) -> ToolCallRequest:
        if not tool_run.rewritten:
            return request
        return request.override(tool_call={**request.tool_call, "args": json.loads(tool_run.input)})

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolMessage | Command[Any]],
    ) -> ToolMessage | Command[Any]:
        """tool_call (a block answers ``Error: <reason>``), the tool, tool_result (its
        rewrite applied to the call's ToolMessage, in a Command too: :func:`_rewritten`).
        The tool runs here, on the caller's thread, never on the loop of async plugins."""
        found = self._tool_run(request)
        if found is None:
            return handler(request)
        run, tool_run, resumed = found
        self._started_tool(run)
        failure = None
        try:
            return self._tool(run, tool_run, resumed, request, handler)
        except GraphBubbleUp:
            raise
        except Exception as exc:
            failure = exc
            raise
        finally:
            for late in self._ended_tool(run, failure):
                self._drive(self._close_late(run, late), run.ctx)

    def _tool(
        self,
        run: _Run,
        tool_run: ToolRun,
        resumed: bool,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolMessage | Command[Any]],
    ) -> ToolMessage | Command[Any]:
        loop = self._sync_loop if _has_async_handlers(self.pm, TOOL_EVENTS) else None
        blocked = None if resumed else _start_tool(tool_run, loop)
        if blocked is not None:
            return _blocked(request, blocked)
        try:
            result = handler(self._with_args(request, tool_run))
        except GraphBubbleUp:
            self._pause(run, tool_run, request)
            raise
        except Exception as exc:
            _finish_tool(tool_run, _raised(exc), loop)
            raise
        messages = _tool_messages(result, tool_run.id)
        seen = _response(messages)
        outcome = _finish_tool(tool_run, seen, loop)
        return _rewritten(request, result, messages, seen, outcome)  # type: ignore[no-any-return]

    def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> Coroutine[Any, Any, ToolMessage | Command[Any]]:
        """Async :meth:`wrap_tool_call` (a plain method returning the coroutine, see
        :data:`_PLAIN_ASYNC_HOOKS`)."""
        return self._awrap_tool_call(request, handler)

    async def _awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        found = self._tool_run(request)
        if found is None:
            return await handler(request)
        run, tool_run, resumed = found
        self._started_tool(run)
        failure = None
        try:
            return await self._atool(run, tool_run, resumed, request, handler)
        except GraphBubbleUp:
            raise
        except Exception as exc:
            failure = exc
            raise
        finally:
            for late in self._ended_tool(run, failure):
                await self._adrive(self._close_late(run, late), run.ctx)

    async def _atool(
        self,
        run: _Run,
        tool_run: ToolRun,
        resumed: bool,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        blocked = None if resumed else await tool_run.astart()
        if blocked is not None:
            return _blocked(request, blocked)
        try:
            result = await handler(self._with_args(request, tool_run))
        except GraphBubbleUp:
            self._pause(run, tool_run, request)
            raise
        except (Exception, asyncio.CancelledError) as exc:  # cancelled: the run was stopped
            await tool_run.afinish(_raised(exc))
            raise
        messages = _tool_messages(result, tool_run.id)
        seen = _response(messages)
        outcome = await tool_run.afinish(seen)
        return _rewritten(request, result, messages, seen, outcome)  # type: ignore[no-any-return]

    def _ending(self, state: KitHooksState) -> _Run | None:
        """The turn ``after_agent`` ends: None without a key (no turn started) or when the
        turn ended already (a middleware placed before this one ended a later run in its
        ``before_agent``), unless a call after that end revived it (:data:`_ENDED`)."""
        key = state.get(TURN_KEY)
        if key is None:
            return None
        if _is_ended_mark(key):
            mark = _ended(key)
            if mark is None:
                return None
            with self._lock:
                return self._runs.get(mark[0])
        return self._run_of(state, "the agent's end")

    def after_agent(self, state: KitHooksState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Close the turn: the last usage, message_end, agent_end; the state marks the turn
        ended (:data:`_ENDED`), so a later run whose ``before_agent`` a middleware placed
        before this one skipped (a jump to the end) ends no turn."""
        run = self._ending(state)
        if run is None:
            return None
        self._drive(self._end(run, state), run.ctx)
        return {TURN_KEY: _ended_mark(run.ctx.turn_id, state)}

    async def aafter_agent(
        self, state: KitHooksState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        """Async :meth:`after_agent`."""
        run = self._ending(state)
        if run is None:
            return None
        await self._adrive(self._end(run, state), run.ctx)
        return {TURN_KEY: _ended_mark(run.ctx.turn_id, state)}


def _ends_early(cls: type) -> bool:
    """Whether ``create_agent`` gives ``cls``'s ``before_agent`` the jump to the end that
    ``handled`` takes (as it reads it: the sync hook's ``can_jump_to``, else the async's)."""
    for name in ("before_agent", "abefore_agent"):
        hook = getattr(cls, name)
        if hook is not getattr(AgentMiddleware, name) and hasattr(hook, "__can_jump_to__"):
            return "end" in hook.__can_jump_to__
    return False


def _unjumped(hook: Callable[..., Any]) -> Callable[..., Any]:
    """A copy of ``hook`` without the jumps ``hook_config`` declared on it."""
    copy = types.FunctionType(
        hook.__code__, hook.__globals__, hook.__name__, hook.__defaults__, hook.__closure__
    )
    copy.__kwdefaults__ = hook.__kwdefaults__
    copy.__qualname__, copy.__doc__ = hook.__qualname__, hook.__doc__
    copy.__module__, copy.__annotations__ = hook.__module__, dict(hook.__annotations__)
    return copy


class _Unhooked(KitHooksMiddleware):
    """:class:`KitHooksMiddleware` built with ``hooks="auto"`` while no plugin listened.

    ``create_agent`` adds a graph node or a call wrapper for each hook a middleware's class
    overrides, and a state channel for its state schema; this class overrides none and adds
    no channel, so the agent runs as the bare agent. Its manager refuses from then on a
    plugin it would never ask (:meth:`PluginManager.keep_unheard`).
    """

    state_schema = AgentState  # type: ignore[assignment]
    hooked = False
    before_agent = AgentMiddleware.before_agent
    abefore_agent = AgentMiddleware.abefore_agent
    wrap_model_call = AgentMiddleware.wrap_model_call
    awrap_model_call = AgentMiddleware.awrap_model_call
    wrap_tool_call = AgentMiddleware.wrap_tool_call
    awrap_tool_call = AgentMiddleware.awrap_tool_call
    after_agent = AgentMiddleware.after_agent
    aafter_agent = AgentMiddleware.aafter_agent


class _Unjumped(KitHooksMiddleware):
    """:class:`KitHooksMiddleware` built with ``hooks="auto"`` while plugins listened but
    none to ``input``.

    ``handled`` ends a run with a jump from ``before_agent`` to the end. ``create_agent``
    gives a hook that may jump a conditional edge, which every run pays for (its routing
    copies the state's channels: about 1 % of a short agent run), and only an ``input``
    plugin's ``handled`` takes it, so this class's ``before_agent`` declares none. An
    ``input`` plugin registered later still runs (a ``transform`` is applied); its
    ``handled`` fails the run with a ``RuntimeError`` before any model call
    (:attr:`honours_handled`).
    """

    before_agent = _unjumped(KitHooksMiddleware.before_agent)
    abefore_agent = _unjumped(KitHooksMiddleware.abefore_agent)
