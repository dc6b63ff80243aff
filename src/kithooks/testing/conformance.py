"""The adapter conformance suite: the promises every kithooks adapter keeps, as pytest tests.

An adapter author writes a small :class:`Adapter` (build an agent whose model plays a
:class:`Script` and whose one tool is ``shell``; run it in each of the framework's sync and
async modes) and subclasses :class:`AdapterConformance` in a test module::

    from kithooks.testing.conformance import Adapter, AdapterConformance

    class MyAdapter(Adapter):
        sync_modes = ("invoke",)
        async_modes = ("ainvoke",)

        def build(self, pm, script): ...          # the agent, with kithooks and the tool
        def run(self, agent, prompt, mode): ...   # the answer's text
        async def arun(self, agent, prompt, mode): ...

    class TestMyAdapter(AdapterConformance):
        adapter = MyAdapter()

Every test runs once per mode. Needs pytest (``pip install 'kithooks[testing]'``).
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import sys
import threading
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import Any, ClassVar

import attrs
import pytest

from ..context import Context
from ..events import (
    AgentEndEvent,
    AgentStartEvent,
    BeforeAgentStartEvent,
    Event,
    EventType,
    InputResult,
    LLMUsageEvent,
    ToolCallEvent,
    ToolCallResult,
    ToolResultEvent,
    ToolResultResult,
)
from ..hookspecs import hookimpl
from ..manager import PluginManager
from ..usage import compute_cost

__all__ = [
    "TIMEOUT",
    "Adapter",
    "AdapterConformance",
    "Recorder",
    "Reply",
    "RmRfGate",
    "Script",
    "ScriptedFailure",
    "ToolCall",
    "parallel_script",
    "standard_script",
]

TIMEOUT = 60.0
"""Seconds one run may take before the test fails instead of hanging."""

Window = Sequence[tuple[str, str]]


class ScriptedFailure(RuntimeError):
    """A model call the script makes fail (:attr:`Reply.error`)."""


@attrs.frozen(kw_only=True)
class ToolCall:
    """A tool call a scripted reply makes."""

    name: str = "shell"
    args: Mapping[str, Any] = attrs.field(factory=dict)
    id: str = "c1"


@attrs.frozen(kw_only=True)
class Reply:
    """One scripted model reply.

    ``text`` may hold ``{tool}``: the text of the last tool message the model received.
    Token counts have kithooks' meaning (``input_tokens`` excludes cache reads and writes);
    the adapter's fake model reports them in its framework's convention. ``error`` makes the
    model call raise :class:`ScriptedFailure` instead.
    """

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    model: str = "gpt-4o"
    provider: str = "openai"
    error: str | None = None


class Script:
    """What the fake model answers, what it was asked, and what the tool ran.

    The reply to a request is chosen by how many assistant messages the request holds (the
    model's own earlier answers in this run), so runs of one agent can go on concurrently.
    Thread-safe.
    """

    def __init__(self, replies: Sequence[Reply]) -> None:
        if not replies:
            raise ValueError("a Script needs at least one Reply")
        self.replies = tuple(replies)
        #: Each model request, as ``(role, text)`` pairs, in the order they came.
        self.requests: list[list[tuple[str, str]]] = []
        #: The commands the ``shell`` tool ran.
        self.ran: list[str] = []
        self._lock = threading.Lock()

    def respond(self, window: Window) -> Reply:
        """The reply to one model request (``window``: its messages as ``(role, text)``).

        Raises :class:`ScriptedFailure` for a reply with ``error``.
        """
        pairs = [(str(role), str(text)) for role, text in window]
        with self._lock:
            self.requests.append(pairs)
        answered = sum(1 for role, _ in pairs if role == "assistant")
        reply = self.replies[min(answered, len(self.replies) - 1)]
        if reply.error is not None:
            raise ScriptedFailure(reply.error)
        tool_texts = [text for role, text in pairs if role == "tool"]
        last_tool = tool_texts[-1] if tool_texts else ""
        return attrs.evolve(reply, text=reply.text.replace("{tool}", last_tool))

    def shell(self, command: str) -> str:
        """The agent's one tool: records ``command`` and returns ``output of <command>``."""
        with self._lock:
            self.ran.append(command)
        return f"output of {command}"


def standard_script(command: str = "ls") -> Script:
    """Step 0 says ``Checking.`` and calls ``shell``; step 1 answers ``Tool said: {tool}``."""
    return Script(
        [
            Reply(
                text="Checking.",
                tool_calls=(ToolCall(args={"command": command}),),
                input_tokens=1_000,
                cache_read_tokens=200,
                output_tokens=40,
            ),
            Reply(
                text="Tool said: {tool}",
                input_tokens=1_400,
                cache_write_tokens=100,
                output_tokens=20,
            ),
        ]
    )


def parallel_script(*commands: str) -> Script:
    """Step 0 says ``Checking.`` and makes one ``shell`` call per command in one reply (ids
    ``c1``, ``c2``, ...: parallel tool calls); step 1 answers ``Done.``."""
    if not commands:
        raise ValueError("parallel_script needs at least one command")
    calls = tuple(ToolCall(args={"command": c}, id=f"c{i}") for i, c in enumerate(commands, 1))
    return Script(
        [
            Reply(text="Checking.", tool_calls=calls, input_tokens=1_000, output_tokens=40),
            Reply(text="Done.", input_tokens=1_400, output_tokens=20),
        ]
    )


def tool_answers(script: Script) -> str:
    """What the model received after its first answer (its tool messages, however the
    framework groups or wraps them), as one text: the second request's messages after its
    last assistant message."""
    window = script.requests[1]
    last = max(i for i, (role, _) in enumerate(window) if role == "assistant")
    return "\n".join(text for _, text in window[last + 1 :])


class Recorder:
    """A plugin that records every event with the turn it belonged to (thread-safe)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Event]] = []
        self._lock = threading.Lock()

    def names(self, turn_id: str | None = None) -> list[str]:
        """The event names in order (of one turn when ``turn_id`` is given)."""
        return [e.event_type.value for t, e in self.events if turn_id in (None, t)]

    def of(self, cls: type[Any]) -> list[Any]:
        """The recorded events of one payload class."""
        return [e for _, e in self.events if isinstance(e, cls)]

    def turns(self) -> list[str]:
        """The turn ids seen, in order of first appearance."""
        return list(dict.fromkeys(t for t, _ in self.events))

    def _record(self, event: Event, ctx: Context) -> None:
        with self._lock:
            self.events.append((ctx.turn_id, event))


for _et in EventType:
    setattr(
        Recorder,
        _et.hook_name,
        hookimpl(tryfirst=True)(lambda self, event, ctx: self._record(event, ctx)),
    )


class RmRfGate:
    """A guard that blocks a ``shell`` call whose command holds ``rm -rf``."""

    @hookimpl
    def on_tool_call(self, event: ToolCallEvent) -> ToolCallResult | None:
        """Block ``rm -rf`` with the reason ``dangerous command``."""
        if "rm -rf" in (event.parsed_args or {}).get("command", ""):
            return ToolCallResult(block=True, reason="dangerous command")
        return None


class Adapter(abc.ABC):
    """What an adapter author supplies to the conformance suite."""

    #: Names of the ways to run an agent from sync code (``run`` gets one of them).
    sync_modes: ClassVar[tuple[str, ...]] = ()
    #: Names of the ways to run an agent from async code (``arun`` gets one of them).
    async_modes: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def build(self, pm: PluginManager, script: Script) -> Any:
        """An agent with the adapter installed on ``pm``, a model that answers with
        ``script.respond(window)`` (each request's messages as ``(role, text)``, a tool
        message's role ``tool``), and one tool ``shell(command: str)`` that returns
        ``script.shell(command)``."""

    @abc.abstractmethod
    def run(self, agent: Any, prompt: str, mode: str) -> str:
        """Run ``agent`` on ``prompt`` in a sync ``mode``; the text of its final answer."""

    @abc.abstractmethod
    async def arun(self, agent: Any, prompt: str, mode: str) -> str:
        """Run ``agent`` on ``prompt`` in an async ``mode``; the text of its final answer."""


EXPECTED_ORDER = [
    "input", "before_agent_start", "context_prepare", "agent_start", "message_start",
    "prepare_step", "step_start", "message_update",
    "tool_call_input_start", "tool_call_input_delta", "tool_call_input_end",
    "tool_call", "tool_execution_start", "tool_execution_end", "tool_result",
    "step_finish", "llm_usage",
    "prepare_step", "step_start", "message_update", "step_finish", "llm_usage",
    "message_end", "agent_end",
]  # fmt: skip
"""The events of :func:`standard_script`'s turn, in order."""


class AdapterConformance:
    """Subclass with ``adapter = YourAdapter()``: every test runs in every mode."""

    adapter: ClassVar[Adapter]

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Parametrize ``mode`` with the adapter's sync and async modes."""
        if "mode" in metafunc.fixturenames:
            modes = [*self.adapter.sync_modes, *self.adapter.async_modes]
            if not modes:
                raise TypeError(f"{type(self.adapter).__name__} declares no sync or async modes")
            metafunc.parametrize("mode", modes)

    # -- running ------------------------------------------------------------------------

    def host(self, **kwargs: Any) -> tuple[PluginManager, Recorder]:
        """A manager (``kwargs`` passed on) with a :class:`Recorder` registered first."""
        pm = PluginManager(context=Context(session_id="conformance"), **kwargs)
        recorder = Recorder()
        pm.register(recorder, name="recorder")
        return pm, recorder

    def drive(self, agent: Any, prompt: str, mode: str) -> str:
        """Run ``agent`` once in ``mode``, failing after :data:`TIMEOUT` seconds."""
        if mode in self.adapter.async_modes:
            return asyncio.run(asyncio.wait_for(self.adapter.arun(agent, prompt, mode), TIMEOUT))
        return self.drive_all(agent, [prompt], mode)[0]

    def drive_all(self, agent: Any, prompts: Sequence[str], mode: str) -> list[str]:
        """Run ``agent`` on every prompt at once (threads or tasks); the answers in order."""
        if mode in self.adapter.async_modes:

            async def together() -> list[str]:
                runs = (self.adapter.arun(agent, p, mode) for p in prompts)
                return list(await asyncio.gather(*runs))

            return asyncio.run(asyncio.wait_for(together(), TIMEOUT))
        answers: list[Any] = [None] * len(prompts)

        def one(i: int) -> None:
            try:
                answers[i] = self.adapter.run(agent, prompts[i], mode)
            except BaseException as exc:
                answers[i] = exc

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=TIMEOUT)
            assert not t.is_alive(), f"a {mode} run did not finish within {TIMEOUT}s"
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        return [str(a) for a in answers]

    def go(self, pm: PluginManager, script: Script, mode: str, prompt: str = "list files") -> str:
        """Build an agent for ``script`` and run it once."""
        return self.drive(self.adapter.build(pm, script), prompt, mode)

    # -- the promises -------------------------------------------------------------------

    def test_events_follow_the_turn_order(self, mode: str) -> None:
        pm, rec = self.host()
        script = standard_script()
        assert self.go(pm, script, mode) == "Tool said: output of ls"
        assert script.ran == ["ls"]
        assert rec.names() == EXPECTED_ORDER

    def test_a_blocked_call_never_runs_and_the_model_sees_the_reason(self, mode: str) -> None:
        pm, rec = self.host()

        pm.register(RmRfGate())
        script = standard_script("rm -rf /")
        answer = self.go(pm, script, mode)
        assert script.ran == []
        # what the model received (a framework may wrap a failed result, as pydantic-ai does)
        role, text = script.requests[1][-1]
        assert role == "tool" and "Error: dangerous command" in text
        assert answer == f"Tool said: {text}"
        names = rec.names()
        assert "tool_execution_start" not in names and "tool_result" not in names

    def test_an_args_rewrite_reaches_the_tool(self, mode: str) -> None:
        pm, rec = self.host()

        class Safer:
            @hookimpl
            def on_tool_call(self, event: ToolCallEvent) -> ToolCallResult:
                return ToolCallResult(args={"command": "ls -la"})

        pm.register(Safer())
        script = standard_script()
        assert self.go(pm, script, mode) == "Tool said: output of ls -la"
        assert script.ran == ["ls -la"]
        (result,) = rec.of(ToolResultEvent)
        assert json.loads(result.input) == {"command": "ls -la"}

    def test_every_parallel_tool_call_is_guarded(self, mode: str) -> None:
        """One reply with three calls: the second is blocked, the first and third run."""
        pm, rec = self.host()

        pm.register(RmRfGate())
        script = parallel_script("ls", "rm -rf /", "pwd")
        assert self.go(pm, script, mode) == "Done."
        assert sorted(script.ran) == ["ls", "pwd"], f"ran {script.ran}"
        told = tool_answers(script)
        assert "output of ls" in told and "output of pwd" in told
        assert "Error: dangerous command" in told and "output of rm" not in told
        calls = rec.of(ToolCallEvent)
        assert sorted(c.tool_call_id for c in calls) == ["c1", "c2", "c3"]
        assert sorted(json.loads(c.input)["command"] for c in calls) == ["ls", "pwd", "rm -rf /"]
        assert sorted(r.tool_call_id for r in rec.of(ToolResultEvent)) == ["c1", "c3"]
        (end,) = rec.of(AgentEndEvent)
        assert end.tool_call_count == 3 and end.tool_names == ("shell",) * 3

    def test_every_parallel_tool_call_is_rewritten(self, mode: str) -> None:
        """One reply with two calls: the second's args and its result are rewritten."""
        pm, rec = self.host()

        class Rewrite:
            @hookimpl
            def on_tool_call(self, event: ToolCallEvent) -> ToolCallResult | None:
                if (event.parsed_args or {}).get("command") == "pwd":
                    return ToolCallResult(args={"command": "pwd -P"})
                return None

            @hookimpl
            def on_tool_result(self, event: ToolResultEvent) -> ToolResultResult | None:
                if "pwd" in event.content:
                    return ToolResultResult(content="[redacted]")
                return None

        pm.register(Rewrite())
        script = parallel_script("ls", "pwd")
        assert self.go(pm, script, mode) == "Done."
        assert sorted(script.ran) == ["ls", "pwd -P"], f"ran {script.ran}"
        told = tool_answers(script)
        assert "output of ls" in told and "[redacted]" in told and "output of pwd" not in told
        results = {r.tool_call_id: r for r in rec.of(ToolResultEvent)}
        assert sorted(results) == ["c1", "c2"]
        assert json.loads(results["c2"].input) == {"command": "pwd -P"}
        assert results["c2"].content == "output of pwd -P"
        (end,) = rec.of(AgentEndEvent)
        assert end.tool_call_count == 2 and end.llm_call_count == 2

    def test_a_result_rewrite_reaches_the_model(self, mode: str) -> None:
        pm, rec = self.host()

        class Redact:
            @hookimpl
            def on_tool_result(self, event: ToolResultEvent) -> ToolResultResult:
                return ToolResultResult(content=event.content.replace("ls", "[redacted]"))

        pm.register(Redact())
        script = standard_script()
        assert self.go(pm, script, mode) == "Tool said: output of [redacted]"
        assert script.requests[1][-1] == ("tool", "output of [redacted]")
        (seen,) = rec.of(ToolResultEvent)
        assert seen.content == "output of ls" and not seen.is_error

    def test_an_input_transform_reaches_the_model(self, mode: str) -> None:
        pm, rec = self.host()

        class Upper:
            @hookimpl
            def on_input(self, event: Any) -> InputResult:
                return InputResult(action="transform", text=event.text.upper())

        pm.register(Upper())
        script = standard_script()
        self.go(pm, script, mode)
        assert [text for role, text in script.requests[0] if role == "user"] == ["LIST FILES"]
        (before,) = rec.of(BeforeAgentStartEvent)
        assert before.prompt == "LIST FILES"
        (start,) = rec.of(AgentStartEvent)
        assert start.prompt == "list files"  # the turn's label: never the transformed text

    def test_handled_input_ends_the_run_before_any_model_call(self, mode: str) -> None:
        pm, rec = self.host()

        class Slash:
            @hookimpl
            def on_input(self, event: Any) -> InputResult:
                return InputResult(action="handled")

        pm.register(Slash())
        script = standard_script()
        self.go(pm, script, mode, prompt="/help")
        assert script.requests == [] and script.ran == []
        assert rec.names() == ["input"]

    def test_usage_per_model_call(self, mode: str) -> None:
        pm, rec = self.host()
        self.go(pm, standard_script(), mode)
        usages = rec.of(LLMUsageEvent)
        assert [
            (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens)
            for u in usages
        ] == [(1_000, 40, 200, 0), (1_400, 20, 0, 100)]
        assert [(u.model, u.provider, u.step_number, u.finish_reason) for u in usages] == [
            ("gpt-4o", "openai", 0, "tool-calls"),
            ("gpt-4o", "openai", 1, "stop"),
        ]
        expected = [
            compute_cost(
                provider="openai",
                model="gpt-4o",
                input_tokens=1_000,
                output_tokens=40,
                cache_read_tokens=200,
            ),
            compute_cost(
                provider="openai",
                model="gpt-4o",
                input_tokens=1_400,
                output_tokens=20,
                cache_write_tokens=100,
            ),
        ]
        assert [u.cost for u in usages] == expected and all(c > 0 for c in expected)

    def test_agent_end_is_enriched_with_the_turns_counts(self, mode: str) -> None:
        pm, rec = self.host()
        answer = self.go(pm, standard_script(), mode)
        (end,) = rec.of(AgentEndEvent)
        assert end.response == answer and end.stop_reason == "stop"
        assert end.tool_call_count == 1 and end.tool_names == ("shell",)
        assert end.llm_call_count == 2
        assert (end.input_tokens_delta, end.output_tokens_delta) == (2_400, 60)
        assert (end.cache_read_tokens_delta, end.cache_write_tokens_delta) == (200, 100)
        assert end.cost_delta == pytest.approx(sum(u.cost for u in rec.of(LLMUsageEvent)))
        assert end.duration_ms >= 0

    def test_plugin_errors_are_isolated_and_logged_by_name(
        self, mode: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        pm, rec = self.host()

        class Broken:
            @hookimpl
            def on_tool_call(self, event: Any) -> None:
                raise RuntimeError("plugin bug")

            @hookimpl
            def on_message_update(self, event: Any) -> None:
                raise ValueError("another")

        pm.register(Broken(), name="broken")
        script = standard_script()
        with caplog.at_level(logging.ERROR, logger="kithooks"):
            answer = self.go(pm, script, mode)
        assert answer == "Tool said: output of ls" and script.ran == ["ls"]
        assert "'broken'" in caplog.text and "plugin bug" in caplog.text
        assert rec.names() == EXPECTED_ORDER

    def test_fail_closed_blocks_when_a_guard_raises(self, mode: str) -> None:
        pm, _ = self.host(fail_closed=True)

        class Broken:
            @hookimpl
            def on_tool_call(self, event: Any) -> None:
                raise RuntimeError("plugin bug")

        pm.register(Broken(), name="broken")
        script = standard_script()
        answer = self.go(pm, script, mode)
        assert script.ran == []
        role, text = script.requests[1][-1]
        assert role == "tool" and "Error: " in text and "broken" in text
        assert answer == f"Tool said: {text}"

    def test_async_plugins_are_awaited(self, mode: str) -> None:
        pm, _ = self.host()
        seen: list[str] = []

        class AsyncGate:
            @hookimpl
            async def on_tool_call(self, event: ToolCallEvent) -> ToolCallResult:
                await asyncio.sleep(0)
                return ToolCallResult(block=True, reason="async says no")

            @hookimpl
            async def on_agent_end(self, event: AgentEndEvent) -> None:
                await asyncio.sleep(0)
                seen.append(event.stop_reason)

        pm.register(AsyncGate())
        script = standard_script()
        answer = self.go(pm, script, mode)
        assert "Error: async says no" in answer
        assert script.ran == [] and seen == ["stop"]

    def test_each_run_is_its_own_turn(self, mode: str) -> None:
        pm, rec = self.host()
        seen: list[tuple[str, str]] = []

        class Ids:
            @hookimpl
            def on_agent_start(self, event: Any, ctx: Context) -> None:
                seen.append((ctx.session_id, ctx.turn_id))
                ctx.set_state("runs", str(int(ctx.get_state("runs") or 0) + 1))

        pm.register(Ids())
        agent = self.adapter.build(pm, standard_script())
        self.drive(agent, "a", mode)
        self.drive(agent, "b", mode)
        assert len(seen) == 2 and seen[0][1] and seen[0][1] != seen[1][1]
        assert pm.state.get("runs") == "2"
        assert [e.llm_call_count for e in rec.of(AgentEndEvent)] == [2, 2]

    def test_concurrent_runs_of_one_agent_do_not_mix(self, mode: str) -> None:
        pm, rec = self.host()
        script = standard_script()
        agent = self.adapter.build(pm, script)
        answers = self.drive_all(agent, [f"run {i}" for i in range(4)], mode)
        assert answers == ["Tool said: output of ls"] * 4 and script.ran == ["ls"] * 4
        turns = rec.turns()
        assert len(turns) == 4 and all(turns)
        for turn in turns:
            assert rec.names(turn) == EXPECTED_ORDER, turn
        ends = rec.of(AgentEndEvent)
        assert [(e.tool_call_count, e.llm_call_count) for e in ends] == [(1, 2)] * 4

    def test_no_payload_is_built_without_plugins(self, mode: str) -> None:
        pm = PluginManager(aggregate_turns=False)
        script = standard_script()
        agent = self.adapter.build(pm, script)
        built: list[str] = []

        def spy(frame: FrameType, event: str, arg: Any) -> None:
            if event == "call" and frame.f_code.co_name == "__init__":
                this = frame.f_locals.get("self")
                if isinstance(this, Event):
                    built.append(type(this).__name__)

        sys.setprofile(spy)
        threading.setprofile(spy)
        try:
            answer = self.drive(agent, "list files", mode)
        finally:
            threading.setprofile(None)
            sys.setprofile(None)
        assert answer == "Tool said: output of ls" and script.ran == ["ls"]
        assert built == [], f"payloads built with no plugin to read them: {built}"

    def test_a_failing_model_call_ends_the_turn_with_error(self, mode: str) -> None:
        pm, rec = self.host()
        script = Script([Reply(error="provider down")])
        with pytest.raises(Exception, match="provider down"):
            self.go(pm, script, mode)
        assert rec.names()[-2:] == ["error", "agent_end"]
        _, last = rec.events[-1]
        assert isinstance(last, AgentEndEvent) and last.stop_reason == "error"
        assert "provider down" in rec.events[-2][1].error  # type: ignore[attr-defined]
