"""kithooks plugins inside pydantic-ai agents, offline with FunctionModel.

The promises every adapter keeps are in test_conformance_pydantic_ai.py; these are the
pydantic-ai-specific ones (failed tool results, history persistence, streaming, retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json

import pytest
from pydantic import Base64Bytes, BaseModel
from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    SystemPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel
from pydantic_ai.usage import RequestUsage

import kithooks
import kithooks.events
from kithooks import Context, PluginManager, hookimpl
from kithooks.adapters.pydantic_ai import KitHooks, describe_message
from kithooks.testing.conformance import Recorder


class Script:
    """A FunctionModel script: step 0 calls `shell`, step 1 answers with what it got."""

    def __init__(self, command="ls", usage=None):
        self.requests: list[list[ModelMessage]] = []
        self.command = command
        self.usage = usage or [
            RequestUsage(input_tokens=1_200, output_tokens=40, cache_read_tokens=200),
            RequestUsage(input_tokens=1_500, output_tokens=20, cache_write_tokens=100),
        ]

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.requests.append(list(messages))
        if len(self.requests) == 1:
            return ModelResponse(
                parts=[
                    TextPart("Checking."),
                    ToolCallPart("shell", {"command": self.command}, tool_call_id="c1"),
                ],
                usage=self.usage[0],
                model_name="gpt-4o",
                provider_name="openai",
                finish_reason="tool_call",
            )
        last = messages[-1].parts[0]
        return ModelResponse(
            parts=[TextPart(f"Tool said: {last.content}")],
            usage=self.usage[1],
            model_name="gpt-4o",
            provider_name="openai",
            finish_reason="stop",
        )


def run(agent, prompt, **kwargs):
    """Run the agent on a loop asyncio closes (run_sync leaves loop sockets to the GC)."""
    return asyncio.run(agent.run(prompt, **kwargs))


def make_agent(pm: PluginManager, script: Script, **kwargs):
    agent = Agent(FunctionModel(script, model_name="gpt-4o"), capabilities=[KitHooks(pm, **kwargs)])
    ran: list[str] = []

    @agent.tool_plain
    def shell(command: str) -> str:
        """Run a shell command."""
        ran.append(command)
        return f"output of {command}"

    return agent, ran


@pytest.fixture
def host():
    pm = PluginManager(context=Context(session_id="s1"))
    log = Recorder()
    pm.register(log, name="log")
    return pm, log


def test_a_blocked_tool_never_runs_and_the_model_sees_the_error(host):
    pm, _ = host

    class Gate:
        @hookimpl
        def on_tool_call(self, event):
            if "rm -rf" in event.parsed_args.get("command", ""):
                return kithooks.ToolCallResult(block=True, reason="dangerous command")
            return None

    pm.register(Gate())
    script = Script(command="rm -rf /")
    agent, ran = make_agent(pm, script)
    result = run(agent, "clean up")
    assert ran == []
    returned = script.requests[1][-1].parts[0]
    assert isinstance(returned, ToolReturnPart) and returned.content == "Error: dangerous command"
    assert returned.outcome == "failed"
    assert result.output == "Tool said: Error: dangerous command"


def test_a_tool_result_marked_as_an_error_reaches_the_model_as_a_failure(host):
    pm, _ = host

    class Fail:
        @hookimpl
        def on_tool_result(self, event):
            return kithooks.ToolResultResult(content="permission denied", is_error=True)

    pm.register(Fail())
    script = Script()
    agent, ran = make_agent(pm, script)
    run(agent, "go")
    returned = script.requests[1][-1].parts[0]
    assert ran == ["ls"]
    assert (returned.content, returned.outcome) == ("permission denied", "failed")


def test_an_input_transform_changes_the_prompt_the_model_sees(host):
    pm, log = host

    class Upper:
        @hookimpl
        def on_input(self, event):
            return kithooks.InputResult(action="transform", text=event.text.upper())

    pm.register(Upper())
    script = Script()
    agent, _ = make_agent(pm, script)
    result = run(agent, "list files")
    first = script.requests[0][0].parts[0]
    assert isinstance(first, UserPromptPart) and first.content == "LIST FILES"
    assert log.of(kithooks.BeforeAgentStartEvent)[0].prompt == "LIST FILES"
    user_parts = [
        p for m in result.all_messages() for p in m.parts if isinstance(p, UserPromptPart)
    ]
    assert [p.content for p in user_parts] == ["LIST FILES"]  # persisted too


def test_handled_input_never_reaches_the_model(host):
    pm, log = host

    class Slash:
        @hookimpl
        def on_input(self, event):
            return kithooks.InputResult(action="handled")

    pm.register(Slash())
    script = Script()
    agent, _ = make_agent(pm, script, handled_output="(handled by a plugin)")
    assert run(agent, "/help").output == "(handled by a plugin)"
    assert script.requests == [] and log.names() == ["input"]


def test_before_agent_start_injects_text_and_a_system_prompt(host):
    pm, _ = host

    class Rules:
        @hookimpl
        def on_before_agent_start(self, event):
            return kithooks.BeforeAgentStartResult(
                inject_text="Project rules: be brief.", system_prompt="Extra system."
            )

    pm.register(Rules())
    script = Script()
    agent, _ = make_agent(pm, script)
    run(agent, "hi")
    parts = [p for m in script.requests[0] for p in m.parts]
    assert [(type(p), p.content) for p in parts] == [
        (SystemPromptPart, "Extra system."),
        (UserPromptPart, "Project rules: be brief."),
        (UserPromptPart, "hi"),
    ]
    # persisted for the turn: the next step's request still carries it
    later = [
        p.content for m in script.requests[1] for p in m.parts if isinstance(p, UserPromptPart)
    ]
    assert later == ["Project rules: be brief.", "hi"]


def test_context_prepare_can_drop_and_add_messages(host):
    pm, log = host

    class Window:
        @hookimpl
        def on_context_prepare(self, event):
            kept = [m for m in event.messages if "secret" not in m.content]
            note = kithooks.ContextMessage(index=-1, role="system", content="Answer in French.")
            return kithooks.ContextPrepareResult(messages=(note, *kept))

    pm.register(Window())
    script = Script()
    agent, _ = make_agent(pm, script)
    history = [
        ModelRequest(parts=[UserPromptPart("my secret is 42")]),
        ModelResponse(parts=[TextPart("noted")]),
    ]
    run(agent, "what now?", message_history=history)
    first = script.requests[0]
    assert describe_message(first[0]) == ("system", "Answer in French.")
    assert all("secret" not in describe_message(m)[1] for m in first)
    assert [describe_message(m)[1] for m in first[1:]] == ["noted", "what now?"]
    window = log.of(kithooks.ContextPrepareEvent)[0].messages
    assert [(m.index, m.role) for m in window] == [(0, "user"), (1, "assistant"), (2, "user")]


def test_prepare_step_rewrites_each_request(host):
    pm, _ = host

    class Trim:
        @hookimpl
        def on_prepare_step(self, event):
            if event.step_number == 1:
                extra = kithooks.ContextMessage(index=-1, role="user", content="Be terse.")
                return kithooks.PrepareStepResult(messages=(*event.messages, extra))
            return None

    pm.register(Trim())
    script = Script()
    agent, _ = make_agent(pm, script)
    run(agent, "go")
    assert describe_message(script.requests[1][-1]) == ("user", "Be terse.")
    assert len(script.requests[0]) == 1


def test_session_and_turn_ids_and_state_during_the_run(host):
    pm, _ = host
    seen = []

    class Ids:
        @hookimpl
        def on_agent_start(self, event, ctx):
            seen.append((ctx.session_id, ctx.turn_id))
            ctx.set_state("runs", str(int(ctx.get_state("runs") or 0) + 1))

    pm.register(Ids())
    agent, _ = make_agent(pm, Script())
    run(agent, "a")
    run(agent, "b")
    assert [s for s, _ in seen] == ["s1", "s1"]
    assert seen[0][1] and seen[0][1] != seen[1][1]
    assert pm.state.get("runs") == "2"


def stream_script():
    calls = {"n": 0}

    async def stream(messages: list[ModelMessage], info: AgentInfo):
        calls["n"] += 1
        if calls["n"] == 1:
            yield "Let me "
            yield "check."
            yield {0: DeltaToolCall(name="shell", json_args='{"comm', tool_call_id="c1")}
            yield {0: DeltaToolCall(json_args='and": "ls"}')}
        else:
            for chunk in ("All ", "done ", "now."):
                yield chunk

    return stream


def test_streaming_runs_emit_message_update_chunks_that_join_to_the_final_text(host):
    pm, log = host
    agent = Agent(
        FunctionModel(stream_function=stream_script()), capabilities=[KitHooks(pm, stream=True)]
    )

    @agent.tool_plain
    def shell(command: str) -> str:
        return f"ran {command}"

    result = run(agent, "go")
    chunks = [e.chunk for e in log.of(kithooks.MessageUpdateEvent)]
    assert len(chunks) >= 5
    assert "".join(chunks) == "Let me check.All done now."
    assert log.of(kithooks.MessageEndEvent)[0].content == result.output == "All done now."
    deltas = "".join(e.delta for e in log.of(kithooks.ToolCallInputDeltaEvent))
    assert json.loads(deltas) == {"command": "ls"}
    assert log.of(kithooks.ToolCallInputStartEvent)[0].tool_call_id == "c1"
    assert log.names().index("tool_call_input_end") < log.names().index("tool_call")


def test_a_further_attempt_at_a_model_request_is_a_retry(host):
    from pydantic_ai.capabilities import AbstractCapability
    from pydantic_ai.exceptions import RetryModelRequest

    pm, log = host

    class RetryFirstAnswer(AbstractCapability):
        def __init__(self):
            self.rejected = False

        async def after_model_request(self, ctx, *, request_context, response):
            if not self.rejected:
                self.rejected = True
                raise RetryModelRequest()
            return response

    script = Script()
    agent = Agent(
        FunctionModel(script, model_name="gpt-4o"), capabilities=[KitHooks(pm), RetryFirstAnswer()]
    )

    @agent.tool_plain
    def shell(command: str) -> str:
        return "ok"

    result = run(agent, "go")
    assert len(script.requests) == 2 and result.output == "Tool said: go"
    retries = log.of(kithooks.RetryEvent)
    assert [r.attempt for r in retries] == [1]
    names = log.names()
    assert names.index("retry") > names.index("step_start")  # within the step, no new step_start
    assert names.count("step_start") == 1 and names.count("step_finish") == 1
    # The rejected answer was billed: its own llm_usage, after the step's.
    usage = log.of(kithooks.LLMUsageEvent)
    assert [u.finish_reason for u in usage] == ["stop", "error"]
    assert usage[1].input_tokens > 0 and usage[0].step_number == usage[1].step_number == 0


# -- which hooks a run gets ----------------------------------------------------------------


class Gate:
    """Blocks ``rm -rf``."""

    @hookimpl
    def on_tool_call(self, event):
        if "rm -rf" in (event.parsed_args or {}).get("command", ""):
            return kithooks.ToolCallResult(block=True, reason="dangerous command")
        return None


def kit_hooks_called(monkeypatch) -> list[str]:
    """Record every KitHooks hook pydantic-ai calls (on the class, so per-run copies count)."""
    called: list[str] = []
    for name in ("wrap_run", "before_model_request", "after_model_request", "wrap_tool_execute"):
        original = getattr(KitHooks, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            called.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(KitHooks, name, spy)
    return called


@pytest.mark.parametrize("aggregate_turns", [False, True])
def test_a_run_no_plugin_listens_to_gets_no_hook_at_all(monkeypatch, aggregate_turns):
    """Nothing handles any event, or only the turn aggregator, which counts for the plugins
    that read agent_end: with none of those it counts for no one."""
    called = kit_hooks_called(monkeypatch)
    pm = PluginManager(aggregate_turns=aggregate_turns)
    script = Script(command="rm -rf /")
    agent, ran = make_agent(pm, script)
    assert run(agent, "clean up").output == "Tool said: output of rm -rf /"
    assert ran == ["rm -rf /"] and called == []


def test_for_run_leaves_no_capability_without_handlers_and_this_one_with_them():
    from pydantic_ai.capabilities import CombinedCapability

    pm = PluginManager(aggregate_turns=False)
    capability = KitHooks(pm)
    idle = asyncio.run(capability.for_run(None))
    assert isinstance(idle, CombinedCapability) and list(idle.capabilities) == []
    pm.register(Gate())
    assert asyncio.run(capability.for_run(None)) is capability


def test_plugins_registered_after_the_agent_was_built_are_honoured_from_the_next_run(
    monkeypatch,
):
    called = kit_hooks_called(monkeypatch)
    pm = PluginManager(aggregate_turns=False)
    script = Script(command="rm -rf /")
    agent, ran = make_agent(pm, script)
    run(agent, "clean up")
    assert ran == ["rm -rf /"] and called == []  # nobody listened: no hook
    pm.register(Gate())
    script.requests.clear()
    result = run(agent, "clean up")
    assert ran == ["rm -rf /"]  # the gate blocked the second run's call
    assert result.output == "Tool said: Error: dangerous command"
    assert "wrap_tool_execute" in called
    # and unregistering the gate makes runs hook-free again
    for plugin in list(pm.get_plugins()):
        if isinstance(plugin, Gate):
            pm.unregister(plugin)
    called.clear()
    script.requests.clear()
    run(agent, "clean up")
    assert ran == ["rm -rf /", "rm -rf /"] and called == []


def test_a_plugin_registered_during_a_run_sees_the_rest_of_it(host):
    pm, _ = host

    class RegistersTheGate:
        @hookimpl
        def on_agent_start(self, event):
            pm.register(Gate(), name="late-gate")

    pm.register(RegistersTheGate())
    script = Script(command="rm -rf /")
    agent, ran = make_agent(pm, script)
    assert run(agent, "clean up").output == "Tool said: Error: dangerous command"
    assert ran == []


def test_a_retry_handler_registered_later_gets_the_next_runs_retries():
    from pydantic_ai.capabilities import AbstractCapability
    from pydantic_ai.exceptions import RetryModelRequest

    class RetryFirstAnswerOfEachRun(AbstractCapability):
        async def for_run(self, ctx):
            return RetryFirstAnswerOfEachRun()

        def __init__(self):
            self.rejected = False

        async def after_model_request(self, ctx, *, request_context, response):
            if not self.rejected:
                self.rejected = True
                raise RetryModelRequest()
            return response

    class Retries:
        def __init__(self):
            self.attempts = []

        @hookimpl
        def on_retry(self, event):
            self.attempts.append(event.attempt)

    pm = PluginManager()
    pm.register(Gate())
    script = Script()
    agent = Agent(
        FunctionModel(script, model_name="gpt-4o"),
        capabilities=[KitHooks(pm), RetryFirstAnswerOfEachRun()],
    )

    @agent.tool_plain
    def shell(command: str) -> str:
        return "ok"

    run(agent, "go")
    retries = Retries()
    pm.register(retries)
    script.requests.clear()
    run(agent, "go")
    assert retries.attempts == [1]


def test_only_streamed_parts_reach_on_event_and_only_when_streaming():
    from pydantic_ai.messages import FinalResultEvent, PartStartEvent

    start = PartStartEvent(index=0, part=TextPart("hi"))
    assert not KitHooks(PluginManager()).listens_to(start)
    assert KitHooks(PluginManager(), stream=True).listens_to(start)
    assert not KitHooks(PluginManager(), stream=True).listens_to(
        FinalResultEvent(tool_name=None, tool_call_id=None)
    )


def emitted_events(agent_factory, prompt="go") -> set[str]:
    pm = PluginManager(context=Context(session_id="s1"))
    log = Recorder()
    pm.register(log, name="log")
    agent = agent_factory(pm)
    with contextlib.suppress(RuntimeError):  # the failing scenario
        run(agent, prompt)
    return set(log.names())


def test_every_event_a_run_can_emit_is_in_emitted():
    """EMITTED decides whether a run gets hooks: an event missing from it could be lost."""
    from pydantic_ai.capabilities import AbstractCapability
    from pydantic_ai.exceptions import RetryModelRequest
    from pydantic_ai.messages import ThinkingPart

    from kithooks.adapters.pydantic_ai import EMITTED

    def plain(pm):
        return make_agent(pm, Script())[0]

    def streaming(pm):
        agent = Agent(
            FunctionModel(stream_function=stream_script()), capabilities=[KitHooks(pm, stream=True)]
        )

        @agent.tool_plain
        def shell(command: str) -> str:
            return "ok"

        return agent

    class RetryOnce(AbstractCapability):
        def __init__(self):
            self.rejected = False

        async def after_model_request(self, ctx, *, request_context, response):
            if not self.rejected:
                self.rejected = True
                raise RetryModelRequest()
            return response

    def retrying(pm):
        agent = Agent(
            FunctionModel(Script(), model_name="gpt-4o"), capabilities=[KitHooks(pm), RetryOnce()]
        )

        @agent.tool_plain
        def shell(command: str) -> str:
            return "ok"

        return agent

    def thinking(pm):
        def think(messages, info):
            return ModelResponse(parts=[ThinkingPart("hmm", id="r1"), TextPart("done")])

        return Agent(FunctionModel(think), capabilities=[KitHooks(pm)])

    def failing(pm):
        def fail(messages, info):
            raise RuntimeError("provider down")

        return Agent(FunctionModel(fail), capabilities=[KitHooks(pm)])

    seen: set[str] = set()
    for factory in (plain, streaming, retrying, thinking, failing):
        seen |= emitted_events(factory)
    assert {"retry", "reasoning_start", "error", "tool_call_input_delta"} <= seen
    assert seen <= {et.value for et in EMITTED}


@pytest.mark.parametrize(
    "event_type",
    [
        "input",
        "before_agent_start",
        "context_prepare",
        "agent_start",
        "message_start",
        "prepare_step",
        "step_start",
        "message_update",
        "tool_call_input_start",
        "tool_call_input_delta",
        "tool_call_input_end",
        "tool_call",
        "tool_execution_start",
        "tool_execution_end",
        "tool_result",
        "step_finish",
        "llm_usage",
        "message_end",
        "agent_end",
    ],
)
def test_a_plugin_of_any_one_event_registered_after_the_agent_was_built_gets_it(event_type):
    pm = PluginManager(aggregate_turns=False)
    script = Script()
    agent, _ = make_agent(pm, script)
    run(agent, "go")  # a run with no plugin: no hook
    script.requests.clear()
    seen: list[str] = []

    class One:
        pass

    setattr(
        One,
        "on_" + event_type,
        hookimpl(lambda self, event: seen.append(event.event_type.value)),
    )
    pm.register(One())
    run(agent, "go")
    assert seen and set(seen) == {event_type}


def test_a_run_nested_in_a_tool_of_the_same_agent_is_its_own_turn(host):
    """Run state lives in a context variable: the inner run's must not leak into the outer's."""
    pm, log = host

    def respond(messages, info):
        prompt = next(p.content for m in messages for p in m.parts if isinstance(p, UserPromptPart))
        returned = [p for m in messages for p in m.parts if isinstance(p, ToolReturnPart)]
        if prompt == "outer" and not returned:
            return ModelResponse(parts=[ToolCallPart("ask", {"question": "inner"}, "c1")])
        return ModelResponse(parts=[TextPart(f"{prompt} done")])

    agent = Agent(FunctionModel(respond), capabilities=[KitHooks(pm)])

    @agent.tool_plain
    async def ask(question: str) -> str:
        return (await agent.run(question)).output

    assert run(agent, "outer").output == "outer done"
    outer, inner = log.turns()
    assert log.names(inner) == [n for n in log.names(inner) if n != "tool_call"]
    assert log.names(inner)[0] == "input" and log.names(inner)[-1] == "agent_end"
    outer_names = log.names(outer)
    assert outer_names[0] == "input" and outer_names[-1] == "agent_end"
    assert {"tool_call", "tool_result", "step_finish"} <= set(outer_names)
    ends = {t: e for t, e in log.events if isinstance(e, kithooks.AgentEndEvent)}
    assert ends[outer].response == "outer done" and ends[inner].response == "inner done"
    assert (ends[outer].tool_call_count, ends[inner].tool_call_count) == (1, 0)


def test_a_tool_calls_parsed_arguments_are_not_parsed_again(host, monkeypatch):
    pm, log = host

    def refuse(text):
        raise AssertionError("parsed again")

    monkeypatch.setattr(kithooks.events, "parse_json_object", refuse)
    agent, ran = make_agent(pm, Script(command="ls -la"))
    run(agent, "go")
    (call,) = log.of(kithooks.ToolCallEvent)
    assert call.input == json.dumps({"command": "ls -la"})
    assert call.parsed_args == {"command": "ls -la"} and ran == ["ls -la"]


def test_step_events_are_the_host_helpers_for_the_same_response():
    """step_finish / llm_usage built in the adapter equal hosting.step_events' (a provider in
    the model's name, host prices, cache tokens counted inside pydantic-ai's input)."""
    from kithooks.hosting import step_events
    from kithooks.usage import ModelPrice, Usage

    prices = {"acme/m1": ModelPrice(input=2.0, output=8.0, cache_read=0.5)}
    pm = PluginManager()
    log = Recorder()
    pm.register(log, name="log")

    def answer(messages, info):
        return ModelResponse(
            parts=[TextPart("hi")],
            usage=RequestUsage(
                input_tokens=1_000, output_tokens=50, cache_read_tokens=300, cache_write_tokens=100
            ),
            model_name="acme/m1",
            provider_response_id="req-7",
            finish_reason="length",
        )

    agent = Agent(
        FunctionModel(answer, model_name="acme/m1"), capabilities=[KitHooks(pm, prices=prices)]
    )
    run(agent, "go")
    expected = step_events(
        pm,
        0,
        provider="",
        model="acme/m1",
        usage=Usage(
            input_tokens=600, output_tokens=50, cache_read_tokens=300, cache_write_tokens=100
        ),
        finish_reason="length",
        request_id="req-7",
        prices=prices,
    )
    got = [e for _, e in log.events if e.event_type in ("step_finish", "llm_usage")]
    assert got == expected
    assert got[1].provider == "acme" and got[1].cost > 0


# -- output functions: host code the model calls -------------------------------------------


class OutputScript:
    """Step 0 calls the output tool with ``command``; step 1 (after a retry) with ``then``."""

    def __init__(self, command: str, then: str = "ls") -> None:
        self.commands = [command, then]
        self.requests: list[list[ModelMessage]] = []

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.requests.append(list(messages))
        step = min(len(self.requests), 2) - 1
        return ModelResponse(
            parts=[
                ToolCallPart(
                    info.output_tools[0].name,
                    {"command": self.commands[step]},
                    tool_call_id=f"o{len(self.requests)}",
                )
            ]
        )


def command_agent(pm: PluginManager, model: FunctionModel, wrap=None, **kwargs):
    """An agent whose output function ``run_command`` records the commands it ran, as
    ``ToolOutput(run_command, name="bash")`` unless ``wrap`` wraps it otherwise."""
    from pydantic_ai import ToolOutput

    ran: list[str] = []

    def run_command(command: str) -> str:
        ran.append(command)
        return f"ran {command}"

    output = wrap(run_command) if wrap else ToolOutput(run_command, name="bash")
    agent = Agent(model, output_type=output, capabilities=[KitHooks(pm)], **kwargs)
    return agent, ran


def output_agent(pm: PluginManager, script: OutputScript, **kwargs):
    return command_agent(pm, FunctionModel(script, model_name="gpt-4o"), **kwargs)


def streamed_command_is_blocked(pm: PluginManager, *chunks: str) -> list[str]:
    """Stream the output tool call's arguments in ``chunks`` through ``run_stream``; the
    run fails (a block cannot be retried there). Returns the commands that ran."""
    from pydantic_ai.exceptions import UnexpectedModelBehavior

    async def stream(messages, info):
        name = info.output_tools[0].name
        yield {0: DeltaToolCall(name=name, json_args=chunks[0], tool_call_id="o1")}
        for chunk in chunks[1:]:
            yield {0: DeltaToolCall(json_args=chunk)}

    agent, ran = command_agent(pm, FunctionModel(stream_function=stream))

    async def consume():
        async with agent.run_stream("go") as result:
            async for _ in result.stream_output(debounce_by=None):
                pass

    with pytest.raises(UnexpectedModelBehavior):
        asyncio.run(asyncio.wait_for(consume(), 10))
    return ran


def test_a_blocked_output_function_never_runs_and_the_model_sees_the_error(host):
    pm, log = host
    pm.register(Gate())
    script = OutputScript("rm -rf /", then="ls")
    agent, ran = output_agent(pm, script, retries=2)
    result = run(agent, "clean up")
    assert ran == ["ls"]
    assert result.output == "ran ls"
    returned = script.requests[1][-1].parts[0]
    assert returned.content == "Error: dangerous command"
    calls = log.of(kithooks.ToolCallEvent)
    assert [(e.tool_name, e.tool_call_id, e.parsed_args) for e in calls] == [
        ("bash", "o1", {"command": "rm -rf /"}),
        ("bash", "o2", {"command": "ls"}),
    ]


def test_an_output_function_a_guard_always_blocks_fails_the_run_without_running(host):
    from pydantic_ai.exceptions import UnexpectedModelBehavior

    pm, _ = host
    pm.register(Gate())
    agent, ran = output_agent(pm, OutputScript("rm -rf /", then="rm -rf ~"))
    with pytest.raises(UnexpectedModelBehavior):
        run(agent, "clean up")
    assert ran == []


def test_an_output_functions_args_and_result_are_rewritten_like_a_tools(host):
    pm, log = host

    class Rewrite:
        @hookimpl
        def on_tool_call(self, event):
            return kithooks.ToolCallResult(args={"command": "ls -a"})

        @hookimpl
        def on_tool_result(self, event):
            return kithooks.ToolResultResult(content=event.content.upper())

    pm.register(Rewrite())
    agent, ran = output_agent(pm, OutputScript("ls"))
    result = run(agent, "go")
    assert ran == ["ls -a"]
    assert result.output == "RAN LS -A"
    (end,) = log.of(kithooks.ToolResultEvent)
    assert (end.tool_name, end.content) == ("bash", "ran ls -a")


def test_a_text_output_function_is_guarded_under_its_own_name(host):
    from pydantic_ai import TextOutput

    pm, log = host

    class TextGate:
        @hookimpl
        def on_tool_call(self, event):
            if "rm -rf" in event.parsed_args["value"]:
                return kithooks.ToolCallResult(block=True, reason="no")
            return None

    pm.register(TextGate())
    ran: list[str] = []

    def shell_text(text: str) -> str:
        ran.append(text)
        return text

    answers = iter(["rm -rf /", "ls"])
    agent = Agent(
        FunctionModel(lambda m, i: ModelResponse(parts=[TextPart(next(answers))])),
        output_type=TextOutput(shell_text),
        capabilities=[KitHooks(pm)],
        retries=2,
    )
    assert run(agent, "go").output == "ls"
    assert ran == ["ls"]
    names = [e.tool_name for e in log.of(kithooks.ToolCallEvent)]
    assert names == ["shell_text", "shell_text"]


def test_plain_output_is_not_a_tool_call(host):
    pm, log = host
    pm.register(Gate())
    agent = Agent(
        FunctionModel(lambda m, i: ModelResponse(parts=[TextPart("rm -rf /")])),
        capabilities=[KitHooks(pm)],
    )
    assert run(agent, "go").output == "rm -rf /"
    assert not log.of(kithooks.ToolCallEvent)


def test_a_streamed_output_function_is_guarded_at_every_call(host):
    """run_stream calls an output function on partial output too: each call is guarded."""
    pm, log = host
    pm.register(Gate())
    ran = streamed_command_is_blocked(pm, '{"command": ', '"rm -rf /"}')
    assert ran == []
    assert {e.parsed_args["command"] for e in log.of(kithooks.ToolCallEvent)} == {"rm -rf /"}


@pytest.mark.parametrize("kind", ["NativeOutput", "PromptedOutput"])
def test_a_native_or_prompted_output_function_is_guarded_with_its_argument_names(host, kind):
    import pydantic_ai

    pm, log = host
    pm.register(Gate())
    answers = iter(['{"command": "rm -rf /"}', '{"command": "ls"}'])
    agent, ran = command_agent(
        pm,
        FunctionModel(lambda m, i: ModelResponse(parts=[TextPart(next(answers))])),
        getattr(pydantic_ai, kind),
        retries=2,
    )
    assert run(agent, "go").output == "ran ls"
    assert ran == ["ls"]
    calls = log.of(kithooks.ToolCallEvent)
    assert [(e.tool_name, e.parsed_args) for e in calls] == [
        ("run_command", {"command": "rm -rf /"}),
        ("run_command", {"command": "ls"}),
    ]


def test_a_partial_output_is_guarded_with_the_value_the_function_gets(host):
    """run_stream validates partial JSON and calls the function with it: the guard must see
    that value, not the unparsed partial arguments."""
    pm, log = host
    pm.register(Gate())
    ran = streamed_command_is_blocked(pm, '{"command": "rm -rf /', 'tmp/scratch"}')
    assert ran == []
    assert log.of(kithooks.ToolCallEvent)[0].parsed_args == {"command": "rm -rf /"}


class Report(BaseModel):
    text: str
    secret: str


def make_report(text: str) -> Report:
    return Report(text=text, secret="hunter2")


def test_a_model_result_rewritten_stays_a_model_and_a_bad_rewrite_is_a_clear_error(host):
    from pydantic_ai import ToolOutput

    pm, _ = host

    class Redact:
        @hookimpl
        def on_tool_result(self, event):
            return kithooks.ToolResultResult(content=event.content.replace("hunter2", "***"))

    pm.register(Redact(), name="redact")

    def answer(messages, info):
        call = ToolCallPart(info.output_tools[0].name, {"text": "hi"}, tool_call_id="o1")
        return ModelResponse(parts=[call])

    agent = Agent(
        FunctionModel(answer), output_type=ToolOutput(make_report), capabilities=[KitHooks(pm)]
    )
    assert run(agent, "go").output == Report(text="hi", secret="***")

    pm.unregister(name="redact")

    class Garble:
        @hookimpl
        def on_tool_result(self, event):
            return kithooks.ToolResultResult(content="not json")

    pm.register(Garble())
    with pytest.raises(TypeError, match="output function 'final_result' cannot stand for"):
        run(agent, "go")


def test_an_args_rewrite_that_does_not_fit_the_output_function_is_a_clear_error(host):
    from pydantic_ai import NativeOutput

    pm, _ = host

    class Drop:
        @hookimpl
        def on_tool_call(self, event):
            return kithooks.ToolCallResult(args={"a": 5})

    pm.register(Drop())

    def mul(a: int, b: int) -> int:
        return a * b

    agent = Agent(
        FunctionModel(lambda m, i: ModelResponse(parts=[TextPart('{"a": 2, "b": 3}')])),
        output_type=NativeOutput(mul),
        capabilities=[KitHooks(pm)],
    )
    with pytest.raises(TypeError, match=r"output function 'mul' gives \{\"a\": 5\}"):
        run(agent, "go")


def test_a_choices_action_is_guarded_like_an_output_function(host):
    """A callable choice value is host code pydantic-ai calls for the picked key."""
    from pydantic_ai import Choice, Choices

    pm, log = host
    ran: list[str] = []

    def wipe() -> str:
        ran.append("wipe")
        return "wiped"

    def keep() -> str:
        ran.append("keep")
        return "kept"

    class NoWipe:
        @hookimpl(tools="wipe")
        def on_tool_call(self, event):
            return kithooks.ToolCallResult(block=True, reason="no wiping")

    pm.register(NoWipe())
    action = Choices({"wipe": Choice("delete it", value=wipe), "keep": Choice("keep", value=keep)})
    picks = iter(["wipe", "keep"])

    def pick(messages, info):
        args = {"response": next(picks)}
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, args, "o1")])

    agent = Agent(
        FunctionModel(pick),
        output_type=action,
        capabilities=[KitHooks(pm)],
        retries=2,
    )
    assert run(agent, "go").output == "kept"
    assert ran == ["keep"]
    calls = log.of(kithooks.ToolCallEvent)
    assert [(e.tool_name, e.parsed_args) for e in calls] == [
        ("wipe", {"choice": "wipe"}),
        ("keep", {"choice": "keep"}),
    ]


@dataclasses.dataclass
class Target:
    path: str


def delete(target: Target) -> str:
    return f"deleted {target.path}"


def test_a_dataclass_argument_is_shown_as_its_fields_and_rebuilt_after_a_rewrite(host):
    from pydantic_ai import ToolOutput

    pm, log = host

    class Redirect:
        @hookimpl
        def on_tool_call(self, event):
            if event.parsed_args["path"] == "/etc/passwd":
                return kithooks.ToolCallResult(args={"path": "/tmp/scratch"})
            return None

    pm.register(Redirect())

    def answer(messages, info):
        call = ToolCallPart(info.output_tools[0].name, {"path": "/etc/passwd"}, tool_call_id="o1")
        return ModelResponse(parts=[call])

    agent = Agent(
        FunctionModel(answer), output_type=ToolOutput(delete), capabilities=[KitHooks(pm)]
    )
    assert run(agent, "go").output == "deleted /tmp/scratch"
    assert log.of(kithooks.ToolCallEvent)[0].parsed_args == {"path": "/etc/passwd"}


def test_a_json_result_rewritten_to_another_type_is_a_clear_error(host):
    from pydantic_ai import ToolOutput

    pm, _ = host

    class Garble:
        @hookimpl
        def on_tool_result(self, event):
            return kithooks.ToolResultResult(content='"lots"')

    pm.register(Garble())

    def count(n: int) -> int:
        return n

    def answer(messages, info):
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, {"n": 3}, "o1")])

    agent = Agent(FunctionModel(answer), output_type=ToolOutput(count), capabilities=[KitHooks(pm)])
    with pytest.raises(TypeError, match="cannot stand for its int result: the rewrite is a str"):
        run(agent, "go")


def save(name: str, content: Base64Bytes) -> str:
    return f"saved {len(content)} bytes"


def test_arguments_pydantic_cannot_serialize_are_shown_as_text_not_a_crash(host):
    from pydantic_ai import ToolOutput

    pm, log = host

    def answer(messages, info):
        args = {"name": "a.bin", "content": "/w=="}
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, args, "o1")])

    agent = Agent(FunctionModel(answer), output_type=ToolOutput(save), capabilities=[KitHooks(pm)])
    assert run(agent, "go").output == "saved 1 bytes"
    assert log.of(kithooks.ToolCallEvent)[0].parsed_args["name"] == "a.bin"
