"""Property: interleaved turns of two sessions (sharing turn ids), some cut short and ended
at session_shutdown, give one well-formed trace each with only its own spans, and a root
that counts the turn's calls, with or without the turn aggregator."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from kithooks import (
    AgentEndEvent,
    AgentStartEvent,
    Context,
    LLMUsageEvent,
    PluginManager,
    SessionShutdownEvent,
    StepFinishEvent,
    StepStartEvent,
    ToolCallEvent,
    ToolCallResult,
    ToolResultEvent,
    hookimpl,
)
from kithooks.otel import OtelExporter

OUTCOMES = ("ok", "error", "blocked")


class Gate:
    @hookimpl
    def on_tool_call(self, event: ToolCallEvent) -> ToolCallResult | None:
        if "-blocked-" in event.tool_name:
            return ToolCallResult(block=True, reason="gate")
        return None


# a turn: its steps, each a list of tool outcomes; and whether the turn is cut short
turns_st = st.lists(
    st.tuples(
        st.lists(st.lists(st.sampled_from(OUTCOMES), max_size=3), min_size=1, max_size=3),
        st.booleans(),
    ),
    min_size=1,
    max_size=6,
)


def script(
    pm: PluginManager, ctx: Context, steps: list[list[str]], cut: bool
) -> list[Callable[[], object]]:
    ops: list[Callable[[], object]] = [lambda: pm.emit(AgentStartEvent(prompt="p"), ctx)]
    for n, tools in enumerate(steps):
        ops.append(lambda n=n: pm.emit(StepStartEvent(step_number=n), ctx))
        for k, outcome in enumerate(tools):
            name, call = f"{ctx.session_id}{ctx.turn_id}-{outcome}-{n}.{k}", f"c{n}.{k}"
            ops.append(
                lambda name=name, call=call: pm.emit(
                    ToolCallEvent(tool_name=name, tool_call_id=call), ctx
                )
            )
            if outcome != "blocked":
                ops.append(
                    lambda name=name, call=call, err=outcome == "error": pm.emit(
                        ToolResultEvent(tool_name=name, tool_call_id=call, is_error=err), ctx
                    )
                )
        ops.append(lambda n=n: pm.emit(StepFinishEvent(step_number=n, input_tokens=1), ctx))
        ops.append(
            lambda n=n: pm.emit(LLMUsageEvent(step_number=n, input_tokens=1, model="m"), ctx)
        )
    ops.append(lambda: pm.emit(AgentEndEvent(response="", stop_reason="stop"), ctx))
    return ops[: len(ops) // 2] if cut else ops


@pytest.mark.slow
@settings(max_examples=50, deadline=None)
@given(turns=turns_st, aggregate=st.booleans(), data=st.data())
def test_interleaved_turns_give_one_well_formed_trace_each(
    turns: list[tuple[list[list[str]], bool]], aggregate: bool, data: st.DataObject
) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    pm = PluginManager(aggregate_turns=aggregate)
    pm.register(Gate())
    exporter = OtelExporter(provider)
    pm.register(exporter)
    contexts = [Context(session_id=f"s{i % 2}", turn_id=f"t{i // 2}") for i in range(len(turns))]
    queues = [
        script(pm, ctx, steps, cut) for ctx, (steps, cut) in zip(contexts, turns, strict=True)
    ]
    while any(queues):  # a random interleaving of the turns' events
        i = data.draw(st.sampled_from([i for i, q in enumerate(queues) if q]))
        queues[i].pop(0)()
    for session in ("s0", "s1"):
        pm.emit(SessionShutdownEvent(), Context(session_id=session))
    assert exporter.open_turns == 0

    spans = list(memory.get_finished_spans())
    roots = {
        (
            (s.attributes or {})["gen_ai.conversation.id"],
            (s.attributes or {})["kithooks.turn.id"],
        ): s
        for s in spans
        if s.parent is None
    }
    assert len(roots) == len([s for s in spans if s.parent is None])
    by_trace: dict[int, list[ReadableSpan]] = {}
    for span in spans:
        assert span.context is not None
        by_trace.setdefault(span.context.trace_id, []).append(span)
    assert len(by_trace) == len(turns) == len(roots)
    for ctx, (steps, cut) in zip(contexts, turns, strict=True):
        root = roots[ctx.session_id, ctx.turn_id]
        turn = f"{ctx.session_id}{ctx.turn_id}"
        assert root.context is not None
        children = [s for s in by_trace[root.context.trace_id] if s is not root]
        assert all(
            s.parent is not None and s.parent.span_id == root.context.span_id for s in children
        )
        tools = {
            s.name.removeprefix("execute_tool "): s
            for s in children
            if s.name.startswith("execute_tool")
        }
        assert all(name.startswith(f"{turn}-") for name in tools)
        if cut:
            assert root.status.status_code is StatusCode.ERROR
            assert (root.attributes or {})["error.type"] == "kithooks.unfinished"
            continue
        assert root.status.status_code is StatusCode.UNSET
        attributes = root.attributes or {}
        assert attributes["kithooks.turn.tool_call_count"] == sum(len(ts) for ts in steps)
        assert attributes["kithooks.turn.llm_call_count"] == len(steps)
        assert attributes["gen_ai.usage.input_tokens"] == len(steps)
        expected = {
            f"{turn}-{o}-{n}.{k}": o for n, ts in enumerate(steps) for k, o in enumerate(ts)
        }
        assert set(tools) == set(expected)
        for name, outcome in expected.items():
            failed = tools[name].status.status_code is StatusCode.ERROR
            assert failed == (outcome != "ok")
            if outcome == "blocked":
                assert tools[name].status.description == "gate"
        assert len([s for s in children if s.name.startswith("chat")]) == len(steps)
    provider.shutdown()
