"""The bundled demo recording, replayed through the example plugins and the exporter."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import kithooks
from kithooks.demo import demo_recording
from kithooks.examples import permission_gate, secret_redactor
from kithooks.otel import OtelExporter
from kithooks.recording import replay


def test_the_demo_recording_replays_as_two_traces() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    pm = kithooks.PluginManager()
    pm.register(permission_gate, name="permission-gate")
    pm.register(secret_redactor, name="secret-redactor")
    exporter = OtelExporter(provider, agent_name="demo")
    pm.register(exporter)
    replay(demo_recording(), pm)
    assert exporter.open_turns == 0

    spans = list(memory.get_finished_spans())
    roots = {(s.attributes or {})["kithooks.turn.id"]: s for s in spans if s.parent is None}
    assert sorted(roots) == ["turn-1", "turn-2"]
    trace_of = {k: r.context.trace_id for k, r in roots.items() if r.context is not None}
    turn1 = [s for s in spans if s.context is not None and s.context.trace_id == trace_of["turn-1"]]
    turn2 = [s for s in spans if s.context is not None and s.context.trace_id == trace_of["turn-2"]]
    assert len(turn1) + len(turn2) == len(spans)

    names1 = sorted(s.name for s in turn1)
    assert names1 == sorted(
        ["invoke_agent demo"]
        + ["chat claude-sonnet-4-5"] * 3
        + ["execute_tool bash"] * 3
        + ["execute_tool read", "execute_tool edit"]
    )
    blocked = [s for s in turn1 if s.status.status_code is StatusCode.ERROR]
    assert [s.name for s in blocked] == ["execute_tool bash"]
    assert (blocked[0].attributes or {})["gen_ai.tool.call.id"] == "call_04"
    assert (blocked[0].status.description or "").startswith("permission gate: `rm -rf /")
    (read,) = [s for s in turn1 if s.name == "execute_tool read"]
    assert (read.attributes or {})["kithooks.tool.result_rewritten"] is True  # a leaked key
    root1 = roots["turn-1"]
    assert (root1.attributes or {})["gen_ai.conversation.id"] == "demo-session"
    assert (root1.attributes or {})["kithooks.turn.tool_call_count"] == 5
    assert (root1.attributes or {})["operation.cost"] > 0

    # turn 2: the model change between the turns is an event on it; a nested sub-agent
    root2 = roots["turn-2"]
    assert [e.name for e in root2.events] == ["kithooks.model_change"]
    assert (root2.events[0].attributes or {})["kithooks.model_change.new_model"] == (
        "openai/gpt-4o"
    )
    (sub,) = [s for s in turn2 if s.name == "invoke_agent"]
    # under its tool call: subagent_start comes before that tool_call in the recording
    (call,) = [s for s in turn2 if s.name == "execute_tool subagent"]
    assert sub.parent is not None and call.context is not None
    assert sub.parent.span_id == call.context.span_id
    assert call.parent is not None and root2.context is not None
    assert call.parent.span_id == root2.context.span_id
    assert (sub.attributes or {})["kithooks.subagent.tool_call_id"] == "call_11"
    (inner,) = [
        s
        for s in turn2
        if s.parent is not None
        and sub.context is not None
        and s.parent.span_id == sub.context.span_id
    ]
    assert inner.name == "execute_tool bash"
    assert sorted(s.name for s in turn2) == [
        "chat gpt-4o",
        "chat gpt-4o",
        "execute_tool bash",
        "execute_tool subagent",
        "invoke_agent",
        "invoke_agent demo",
    ]
    provider.shutdown()
