"""The pydantic-ai adapter around pydantic-ai's own control flow: other capabilities'
tool hooks (skips, argument changes, deferrals), failed, cancelled and abandoned runs,
multimodal prompts, rejected model attempts, results that are models."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic_ai import (
    Agent,
    BinaryContent,
    CallDeferred,
    DeferredToolRequests,
    DeferredToolResults,
    ImageUrl,
    ToolApproved,
)
from pydantic_ai.capabilities import AbstractCapability, Hooks
from pydantic_ai.exceptions import SkipToolExecution
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    TextContent,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

import kithooks
from kithooks import PluginManager, hookimpl
from kithooks.adapters.pydantic_ai import KitHooks
from kithooks.testing.conformance import Recorder

DEADLINE = 10  # seconds: a hang fails


class Script:
    """Step 0 calls ``shell`` with ``command``; then answers with what the tool returned."""

    def __init__(self, command: str = "ls") -> None:
        self.command = command
        self.seen: list[Any] = []  # the tool results the model received
        self.prompts: list[Any] = []  # the user prompt contents of each request

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.prompts.append(
            [p.content for m in messages for p in m.parts if isinstance(p, UserPromptPart)]
        )
        returns = [p for m in messages for p in m.parts if isinstance(p, ToolReturnPart)]
        usage = RequestUsage(input_tokens=100, output_tokens=10)
        if not returns:
            call = ToolCallPart("shell", {"command": self.command}, tool_call_id="c1")
            return ModelResponse(parts=[call], usage=usage, model_name="gpt-4o")
        self.seen.append(returns[-1].content)
        return ModelResponse(parts=[TextPart("done")], usage=usage, model_name="gpt-4o")


class Gate:
    """Blocks ``rm``; redacts ``SECRET`` from every result."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.results: list[tuple[str, bool]] = []

    @hookimpl
    def on_tool_call(self, event):
        self.calls.append(dict(event.parsed_args))
        if "rm" in event.parsed_args["command"]:
            return kithooks.ToolCallResult(block=True, reason="dangerous")
        return None

    @hookimpl
    def on_tool_result(self, event):
        self.results.append((event.content, event.is_error))
        return kithooks.ToolResultResult(content=event.content.replace("SECRET", "[redacted]"))


def host() -> tuple[PluginManager, Recorder, Gate]:
    pm = PluginManager()
    log = Recorder()
    gate = Gate()
    pm.register(log, name="log")
    pm.register(gate, name="gate")
    return pm, log, gate


def agent_with(script: Script, capabilities: list[Any], **kwargs: Any) -> tuple[Agent, list]:
    agent = Agent(FunctionModel(script, model_name="gpt-4o"), capabilities=capabilities, **kwargs)
    ran: list[str] = []

    @agent.tool_plain
    def shell(command: str) -> str:
        ran.append(command)
        return f"ran {command}"

    return agent, ran


def run(agent: Agent, prompt: Any = "go", **kwargs: Any) -> Any:
    return asyncio.run(asyncio.wait_for(agent.run(prompt, **kwargs), DEADLINE))


def aggregator(pm: PluginManager) -> Any:
    return pm.get_plugin("turn-aggregator")


# -- other capabilities' tool hooks --------------------------------------------------------


@pytest.mark.parametrize("kit_first", [False, True])
def test_a_result_another_capability_substitutes_is_a_successful_rewritten_result(kit_first):
    pm, log, gate = host()
    hooks = Hooks()

    @hooks.on.before_tool_execute
    async def cached(ctx, *, call, tool_def, args):
        raise SkipToolExecution("cached: SECRET")

    script = Script()
    kit = KitHooks(pm)
    agent, ran = agent_with(script, [kit, hooks] if kit_first else [hooks, kit])
    run(agent)
    assert ran == []
    assert gate.calls == [{"command": "ls"}]  # guarded, whichever ran first
    assert gate.results == [("cached: SECRET", False)]
    assert script.seen == ["cached: [redacted]"]
    assert "error" not in log.names()


def test_a_substituted_result_is_blocked_when_the_guard_blocks_the_call():
    pm, _, gate = host()
    hooks = Hooks()

    @hooks.on.before_tool_execute
    async def cached(ctx, *, call, tool_def, args):
        raise SkipToolExecution("cached")

    script = Script(command="rm -rf /")
    agent, ran = agent_with(script, [hooks, KitHooks(pm)])
    run(agent)
    assert ran == [] and script.seen == ["Error: dangerous"] and gate.results == []


class RewriteInWrap(AbstractCapability[Any]):
    """Hands the tool other arguments from wrap_tool_execute."""

    async def wrap_tool_execute(self, ctx, *, call, tool_def, args, handler):
        return await handler({"command": "rm -rf /"})


def _rewrite_in_before() -> Hooks:
    hooks = Hooks()

    @hooks.on.before_tool_execute
    async def change(ctx, *, call, tool_def, args):
        return {"command": "rm -rf /"}

    return hooks


@pytest.mark.parametrize(
    ("other", "kit_first"),
    [(_rewrite_in_before, False), (RewriteInWrap, False), (RewriteInWrap, True)],
    ids=["before_tool_execute-listed-first", "wrap-listed-first", "wrap-listed-after"],
)
def test_the_guard_sees_the_arguments_another_capability_hands_the_tool(other, kit_first):
    pm, _, gate = host()
    kit = KitHooks(pm)
    script = Script()
    agent, ran = agent_with(script, [kit, other()] if kit_first else [other(), kit])
    run(agent)
    assert gate.calls == [{"command": "rm -rf /"}]
    assert ran == [] and script.seen == ["Error: dangerous"]


def deferring_agent(pm: PluginManager) -> Agent:
    """An agent whose run can end with the calls it deferred."""
    return Agent(
        FunctionModel(Script(), model_name="gpt-4o"),
        capabilities=[KitHooks(pm)],
        output_type=[str, DeferredToolRequests],
    )


def test_a_deferred_call_ends_its_execution_without_a_result():
    pm, log, gate = host()
    agent = deferring_agent(pm)

    @agent.tool_plain
    def shell(command: str) -> str:
        raise CallDeferred

    result = run(agent)
    assert isinstance(result.output, DeferredToolRequests)
    assert gate.results == []  # a deferral is no failed result
    names = log.names()
    assert names.index("tool_call") < names.index("tool_execution_end")
    assert "tool_result" not in names and "error" not in names


def test_approved_calls_run_on_resume_inside_the_turn():
    pm, log, _ = host()
    agent = deferring_agent(pm)

    @agent.tool_plain(requires_approval=True)
    def shell(command: str) -> str:
        return f"ran {command}"

    first = run(agent)
    log.events.clear()
    approvals = DeferredToolResults(approvals={"c1": ToolApproved()})
    run(agent, None, message_history=first.all_messages(), deferred_tool_results=approvals)
    names = log.names()
    assert names.index("agent_start") < names.index("message_start") < names.index("tool_call")
    assert names.count("agent_start") == 1
    end = log.of(kithooks.AgentEndEvent)[0]
    assert end.tool_call_count == 1 and end.tool_names == ("shell",)


# -- failed, cancelled and abandoned runs ---------------------------------------------------


def test_a_failed_run_counts_the_model_calls_it_made():
    pm, log, _ = host()
    agent = Agent(FunctionModel(Script(), model_name="gpt-4o"), capabilities=[KitHooks(pm)])

    @agent.tool_plain
    def shell(command: str) -> str:
        raise RuntimeError("kaput")

    with pytest.raises(RuntimeError):
        run(agent)
    names = log.names()
    assert names.index("llm_usage") < names.index("error") < names.index("agent_end")
    end = log.of(kithooks.AgentEndEvent)[0]
    assert end.stop_reason == "error" and end.llm_call_count == 1
    assert end.input_tokens_delta == 100 and end.output_tokens_delta == 10


def test_a_cancelled_run_ends_its_tool_and_its_turn():
    pm, log, _ = host()
    started = asyncio.Event()
    agent = Agent(FunctionModel(Script(), model_name="gpt-4o"), capabilities=[KitHooks(pm)])

    @agent.tool_plain
    async def shell(command: str) -> str:
        started.set()
        await asyncio.sleep(60)
        return "late"

    async def main() -> None:
        task = asyncio.create_task(agent.run("go"))
        await asyncio.wait_for(started.wait(), DEADLINE)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, DEADLINE)

    asyncio.run(main())
    names = log.names()
    tail = ["tool_execution_end", "tool_result", "llm_usage", "error", "agent_end"]
    assert [n for n in names if n in tail] == tail
    result = log.of(kithooks.ToolResultEvent)[0]
    assert result.is_error and result.content == "CancelledError"
    assert log.of(kithooks.ErrorEvent)[0].error == "CancelledError"
    assert log.of(kithooks.AgentEndEvent)[0].llm_call_count == 1
    assert aggregator(pm).open_turns == 0


def test_leaving_agent_iter_early_ends_the_turn():
    pm, log, _ = host()
    agent, _ = agent_with(Script(), [KitHooks(pm)])

    async def main() -> None:
        async with agent.iter("go") as agent_run:
            async for node in agent_run:
                if type(node).__name__ == "CallToolsNode":
                    break

    asyncio.run(asyncio.wait_for(main(), DEADLINE))
    names = log.names()
    assert names[-3:] == ["llm_usage", "error", "agent_end"]
    assert log.of(kithooks.AgentEndEvent)[0].stop_reason == "error"
    assert aggregator(pm).open_turns == 0


def test_leaving_run_stream_unread_ends_the_turn():
    pm, log, _ = host()

    async def stream(messages, info):
        yield "hello "
        yield "world"

    def answer(messages, info):
        return ModelResponse(parts=[TextPart("hello world")])

    model = FunctionModel(answer, stream_function=stream, model_name="gpt-4o")
    agent = Agent(model, capabilities=[KitHooks(pm)])

    async def main() -> None:
        async with agent.run_stream("go"):
            pass

    asyncio.run(asyncio.wait_for(main(), DEADLINE))
    assert log.names()[-2:] == ["error", "agent_end"]
    assert aggregator(pm).open_turns == 0


# -- prompts, results, usage ----------------------------------------------------------------


class Redact:
    @hookimpl
    def on_input(self, event):
        return kithooks.InputResult(action="transform", text=event.text.replace("secret", "[x]"))


def test_an_input_transform_keeps_a_multimodal_prompts_files():
    pm = PluginManager()
    pm.register(Redact())
    pm.register(Recorder(), name="log")
    script = Script()
    agent, _ = agent_with(script, [KitHooks(pm)])
    image = ImageUrl(url="https://example.com/a.png")
    run(agent, ["describe this secret image", image, TextContent("and this secret")])
    seen = script.prompts[0][-1]
    assert seen == ["describe this [x] image", image, TextContent("and this [x]")]


# Text items the blank-line join keeps apart (no blank line in them, none made at an edge).
text_items = st.text(max_size=20).filter(
    lambda t: "\n\n" not in t and not t.startswith("\n") and not t.endswith("\n")
)
items = st.lists(
    st.one_of(
        text_items,
        text_items.map(TextContent),
        st.builds(ImageUrl, url=st.just("https://example.com/a.png")),
        st.binary(max_size=4).map(lambda b: BinaryContent(data=b, media_type="image/png")),
    ),
    max_size=6,
)


@given(items)
def test_a_prompt_given_back_its_own_text_is_unchanged(content):
    from kithooks.adapters.pydantic_ai import _text, _with_text

    assert _with_text(content, _text(content)) == content


@given(items, st.text(max_size=30))
def test_a_new_text_keeps_every_file_in_order(content, text):
    from kithooks.adapters.pydantic_ai import _text, _with_text

    new = _with_text(content, text)
    assert [c for c in new if not isinstance(c, str | TextContent)] == [
        c for c in content if not isinstance(c, str | TextContent)
    ]
    assert _text(new) == text


class Answer(BaseModel):
    key: str
    note: str = "ü"


def test_a_model_result_is_shown_as_the_json_the_model_gets():
    pm, _, gate = host()
    script = Script()
    agent = Agent(FunctionModel(script, model_name="gpt-4o"), capabilities=[KitHooks(pm)])

    @agent.tool_plain
    def shell(command: str) -> Answer:
        return Answer(key="SECRET")

    run(agent)
    assert gate.results == [('{"key":"SECRET","note":"ü"}', False)]
    assert script.seen == ['{"key":"[redacted]","note":"ü"}']


def test_an_attempt_a_fallback_rejected_is_billed_apart_from_the_call_that_answered():
    """ModelFallback rejects a cut-off answer and asks the next model: the rejected attempt
    is an llm_usage of its own (finish_reason "error"), after the step's, so the step's
    step_finish, llm_usage and OTel chat span are the answering call's."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from pydantic_ai.capabilities import ModelFallback

    from kithooks.otel import OtelExporter

    def cut_off(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        usage = RequestUsage(input_tokens=1000, output_tokens=500)
        return ModelResponse(
            parts=[TextPart("cut")], usage=usage, model_name="gpt-4o-mini", finish_reason="length"
        )

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        usage = RequestUsage(input_tokens=10, output_tokens=2)
        return ModelResponse(parts=[TextPart("hello")], usage=usage, model_name="gpt-4o")

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    pm = PluginManager()
    log = Recorder()
    pm.register(log, name="log")
    pm.register(OtelExporter(provider), name="otel")
    fallback = ModelFallback(FunctionModel(answer, model_name="gpt-4o"))
    agent = Agent(
        FunctionModel(cut_off, model_name="gpt-4o-mini"), capabilities=[fallback, KitHooks(pm)]
    )
    assert run(agent).output == "hello"
    usage = log.of(kithooks.LLMUsageEvent)
    assert [(u.model, u.input_tokens, u.finish_reason) for u in usage] == [
        ("gpt-4o", 10, "stop"),
        ("gpt-4o-mini", 1000, "error"),
    ]
    (finish,) = log.of(kithooks.StepFinishEvent)
    assert finish.input_tokens == 10
    chats = {s.name: s for s in spans.get_finished_spans() if s.name.startswith("chat")}
    answered = chats["chat gpt-4o"].attributes
    assert answered["gen_ai.usage.input_tokens"] == 10
    assert answered["gen_ai.response.finish_reasons"] == ("stop",)
    rejected = chats["chat gpt-4o-mini"].attributes
    assert rejected["gen_ai.usage.input_tokens"] == 1000
    assert rejected["gen_ai.response.finish_reasons"] == ("error",)
    (root,) = [s for s in spans.get_finished_spans() if s.name.startswith("invoke_agent")]
    assert root.attributes["gen_ai.usage.input_tokens"] == 1010
    assert root.attributes["kithooks.turn.llm_call_count"] == 2
