"""OtelExporter: turns as GenAI traces, checked offline with the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.context import Context as OtelContext
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from kithooks import (
    AgentEndEvent,
    AgentStartEvent,
    BeforeCompactEvent,
    BeforeCompactResult,
    Context,
    ErrorEvent,
    Event,
    LLMUsageEvent,
    MessageUpdateEvent,
    ModelChangeEvent,
    PluginManager,
    RetryEvent,
    SessionShutdownEvent,
    StepFinishEvent,
    StepStartEvent,
    SubagentChunkEvent,
    SubagentEndEvent,
    SubagentStartEvent,
    ToolCallEvent,
    ToolCallResult,
    ToolExecutionEndEvent,
    ToolExecutionStartEvent,
    ToolResultEvent,
    ToolResultResult,
    hookimpl,
)
from kithooks.hosting import ToolResponse, Turn, before_compact
from kithooks.otel import OtelExporter
from kithooks.usage import ModelPrice, Usage

MODEL = "anthropic/claude-sonnet-4-5"
PRICE = ModelPrice(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75)
PRICES = {MODEL: PRICE}


@pytest.fixture
def traced() -> Iterator[SimpleNamespace]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    pm = PluginManager()
    plugin = OtelExporter(provider, agent_name="coder")
    pm.register(plugin, name=OtelExporter.NAME)
    yield SimpleNamespace(pm=pm, plugin=plugin, memory=memory)
    provider.shutdown()


def ctx_of(session: str = "s1", turn: str = "t1", model: str = MODEL) -> Context:
    return Context(session_id=session, turn_id=turn, model=model)


def finished(traced: SimpleNamespace) -> list[ReadableSpan]:
    return list(traced.memory.get_finished_spans())


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    found = named(spans, name)
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def sid(span: ReadableSpan | Span) -> int:
    assert span.context is not None
    return span.context.span_id


def tid(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id


def parent_of(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def assert_nested_in_time(spans: Sequence[ReadableSpan]) -> None:
    """Every span's parent (when one of ``spans``) starts no later and ends no earlier."""
    by_id = {sid(s): s for s in spans}
    for span in spans:
        parent = by_id.get(parent_of(span) or 0)
        if parent is not None:
            assert (parent.start_time or 0) <= (span.start_time or 0), (span.name, parent.name)
            assert (span.end_time or 0) <= (parent.end_time or 0), (span.name, parent.name)


def fail(_: str) -> str:
    raise RuntimeError("disk full")


def step(turn: Turn, n: int, *, tokens: tuple[int, int, int, int], reason: str) -> None:
    inp, out, read, write = tokens
    turn.step_finish(
        n,
        provider="anthropic",
        model="claude-sonnet-4-5",
        usage=Usage(
            input_tokens=inp,
            output_tokens=out,
            cache_read_tokens=read,
            cache_write_tokens=write,
        ),
        finish_reason=reason,
        has_tool_calls=reason == "tool-calls",
        prices=PRICES,
    )


def test_a_turn_with_two_llm_calls_and_two_tool_calls(traced: SimpleNamespace) -> None:
    turn = Turn(traced.pm, turn_id="t1", ctx=ctx_of())
    turn.agent_start("fix the build")
    turn.step_start(0)
    turn.run_tool(lambda _: "a.txt", tool_name="read", tool_call_id="c1", input='{"path": "a"}')
    turn.run_tool(fail, tool_name="bash", tool_call_id="c2", input='{"command": "make"}')
    step(turn, 0, tokens=(100, 20, 50, 10), reason="tool-calls")
    turn.step_start(1)
    step(turn, 1, tokens=(200, 30, 0, 0), reason="stop")
    turn.end(response="done", stop_reason="stop")

    spans = finished(traced)
    assert sorted(s.name for s in spans) == [
        "chat claude-sonnet-4-5",
        "chat claude-sonnet-4-5",
        "execute_tool bash",
        "execute_tool read",
        "invoke_agent coder",
    ]
    root = one(spans, "invoke_agent coder")
    cost0 = PRICE.cost(100, 20, 50, 10)
    cost1 = PRICE.cost(200, 30, 0, 0)
    assert root.kind is SpanKind.INTERNAL
    assert root.parent is None
    assert dict(root.attributes or {}) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "coder",
        "gen_ai.conversation.id": "s1",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "kithooks.turn.id": "t1",
        "kithooks.turn.tool_call_count": 2,
        "kithooks.turn.llm_call_count": 2,
        "kithooks.turn.stop_reason": "stop",
        # the conventions' input_tokens include the cache reads and writes
        "gen_ai.usage.input_tokens": 160 + 200,
        "gen_ai.usage.output_tokens": 50,
        "gen_ai.usage.cache_read.input_tokens": 50,
        "gen_ai.usage.cache_creation.input_tokens": 10,
        "operation.cost": pytest.approx(cost0 + cost1),
    }
    assert root.status.status_code is StatusCode.UNSET

    chat0, chat1 = sorted(named(spans, "chat claude-sonnet-4-5"), key=lambda s: s.start_time or 0)
    for chat, usage, reason, cost in (
        (chat0, (160, 20, 50, 10), "tool-calls", cost0),
        (chat1, (200, 30, 0, 0), "stop", cost1),
    ):
        assert chat.kind is SpanKind.CLIENT
        assert dict(chat.attributes or {}) == {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.response.model": "claude-sonnet-4-5",
            "gen_ai.usage.input_tokens": usage[0],
            "gen_ai.usage.output_tokens": usage[1],
            "gen_ai.usage.cache_read.input_tokens": usage[2],
            "gen_ai.usage.cache_creation.input_tokens": usage[3],
            "gen_ai.response.finish_reasons": (reason,),
            "operation.cost": pytest.approx(cost),
        }

    read = one(spans, "execute_tool read")
    bash = one(spans, "execute_tool bash")
    assert read.kind is SpanKind.INTERNAL
    assert dict(read.attributes or {}) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "read",
        "gen_ai.tool.call.id": "c1",
        "gen_ai.tool.type": "function",
        "kithooks.tool.kind": "read",
    }
    assert read.status.status_code is StatusCode.UNSET
    assert bash.status.status_code is StatusCode.ERROR
    assert (bash.attributes or {})["error.type"] == "kithooks.tool_error"
    assert (bash.attributes or {})["gen_ai.tool.call.id"] == "c2"

    # one trace, every child parented to the turn's root
    assert {tid(s) for s in spans} == {tid(root)}
    assert all(parent_of(s) == sid(root) for s in spans if s is not root)
    # the first LLM call's response ended when its tools began; the tools ran in order
    assert chat0.end_time == read.start_time
    assert (read.end_time or 0) <= (bash.start_time or 0)
    assert (bash.end_time or 0) <= (chat1.start_time or 0) <= (chat1.end_time or 0)
    assert (root.start_time or 0) <= (chat0.start_time or 0)
    assert (chat1.end_time or 0) <= (root.end_time or 0)
    assert traced.plugin.open_turns == 0


class Gate:
    def __init__(self, reason: str) -> None:
        self.reason = reason

    @hookimpl
    def on_tool_call(self, event: ToolCallEvent) -> ToolCallResult | None:
        if event.tool_name == "bash":
            return ToolCallResult(block=True, reason=self.reason)
        return None


class EagerGate(Gate):
    @hookimpl(tryfirst=True)
    def on_tool_call(self, event: ToolCallEvent) -> ToolCallResult | None:
        return super().on_tool_call(event)


@pytest.mark.parametrize(
    ("gate", "description"),
    [
        (Gate("no shell today"), "no shell today"),
        (Gate(""), "blocked by extension"),
        # registered first and tryfirst: it runs before the exporter's own handler
        (EagerGate("eager"), "eager"),
    ],
)
def test_a_blocked_call_ends_its_span_at_the_block(
    gate: Gate, description: str, traced: SimpleNamespace
) -> None:
    pm = PluginManager()
    pm.register(gate)
    pm.register(traced.plugin)
    turn = Turn(pm, turn_id="t1", ctx=ctx_of())
    turn.agent_start("clean up")
    turn.step_start(0)
    outcome = turn.run_tool(lambda _: "", tool_name="bash", tool_call_id="c9", input="{}")
    assert outcome.blocked

    span = one(finished(traced), "execute_tool bash")  # ended before the turn did
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == description
    assert (span.attributes or {})["error.type"] == "kithooks.blocked"
    assert (span.attributes or {})["gen_ai.tool.call.id"] == "c9"
    turn.end(response="", stop_reason="stop")
    root = one(finished(traced), "invoke_agent coder")
    assert parent_of(span) == sid(root) and tid(span) == tid(root)
    assert (root.attributes or {})["kithooks.turn.tool_call_count"] == 1


class Redactor:
    @hookimpl
    def on_tool_result(self, event: ToolResultEvent) -> ToolResultResult | None:
        if "secret" in event.content:
            return ToolResultResult(content="[redacted]", is_error=True)
        return None


def test_a_rewritten_result_is_marked_and_its_final_error_state_counts(
    traced: SimpleNamespace,
) -> None:
    traced.pm.register(Redactor())
    turn = Turn(traced.pm, turn_id="t1", ctx=ctx_of())
    turn.agent_start("read")
    turn.step_start(0)
    turn.run_tool(lambda _: "secret=1", tool_name="read", tool_call_id="c1", input="{}")
    turn.run_tool(lambda _: "plain", tool_name="ls", tool_call_id="c2", input="{}")
    turn.end(response="", stop_reason="stop")
    spans = finished(traced)
    read, ls = one(spans, "execute_tool read"), one(spans, "execute_tool ls")
    assert (read.attributes or {})["kithooks.tool.result_rewritten"] is True
    assert read.status.status_code is StatusCode.ERROR
    assert "kithooks.tool.result_rewritten" not in (ls.attributes or {})
    assert ls.status.status_code is StatusCode.UNSET


def test_an_error_result_the_plugins_clear_is_not_an_error(traced: SimpleNamespace) -> None:
    class Forgive:
        @hookimpl
        def on_tool_result(self, event: ToolResultEvent) -> ToolResultResult:
            return ToolResultResult(is_error=False)

    traced.pm.register(Forgive())
    turn = Turn(traced.pm, turn_id="t1", ctx=ctx_of())
    turn.agent_start("x")
    turn.run_tool(fail, tool_name="bash", tool_call_id="c1", input="{}")
    turn.end(response="", stop_reason="stop")
    bash = one(finished(traced), "execute_tool bash")
    assert bash.status.status_code is StatusCode.UNSET
    assert (bash.attributes or {})["kithooks.tool.result_rewritten"] is True


class Rewriter:
    @hookimpl
    def on_tool_call(self, event: ToolCallEvent) -> ToolCallResult | None:
        if event.tool_name == "bash":
            return ToolCallResult(args={"command": "ls -la"})
        if event.tool_name == "ls":  # the same arguments: no rewrite
            return ToolCallResult(args=event.parsed_args)
        return None


def content_exporter(traced: SimpleNamespace, *plugins: object) -> PluginManager:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(traced.memory))
    pm = PluginManager()
    for plugin in plugins:
        pm.register(plugin)
    pm.register(OtelExporter(provider, capture_content=True))
    return pm


def test_rewritten_arguments_are_marked(traced: SimpleNamespace) -> None:
    pm = content_exporter(traced, Rewriter())
    turn = Turn(pm, turn_id="t1", ctx=ctx_of())
    turn.agent_start("x")
    turn.run_tool(lambda _: "", tool_name="bash", tool_call_id="c1", input='{"command": "rm"}')
    turn.run_tool(lambda _: "", tool_name="ls", tool_call_id="c2", input='{"path": "."}')
    turn.end(response="", stop_reason="stop")
    spans = finished(traced)
    bash, ls = one(spans, "execute_tool bash"), one(spans, "execute_tool ls")
    assert (bash.attributes or {})["kithooks.tool.arguments_rewritten"] is True
    assert (bash.attributes or {})["gen_ai.tool.call.arguments"] == '{"command": "ls -la"}'
    assert "kithooks.tool.arguments_rewritten" not in (ls.attributes or {})
    assert (ls.attributes or {})["gen_ai.tool.call.arguments"] == '{"path": "."}'


def test_capture_content_records_what_the_tool_got_and_the_model_receives(
    traced: SimpleNamespace,
) -> None:
    pm = content_exporter(traced, Gate("no"), Redactor())
    turn = Turn(pm, turn_id="t1", ctx=ctx_of())
    turn.agent_start("x")
    turn.run_tool(lambda _: "secret=1", tool_name="read", tool_call_id="c1", input='{"p": 1}')
    turn.run_tool(lambda _: "", tool_name="bash", tool_call_id="c2", input='{"c": "rm"}')
    turn.end(response="", stop_reason="stop")
    spans = finished(traced)
    read, bash = one(spans, "execute_tool read"), one(spans, "execute_tool bash")
    assert (read.attributes or {})["gen_ai.tool.call.arguments"] == '{"p": 1}'
    assert (read.attributes or {})["gen_ai.tool.call.result"] == "[redacted]"
    assert (bash.attributes or {})["gen_ai.tool.call.arguments"] == '{"c": "rm"}'
    assert "gen_ai.tool.call.result" not in (bash.attributes or {})
    assert bash.status.description == "no"


def run_turn(pm: PluginManager, i: int, barrier: threading.Barrier) -> None:
    turn = Turn(pm, turn_id=f"t{i}", ctx=ctx_of(session=f"s{i}"))
    turn.agent_start(f"task {i}")
    barrier.wait(timeout=10)
    turn.step_start(0)
    for j in range(2):
        barrier.wait(timeout=10)  # every thread's tool calls interleave
        turn.run_tool(
            lambda _, failing=j == 1: ToolResponse(content="ok", is_error=failing),
            tool_name=f"tool{i}_{j}",
            tool_call_id=f"c{j}",  # the same ids in every turn
            input="{}",
        )
    step(turn, 0, tokens=(10 * i, i, 0, 0), reason="stop")
    barrier.wait(timeout=10)
    turn.end(response=f"done {i}", stop_reason="stop")


def test_eight_concurrent_turns_in_eight_threads_never_mix(traced: SimpleNamespace) -> None:
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            run_turn(traced.pm, i, barrier)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()
    assert errors == []

    spans = finished(traced)
    roots = named(spans, "invoke_agent coder")
    assert len(roots) == 8
    assert len({tid(r) for r in roots}) == 8
    for root in roots:
        attributes = root.attributes or {}
        i = int(str(attributes["gen_ai.conversation.id"])[1:])
        assert attributes["kithooks.turn.id"] == f"t{i}"
        assert attributes["gen_ai.usage.input_tokens"] == 10 * i
        children = [s for s in spans if s is not root and tid(s) == tid(root)]
        assert sorted(s.name for s in children) == [
            "chat claude-sonnet-4-5",
            f"execute_tool tool{i}_0",
            f"execute_tool tool{i}_1",
        ]
        assert all(parent_of(s) == sid(root) for s in children)
        statuses = {s.name: s.status.status_code for s in children}
        assert statuses[f"execute_tool tool{i}_1"] is StatusCode.ERROR
        assert statuses[f"execute_tool tool{i}_0"] is StatusCode.UNSET
    assert traced.plugin.open_turns == 0


def test_an_unfinished_turn_is_ended_at_session_shutdown(traced: SimpleNamespace) -> None:
    pm = traced.pm
    left = ctx_of(session="s1", turn="t1")
    other = ctx_of(session="s2", turn="t1")
    pm.emit(AgentStartEvent(prompt="a"), left)
    pm.emit(AgentStartEvent(prompt="b"), other)
    pm.emit(StepStartEvent(step_number=0), left)
    pm.emit(ToolCallEvent(tool_name="bash", tool_call_id="c1", input="{}"), left)
    assert finished(traced) == []
    assert traced.plugin.open_turns == 2

    pm.emit(SessionShutdownEvent(), left)
    spans = finished(traced)
    assert sorted(s.name for s in spans) == [
        "chat claude-sonnet-4-5",
        "execute_tool bash",
        "invoke_agent coder",
    ]
    for span in spans:
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "turn unfinished at session_shutdown"
        assert (span.attributes or {})["error.type"] == "kithooks.unfinished"
    assert traced.plugin.open_turns == 1  # the other session's turn goes on

    pm.emit(AgentEndEvent(response="b", stop_reason="stop"), other)
    assert len(finished(traced)) == 4
    assert traced.plugin.open_turns == 0


def test_open_turns_are_bounded(traced: SimpleNamespace) -> None:
    memory = traced.memory
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    pm = PluginManager()
    plugin = OtelExporter(provider, max_open_turns=2)
    pm.register(plugin)
    for n in range(3):
        pm.emit(AgentStartEvent(prompt="x"), ctx_of(turn=f"t{n}"))
    assert plugin.open_turns == 2
    (evicted,) = finished(traced)
    assert (evicted.attributes or {})["kithooks.turn.id"] == "t0"
    assert evicted.status.description == "more than 2 turns were open"
    assert plugin.end_open_turns() == 2
    assert plugin.open_turns == 0 and len(finished(traced)) == 3
    with pytest.raises(ValueError, match="max_open_turns must be >= 1, got 0"):
        OtelExporter(provider, max_open_turns=0)


def test_llm_usage_before_step_finish_gives_the_same_chat_span(traced: SimpleNamespace) -> None:
    pm, ctx = traced.pm, ctx_of(model="")
    pm.emit(AgentStartEvent(prompt="x"), ctx)
    pm.emit(StepStartEvent(step_number=0), ctx)
    usage = LLMUsageEvent(
        input_tokens=5,
        output_tokens=7,
        cost=0.5,
        model="gpt-5",
        provider="openai",
        request_id="req_1",
        finish_reason="stop",
    )
    pm.emit(usage, ctx)
    pm.emit(StepFinishEvent(step_number=0, input_tokens=5, output_tokens=7), ctx)
    pm.emit(AgentEndEvent(response="", stop_reason="stop"), ctx)
    chat = one(finished(traced), "chat gpt-5")  # named by the response: ctx.model was empty
    assert dict(chat.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-5",
        "gen_ai.response.model": "gpt-5",
        "gen_ai.response.id": "req_1",
        "gen_ai.usage.input_tokens": 5,
        "gen_ai.usage.output_tokens": 7,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.cache_creation.input_tokens": 0,
        "gen_ai.response.finish_reasons": ("stop",),
        "operation.cost": 0.5,
    }


def test_a_step_without_llm_usage_ends_at_its_step_finish(traced: SimpleNamespace) -> None:
    pm, ctx = traced.pm, ctx_of()
    pm.emit(AgentStartEvent(prompt="x"), ctx)
    pm.emit(StepStartEvent(step_number=0), ctx)
    pm.emit(StepFinishEvent(step_number=0, input_tokens=3, finish_reason="stop"), ctx)
    assert finished(traced) == []  # waits for llm_usage
    pm.emit(AgentEndEvent(response="", stop_reason="stop"), ctx)
    chat = one(finished(traced), "chat claude-sonnet-4-5")
    root = one(finished(traced), "invoke_agent coder")
    assert (chat.attributes or {})["gen_ai.usage.input_tokens"] == 3
    assert (chat.end_time or 0) <= (root.end_time or 0)
    assert chat.status.status_code is StatusCode.UNSET


def test_a_subagent_is_a_nested_invoke_agent_span(traced: SimpleNamespace) -> None:
    pm, ctx = traced.pm, ctx_of()
    turn = Turn(pm, turn_id="t1", ctx=ctx)

    def subagent(_: str) -> str:
        for chunk in (
            SubagentChunkEvent(tool_call_id="s1", chunk_type="turn_start"),
            SubagentChunkEvent(tool_call_id="s1", chunk_type="tool_call", tool_name="grep"),
            SubagentChunkEvent(
                tool_call_id="s1", chunk_type="tool_result", tool_name="grep", is_error=True
            ),
            SubagentChunkEvent(tool_call_id="s1", chunk_type="tool_call", tool_name="read"),
        ):
            pm.emit(chunk, turn.ctx)
        pm.emit(SubagentEndEvent(tool_call_id="s1", error_msg="gave up"), turn.ctx)
        return "gave up"

    turn.agent_start("delegate")
    pm.emit(SubagentStartEvent(tool_call_id="s1", task="look"), turn.ctx)  # before tool_call
    turn.run_tool(subagent, tool_name="subagent", tool_call_id="s1", input='{"task": "look"}')
    turn.end(response="", stop_reason="stop")

    spans = finished(traced)
    root = one(spans, "invoke_agent coder")
    call = one(spans, "execute_tool subagent")
    sub = one(spans, "invoke_agent")
    grep, read = one(spans, "execute_tool grep"), one(spans, "execute_tool read")
    # under its tool call, though subagent_start came first (KIT's order)
    assert parent_of(sub) == sid(call) and parent_of(call) == sid(root)
    assert sub.start_time == call.start_time
    assert (sub.end_time or 0) <= (call.end_time or 0)
    assert (sub.attributes or {})["gen_ai.operation.name"] == "invoke_agent"
    assert (sub.attributes or {})["kithooks.subagent.tool_call_id"] == "s1"
    assert sub.status.status_code is StatusCode.ERROR
    assert parent_of(grep) == sid(sub) and parent_of(read) == sid(sub)
    assert grep.status.status_code is StatusCode.ERROR
    assert (read.attributes or {})["error.type"] == "kithooks.unfinished"
    assert {tid(s) for s in spans} == {tid(root)}


def test_a_subagent_started_by_its_tool_call_nests_under_it(traced: SimpleNamespace) -> None:
    pm, ctx = traced.pm, ctx_of()
    turn = Turn(pm, turn_id="t1", ctx=ctx)

    def subagent(_: str) -> str:
        pm.emit(SubagentStartEvent(tool_call_id="s1", task="t"), turn.ctx)
        pm.emit(SubagentEndEvent(tool_call_id="s1", response="ok"), turn.ctx)
        return "ok"

    turn.agent_start("delegate")
    turn.run_tool(subagent, tool_name="subagent", tool_call_id="s1", input="{}")
    turn.end(response="", stop_reason="stop")
    spans = finished(traced)
    call, sub = one(spans, "execute_tool subagent"), one(spans, "invoke_agent")
    assert parent_of(sub) == sid(call)
    assert sub.status.status_code is StatusCode.UNSET


def test_a_subagent_whose_tool_call_never_comes_is_under_the_turn(
    traced: SimpleNamespace,
) -> None:
    pm, ctx = traced.pm, ctx_of()
    pm.emit(AgentStartEvent(prompt="x"), ctx)
    pm.emit(SubagentStartEvent(tool_call_id="s1", task="t"), ctx)  # a disabled tool: no call
    pm.emit(SubagentEndEvent(tool_call_id="s1", error_msg="disabled"), ctx)
    pm.emit(SubagentStartEvent(tool_call_id="", task="t"), ctx)  # no id: nothing to match
    pm.emit(SubagentStartEvent(tool_call_id="s2", task="t"), ctx)  # the turn ends first
    pm.emit(AgentEndEvent(response="", stop_reason="stop"), ctx)
    spans = finished(traced)
    root = one(spans, "invoke_agent coder")
    subs = {
        (s.attributes or {}).get("kithooks.subagent.tool_call_id", ""): s
        for s in named(spans, "invoke_agent")
    }
    assert set(subs) == {"s1", "", "s2"}
    assert all(parent_of(s) == sid(root) for s in subs.values())
    assert (subs["s1"].attributes or {})["error.type"] == "kithooks.subagent_error"
    assert (subs["s1"].start_time or 0) < (subs["s1"].end_time or 0)
    assert (subs["s2"].attributes or {})["error.type"] == "kithooks.unfinished"
    assert (subs[""].attributes or {})["error.type"] == "kithooks.unfinished"
    assert traced.plugin.open_turns == 0


@pytest.mark.parametrize("gate", [Gate("no"), EagerGate("no")])
@pytest.mark.parametrize("subagent_end", [True, False])
def test_a_blocked_subagent_call_ends_the_subagent_under_it_with_it(
    gate: Gate, subagent_end: bool, traced: SimpleNamespace
) -> None:
    pm = PluginManager()
    pm.register(gate)
    pm.register(traced.plugin)
    ctx = ctx_of()
    pm.emit(AgentStartEvent(prompt="x"), ctx)
    pm.emit(SubagentStartEvent(tool_call_id="s1", task="t"), ctx)
    result = pm.emit(ToolCallEvent(tool_name="bash", tool_call_id="s1", input="{}"), ctx)
    assert result.block
    call, sub = one(finished(traced), "execute_tool bash"), one(finished(traced), "invoke_agent")
    assert parent_of(sub) == sid(call)
    assert sub.end_time == call.end_time  # at the block, not after its parent
    for span in (call, sub):
        assert (span.attributes or {})["error.type"] == "kithooks.blocked"
        assert span.status.description == "no"
    if subagent_end:  # KIT's, after the block: the span ended already
        pm.emit(SubagentEndEvent(tool_call_id="s1", error_msg="Error: no"), ctx)
    pm.emit(AgentEndEvent(response="", stop_reason="stop"), ctx)
    assert len(finished(traced)) == 3
    assert_nested_in_time(finished(traced))


class NoCompactingYet:
    @hookimpl
    def on_before_compact(self, event: BeforeCompactEvent) -> BeforeCompactResult | None:
        if event.is_automatic:
            return BeforeCompactResult(cancel=True, reason="")
        return None


def test_compactions_and_model_changes_are_span_events_on_the_turn(
    traced: SimpleNamespace,
) -> None:
    pm = traced.pm
    pm.register(NoCompactingYet())
    between = ctx_of(turn="")
    # between turns: kept for the session's next turn
    pm.emit(
        ModelChangeEvent(new_model=MODEL, previous_model="openai/gpt-5", source="user"), between
    )
    before_compact(pm, estimated_tokens=900, context_limit=1000, message_count=40, ctx=between)
    pm.emit(AgentStartEvent(prompt="x"), ctx_of(session="other"))  # not this session's turn
    ctx = ctx_of()
    pm.emit(AgentStartEvent(prompt="x"), ctx)
    before_compact(
        pm, estimated_tokens=950, context_limit=1000, message_count=41, is_automatic=True, ctx=ctx
    )
    pm.emit(AgentEndEvent(response="", stop_reason="stop"), ctx)
    pm.emit(AgentEndEvent(response="", stop_reason="stop"), ctx_of(session="other"))

    roots = {(s.attributes or {})["gen_ai.conversation.id"]: s for s in finished(traced)}
    assert roots["other"].events == ()
    change, manual, automatic = roots["s1"].events
    assert change.name == "kithooks.model_change"
    assert dict(change.attributes or {}) == {
        "kithooks.model_change.new_model": MODEL,
        "kithooks.model_change.previous_model": "openai/gpt-5",
        "kithooks.model_change.source": "user",
    }
    assert manual.name == automatic.name == "kithooks.compaction"
    assert dict(manual.attributes or {}) == {
        "kithooks.compaction.estimated_tokens": 900,
        "kithooks.compaction.context_limit": 1000,
        "kithooks.compaction.usage_percent": 0.9,
        "kithooks.compaction.message_count": 40,
        "kithooks.compaction.is_automatic": False,
        "kithooks.compaction.cancelled": False,
        "kithooks.compaction.plugin_summary": False,
    }
    assert (automatic.attributes or {})["kithooks.compaction.cancelled"] is True
    assert (automatic.attributes or {})["kithooks.compaction.reason"] == (
        "compaction cancelled by extension"
    )
    assert change.timestamp <= manual.timestamp <= automatic.timestamp


def test_a_failed_turn_has_an_error_status(traced: SimpleNamespace) -> None:
    turn = Turn(traced.pm, turn_id="t1", ctx=ctx_of())
    turn.agent_start("x")
    turn.end(error="provider overloaded")
    root = one(finished(traced), "invoke_agent coder")
    assert root.status.status_code is StatusCode.ERROR
    assert root.status.description == "provider overloaded"
    assert (root.attributes or {})["kithooks.turn.stop_reason"] == "error"


def test_events_with_no_turn_id_make_no_spans(traced: SimpleNamespace) -> None:
    pm, ctx = traced.pm, ctx_of(turn="")
    for event in (
        StepStartEvent(step_number=0),
        ToolCallEvent(tool_name="bash", tool_call_id="c1"),
        ToolResultEvent(tool_name="bash", tool_call_id="c1"),
        LLMUsageEvent(model="m"),
        SubagentStartEvent(tool_call_id="s"),
        AgentEndEvent(),
    ):
        pm.emit(event, ctx)
    pm.emit(SessionShutdownEvent(), ctx)
    assert finished(traced) == []


def test_events_that_open_no_span_revive_no_turn(traced: SimpleNamespace) -> None:
    pm, ctx = traced.pm, ctx_of()
    for event in (
        ToolResultEvent(tool_name="bash", tool_call_id="c1"),
        StepFinishEvent(step_number=0),
        ErrorEvent(error="late"),
        SubagentEndEvent(tool_call_id="s"),
        AgentEndEvent(),
    ):
        pm.emit(event, ctx)
    pm.emit(SessionShutdownEvent(), ctx)
    assert finished(traced) == [] and traced.plugin.open_turns == 0


class Review:
    @hookimpl
    def on_tool_call(self, event: ToolCallEvent) -> ToolCallResult:
        return ToolCallResult(block=True, reason="needs review")


def revived_turn(pm: PluginManager, ctx: Context) -> None:
    """The rest of a turn after its failure's agent_end (a retry around the failed turn):
    the retried call, a tool call the gate blocks, the final call."""
    pm.emit(StepStartEvent(step_number=0), ctx)
    pm.emit(ToolCallEvent(tool_name="bash", tool_call_id="c1", input="{}"), ctx)
    pm.emit(StepFinishEvent(step_number=0, input_tokens=10, finish_reason="tool-calls"), ctx)
    pm.emit(LLMUsageEvent(step_number=0, input_tokens=10, output_tokens=2, cost=0.5), ctx)
    pm.emit(StepStartEvent(step_number=1), ctx)
    pm.emit(LLMUsageEvent(step_number=1, input_tokens=20, output_tokens=3, cost=0.25), ctx)
    pm.emit(AgentEndEvent(response="done", stop_reason="stop"), ctx)


def test_a_turn_revived_after_its_agent_end_is_recorded_as_its_continuation(
    traced: SimpleNamespace,
) -> None:
    pm, ctx = traced.pm, ctx_of()
    pm.register(Review())
    pm.emit(AgentStartEvent(prompt="x"), ctx)
    pm.emit(StepStartEvent(step_number=0), ctx)
    pm.emit(ErrorEvent(error="provider hiccup"), ctx)
    pm.emit(AgentEndEvent(response="", stop_reason="error"), ctx)
    revived_turn(pm, ctx)
    assert traced.plugin.open_turns == 0

    spans = finished(traced)
    failed, revived = named(spans, "invoke_agent coder")
    assert "kithooks.turn.continued" not in (failed.attributes or {})
    attributes = revived.attributes or {}
    assert attributes["kithooks.turn.continued"] is True
    assert attributes["kithooks.turn.id"] == "t1" and attributes["gen_ai.conversation.id"] == "s1"
    assert [link.context for link in revived.links] == [failed.context]
    assert revived.status.status_code is StatusCode.UNSET
    assert attributes["kithooks.turn.tool_call_count"] == 1
    assert attributes["kithooks.turn.llm_call_count"] == 2
    assert attributes["gen_ai.usage.input_tokens"] == 30
    assert attributes["operation.cost"] == 0.75
    assert (failed.attributes or {})["kithooks.turn.llm_call_count"] == 0
    mine = [s for s in spans if parent_of(s) == sid(revived)]
    assert sorted(s.name for s in mine) == [
        "chat claude-sonnet-4-5",
        "chat claude-sonnet-4-5",
        "execute_tool bash",
    ]
    blocked = one(mine, "execute_tool bash")
    assert blocked.status.status_code is StatusCode.ERROR
    assert blocked.status.description == "needs review"
    assert (blocked.attributes or {})["error.type"] == "kithooks.blocked"


def test_a_turn_resumed_in_another_process_is_a_continuation_without_a_link(
    traced: SimpleNamespace,
) -> None:
    pm, ctx = traced.pm, ctx_of()
    pm.register(Review())  # a tryfirst-free guard: the exporter's handler runs first
    revived_turn(pm, ctx)
    root = one(finished(traced), "invoke_agent coder")
    assert (root.attributes or {})["kithooks.turn.continued"] is True
    assert root.links == () or list(root.links) == []
    assert (root.attributes or {})["kithooks.turn.tool_call_count"] == 1


def test_a_guard_that_stops_dispatch_first_still_revives_and_is_recorded(
    traced: SimpleNamespace,
) -> None:
    class FirstGate:
        @hookimpl(tryfirst=True)
        def on_tool_call(self, event: ToolCallEvent) -> ToolCallResult:
            return ToolCallResult(block=True, reason="first")

    pm = PluginManager()
    pm.register(traced.plugin)
    pm.register(FirstGate())  # registered later: its tryfirst handler runs before ours
    ctx = ctx_of()
    pm.emit(ToolCallEvent(tool_name="bash", tool_call_id="c1", input="{}"), ctx)
    pm.emit(AgentEndEvent(response="", stop_reason="stop"), ctx)
    spans = finished(traced)
    root = one(spans, "invoke_agent coder")
    tool = one(spans, "execute_tool bash")
    assert parent_of(tool) == sid(root) and tool.status.description == "first"
    assert (root.attributes or {})["kithooks.turn.tool_call_count"] == 1


def test_the_roots_remembered_for_links_are_bounded(traced: SimpleNamespace) -> None:
    memory = traced.memory
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    pm = PluginManager()
    pm.register(OtelExporter(provider, max_open_turns=2))
    for n in range(3):
        pm.emit(AgentStartEvent(prompt="x"), ctx_of(turn=f"t{n}"))
        pm.emit(AgentEndEvent(response="", stop_reason="stop"), ctx_of(turn=f"t{n}"))
    for n in (2, 1, 0):  # t0 was forgotten when t2 ended
        pm.emit(StepStartEvent(step_number=0), ctx_of(turn=f"t{n}"))
        pm.emit(AgentEndEvent(response="", stop_reason="stop"), ctx_of(turn=f"t{n}"))
    spans = finished(traced)
    continued = [s for s in spans if (s.attributes or {}).get("kithooks.turn.continued")]
    assert [len(s.links) for s in continued] == [1, 1, 0]


def test_concurrent_events_revive_a_turn_once(traced: SimpleNamespace) -> None:
    pm, ctx = traced.pm, ctx_of()
    start = threading.Barrier(8)

    def call(i: int) -> None:
        start.wait(timeout=10)
        pm.emit(ToolCallEvent(tool_name=f"t{i}", tool_call_id=f"c{i}", input="{}"), ctx)
        pm.emit(ToolResultEvent(tool_name=f"t{i}", tool_call_id=f"c{i}", content="ok"), ctx)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()
    pm.emit(AgentEndEvent(response="", stop_reason="stop"), ctx)
    spans = finished(traced)
    root = one(spans, "invoke_agent coder")
    assert len(spans) == 9 and all(parent_of(s) == sid(root) for s in spans if s is not root)
    assert all(s.status.status_code is StatusCode.UNSET for s in spans)
    assert (root.attributes or {})["kithooks.turn.tool_call_count"] == 8


def test_a_tool_call_asked_again_keeps_one_span_that_ends_with_its_result(
    traced: SimpleNamespace,
) -> None:
    pm, ctx = traced.pm, ctx_of()
    pm.emit(AgentStartEvent(prompt="x"), ctx)
    pm.emit(ToolCallEvent(tool_name="ask", tool_call_id="c1", input="{}"), ctx)
    # the tool paused for a person (an interrupt); resumed, the call is asked again
    pm.emit(ToolCallEvent(tool_name="ask", tool_call_id="c1", input="{}"), ctx)
    pm.emit(ToolResultEvent(tool_name="ask", tool_call_id="c1", content="yes"), ctx)
    assert [s.name for s in finished(traced)] == ["execute_tool ask"]
    pm.emit(AgentEndEvent(response="yes", stop_reason="stop"), ctx)
    spans = finished(traced)
    tool = one(spans, "execute_tool ask")
    assert tool.status.status_code is StatusCode.UNSET
    assert [e.name for e in tool.events] == ["kithooks.tool.asked_again"]
    assert (one(spans, "invoke_agent coder").attributes or {})[
        "kithooks.turn.tool_call_count"
    ] == 2  # as agent_end counts them: tool_call events


def test_a_tool_call_asked_again_states_whether_its_last_ask_was_rewritten(
    traced: SimpleNamespace,
) -> None:
    class RewriteOnce:
        def __init__(self) -> None:
            self.done = False

        @hookimpl
        def on_tool_call(self, event: ToolCallEvent) -> ToolCallResult | None:
            if self.done:
                return None
            self.done = True
            return ToolCallResult(args={"q": "rewritten"})

    pm, ctx = traced.pm, ctx_of()
    pm.register(RewriteOnce())
    pm.emit(AgentStartEvent(prompt="x"), ctx)
    for _ in range(2):
        pm.emit(ToolCallEvent(tool_name="ask", tool_call_id="c1", input='{"q": "a"}'), ctx)
    pm.emit(ToolResultEvent(tool_name="ask", tool_call_id="c1", content="yes"), ctx)
    tool = one(finished(traced), "execute_tool ask")
    assert (tool.attributes or {})["kithooks.tool.arguments_rewritten"] is False


def test_calls_with_no_id_keep_a_span_each(traced: SimpleNamespace) -> None:
    pm, ctx = traced.pm, ctx_of()
    pm.emit(AgentStartEvent(prompt="x"), ctx)
    for name in ("a", "b"):
        pm.emit(ToolCallEvent(tool_name=name, tool_call_id=""), ctx)
    for name in ("a", "b"):
        pm.emit(ToolResultEvent(tool_name=name, tool_call_id=""), ctx)
    assert sorted(s.name for s in finished(traced)) == ["execute_tool a", "execute_tool b"]


def test_a_failed_llm_call_has_an_error_status(traced: SimpleNamespace) -> None:
    pm, ctx = traced.pm, ctx_of()
    pm.emit(AgentStartEvent(prompt="x"), ctx)
    pm.emit(StepStartEvent(step_number=0), ctx)
    pm.emit(RetryEvent(attempt=1, error="overloaded"), ctx)
    pm.emit(ErrorEvent(error="provider 500"), ctx)  # KIT: no step_finish nor llm_usage
    pm.emit(AgentEndEvent(response="", stop_reason="error"), ctx)
    spans = finished(traced)
    chat = one(spans, "chat claude-sonnet-4-5")
    assert chat.status.status_code is StatusCode.ERROR
    assert chat.status.description == "provider 500"
    assert (chat.attributes or {})["error.type"] == "kithooks.llm_error"
    assert [e.name for e in chat.events] == ["kithooks.retry"]
    assert one(spans, "invoke_agent coder").status.description == "provider 500"


def test_an_error_after_the_models_response_leaves_its_chat_span_ok(
    traced: SimpleNamespace,
) -> None:
    pm, ctx = traced.pm, ctx_of()
    pm.emit(AgentStartEvent(prompt="x"), ctx)
    pm.emit(StepStartEvent(step_number=0), ctx)
    pm.emit(ToolCallEvent(tool_name="bash", tool_call_id="c1", input="{}"), ctx)
    pm.emit(ErrorEvent(error="cancelled"), ctx)
    pm.emit(AgentEndEvent(response="", stop_reason="error"), ctx)
    chat = one(finished(traced), "chat claude-sonnet-4-5")
    assert chat.status.status_code is StatusCode.UNSET


def test_the_roots_counts_are_right_without_the_turn_aggregator(
    traced: SimpleNamespace,
) -> None:
    pm = PluginManager(aggregate_turns=False)
    pm.register(traced.plugin)
    ctx = ctx_of()
    pm.emit(AgentStartEvent(prompt="p"), ctx)
    pm.emit(StepStartEvent(step_number=0), ctx)
    pm.emit(ToolCallEvent(tool_call_id="c1", tool_name="ls", input="{}"), ctx)
    pm.emit(ToolResultEvent(tool_call_id="c1", tool_name="ls", content="x"), ctx)
    pm.emit(LLMUsageEvent(input_tokens=100, output_tokens=3, cache_read_tokens=7, cost=0.2), ctx)
    pm.emit(AgentEndEvent(stop_reason="stop"), ctx)
    attributes = one(finished(traced), "invoke_agent coder").attributes or {}
    assert attributes["kithooks.turn.tool_call_count"] == 1
    assert attributes["kithooks.turn.llm_call_count"] == 1
    assert attributes["gen_ai.usage.input_tokens"] == 107
    assert attributes["gen_ai.usage.output_tokens"] == 3
    assert attributes["operation.cost"] == 0.2


def test_turns_dispatched_with_aemit_and_async_guards(traced: SimpleNamespace) -> None:
    class AsyncGate:
        @hookimpl
        async def on_tool_call(self, event: ToolCallEvent) -> ToolCallResult | None:
            await asyncio.sleep(0)
            return (
                ToolCallResult(block=True, reason="async no") if event.tool_name == "bash" else None
            )

    pm = PluginManager()
    pm.register(AsyncGate())
    pm.register(traced.plugin)

    async def turn(i: int) -> None:
        ctx = ctx_of(turn=f"t{i}")
        await pm.aemit(AgentStartEvent(prompt="x"), ctx)
        await pm.aemit(ToolCallEvent(tool_name="bash", tool_call_id="c1", input="{}"), ctx)
        await pm.aemit(ToolCallEvent(tool_name="read", tool_call_id="c2", input="{}"), ctx)
        await pm.aemit(ToolResultEvent(tool_name="read", tool_call_id="c2", content="ok"), ctx)
        await pm.aemit(AgentEndEvent(response="", stop_reason="stop"), ctx)

    async def main() -> None:
        await asyncio.wait_for(asyncio.gather(*(turn(i) for i in range(4))), timeout=30)

    asyncio.run(asyncio.wait_for(main(), 30))
    spans = finished(traced)
    roots = named(spans, "invoke_agent coder")
    assert len({tid(r) for r in roots}) == 4
    for root in roots:
        mine = [s for s in spans if tid(s) == tid(root) and s is not root]
        statuses = {s.name: (s.status.status_code, s.status.description) for s in mine}
        assert statuses == {
            "execute_tool bash": (StatusCode.ERROR, "async no"),
            "execute_tool read": (StatusCode.UNSET, None),
        }


def test_a_failing_guard_under_fail_closed_is_a_block_naming_it(
    traced: SimpleNamespace,
) -> None:
    class Broken:
        @hookimpl
        def on_tool_call(self, event: ToolCallEvent) -> None:
            raise RuntimeError("policy file missing")

    pm = PluginManager(fail_closed=True)
    pm.register(Broken(), name="broken-gate")
    pm.register(traced.plugin)
    turn = Turn(pm, turn_id="t1", ctx=ctx_of())
    turn.agent_start("x")
    assert turn.run_tool(lambda _: "", tool_name="bash", tool_call_id="c1", input="{}").blocked
    turn.end(response="", stop_reason="stop")
    bash = one(finished(traced), "execute_tool bash")
    assert bash.status.status_code is StatusCode.ERROR
    assert "broken-gate" in (bash.status.description or "")
    assert (bash.attributes or {})["error.type"] == "kithooks.blocked"


def test_provider_ids_become_the_conventions_well_known_names(traced: SimpleNamespace) -> None:
    pm, ctx = traced.pm, ctx_of(model="google/gemini-2.5-pro")
    pm.emit(AgentStartEvent(prompt="x"), ctx)
    pm.emit(StepStartEvent(step_number=0), ctx)
    pm.emit(LLMUsageEvent(model="gemini-2.5-pro", provider="google"), ctx)
    pm.emit(StepStartEvent(step_number=1), ctx)
    pm.emit(LLMUsageEvent(model="grok-4", provider="x-ai"), ctx)
    pm.emit(AgentEndEvent(response="", stop_reason="stop"), ctx)
    spans = finished(traced)
    root = one(spans, "invoke_agent coder")
    assert (root.attributes or {})["gen_ai.provider.name"] == "gcp.gen_ai"
    providers = {
        (s.attributes or {})["gen_ai.response.model"]: (s.attributes or {})["gen_ai.provider.name"]
        for s in named(spans, "chat gemini-2.5-pro")  # named by the request's model
    }
    assert providers == {"gemini-2.5-pro": "gcp.gen_ai", "grok-4": "x_ai"}


# -- nesting in time, and a turn's open spans are bounded ---------------------------------


@pytest.mark.parametrize("is_error", [False, True])
def test_a_subagent_in_kits_order_ends_with_its_tool_calls_result(
    is_error: bool, traced: SimpleNamespace
) -> None:
    pm, ctx = traced.pm, ctx_of()
    turn = Turn(pm, turn_id="t1", ctx=ctx)
    turn.agent_start("delegate")
    pm.emit(SubagentStartEvent(tool_call_id="s1", task="look"), ctx)

    def subagent(_: str) -> ToolResponse:
        pm.emit(SubagentChunkEvent(tool_call_id="s1", chunk_type="tool_call", tool_name="ls"), ctx)
        return ToolResponse(content="gave up" if is_error else "found it", is_error=is_error)

    turn.run_tool(subagent, tool_name="subagent", tool_call_id="s1", input='{"task": "look"}')
    # KIT: the call's tool_result, then subagent_end stating the same result
    spans = finished(traced)
    call, sub, ls = (
        one(spans, n) for n in ("execute_tool subagent", "invoke_agent", "execute_tool ls")
    )
    assert parent_of(sub) == sid(call) and parent_of(ls) == sid(sub)
    assert ls.end_time == sub.end_time == call.end_time
    assert (ls.attributes or {})["error.type"] == "kithooks.unfinished"
    if is_error:
        assert (sub.attributes or {})["error.type"] == "kithooks.subagent_error"
    else:
        assert sub.status.status_code is StatusCode.UNSET
    pm.emit(SubagentEndEvent(tool_call_id="s1", error_msg="gave up" if is_error else ""), ctx)
    turn.end(response="", stop_reason="stop")
    assert len(finished(traced)) == 4
    assert_nested_in_time(finished(traced))


class OpenSpans(SpanProcessor):
    """A span processor that knows which spans started and have not ended."""

    def __init__(self) -> None:
        self.open: dict[int, str] = {}

    def on_start(self, span: Span, parent_context: OtelContext | None = None) -> None:
        self.open[sid(span)] = span.name

    def on_end(self, span: ReadableSpan) -> None:
        self.open.pop(sid(span), None)


def recorded(
    *plugins: object, processors: Sequence[SpanProcessor] = (), **options: Any
) -> SimpleNamespace:
    memory, watch = InMemorySpanExporter(), OpenSpans()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(watch)
    for processor in processors:
        provider.add_span_processor(processor)
    pm = PluginManager()
    for plugin in plugins:
        pm.register(plugin)
    exporter = OtelExporter(provider, **options)
    pm.register(exporter)
    return SimpleNamespace(pm=pm, plugin=exporter, memory=memory, watch=watch)


def open_everything(pm: PluginManager, ctx: Context) -> None:
    """A turn with every kind of span open: a sub-agent (with a tool call) under its call,
    one waiting for its call, one under the turn, a tool call, an LLM call."""
    pm.emit(AgentStartEvent(prompt="x"), ctx)
    pm.emit(SubagentStartEvent(tool_call_id="s1", task="t"), ctx)
    pm.emit(ToolCallEvent(tool_name="subagent", tool_call_id="s1", input="{}"), ctx)
    pm.emit(SubagentChunkEvent(tool_call_id="s1", chunk_type="tool_call", tool_name="grep"), ctx)
    pm.emit(SubagentStartEvent(tool_call_id="s2", task="t"), ctx)  # its call never comes
    pm.emit(SubagentStartEvent(tool_call_id="", task="t"), ctx)
    pm.emit(ToolCallEvent(tool_name="ls", tool_call_id="c1", input="{}"), ctx)
    pm.emit(StepStartEvent(step_number=1), ctx)


ENDINGS = {
    "agent_end": lambda rec, ctx: rec.pm.emit(AgentEndEvent(response="", stop_reason="stop"), ctx),
    "session_shutdown": lambda rec, ctx: rec.pm.emit(SessionShutdownEvent(), ctx),
    "end_open_turns": lambda rec, ctx: rec.plugin.end_open_turns(),
    "agent_start again": lambda rec, ctx: (
        rec.pm.emit(AgentStartEvent(prompt="y"), ctx),
        rec.plugin.end_open_turns(),
    ),
    "max_open_turns": lambda rec, ctx: (
        rec.pm.emit(AgentStartEvent(prompt="y"), ctx_of(turn="t2")),
        rec.plugin.end_open_turns(),
    ),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_turn_that_ends_ends_its_open_descendants_first(ending: str) -> None:
    rec = recorded(max_open_turns=1)
    ctx = ctx_of()
    open_everything(rec.pm, ctx)
    assert len(rec.watch.open) == 7  # root, chat, 2 tool calls, 2 sub-agents (1 waits), 1 of theirs
    ENDINGS[ending](rec, ctx)
    assert rec.watch.open == {}
    spans = list(rec.memory.get_finished_spans())
    assert_nested_in_time(spans)
    root = min(named(spans, "invoke_agent"), key=lambda s: s.start_time or 0)  # the first
    in_turn = [s for s in spans if tid(s) == tid(root) and s is not root]
    assert len(in_turn) == 7  # the waiting sub-agent too, under the turn
    for span in in_turn:
        assert span.end_time == root.end_time or span.name.startswith("chat")
        if not span.name.startswith("chat"):
            assert (span.attributes or {})["error.type"] == "kithooks.unfinished"
            assert span.status.description == root.status.description or ending == "agent_end"


class BlockTools:
    @hookimpl
    def on_tool_call(self, event: ToolCallEvent) -> ToolCallResult | None:
        return ToolCallResult(block=True) if event.tool_name == "blocked" else None


IDS = st.sampled_from(["a", "b", ""])
EVENTS = st.one_of(
    st.builds(AgentStartEvent, prompt=st.just("x")),
    st.builds(AgentEndEvent, response=st.just(""), stop_reason=st.just("stop")),
    st.builds(StepStartEvent, step_number=st.just(0)),
    st.builds(LLMUsageEvent, input_tokens=st.just(1), output_tokens=st.just(1)),
    st.builds(ErrorEvent, error=st.just("boom")),
    st.builds(
        ToolCallEvent,
        tool_name=st.sampled_from(["ls", "blocked", "subagent"]),
        tool_call_id=IDS,
        input=st.just("{}"),
    ),
    st.builds(ToolResultEvent, tool_name=st.just("ls"), tool_call_id=IDS, is_error=st.booleans()),
    st.builds(SubagentStartEvent, tool_call_id=IDS),
    st.builds(
        SubagentChunkEvent,
        tool_call_id=IDS,
        chunk_type=st.sampled_from(["tool_call", "tool_result", "text"]),
        tool_name=st.sampled_from(["grep", "read"]),
    ),
    st.builds(SubagentEndEvent, tool_call_id=IDS, error_msg=st.sampled_from(["", "failed"])),
)


@given(
    events=st.lists(st.tuples(st.sampled_from(["t1", "t2"]), EVENTS), max_size=40),
    cap=st.integers(min_value=1, max_value=4),
    ending=st.sampled_from(["session_shutdown", "end_open_turns"]),
)
def test_whatever_comes_a_child_never_ends_after_its_parent_and_every_span_ends(
    events: list[tuple[str, Event]], cap: int, ending: str
) -> None:
    rec = recorded(BlockTools(), max_open_spans=cap)
    for turn_id, event in events:
        rec.pm.emit(event, ctx_of(turn=turn_id))
        # at most cap open children per open turn, besides its root and chat span
        assert len(rec.watch.open) <= rec.plugin.open_turns * (cap + 2)
    if ending == "session_shutdown":
        rec.pm.emit(SessionShutdownEvent(), ctx_of())
    else:
        rec.plugin.end_open_turns()
    assert rec.watch.open == {}
    assert_nested_in_time(list(rec.memory.get_finished_spans()))


STREAMS = {
    "tool calls with no result": lambda i: [
        ToolCallEvent(tool_name="ls", tool_call_id=f"c{i}", input="{}")
    ],
    "tool calls with no id and no result": lambda i: [
        ToolCallEvent(tool_name="ls", tool_call_id="", input="{}")
    ],
    "sub-agents whose call never comes": lambda i: [SubagentStartEvent(tool_call_id=f"s{i}")],
    "sub-agent calls that never end": lambda i: [
        SubagentStartEvent(tool_call_id=f"s{i}"),
        ToolCallEvent(tool_name="subagent", tool_call_id=f"s{i}", input="{}"),
    ],
    "a sub-agent's tool calls with no result": lambda i: [
        SubagentChunkEvent(tool_call_id="", chunk_type="tool_call", tool_name="grep")
    ],
    "a sub-agent's tool calls of ever new tools": lambda i: [
        SubagentChunkEvent(tool_call_id="", chunk_type="tool_call", tool_name=f"t{i}"),
        SubagentChunkEvent(tool_call_id="", chunk_type="tool_result", tool_name=f"t{i}"),
    ],
    "complete calls, steps and streaming": lambda i: [
        StepStartEvent(step_number=i),
        MessageUpdateEvent(chunk="hello"),
        LLMUsageEvent(input_tokens=1, output_tokens=1, model="m"),
        ToolCallEvent(tool_name="ls", tool_call_id=f"c{i}", input="{}"),
        ToolExecutionStartEvent(tool_name="ls", tool_call_id=f"c{i}"),
        ToolExecutionEndEvent(tool_name="ls", tool_call_id=f"c{i}"),
        ToolResultEvent(tool_name="ls", tool_call_id=f"c{i}", content="ok"),
    ],
}


#: Streams whose every span ends: nothing to drop.
BALANCED = {"a sub-agent's tool calls of ever new tools", "complete calls, steps and streaming"}


@pytest.mark.parametrize("stream", list(STREAMS))
def test_a_turn_that_never_ends_holds_bounded_memory(
    stream: str, caplog: pytest.LogCaptureFixture
) -> None:
    provider = TracerProvider()  # no processor: an ended span is garbage at once
    pm = PluginManager(aggregate_turns=False)
    exporter = OtelExporter(provider, max_open_spans=16)
    pm.register(exporter)
    ctx = ctx_of()
    pm.emit(AgentStartEvent(prompt="x"), ctx)
    pm.emit(SubagentStartEvent(tool_call_id="", task="t"), ctx)  # the chunks' sub-agent

    def play(start: int, stop: int) -> None:
        for i in range(start, stop):
            for event in STREAMS[stream](i):
                pm.emit(event, ctx)

    tracemalloc.start()
    try:
        play(0, 500)  # the steady state: the exporter's first allocations and caches
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        play(500, 2500)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # unbounded, 2000 more open spans would take megabytes (some 3 kB each)
    assert grown < 20_000, grown
    if stream in BALANCED:
        assert not caplog.records
    else:
        (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert "has more than 16 spans open" in warning.getMessage()
    assert exporter.end_open_turns() == 1


def test_the_oldest_open_span_is_ended_as_unfinished_when_a_turn_holds_too_many() -> None:
    rec = recorded(max_open_spans=2)
    ctx = ctx_of()
    rec.pm.emit(AgentStartEvent(prompt="x"), ctx)
    for call_id in ("c1", "c2", "c3"):
        rec.pm.emit(ToolCallEvent(tool_name="ls", tool_call_id=call_id, input="{}"), ctx)
    (dropped,) = rec.memory.get_finished_spans()
    assert (dropped.attributes or {})["gen_ai.tool.call.id"] == "c1"
    assert (dropped.attributes or {})["error.type"] == "kithooks.unfinished"
    assert dropped.status.description == "more than 2 spans were open in the turn"
    rec.pm.emit(ToolResultEvent(tool_name="ls", tool_call_id="c3", content="ok"), ctx)
    rec.pm.emit(ToolResultEvent(tool_name="ls", tool_call_id="c1", content="late"), ctx)
    rec.pm.emit(AgentEndEvent(response="", stop_reason="stop"), ctx)
    spans = {
        (s.attributes or {}).get("gen_ai.tool.call.id", "root"): s
        for s in rec.memory.get_finished_spans()
    }
    assert spans["c3"].status.status_code is StatusCode.UNSET
    assert spans["c2"].status.description == "the turn ended before this span did"
    assert rec.watch.open == {}


def test_a_subagent_busy_with_tool_calls_outlives_its_oldest_calls() -> None:
    rec = recorded(max_open_spans=3)
    ctx = ctx_of()
    rec.pm.emit(AgentStartEvent(prompt="x"), ctx)
    rec.pm.emit(SubagentStartEvent(tool_call_id="s1"), ctx)
    rec.pm.emit(ToolCallEvent(tool_name="subagent", tool_call_id="s1", input="{}"), ctx)
    for name in ("a", "b", "c", "d"):  # no results
        chunk = SubagentChunkEvent(tool_call_id="s1", chunk_type="tool_call", tool_name=name)
        rec.pm.emit(chunk, ctx)
    dropped = sorted(s.name for s in rec.memory.get_finished_spans())
    assert dropped == ["execute_tool a", "execute_tool b", "execute_tool c"]
    assert sorted(rec.watch.open.values()) == [
        "execute_tool d",
        "execute_tool subagent",
        "invoke_agent",
        "invoke_agent",
    ]
    with pytest.raises(ValueError, match="max_open_spans must be >= 1, got 0"):
        OtelExporter(max_open_spans=0)


class Meanwhile(SpanProcessor):
    """Runs ``then`` (once) when a span named ``name`` starts: after the exporter found the
    span's turn, before it holds the span, as another thread's event can come."""

    def __init__(self, name: str, then: Callable[[], object]) -> None:
        self.name, self.then = name, then

    def on_start(self, span: Span, parent_context: OtelContext | None = None) -> None:
        if span.name == self.name:
            self.name = ""
            self.then()


RACES = {  # the span that starts, the event that comes meanwhile, on its way
    "tool_call": ("execute_tool ls", AgentEndEvent(response="", stop_reason="stop")),
    "step_start": ("chat", AgentEndEvent(response="", stop_reason="stop")),
    "subagent_start": ("invoke_agent", AgentEndEvent(response="", stop_reason="stop")),
    "subagent_chunk": ("execute_tool grep", SubagentEndEvent(tool_call_id="")),
}


@pytest.mark.parametrize("race", list(RACES))
def test_a_span_that_opens_as_its_turn_or_subagent_ends_is_ended_too(race: str) -> None:
    ctx = ctx_of(model="")
    name, meanwhile = RACES[race]
    watcher = Meanwhile(name, lambda: rec.pm.emit(meanwhile, ctx))
    rec = recorded(processors=[watcher], agent_name="coder")
    rec.pm.emit(AgentStartEvent(prompt="x"), ctx)
    if race == "subagent_chunk":
        rec.pm.emit(SubagentStartEvent(tool_call_id=""), ctx)
    events = {
        "tool_call": ToolCallEvent(tool_name="ls", tool_call_id="c1", input="{}"),
        "step_start": StepStartEvent(step_number=0),
        "subagent_start": SubagentStartEvent(tool_call_id=""),
        "subagent_chunk": SubagentChunkEvent(
            tool_call_id="", chunk_type="tool_call", tool_name="grep"
        ),
    }
    rec.pm.emit(events[race], ctx)
    assert watcher.name == ""  # it came meanwhile
    rec.plugin.end_open_turns()
    assert rec.watch.open == {}
    (late,) = [s for s in rec.memory.get_finished_spans() if s.name == name]
    assert (late.attributes or {})["error.type"] == "kithooks.unfinished"
