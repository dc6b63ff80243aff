"""kithooks plugins inside LangChain v1 agents, offline with a scripted chat model.

The promises every adapter keeps are in test_conformance_langchain.py; these are the
LangChain-specific ones (thread ids, injection, context windows, ToolMessage status,
streaming modes, interrupts, turns revived by a fresh middleware or after an outer retry,
the example agent).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("langchain.agents")

from langchain.agents import create_agent
from langchain.agents.middleware import (
    HumanInTheLoopMiddleware,
    ModelRetryMiddleware,
    ToolCallLimitMiddleware,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command, interrupt
from pydantic import Field

import kithooks
from kithooks import Context, PluginManager, hookimpl
from kithooks.adapters.langchain import KitHooksMiddleware, describe_message
from kithooks.testing.conformance import (
    TIMEOUT,
    Recorder,
    Reply,
    Script,
    ToolCall,
    standard_script,
)


class ScriptedChatModel(BaseChatModel):
    """A chat model that answers with a conformance Script (tool calls and usage included)."""

    script: Any
    seen: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        self.seen.append(list(messages))
        reply = self.script.respond([describe_message(m) for m in messages])
        cached = reply.cache_read_tokens + reply.cache_write_tokens
        message = AIMessage(
            content=reply.text,
            tool_calls=[
                {"name": c.name, "args": dict(c.args), "id": c.id} for c in reply.tool_calls
            ],
            usage_metadata={
                "input_tokens": reply.input_tokens + cached,  # LangChain counts cache in input
                "output_tokens": reply.output_tokens,
                "total_tokens": reply.input_tokens + cached + reply.output_tokens,
                "input_token_details": {
                    "cache_read": reply.cache_read_tokens,
                    "cache_creation": reply.cache_write_tokens,
                },
            },
            response_metadata={
                "model_name": reply.model,
                "model_provider": reply.provider,
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def answer_of(state: dict[str, Any]) -> str:
    """The text of the last AI message of a final agent state."""
    last = [m for m in state["messages"] if isinstance(m, AIMessage)]
    return last[-1].text if last else ""


def prompt(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


@pytest.fixture
def host():
    pm = PluginManager(context=Context(session_id="s1"))
    rec = Recorder()
    pm.register(rec, name="recorder")
    return pm, rec


def make_agent(pm, script=None, *, tools=None, hooks="auto", **kwargs):
    script = script or standard_script()
    model = ScriptedChatModel(script=script, seen=[])

    @tool
    def shell(command: str) -> str:
        """Run a shell command."""
        return script.shell(command)

    agent = create_agent(
        model,
        tools if tools is not None else [shell],
        middleware=[KitHooksMiddleware(pm, hooks=hooks)],
        **kwargs,
    )
    return agent, model, script


def test_session_id_is_the_runs_thread_id_and_turn_id_its_run_id(host):
    pm, _ = host
    seen = []

    class Ids:
        @hookimpl
        def on_agent_start(self, event, ctx):
            seen.append((ctx.session_id, ctx.turn_id))

    pm.register(Ids())
    agent, _, _ = make_agent(pm)
    run_id = "0d4b6f4e-5e3e-4c4e-9b0e-3f1f4a0e6a11"
    agent.invoke(prompt("a"), {"configurable": {"thread_id": "thread-7"}, "run_id": run_id})
    agent.invoke(prompt("b"))
    assert seen[0] == ("thread-7", run_id)
    assert seen[1][0] == "s1" and seen[1][1] and seen[1][1] != run_id
    assert pm.context.session_id == "s1"  # the manager's own context is untouched


def test_before_agent_start_injects_a_system_prompt_and_text_on_every_call(host):
    pm, _ = host

    class Rules:
        @hookimpl
        def on_before_agent_start(self, event):
            return kithooks.BeforeAgentStartResult(
                inject_text="Project rules: be brief.", system_prompt="Extra system."
            )

    pm.register(Rules())
    agent, model, _ = make_agent(pm, system_prompt="You are helpful.")
    agent.invoke(prompt("hi"))
    for request in model.seen:
        assert isinstance(request[0], SystemMessage)
        assert request[0].text == "You are helpful.\n\nExtra system."
        humans = [m.text for m in request if isinstance(m, HumanMessage)]
        assert humans == ["Project rules: be brief.", "hi"]
    assert len(model.seen) == 2


def test_an_input_transform_is_kept_in_the_agents_state(host):
    pm, _ = host

    class Upper:
        @hookimpl
        def on_input(self, event):
            return kithooks.InputResult(action="transform", text=event.text.upper())

    pm.register(Upper())
    agent, _, _ = make_agent(pm)
    state = agent.invoke(prompt("list files"))
    humans = [m.text for m in state["messages"] if isinstance(m, HumanMessage)]
    assert humans == ["LIST FILES"]


def test_handled_input_answers_with_handled_output(host):
    pm, rec = host

    class Slash:
        @hookimpl
        def on_input(self, event):
            return kithooks.InputResult(action="handled")

    pm.register(Slash())
    script = standard_script()
    agent = create_agent(
        ScriptedChatModel(script=script, seen=[]),
        [],
        middleware=[KitHooksMiddleware(pm, handled_output="(handled by a plugin)")],
    )
    state = agent.invoke(prompt("/help"))
    assert answer_of(state) == "(handled by a plugin)"
    assert script.requests == [] and rec.names() == ["input"]


def test_context_prepare_and_prepare_step_rewrite_the_calls_messages(host):
    pm, rec = host

    class Window:
        @hookimpl
        def on_context_prepare(self, event):
            kept = [m for m in event.messages if "secret" not in m.content]
            note = kithooks.ContextMessage(index=-1, role="system", content="Answer in French.")
            return kithooks.ContextPrepareResult(messages=(note, *kept))

        @hookimpl
        def on_prepare_step(self, event):
            if event.step_number == 1:
                extra = kithooks.ContextMessage(index=-1, role="user", content="Be terse.")
                return kithooks.PrepareStepResult(messages=(*event.messages, extra))
            return None

    pm.register(Window())
    replies = standard_script().replies  # the history holds one answer already: skip one
    agent, model, _ = make_agent(pm, Script([replies[0], *replies]))
    history = [
        {"role": "user", "content": "my secret is 42"},
        {"role": "assistant", "content": "noted"},
        {"role": "user", "content": "what now?"},
    ]
    agent.invoke({"messages": history})
    first = [describe_message(m) for m in model.seen[0]]
    assert first == [("system", "Answer in French."), ("assistant", "noted"), ("user", "what now?")]
    assert describe_message(model.seen[1][-1]) == ("user", "Be terse.")
    (window,) = rec.of(kithooks.ContextPrepareEvent)
    assert [(m.index, m.role) for m in window.messages] == [
        (0, "user"),
        (1, "assistant"),
        (2, "user"),
    ]


def test_a_block_is_an_error_tool_message_reading_like_langchains_own(host):
    pm, _ = host

    class Gate:
        @hookimpl
        def on_tool_call(self, event):
            return kithooks.ToolCallResult(block=True)

    pm.register(Gate())
    agent, _, script = make_agent(pm)
    state = agent.invoke(prompt("go"))
    (message,) = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert message.status == "error" and message.tool_call_id == "c1" and message.name == "shell"
    assert message.text == "Error: blocked by extension"
    assert script.ran == []


def test_a_result_marked_as_an_error_reaches_the_model_as_an_error_tool_message(host):
    pm, _ = host

    class Fail:
        @hookimpl
        def on_tool_result(self, event):
            return kithooks.ToolResultResult(content="permission denied", is_error=True)

    pm.register(Fail())
    agent, _, script = make_agent(pm)
    state = agent.invoke(prompt("go"))
    (message,) = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert (message.text, message.status) == ("permission denied", "error")
    assert script.ran == ["ls"] and answer_of(state) == "Tool said: permission denied"


def test_a_tool_that_raises_ends_the_turn_with_error(host):
    pm, rec = host

    @tool
    def shell(command: str) -> str:
        """Run a shell command."""
        raise OSError("disk on fire")

    agent, _, _ = make_agent(pm, tools=[shell])
    with pytest.raises(OSError, match="disk on fire"):
        agent.invoke(prompt("go"))
    (result,) = rec.of(kithooks.ToolResultEvent)
    assert result.is_error and "disk on fire" in result.content
    assert rec.names()[-2:] == ["error", "agent_end"]
    assert rec.of(kithooks.AgentEndEvent)[0].stop_reason == "error"


@pytest.mark.parametrize("stream_mode", ["values", "updates", "messages"])
def test_every_stream_mode_fires_the_same_events(host, stream_mode):
    pm, rec = host
    agent, _, _ = make_agent(pm)
    agent.invoke(prompt("go"))
    invoked = rec.names()
    rec.events.clear()
    chunks = list(agent.stream(prompt("go"), stream_mode=stream_mode))
    assert chunks and rec.names() == invoked


def test_a_sync_run_inside_a_running_loop_awaits_async_plugins(host):
    pm, _ = host

    class AsyncGate:
        @hookimpl
        async def on_tool_call(self, event):
            await asyncio.sleep(0)
            return kithooks.ToolCallResult(block=True, reason="async says no")

        @hookimpl
        async def on_input(self, event):
            return kithooks.InputResult(action="transform", text="changed")

    pm.register(AsyncGate())
    agent, model, script = make_agent(pm)

    async def main():
        return agent.invoke(prompt("go"))  # blocking call from async code, on purpose

    state = asyncio.run(asyncio.wait_for(main(), 60))
    assert answer_of(state) == "Tool said: Error: async says no" and script.ran == []
    assert [m.text for m in model.seen[0] if isinstance(m, HumanMessage)] == ["changed"]


def test_reasoning_blocks_emit_reasoning_start(host):
    pm, rec = host

    class Thinking(ScriptedChatModel):
        def _generate(self, messages, stop=None, run_manager=None, **kw):
            message = AIMessage(
                content=[
                    {"type": "reasoning", "id": "r1", "reasoning": "hmm"},
                    {"type": "text", "text": "Done."},
                ]
            )
            return ChatResult(generations=[ChatGeneration(message=message)])

    agent = create_agent(
        Thinking(script=standard_script(), seen=[]), [], middleware=[KitHooksMiddleware(pm)]
    )
    agent.invoke(prompt("go"))
    assert [e.id for e in rec.of(kithooks.ReasoningStartEvent)] == ["r1"]
    assert [e.chunk for e in rec.of(kithooks.MessageUpdateEvent)] == ["Done."]
    (end,) = rec.of(kithooks.MessageEndEvent)
    assert end.content == "Done."


def asking_script() -> Script:
    """Step 0 calls ``ask``; step 1 answers ``They said: {tool}``."""
    return Script(
        [
            Reply(text="Asking.", tool_calls=(ToolCall(name="ask", args={"q": "ok?"}),)),
            Reply(text="They said: {tool}"),
        ]
    )


def asking_agent(pm, script, saver):
    """An agent whose one tool, ``ask``, interrupts the run for a person's answer."""

    @tool
    def ask(q: str) -> str:
        """Ask the person."""
        return str(interrupt(q))

    model = ScriptedChatModel(script=script, seen=[])
    return create_agent(model, [ask], middleware=[KitHooksMiddleware(pm)], checkpointer=saver)


def test_an_interrupt_pauses_the_turn_and_resuming_finishes_it(host):
    pm, rec = host
    agent = asking_agent(pm, asking_script(), InMemorySaver())
    config = {"configurable": {"thread_id": "t1"}}
    agent.invoke(prompt("go"), config)
    assert "agent_end" not in rec.names() and "error" not in rec.names()
    state = agent.invoke(Command(resume="yes"), config)
    assert answer_of(state) == "They said: yes"
    assert rec.names()[-2:] == ["message_end", "agent_end"]
    (end,) = rec.of(kithooks.AgentEndEvent)
    assert end.llm_call_count == 2 and end.stop_reason == "stop"
    assert [r.content for r in rec.of(kithooks.ToolResultEvent)] == ["yes"]
    names = rec.names()
    assert names.count("tool_call") == names.count("tool_execution_start") == 1  # not asked again
    assert end.tool_call_count == 1


def test_no_plugins_leave_the_run_alone():
    pm = PluginManager(aggregate_turns=False)
    agent, _, script = make_agent(pm)
    state = agent.invoke(prompt("go"))
    assert answer_of(state) == "Tool said: output of ls" and script.ran == ["ls"]
    assert "kithooks_turn" not in state


def test_handlers_for_other_tools_leave_a_call_alone(host):
    pm, rec = host

    class ShellGate:
        @hookimpl(tools="shell")
        def on_tool_call(self, event):
            return kithooks.ToolCallResult(block=True, reason="no shell")

    pm.register(ShellGate())
    script = Script(
        [
            Reply(text="", tool_calls=(ToolCall(name="read", args={"path": "a"}, id="r1"),)),
            Reply(text="", tool_calls=(ToolCall(name="shell", args={"command": "ls"}, id="s1"),)),
            Reply(text="{tool}"),
        ]
    )
    read_paths = []

    @tool
    def read(path: str) -> str:
        """Read a file."""
        read_paths.append(path)
        return "contents"

    agent, _, _ = make_agent(pm, script, tools=[read, *_shell_tool(script)])
    state = agent.invoke(prompt("go"))
    assert read_paths == ["a"] and script.ran == []
    assert answer_of(state) == "Error: no shell"
    assert [e.tool_name for e in rec.of(kithooks.ToolCallEvent)] == ["read", "shell"]


def _shell_tool(script):
    @tool
    def shell(command: str) -> str:
        """Run a shell command."""
        return script.shell(command)

    return [shell]


class _LateGate:
    @hookimpl
    def on_tool_call(self, event):
        return kithooks.ToolCallResult(block=True, reason="late gate")


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_a_gate_registered_after_an_always_hooked_agent_was_built_is_honoured(mode):
    pm = PluginManager(aggregate_turns=False)
    agent, _, script = make_agent(pm, hooks="always")

    def run() -> dict[str, Any]:
        if mode == "invoke":
            return agent.invoke(prompt("go"))
        return asyncio.run(agent.ainvoke(prompt("go")))

    assert answer_of(run()) == "Tool said: output of ls" and script.ran == ["ls"]
    pm.register(_LateGate())
    assert answer_of(run()) == "Tool said: Error: late gate" and script.ran == ["ls"]


def _refused(pm: PluginManager, plugin: object, name: str, event: str, line: int) -> None:
    """Registering ``plugin`` as ``name`` is refused, naming it, the event and the line the
    middleware was built at; it is left unregistered."""
    with pytest.raises(ValueError) as refused:
        pm.register(plugin, name=name)
    text = str(refused.value)
    assert f"'{name}'" in text and f"'{event}'" in text and "hooks='always'" in text
    assert f"{__file__}:{line}" in text
    assert not pm.is_registered(plugin) and not pm.plugins_handle([event])


def test_built_while_no_plugin_listens_the_agent_gets_no_hook_and_later_plugins_are_refused():
    """hooks="auto" (the default) with no listener: the bare agent's graph, no state channel;
    registering a plugin the agent would never ask is refused loudly, for good (the agent
    holds no reference the manager could watch), naming the plugin, the event and where the
    middleware was built; the refused plugin is not registered."""
    pm = PluginManager()  # the turn aggregator alone counts for no one
    middleware = KitHooksMiddleware(pm)
    line = inspect.currentframe().f_lineno - 1
    assert not middleware.hooked and isinstance(middleware, KitHooksMiddleware)
    agent, _, _ = make_agent(pm)  # the bare agent's graph: no node, no channel of ours
    assert set(agent.get_graph().nodes) == {"__start__", "model", "tools", "__end__"}
    assert "kithooks_turn" not in agent.builder.channels
    assert answer_of(agent.invoke(prompt("go"))) == "Tool said: output of ls"
    del agent, middleware
    _refused(pm, _LateGate(), "late-gate", "tool_call", line)

    class Sessions:  # an event the agent never emits: nothing to refuse
        @hookimpl
        def on_session_start(self, event):
            pass

    pm.register(Sessions())
    pm.register(kithooks.TurnAggregator(), name="another-aggregator")  # counts for no one

    class CountingGuard(kithooks.TurnAggregator):  # a subclass may guard: refused
        @hookimpl
        def on_tool_call(self, event):
            return None

    with pytest.raises(ValueError, match="'counting-guard' handles"):
        pm.register(CountingGuard(), name="counting-guard")


def test_built_while_a_plugin_listens_the_agent_is_hooked():
    pm = PluginManager(aggregate_turns=False)
    pm.register(_LateGate())
    assert KitHooksMiddleware(pm).hooked
    pm.unregister(name="_LateGate")
    middleware = KitHooksMiddleware(pm, hooks="always")
    assert middleware.hooked
    pm.register(_LateGate())  # nothing was left unhooked: no refusal


@given(events=st.sets(st.sampled_from(sorted(kithooks.EventType, key=str))))
@settings(max_examples=40, deadline=None)
def test_an_unhooked_middleware_refuses_exactly_the_plugins_of_events_it_can_emit(events):
    """For any set of events a plugin handles, registering it after an unhooked middleware
    is refused exactly when one of them is an event the agent can emit."""
    from kithooks.adapters.langchain import EMITTED

    pm = PluginManager(aggregate_turns=False)
    assert not KitHooksMiddleware(pm).hooked
    plugin = type(
        "Plugin",
        (),
        {f"on_{e}": hookimpl(lambda self, event: None) for e in events},
    )()
    if events & {str(e) for e in EMITTED}:
        with pytest.raises(ValueError, match="would never ask it"):
            pm.register(plugin)
        assert not pm.is_registered(plugin)
    else:
        pm.register(plugin)


def test_the_type_of_an_unhooked_middleware_decides_again():
    """type(unhooked)(pm) is built as KitHooksMiddleware(pm) is: hooked when a plugin
    listens or with hooks="always", unhooked (and promised) otherwise."""
    kind = type(KitHooksMiddleware(PluginManager()))
    guarded = PluginManager(aggregate_turns=False)
    guarded.register(_LateGate())
    rebuilt = kind(guarded)
    assert rebuilt.hooked and rebuilt.pm is guarded and kind(PluginManager(), hooks="always").hooked
    script = standard_script()
    agent = create_agent(
        ScriptedChatModel(script=script, seen=[]), _shell_tool(script), middleware=[rebuilt]
    )
    assert answer_of(agent.invoke(prompt("go"))) == "Tool said: Error: late gate"
    empty = PluginManager(aggregate_turns=False)
    assert not kind(empty).hooked
    with pytest.raises(ValueError, match="would never ask it"):
        empty.register(_LateGate())


def _jumps_to_the_end(agent: Any) -> bool:
    """Whether the graph's KitHooks.before_agent node has the conditional edge to the end
    that ``handled`` takes."""
    return any(
        e.source == "KitHooks.before_agent" and e.conditional for e in agent.get_graph().edges
    )


class _Slash:
    """An input plugin that consumes every prompt."""

    @hookimpl
    def on_input(self, event):
        return kithooks.InputResult(action="handled")


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_built_while_none_handles_input_the_agent_has_no_jump_edge_and_handled_fails_loudly(
    tmp_path, mode
):
    """hooks="auto" with listeners but none to input: the hooks are there, without the
    conditional edge from before_agent to the end that only 'handled' takes (its routing
    costs every run). An input plugin loaded later (here from a file) is not refused: its
    transform is applied; its 'handled' fails the run with a RuntimeError naming where the
    middleware was built, before any model call (never a silent send of the prompt)."""
    pm = PluginManager(aggregate_turns=False)
    pm.register(_LateGate())
    middleware = KitHooksMiddleware(pm)
    line = inspect.currentframe().f_lineno - 1
    assert middleware.hooked and not middleware.honours_handled
    model = ScriptedChatModel(script=standard_script(), seen=[])
    agent = create_agent(model, [], middleware=[middleware])
    assert "KitHooks.before_agent" in agent.get_graph().nodes and not _jumps_to_the_end(agent)

    def run(text):
        if mode == "invoke":
            return agent.invoke(prompt(text))
        return asyncio.run(asyncio.wait_for(agent.ainvoke(prompt(text)), TIMEOUT))

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "redact.py").write_text(
        "import kithooks\n\n@kithooks.hookimpl\ndef on_input(event):\n"
        "    text = event.text.replace('hunter2', '***')\n"
        "    return kithooks.InputResult(action='transform', text=text)\n"
    )
    assert pm.load_plugin_files([plugins], user_dir=None, project_dir=None) == ["redact"]
    assert not pm.load_errors and pm.has_handlers("input")
    run("my password is hunter2")
    assert [m.text for m in model.seen[-1] if isinstance(m, HumanMessage)] == ["my password is ***"]
    pm.register(_Slash(), name="slash")
    rec = Recorder()
    pm.register(rec, name="recorder")
    seen = len(model.seen)
    with pytest.raises(RuntimeError) as failed:
        run("/help")
    text = str(failed.value)
    assert "answered 'handled'" in text and f"{__file__}:{line}" in text
    assert "hooks='always'" in text and "not sent to the model" in text
    assert len(model.seen) == seen  # the consumed prompt never reached the model
    assert rec.names() == ["input", "error", "agent_end"]  # the turn ends, as a failure
    assert rec.of(kithooks.AgentEndEvent)[0].stop_reason == "error" and not middleware._runs


def test_an_input_plugin_registered_before_building_or_hooks_always_keeps_the_jump_edge():
    """With an input plugin at build time, or with hooks="always" (a plugin that comes
    later), before_agent can jump to the end: 'handled' ends the run before the model."""
    for late in (False, True):
        pm = PluginManager(aggregate_turns=False)
        if not late:
            pm.register(_Slash())
        script = standard_script()
        model = ScriptedChatModel(script=script, seen=[])
        middleware = KitHooksMiddleware(pm, hooks="always" if late else "auto", handled_output="ok")
        agent = create_agent(model, [], middleware=[middleware])
        if late:
            pm.register(_Slash())
        assert _jumps_to_the_end(agent) and middleware.honours_handled
        assert answer_of(agent.invoke(prompt("/help"))) == "ok" and model.seen == []


def test_handled_in_a_middleware_that_cannot_end_the_run_early_fails_loudly():
    """A subclass whose before_agent declares no jump to the end cannot honour 'handled':
    the run fails with a RuntimeError saying so, and the consumed prompt never reaches the
    model (a silent send would look exactly like a plugin that let it through)."""

    class Plain(KitHooksMiddleware):  # no @hook_config(can_jump_to=["end"]) on either
        def before_agent(self, state, runtime):
            return super().before_agent(state, runtime)

        async def abefore_agent(self, state, runtime):
            return await super().abefore_agent(state, runtime)

    pm = PluginManager(aggregate_turns=False)
    pm.register(_Slash())
    model = ScriptedChatModel(script=standard_script(), seen=[])
    plain = Plain(pm)
    agent = create_agent(model, [], middleware=[plain])
    assert not _jumps_to_the_end(agent) and not plain.honours_handled
    with pytest.raises(RuntimeError, match=r"answered 'handled'.*Plain\) cannot end the run"):
        agent.invoke(prompt("/help"))
    with pytest.raises(RuntimeError, match=r"answered 'handled'.*Plain\) cannot end the run"):
        asyncio.run(asyncio.wait_for(agent.ainvoke(prompt("/help")), TIMEOUT))
    assert model.seen == []


def test_the_type_of_a_middleware_without_the_jump_edge_decides_again():
    """type(m)(pm) of a middleware built without the jump edge is built as
    KitHooksMiddleware(pm) is: whole when pm has an input plugin."""
    gated = PluginManager(aggregate_turns=False)
    gated.register(_LateGate())
    kind = type(KitHooksMiddleware(gated))
    answering = PluginManager(aggregate_turns=False)
    answering.register(_Slash())
    rebuilt = kind(answering, handled_output="ok")
    assert type(rebuilt) is KitHooksMiddleware and rebuilt.handled_output == "ok"
    model = ScriptedChatModel(script=standard_script(), seen=[])
    agent = create_agent(model, [], middleware=[rebuilt])
    assert answer_of(agent.invoke(prompt("/help"))) == "ok" and model.seen == []
    assert not kind(PluginManager()).hooked  # nobody listens: unhooked, as the base decides


def test_a_middleware_that_fails_to_build_promises_nothing():
    pm = PluginManager(aggregate_turns=False)
    with pytest.raises(ValueError, match="max_open_runs"):
        KitHooksMiddleware(pm, max_open_runs=0)
    with pytest.raises(TypeError):
        KitHooksMiddleware(pm, max_open_run=5)  # misspelt
    pm.register(_LateGate())  # no middleware was built: nothing to refuse


def test_a_handler_set_on_a_plain_aggregator_object_is_a_plugins():
    """A marked function set on a TurnAggregator object may guard: it counts as a listener
    and is refused by an unhooked middleware's manager, as any plugin is."""

    def aggregator_with_gate() -> kithooks.TurnAggregator:
        aggregator = kithooks.TurnAggregator()
        aggregator.on_tool_call = hookimpl(
            lambda event: kithooks.ToolCallResult(block=True, reason="gate")
        )
        return aggregator

    pm = PluginManager(aggregate_turns=False)
    assert not KitHooksMiddleware(pm).hooked
    pm.register(kithooks.TurnAggregator(), name="counts")  # its own methods only count
    with pytest.raises(ValueError, match="'tool_call'"):
        pm.register(aggregator_with_gate(), name="guarding")
    pm = PluginManager(aggregate_turns=False)
    pm.register(aggregator_with_gate(), name="guarding")
    assert pm.plugins_handle(["tool_call"]) and KitHooksMiddleware(pm).hooked


def test_a_middleware_built_during_a_reload_that_adds_a_gate_is_hooked(tmp_path, monkeypatch):
    """Inside a reload the manager's handler table is not current yet: a middleware built
    there (by a plugin module holding a sub-agent) after a gate the same reload added hooks
    in."""
    import builtins
    import textwrap

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    pm = PluginManager(aggregate_turns=False)
    monkeypatch.setattr(builtins, "kithooks_test_reload", (pm, []), raising=False)
    assert pm.load_plugin_files([plugins], user_dir=None, project_dir=None) == []
    (plugins / "a_gate.py").write_text(
        textwrap.dedent(
            """
            import kithooks

            @kithooks.hookimpl
            def on_tool_call(event):
                return kithooks.ToolCallResult(block=True, reason="gate")
            """
        )
    )
    (plugins / "b_sub.py").write_text(
        textwrap.dedent(
            """
            import builtins

            from kithooks.adapters.langchain import KitHooksMiddleware

            pm, built = builtins.kithooks_test_reload
            built.append(KitHooksMiddleware(pm))  # a sub-agent's, built as the module loads
            """
        )
    )
    pm.reload()
    (middleware,) = builtins.kithooks_test_reload[1]
    assert pm.is_registered(pm.get_plugin("a_gate")) and middleware.hooked
    pm.register(_LateGate())  # nothing was left unhooked: no refusal


def test_a_subclass_takes_its_own_arguments_and_the_options_are_checked_everywhere():
    class Audited(KitHooksMiddleware):
        def __init__(self, pm, log, *, audit_level="all", **options):
            super().__init__(pm, **options)
            self.log, self.audit_level = log, audit_level

    pm = PluginManager(aggregate_turns=False)
    audited = Audited(pm, [], audit_level="calls")
    assert audited.hooked and audited.audit_level == "calls"  # a subclass always hooks in
    with pytest.raises(ValueError, match="max_open_runs must be an int >= 1, got 0"):
        Audited(pm, [], max_open_runs=0)
    with pytest.raises(TypeError, match=r"pm must be a kithooks\.PluginManager, not NoneType"):
        KitHooksMiddleware(None)
    with pytest.raises(ValueError, match="max_open_runs must be an int >= 1, got '5'"):
        KitHooksMiddleware(pm, max_open_runs="5")


def test_another_objects_method_set_on_an_aggregator_is_a_plugins():
    import types

    class Policy:
        def __init__(self):
            self._turns = {}

    aggregator = kithooks.TurnAggregator()
    aggregator.on_tool_call = types.MethodType(kithooks.TurnAggregator.on_tool_call, Policy())
    pm = PluginManager(aggregate_turns=False)
    pm.register(aggregator, name="policy")
    assert pm.plugins_handle(["tool_call"]) and KitHooksMiddleware(pm).hooked


def test_copies_of_the_middleware_keep_their_kind():
    import copy

    pm = PluginManager(aggregate_turns=False)
    unhooked = KitHooksMiddleware(pm)
    pm2 = PluginManager(aggregate_turns=False)
    pm2.register(_LateGate())
    hooked = KitHooksMiddleware(pm2)
    assert not copy.copy(unhooked).hooked and copy.copy(hooked).hooked
    assert copy.copy(hooked).pm is pm2
    with pytest.raises(TypeError):
        KitHooksMiddleware()  # pm is required


def test_building_and_registering_at_once_never_leave_a_plugin_unasked():
    """Real threads: the middleware's check and the manager's promise are one step, so a
    gate registered while the middleware is built either makes it hooked or is refused."""
    import threading

    for _ in range(200):
        pm = PluginManager(aggregate_turns=False)
        gate, built, refused = _LateGate(), [], []
        start = threading.Barrier(2, timeout=10)

        def build(pm=pm, built=built, start=start):
            start.wait()
            built.append(KitHooksMiddleware(pm))

        def register(pm=pm, gate=gate, refused=refused, start=start):
            start.wait()
            try:
                pm.register(gate)
            except ValueError:
                refused.append(True)

        threads = [threading.Thread(target=build), threading.Thread(target=register)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
            assert not thread.is_alive(), "deadlock"
        (middleware,) = built
        assert middleware.hooked == pm.is_registered(gate) != bool(refused)


def test_every_event_a_run_can_emit_is_in_emitted(host):
    """EMITTED decides whether the middleware hooks in at all: an event missing from it
    would let a plugin of it register where the agent never asks it."""
    import re

    import kithooks.adapters.langchain as adapter
    from kithooks.adapters.langchain import EMITTED
    from kithooks.events import EVENT_CLASSES

    pm, rec = host

    @tool
    def shell(command: str) -> str:
        """Run a shell command."""
        raise OSError("disk on fire")

    class Thinking(ScriptedChatModel):
        def _generate(self, messages, stop=None, run_manager=None, **kw):
            message = AIMessage(content=[{"type": "reasoning", "id": "r1", "reasoning": "hm"}])
            return ChatResult(generations=[ChatGeneration(message=message)])

    make_agent(pm)[0].invoke(prompt("go"))
    with pytest.raises(OSError):
        make_agent(pm, tools=[shell])[0].invoke(prompt("go"))
    create_agent(
        Thinking(script=standard_script(), seen=[]), [], middleware=[KitHooksMiddleware(pm)]
    ).invoke(prompt("go"))
    seen = set(rec.names())
    assert {"error", "reasoning_start", "tool_call_input_delta", "tool_result"} <= seen
    assert seen <= {str(e) for e in EMITTED}
    # and every payload class the module builds itself
    by_class = {cls.__name__: event_type for event_type, cls in EVENT_CLASSES.items()}
    built = set(re.findall(r"\b([A-Z]\w*Event)\(", inspect.getsource(adapter)))
    assert {"InputEvent", "AgentEndEvent", "ToolCallInputDeltaEvent"} <= built
    assert {by_class[name] for name in built if name in by_class} <= set(EMITTED)


def test_the_middleware_refuses_a_bad_manager_or_hooks_value():
    with pytest.raises(TypeError, match=r"kithooks\.PluginManager"):
        KitHooksMiddleware(object())
    with pytest.raises(ValueError, match="'auto' or 'always'"):
        KitHooksMiddleware(PluginManager(), hooks="never")


def test_async_runs_hand_nothing_to_langsmiths_worker_threads(host, monkeypatch):
    # create_agent wraps each wrap_* hook in langsmith's traceable, which sends two calls
    # per hook call to a worker thread around an `async def` (and none around a plain
    # method returning the coroutine, which is what the middleware's awrap_* hooks are).
    import inspect

    from langsmith._internal import _aiter

    pm, rec = host
    assert not inspect.iscoroutinefunction(KitHooksMiddleware.awrap_model_call)
    assert not inspect.iscoroutinefunction(KitHooksMiddleware.awrap_tool_call)
    handed = []
    real = _aiter.aio_to_thread

    async def counting(ctx, func, /, *args, **kwargs):
        handed.append(getattr(func, "__name__", func))
        return await real(ctx, func, *args, **kwargs)

    monkeypatch.setattr(_aiter, "aio_to_thread", counting)
    agent, _, script = make_agent(pm)
    state = asyncio.run(agent.ainvoke(prompt("go")))
    assert answer_of(state) == "Tool said: output of ls" and script.ran == ["ls"]
    assert rec.names()[-1] == "agent_end" and "tool_result" in rec.names()
    assert handed == []


# -- turns the middleware does not hold open ---------------------------------------------


class Gate:
    """Blocks every tool call."""

    @hookimpl
    def on_tool_call(self, event):
        return kithooks.ToolCallResult(block=True, reason="needs review")


APPROVE = Command(resume={"decisions": [{"type": "approve"}]})


def review_agent(pm, script, saver, middleware=None):
    """An agent whose shell calls wait for a person's approval (an interrupt)."""
    return create_agent(
        ScriptedChatModel(script=script, seen=[]),
        _shell_tool(script),
        checkpointer=saver,
        middleware=[  # the documented order: the guard after the reviewer's tool wrapper
            HumanInTheLoopMiddleware(interrupt_on={"shell": True}),
            middleware or KitHooksMiddleware(pm),
        ],
    )


def _invoke(agent, payload, config, mode):
    if mode == "invoke":
        return agent.invoke(payload, config)
    return asyncio.run(asyncio.wait_for(agent.ainvoke(payload, config), TIMEOUT))


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_a_fresh_middleware_resuming_an_interrupted_turn_asks_the_guard(host, mode, caplog):
    # A per-request agent (or a restarted process) resumes the approved call from the
    # shared checkpointer with a middleware that never saw the turn begin.
    pm, rec = host
    pm.register(Gate())
    saver, script = InMemorySaver(), standard_script()
    config = {"configurable": {"thread_id": "t-review"}}
    first = _invoke(review_agent(pm, script, saver), prompt("go"), config, mode)
    assert first["__interrupt__"] and "tool_call" not in rec.names()
    (turn,) = rec.turns()
    with caplog.at_level(logging.INFO, logger="kithooks"):
        state = _invoke(review_agent(pm, script, saver), APPROVE, config, mode)
    assert script.ran == [] and answer_of(state) == "Tool said: Error: needs review"
    (call,) = rec.of(kithooks.ToolCallEvent)
    assert call.tool_name == "shell" and rec.turns() == [turn]
    assert f"turn {turn!r} of session 't-review' is not open here" in caplog.text


def _resume_events(pm, rec, fresh):
    """The events of an approved call's turn after the resume, by the same or a fresh
    middleware, and the turn's agent_end."""
    saver, script = InMemorySaver(), standard_script()
    config = {"configurable": {"thread_id": f"t-{fresh}"}}
    agent = review_agent(pm, script, saver)
    agent.invoke(prompt("go"), config)
    before = len(rec.events)
    state = (review_agent(pm, script, saver) if fresh else agent).invoke(APPROVE, config)
    assert script.ran == ["ls"] and answer_of(state) == "Tool said: output of ls"
    after = rec.events[before:]
    (end,) = [e for _, e in after if isinstance(e, kithooks.AgentEndEvent)]
    return [(e.event_type.value, getattr(e, "step_number", None)) for _, e in after], end


def test_a_revived_turn_emits_what_the_same_middleware_would_have(host):
    # The docs: no input / before_agent_start / agent_start again; the steps go on from the
    # answers in the state; the interrupted answer's usage comes once its tools ran.
    pm, rec = host
    same, same_end = _resume_events(pm, rec, fresh=False)
    revived, revived_end = _resume_events(pm, rec, fresh=True)
    assert revived == same
    assert [name for name, _ in revived] == [
        "tool_call",
        "tool_execution_start",
        "tool_execution_end",
        "tool_result",
        "step_finish",
        "llm_usage",
        "prepare_step",
        "step_start",
        "message_update",
        "step_finish",
        "llm_usage",
        "message_end",
        "agent_end",
    ]
    assert [step for name, step in revived if name == "step_start"] == [1]
    for end in (same_end, revived_end):  # the same manager counts the turn from its start
        assert (end.llm_call_count, end.tool_call_count, end.stop_reason) == (2, 1, "stop")


def test_a_call_paused_inside_its_tool_is_asked_again_by_a_fresh_middleware(host):
    pm, rec = host
    saver, script = InMemorySaver(), asking_script()
    config = {"configurable": {"thread_id": "t-ask"}}
    asking_agent(pm, script, saver).invoke(prompt("go"), config)
    state = asking_agent(pm, script, saver).invoke(Command(resume="yes"), config)
    assert answer_of(state) == "They said: yes" and len(rec.turns()) == 1
    names = rec.names()
    assert names.count("tool_call") == names.count("tool_execution_start") == 2
    assert [r.content for r in rec.of(kithooks.ToolResultEvent)] == ["yes"]
    assert names[-2:] == ["message_end", "agent_end"]


class FlakyChatModel(ScriptedChatModel):
    """Fails its first call (a provider hiccup), then plays the script."""

    failures: list[int] = Field(default_factory=lambda: [1])

    def _generate(self, messages, stop=None, run_manager=None, **kw):
        if self.failures[0]:
            self.failures[0] -= 1
            raise TimeoutError("provider hiccup")
        return super()._generate(messages, stop, run_manager, **kw)


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_a_retry_placed_outside_the_middleware_keeps_the_guard(host, mode, caplog):
    # A model-call retry placed before KitHooks (the docs say it can go after): the failed
    # call ended the turn (error, agent_end), the retry goes on with it, and its tool call
    # is still asked.
    pm, rec = host
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
    with caplog.at_level(logging.WARNING, logger="kithooks"):
        state = _invoke(agent, prompt("go"), {}, mode)
    assert script.ran == [] and answer_of(state) == "Tool said: Error: needs review"
    assert len(rec.of(kithooks.ToolCallEvent)) == 1 and len(rec.turns()) == 1
    ends = rec.of(kithooks.AgentEndEvent)
    assert [e.stop_reason for e in ends] == ["error", "stop"]
    assert [e.step_number for e in rec.of(kithooks.StepStartEvent)] == [0, 0, 1]
    assert rec.names().count("agent_start") == 1 and rec.names().count("input") == 1
    assert "can go after KitHooksMiddleware" in caplog.text


def test_a_graph_where_before_agent_never_ran_is_a_clear_error(host):
    # The middleware's tool wrapper on a hand-built ToolNode: no turn was ever opened.
    pm, _ = host
    pm.register(Gate())
    script = standard_script()
    graph = StateGraph(MessagesState)
    graph.add_node(
        "tools", ToolNode(_shell_tool(script), wrap_tool_call=KitHooksMiddleware(pm).wrap_tool_call)
    )
    graph.add_edge(START, "tools")
    graph.add_edge("tools", END)
    call = {"name": "shell", "args": {"command": "ls"}, "id": "c1"}
    with pytest.raises(RuntimeError, match="before_agent hook did not run on this graph"):
        graph.compile().invoke({"messages": [AIMessage(content="", tool_calls=[call])]})
    assert script.ran == []


def test_turns_past_max_open_runs_are_forgotten_logged_and_revived(host, caplog):
    pm, rec = host
    pm.register(Gate())
    saver, script = InMemorySaver(), standard_script()
    agent = review_agent(pm, script, saver, KitHooksMiddleware(pm, max_open_runs=1))
    a, b = ({"configurable": {"thread_id": t}} for t in ("a", "b"))
    agent.invoke(prompt("go"), a)
    with caplog.at_level(logging.INFO, logger="kithooks"):
        agent.invoke(prompt("go"), b)  # a, never resumed yet, is forgotten
        (turn_a, _) = rec.turns()
        assert f"forgot the oldest, turn {turn_a!r} of session 'a'" in caplog.text
        for config in (a, b):
            state = agent.invoke(APPROVE, config)
            assert answer_of(state) == "Tool said: Error: needs review"
    assert script.ran == [] and len(rec.of(kithooks.ToolCallEvent)) == 2
    with pytest.raises(ValueError, match="max_open_runs must be an int >= 1, got 0"):
        KitHooksMiddleware(pm, max_open_runs=0)


def test_a_failure_outside_the_middlewares_hooks_emits_no_end_as_documented(host):
    """Another middleware's node raises (a tool-call limit with exit_behavior="error"): the
    middleware never sees the failure, so the module docs say no error / agent_end comes and
    the turn stays open; the next prompt is a turn of its own."""
    pm, rec = host
    script = standard_script()
    played = script.respond  # every prompt calls the shell
    script.respond = lambda window: played(window[-1:] if window[-1][0] == "user" else window)
    middleware = KitHooksMiddleware(pm)
    agent = create_agent(
        ScriptedChatModel(script=script),
        _shell_tool(script),
        middleware=[ToolCallLimitMiddleware(thread_limit=1, exit_behavior="error"), middleware],
        checkpointer=InMemorySaver(),
    )
    config = {"configurable": {"thread_id": "t1"}}
    agent.invoke(prompt("one"), config)
    with pytest.raises(Exception, match="limit"):
        agent.invoke(prompt("two"), config)
    first, second = rec.turns()
    assert rec.names(first)[-1] == "agent_end"
    assert "error" not in rec.names(second) and "agent_end" not in rec.names(second)
    assert list(middleware._runs) == [second]
