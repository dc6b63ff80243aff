"""The exporter on real LangChain agents: a turn revived by a retry placed before the
middleware, and a tool call asked again after an interrupt."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

pytest.importorskip("langchain.agents")

from langchain.agents import create_agent
from langchain.agents.middleware import ModelRetryMiddleware
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from kithooks import Context, PluginManager
from kithooks.adapters.langchain import KitHooksMiddleware
from kithooks.otel import OtelExporter
from kithooks.testing.conformance import standard_script
from test_langchain import (
    FlakyChatModel,
    Gate,
    _shell_tool,
    answer_of,
    asking_agent,
    asking_script,
    prompt,
)


@pytest.fixture
def traced() -> Iterator[SimpleNamespace]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    pm = PluginManager(context=Context(session_id="s1"))
    pm.register(OtelExporter(provider, agent_name="lc"))
    yield SimpleNamespace(pm=pm, memory=memory)
    provider.shutdown()


def test_a_retry_around_a_failed_turn_records_the_rest_of_the_turn(
    traced: SimpleNamespace,
) -> None:
    pm = traced.pm
    pm.register(Gate())
    script = standard_script()
    agent = create_agent(
        FlakyChatModel(script=script, seen=[]),
        _shell_tool(script),
        middleware=[
            ModelRetryMiddleware(max_retries=1, initial_delay=0, jitter=False),
            KitHooksMiddleware(pm),
        ],
    )
    assert answer_of(agent.invoke(prompt("go"))) == "Tool said: Error: needs review"

    spans = list(traced.memory.get_finished_spans())
    failed, revived = [s for s in spans if s.name == "invoke_agent lc"]
    assert failed.status.status_code is StatusCode.ERROR
    (failed_call,) = [s for s in spans if s.parent and s.parent.span_id == failed.context.span_id]
    assert failed_call.status.status_code is StatusCode.ERROR
    assert (failed_call.attributes or {})["error.type"] == "kithooks.llm_error"

    attributes = revived.attributes or {}
    assert attributes["kithooks.turn.continued"] is True
    assert attributes["kithooks.turn.id"] == (failed.attributes or {})["kithooks.turn.id"]
    assert [link.context for link in revived.links] == [failed.context]
    assert revived.status.status_code is StatusCode.UNSET
    assert attributes["kithooks.turn.tool_call_count"] == 1
    assert attributes["kithooks.turn.llm_call_count"] == 2
    children = [s for s in spans if s.parent and s.parent.span_id == revived.context.span_id]
    (blocked,) = [s for s in children if s.name == "execute_tool shell"]
    assert blocked.status.status_code is StatusCode.ERROR
    assert blocked.status.description == "needs review"
    assert len([s for s in children if s.name.startswith("chat")]) == 2


def test_a_tool_call_asked_again_after_an_interrupt_is_one_successful_span(
    traced: SimpleNamespace,
) -> None:
    pm = traced.pm
    saver, script = InMemorySaver(), asking_script()
    config = {"configurable": {"thread_id": "t-ask"}}
    asking_agent(pm, script, saver).invoke(prompt("go"), config)
    state = asking_agent(pm, script, saver).invoke(Command(resume="yes"), config)
    assert answer_of(state) == "They said: yes"

    spans = list(traced.memory.get_finished_spans())
    (tool,) = [s for s in spans if s.name == "execute_tool ask"]
    assert tool.status.status_code is StatusCode.UNSET
    assert (tool.attributes or {})["gen_ai.tool.call.id"] == "c1"
    assert [e.name for e in tool.events] == ["kithooks.tool.asked_again"]
    assert all(s.status.status_code is StatusCode.UNSET for s in spans)
