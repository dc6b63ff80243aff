"""The LangChain adapter across a run's life: the loop sync runs await async plugins on, a
paused tool call edited before it resumes, failures, a turn another middleware skips,
multimodal prompts and the turn's answer. Offline, with a model that replays AI messages.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import pytest

pytest.importorskip("langchain.agents")

from hypothesis import given
from hypothesis import strategies as st
from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware, hook_config
from langchain.agents.structured_output import ToolStrategy
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_config
from langgraph.types import Command, interrupt
from pydantic import BaseModel, Field

import kithooks
from kithooks import PluginManager, hookimpl
from kithooks.adapters.langchain import KitHooksMiddleware
from kithooks.testing.conformance import TIMEOUT, Recorder


class Replay(BaseChatModel):
    """Answers with the given AI messages in turn (a callable gets the request first)."""

    replies: list[Any]
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    lock: Any = Field(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "replay"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Replay:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        with self.lock:
            self.seen.append(list(messages))
            reply = self.replies[(len(self.seen) - 1) % len(self.replies)]
        message = reply(messages) if callable(reply) else reply
        return ChatResult(generations=[ChatGeneration(message=message.model_copy())])


def ai(text: str = "", *calls: tuple[str, dict[str, Any], str]) -> AIMessage:
    return AIMessage(
        content=text,
        tool_calls=[{"name": n, "args": a, "id": i} for n, a, i in calls],
        usage_metadata={"input_tokens": 1000, "output_tokens": 100, "total_tokens": 1100},
        response_metadata={"model_name": "gpt-4o", "model_provider": "openai"},
    )


def prompt(content: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}]}


def run(agent: Any, value: Any, mode: str, config: Any = None) -> dict[str, Any]:
    if mode == "sync":
        return agent.invoke(value, config)  # type: ignore[no-any-return]
    return asyncio.run(asyncio.wait_for(agent.ainvoke(value, config), TIMEOUT))  # type: ignore[no-any-return]


def join_all(threads: list[threading.Thread]) -> None:
    deadline = time.monotonic() + TIMEOUT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        assert not thread.is_alive(), "a run hung"


def recorded(pm: PluginManager) -> Recorder:
    rec = Recorder()
    pm.register(rec, name="recorder")
    return rec


# -- 1. one loop for the async plugins of sync runs --------------------------------------


class EchoServer:
    """A TCP server answering ``deny`` to lines with ``rm -rf`` and ``allow`` to the rest."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    @staticmethod
    def _talk(conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as f:
            for line in f:
                f.write(b"deny\n" if b"rm -rf" in line else b"allow\n")
                f.flush()

    def close(self) -> None:
        self.sock.close()


class PooledGate:
    """An async guard keeping one connection to its policy service (loop-bound state, like
    a pooled ``httpx.AsyncClient``), opened on first use and reused."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.lock: asyncio.Lock | None = None
        self.loops: set[int] = set()
        self.asked = 0

    @hookimpl
    async def on_tool_call(self, event):
        self.loops.add(id(asyncio.get_running_loop()))
        if self.lock is None:
            self.lock = asyncio.Lock()
        async with self.lock:
            if self.stream is None:
                self.stream = await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = self.stream
            writer.write(event.input.encode() + b"\n")
            await writer.drain()
            answer = await reader.readline()
            self.asked += 1
        if answer == b"deny\n":
            return kithooks.ToolCallResult(block=True, reason="policy: denied")
        return None


@pytest.fixture
def server():
    s = EchoServer()
    yield s
    s.close()


def _shell(ran: list[str]) -> Any:
    @tool
    def sh(cmd: str) -> str:
        """Run a command."""
        ran.append(cmd)
        return "ran " + cmd

    return sh


def test_an_async_guard_with_loop_bound_state_guards_every_call_of_every_sync_run(server, caplog):
    pm = PluginManager()
    gate = PooledGate(server.port)
    pm.register(gate, name="gate")
    ran: list[str] = []
    danger = [ai("", ("sh", {"cmd": f"rm -rf /{i}"}, f"c{i}")) for i in range(3)] + [ai("done")]
    agent = create_agent(Replay(replies=danger), [_shell(ran)], middleware=[KitHooksMiddleware(pm)])
    for _ in range(2):  # two runs: the state must outlive one run
        state = agent.invoke(prompt("go"))
        tool_texts = [m.text for m in state["messages"] if m.type == "tool"]
        assert tool_texts == ["Error: policy: denied"] * 3
    assert ran == [] and gate.asked == 6
    assert len(gate.loops) == 1
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "WARNING")]


def test_sync_runs_on_many_threads_share_the_loop_safely(server):
    pm = PluginManager()
    gate = PooledGate(server.port)
    pm.register(gate, name="gate")
    rec = recorded(pm)
    ran: list[str] = []
    replies = [ai("", ("sh", {"cmd": "ls"}, "a"), ("sh", {"cmd": "rm -rf /"}, "b")), ai("done")]

    def one() -> None:
        agent = create_agent(
            Replay(replies=replies), [_shell(ran)], middleware=[KitHooksMiddleware(pm)]
        )
        for _ in range(3):
            agent.invoke(prompt("go"))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    join_all(threads)
    assert sorted(ran) == ["ls"] * 12  # every rm -rf blocked, in parallel calls too
    assert gate.asked == 24 and len(gate.loops) == 1
    assert len(rec.of(kithooks.AgentEndEvent)) == 12


def test_async_plugins_of_a_sync_run_see_the_runs_context_variables():
    pm = PluginManager()
    seen = []

    class Where:
        @hookimpl
        async def on_tool_call(self, event):
            seen.append(get_config()["configurable"]["thread_id"])

    pm.register(Where())
    agent = create_agent(
        Replay(replies=[ai("", ("sh", {"cmd": "ls"}, "c1")), ai("done")]),
        [_shell([])],
        middleware=[KitHooksMiddleware(pm)],
    )
    agent.invoke(prompt("go"), {"configurable": {"thread_id": "T-9"}})
    assert seen == ["T-9"]


# -- 3. the tool runs outside the plugins' loop ------------------------------------------


@pytest.mark.parametrize("plugin_kind", ["sync", "async"])
def test_a_sync_tool_runs_the_same_whatever_kind_of_plugin_listens(plugin_kind):
    pm = PluginManager()
    rec = recorded(pm)

    class Audit:
        @hookimpl
        def on_tool_result(self, event):
            return None

    class AsyncAudit:
        @hookimpl
        async def on_tool_result(self, event):
            return None

    pm.register(Audit() if plugin_kind == "sync" else AsyncAudit())
    where = []

    async def fetch() -> str:
        return "fetched"

    @tool
    def web(q: str) -> str:
        """A sync tool that runs its own event loop, as many wrappers of async clients do."""
        where.append(threading.current_thread())
        return asyncio.run(fetch())

    agent = create_agent(
        Replay(replies=[ai("", ("web", {"q": "x"}, "c1")), ai("done")]),
        [web],
        middleware=[KitHooksMiddleware(pm)],
    )
    state = agent.invoke(prompt("go"))
    assert state["messages"][2].text == "fetched"
    assert [e.content for e in rec.of(kithooks.ToolResultEvent)] == ["fetched"]
    assert where[0].name != "kithooks-langchain-loop"


# -- 2. a paused call changed before it resumes ------------------------------------------


class NoRm:
    def __init__(self) -> None:
        self.asked: list[str] = []
        self.names: list[str] = []

    @hookimpl
    def on_tool_call(self, event):
        self.asked.append(event.parsed_args["cmd"])
        self.names.append(event.tool_name)
        if "rm -rf" in event.parsed_args["cmd"]:
            return kithooks.ToolCallResult(block=True, reason="no rm")
        return None


def _confirming_agent(pm: PluginManager, ran: list[str]) -> Any:
    @tool
    def sh(cmd: str) -> str:
        """Run a command once a person confirms it."""
        interrupt({"confirm": cmd})
        ran.append(cmd)
        return f"ran {cmd}"

    model = Replay(replies=[ai("", ("sh", {"cmd": "ls"}, "c1")), ai("done")])
    return create_agent(
        model, [sh], middleware=[KitHooksMiddleware(pm)], checkpointer=InMemorySaver()
    )


def _paused(mode: str) -> tuple[NoRm, list[str], Any, dict[str, Any]]:
    """A run paused inside its ``sh ls`` call: the guard, the commands run, agent, config."""
    pm = PluginManager()
    gate = NoRm()
    pm.register(gate)
    ran: list[str] = []
    agent = _confirming_agent(pm, ran)
    config = {"configurable": {"thread_id": "T"}}
    state = run(agent, prompt("list files"), mode, config)
    assert [i.value for i in state["__interrupt__"]] == [{"confirm": "ls"}]
    return gate, ran, agent, config


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("edit", ["args", "name"])
def test_a_paused_call_edited_before_it_resumes_is_asked_again(mode, edit):
    gate, ran, agent, config = _paused(mode)
    last = agent.get_state(config).values["messages"][-1]
    call = dict(last.tool_calls[0])
    if edit == "args":
        call["args"] = {"cmd": "rm -rf /"}
    else:  # another tool, the same arguments: a guard may judge tools apart
        call["name"] = "sh2"
    edited = last.model_copy(update={"tool_calls": [call]})
    agent.update_state(config, {"messages": [edited]}, as_node="model")
    state = run(agent, None, mode, config)
    if edit == "args":
        assert gate.asked == ["ls", "rm -rf /"] and ran == []
        assert [m.text for m in state["messages"] if m.type == "tool"] == ["Error: no rm"]
    else:
        assert gate.names == ["sh", "sh2"] and ran == []  # (sh2 is no tool: an error)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_paused_call_resumed_unchanged_is_not_asked_again(mode):
    gate, ran, agent, config = _paused(mode)
    state = run(agent, Command(resume="yes"), mode, config)
    assert gate.asked == ["ls"] and ran == ["ls"]
    assert state["messages"][-1].text == "done"


# -- 4. failures -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_failing_tool_reports_the_usage_of_the_answer_that_called_it(mode):
    pm = PluginManager()
    rec = recorded(pm)

    @tool
    def boom(x: str) -> str:
        """Fails."""
        raise ValueError("kaput")

    agent = create_agent(
        Replay(replies=[ai("", ("boom", {"x": "1"}, "c1"))]),
        [boom],
        middleware=[KitHooksMiddleware(pm)],
    )
    with pytest.raises(ValueError, match="kaput"):
        run(agent, prompt("go"), mode)
    names = rec.names()
    assert names[-4:] == ["step_finish", "llm_usage", "error", "agent_end"]
    (end,) = rec.of(kithooks.AgentEndEvent)
    assert end.stop_reason == "error" and end.llm_call_count == 1
    assert end.input_tokens_delta == 1000 and end.cost_delta > 0


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_steps_other_tool_calls_end_before_the_failure_ends_the_turn(mode):
    pm = PluginManager()
    rec = recorded(pm)

    started = threading.Event()

    @tool
    def boom(x: str) -> str:
        """Fails once the other call runs (one that starts later: see the test below)."""
        assert started.wait(TIMEOUT)
        raise ValueError("kaput")

    @tool
    def slow(x: str) -> str:
        """Slow."""
        started.set()
        time.sleep(0.3)
        return "slow ok"

    model = Replay(replies=[ai("", ("slow", {"x": "1"}, "c1"), ("boom", {"x": "2"}, "c2"))])
    agent = create_agent(model, [boom, slow], middleware=[KitHooksMiddleware(pm)])
    with pytest.raises(ValueError, match="kaput"):
        run(agent, prompt("go"), mode)
    deadline = time.monotonic() + TIMEOUT
    while "agent_end" not in rec.names() and time.monotonic() < deadline:
        time.sleep(0.01)
    names = rec.names()
    assert names.count("tool_execution_start") == names.count("tool_execution_end") == 2
    assert names.count("tool_result") == 2
    assert names[-2:] == ["error", "agent_end"] and names.count("agent_end") == 1


# -- 5. a turn a middleware before this one skips ----------------------------------------


class Refuse(AgentMiddleware):
    """LangChain's guardrail pattern: refuse a request in before_agent, jump to the end."""

    @hook_config(can_jump_to=["end"])
    def before_agent(self, state, runtime):
        if "hack" in state["messages"][-1].text:
            return {"messages": [AIMessage("I can't help with that.")], "jump_to": "end"}
        return None


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_turn_skipped_by_an_earlier_middleware_emits_nothing(mode, caplog):
    pm = PluginManager()
    rec = recorded(pm)
    agent = create_agent(
        Replay(replies=[ai("Hello!")]),
        [],
        middleware=[Refuse(), KitHooksMiddleware(pm)],
        checkpointer=InMemorySaver(),
    )
    config = {"configurable": {"thread_id": "T"}}
    run(agent, prompt("hi"), mode, config)
    before = rec.names()
    assert before.count("agent_end") == 1
    state = run(agent, prompt("hack the bank"), mode, config)
    assert state["messages"][-1].text == "I can't help with that."
    assert rec.names() == before
    run(agent, prompt("hi again"), mode, config)
    assert rec.names().count("agent_end") == 2 and len(set(rec.turns())) == 2
    assert "not open here" not in caplog.text


# -- 6. an input transform keeps the prompt's other blocks -------------------------------


def test_an_input_transform_keeps_the_prompts_images():
    pm = PluginManager()

    class Redact:
        @hookimpl
        def on_input(self, event):
            return kithooks.InputResult(action="transform", text=event.text.replace("k-1", "***"))

    pm.register(Redact())
    model = Replay(replies=[ai("A cat.")])
    agent = create_agent(model, [], middleware=[KitHooksMiddleware(pm)])
    image = {"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"}
    state = agent.invoke(prompt([{"type": "text", "text": "What is this? key k-1"}, image]))
    expected = [{"type": "text", "text": "What is this? key ***"}, image]
    assert model.seen[0][-1].content == expected
    assert state["messages"][0].content == expected


_text_block = st.builds(lambda t: {"type": "text", "text": t}, st.text(max_size=5))
_other_block = st.builds(
    lambda kind, n: {"type": kind, "id": str(n)},
    st.sampled_from(["image", "file", "audio", "json"]),
    st.integers(0, 99),
)


@given(st.lists(_text_block | _other_block | st.text(max_size=5), max_size=6), st.text())
def test_a_transformed_prompt_keeps_every_other_block_in_order(blocks, text):
    from kithooks.adapters.langchain import _with_text  # the rule the transform follows

    message = HumanMessage(content=blocks)
    out = _with_text(message, text).content
    others = [b for b in blocks if isinstance(b, dict) and b["type"] != "text"]
    assert [b for b in out if isinstance(b, dict) and b["type"] != "text"] == others
    texts = [b if isinstance(b, str) else b["text"] for b in out if b not in others]
    assert texts == [text]


# -- 7. the turn's answer ----------------------------------------------------------------


def test_agent_end_answers_with_a_return_direct_tools_result():
    pm = PluginManager()
    rec = recorded(pm)

    @tool(return_direct=True)
    def lookup(city: str) -> str:
        """Look the weather up."""
        return f"{city}: 21C"

    model = Replay(replies=[ai("Let me look.", ("lookup", {"city": "Oslo"}, "c1"))])
    create_agent(model, [lookup], middleware=[KitHooksMiddleware(pm)]).invoke(prompt("w?"))
    (end,) = rec.of(kithooks.AgentEndEvent)
    assert end.response == "Oslo: 21C"


def test_agent_end_answers_with_the_structured_response_as_json():
    pm = PluginManager()
    rec = recorded(pm)

    class Weather(BaseModel):
        city: str
        temp: int

    model = Replay(replies=[ai("", ("Weather", {"city": "Oslo", "temp": 21}, "s1"))])
    agent = create_agent(
        model, [], middleware=[KitHooksMiddleware(pm)], response_format=ToolStrategy(Weather)
    )
    agent.invoke(prompt("w?"))
    (end,) = rec.of(kithooks.AgentEndEvent)
    assert end.response == '{"city":"Oslo","temp":21}'


# -- 8. each manager's loop: deadlines, nested runs, BaseExceptions ----------------------


def _in_thread(fn: Any) -> dict[str, Any]:
    """``fn()`` on a thread of its own, with a deadline: its value or what it raised."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too
            box["raised"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    join_all([thread])
    return box


def _sh_agent(pm: PluginManager, cmd: str, ran: list[str], call_id: str = "c1") -> Any:
    model = Replay(replies=[ai("", ("sh", {"cmd": cmd}, call_id)), ai("done")])
    return create_agent(model, [_shell(ran)], middleware=[KitHooksMiddleware(pm)])


def test_a_slow_plugin_of_one_manager_never_eats_another_managers_guard_deadline(caplog):
    a_blocks, b_done = threading.Event(), threading.Event()
    pm_a = PluginManager()

    class SlowAudit:  # a blocking call: holds pm_a's loop thread, an async observer there
        @hookimpl
        def on_tool_call(self, event):
            a_blocks.set()
            b_done.wait(TIMEOUT)

    class Observer:
        @hookimpl
        async def on_tool_call(self, event):
            return None

    pm_a.register(Observer(), name="observer")
    pm_a.register(SlowAudit(), name="slow-audit")
    pm_b = PluginManager()

    class Gate:
        @hookimpl(timeout=2.0)
        async def on_tool_call(self, event):
            await asyncio.sleep(0.05)  # asks its policy service
            if "rm -rf" in event.input:
                return kithooks.ToolCallResult(block=True, reason="denied")
            return None

    pm_b.register(Gate(), name="gate")
    ran: list[str] = []
    run_a = threading.Thread(target=_sh_agent(pm_a, "ls", ran).invoke, args=(prompt("go"),))
    run_a.start()
    try:
        assert a_blocks.wait(TIMEOUT)
        state = _in_thread(lambda: _sh_agent(pm_b, "rm -rf /", ran).invoke(prompt("go")))
    finally:
        b_done.set()
        join_all([run_a])
    assert [m.text for m in state["value"]["messages"] if m.type == "tool"] == ["Error: denied"]
    assert ran == ["ls"]
    assert "timed out" not in caplog.text


def test_a_managers_loop_thread_stops_when_the_manager_is_collected():
    import gc

    pm = PluginManager()
    threads: list[threading.Thread] = []

    class Where:
        @hookimpl
        async def on_tool_call(self, event):
            threads.append(threading.current_thread())

    pm.register(Where())
    _sh_agent(pm, "ls", []).invoke(prompt("go"))
    (loop_thread,) = threads
    assert loop_thread.is_alive() and loop_thread is not threading.current_thread()
    del pm
    gc.collect()
    loop_thread.join(TIMEOUT)
    assert not loop_thread.is_alive()


class Judge:
    """An LLM judge built on an agent: an async guard that runs a sync sub-agent."""

    def __init__(self, sub: Any) -> None:
        self.sub = sub
        self.verdicts: list[str] = []

    @hookimpl
    async def on_tool_call(self, event):
        if event.tool_name == "sh":
            config = {"configurable": {"thread_id": "SUB"}}
            state = self.sub.invoke(prompt("judge " + event.input), config)
            self.verdicts.append(state["messages"][-1].text)


def test_an_async_guard_may_run_a_sync_sub_agent_that_uses_tools():
    sub_pm = PluginManager()
    sub_rec = recorded(sub_pm)
    seen = []

    class SubGuard:  # async too: its tool_call runs on LangGraph's pool thread
        @hookimpl
        async def on_tool_call(self, event):
            seen.append(get_config()["configurable"]["thread_id"])

    sub_pm.register(SubGuard())

    @tool
    def lookup(q: str) -> str:
        """Look up."""
        return "found"

    sub = create_agent(
        Replay(replies=[ai("", ("lookup", {"q": "x"}, "s1")), ai("judged ok")]),
        [lookup],
        middleware=[KitHooksMiddleware(sub_pm)],
    )
    pm = PluginManager()
    judge = Judge(sub)
    pm.register(judge)
    ran: list[str] = []
    box = _in_thread(lambda: _sh_agent(pm, "ls", ran).invoke(prompt("go")))
    assert box["value"]["messages"][-1].text == "done" and ran == ["ls"]
    assert judge.verdicts == ["judged ok"] and seen == ["SUB"]
    assert sub_rec.names().count("tool_result") == 1


def test_a_sub_agent_run_on_the_same_manager_is_a_logged_cycle_not_a_deadlock(caplog):
    pm = PluginManager()
    # built before the plugin that holds it registers: hooks="always" (the default would
    # add no hook while no plugin listens, and then refuse the judge)
    sub = create_agent(
        Replay(replies=[ai("judged ok")]), [], middleware=[KitHooksMiddleware(pm, hooks="always")]
    )
    prompts: list[str] = []

    class ListeningJudge(Judge):  # listens to the sub-run's events too
        @hookimpl
        async def on_agent_start(self, event, ctx):
            prompts.append("judge")

    class Watch:
        @hookimpl
        async def on_agent_start(self, event, ctx):
            prompts.append(ctx.session_id)

    judge = ListeningJudge(sub)
    pm.register(judge, name="judge")
    pm.register(Watch(), name="watch")
    ran: list[str] = []
    box = _in_thread(lambda: _sh_agent(pm, "ls", ran).invoke(prompt("go")))
    assert box["value"]["messages"][-1].text == "done" and ran == ["ls"]
    assert judge.verdicts == ["judged ok"]
    assert "LockCycleError" in caplog.text and "'judge'" in caplog.text
    assert prompts.count("SUB") == 1  # the other plugin sees the sub-run, context and all
    assert prompts.count("judge") == 1  # the outer run only: the sub-run's call skipped


@pytest.mark.parametrize("raised", [SystemExit, KeyboardInterrupt])
def test_a_base_exception_from_an_async_plugin_is_raised_in_the_sync_run(raised):
    pm = PluginManager()
    threads: list[threading.Thread] = []

    class Quit:
        quit = True

        @hookimpl
        async def on_tool_call(self, event):
            threads.append(threading.current_thread())
            if self.quit:
                raise raised(3)

    quitter = Quit()
    pm.register(quitter)
    ran: list[str] = []
    agent = _sh_agent(pm, "ls", ran)
    box = _in_thread(lambda: agent.invoke(prompt("go")))
    assert isinstance(box.get("raised"), raised) and ran == []
    quitter.quit = False
    box = _in_thread(lambda: _sh_agent(pm, "ls", ran).invoke(prompt("go")))
    assert box["value"]["messages"][-1].text == "done" and ran == ["ls"]
    assert threads[0] is threads[1] and threads[0].is_alive()  # the loop went on


def test_a_sync_run_fails_instead_of_hanging_when_the_loop_thread_dies(caplog):
    pm = PluginManager()

    def die() -> None:
        raise SystemExit  # a callback's SystemExit ends asyncio's run_forever

    class Killer:
        kill = True

        @hookimpl
        async def on_tool_call(self, event):
            if self.kill:
                asyncio.get_running_loop().call_soon(die)
                await asyncio.sleep(TIMEOUT)

    killer = Killer()
    pm.register(killer)
    ran: list[str] = []
    agent = _sh_agent(pm, "ls", ran)
    box = _in_thread(lambda: agent.invoke(prompt("go")))
    assert isinstance(box.get("raised"), RuntimeError) and ran == []
    assert "event loop thread" in str(box["raised"])
    assert "a callback on it raised" in caplog.text  # logged, the thread's SystemExit too
    killer.kill = False  # the next run gets a new loop
    box = _in_thread(lambda: _sh_agent(pm, "ls", ran).invoke(prompt("go")))
    assert box["value"]["messages"][-1].text == "done" and ran == ["ls"]


# -- 9. an outer after_agent sends the ended turn back; late calls of a failed step -------


class Redo(AgentMiddleware):
    """An output check placed before the middleware: sends a draft answer back once, with a
    human message when ``ask`` is given."""

    def __init__(self, ask: str = "") -> None:
        super().__init__()
        self.ask = ask

    @hook_config(can_jump_to=["model"])
    def after_agent(self, state, runtime):
        if state["messages"][-1].text == "draft":
            messages = [HumanMessage(self.ask)] if self.ask else []
            return {"messages": messages, "jump_to": "model"}
        return None


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_outer_after_agent_jumping_back_revives_the_ended_turn(mode, caplog):
    caplog.set_level("INFO", logger="kithooks")
    pm = PluginManager()
    rec = recorded(pm)
    model = Replay(replies=[ai("draft"), ai("final")])
    agent = create_agent(
        model, [], middleware=[Redo(), KitHooksMiddleware(pm)], checkpointer=InMemorySaver()
    )
    config = {"configurable": {"thread_id": "t"}}
    state = run(agent, prompt("write"), mode, config)
    assert state["messages"][-1].text == "final"
    names = rec.names()
    first = names.index("agent_end") + 1
    assert names[first:] == [
        "prepare_step", "step_start", "message_update", "step_finish", "llm_usage",
        "message_end", "agent_end",
    ]  # fmt: skip
    assert len(set(rec.turns())) == 1
    assert [e.response for e in rec.of(kithooks.AgentEndEvent)] == ["draft", "final"]
    assert "ended (agent_end was emitted) but goes on" in caplog.text
    mark = agent.get_state(config).values["kithooks_turn"]
    assert mark.isprintable()  # PostgreSQL's checkpointer stores it as JSON, which refuses NUL


class FastPath(AgentMiddleware):
    """A cache-like middleware placed before the middleware: goes straight to the model on
    some prompts, past the middleware's before_agent."""

    @hook_config(can_jump_to=["model"])
    def before_agent(self, state, runtime):
        return {"jump_to": "model"} if "fast" in state["messages"][-1].text else None


class NoEvil:
    @hookimpl
    def on_input(self, event):
        if "evil" in event.text:
            return kithooks.InputResult(action="handled")
        return None


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("outer", ["fast path", "redo with a new message"])
def test_a_prompt_that_never_went_through_input_is_refused_after_a_turn_ended(mode, outer):
    """A new human message after the turn's end whose before_agent never ran (an earlier
    middleware jumped past it, or sent the run back with one) is a prompt no input guard
    saw: refused, not run as the ended turn."""
    pm = PluginManager()
    pm.register(NoEvil(), name="no-evil")
    rec = recorded(pm)
    config = {"configurable": {"thread_id": "t"}}
    if outer == "fast path":
        model = Replay(replies=[ai("answer"), ai("evil done")])
        agent = create_agent(
            model, [], middleware=[FastPath(), KitHooksMiddleware(pm)], checkpointer=InMemorySaver()
        )
        run(agent, prompt("hello"), mode, config)
        value = prompt("fast evil please")
    else:
        model = Replay(replies=[ai("draft"), ai("evil done")])
        agent = create_agent(
            model,
            [],
            middleware=[Redo(ask="now something evil"), KitHooksMiddleware(pm)],
            checkpointer=InMemorySaver(),
        )
        value = prompt("write")
    with pytest.raises(RuntimeError, match="human message newer than its end"):
        run(agent, value, mode, config)
    assert rec.names().count("agent_end") == 1


class HoldSecond(AgentMiddleware):
    """Starts the step's second call only once the turn's failure ended it (as a thread
    pool that starts a call late does)."""

    def __init__(self, ended: threading.Event) -> None:
        super().__init__()
        self.ended = ended

    def wrap_tool_call(self, request, handler):
        if request.tool_call["id"] == "c2":
            assert self.ended.wait(TIMEOUT)
        return handler(request)

    async def awrap_tool_call(self, request, handler):
        if request.tool_call["id"] != "c2":
            return await handler(request)

        async def late() -> Any:
            assert await asyncio.to_thread(self.ended.wait, TIMEOUT)
            return await handler(request)

        # Shielded: LangGraph may cancel the step's other tasks when one fails; this call
        # goes on, as a call a thread pool started late does.
        return await asyncio.shield(late())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_call_of_a_failed_step_that_starts_late_leaves_no_open_turn(mode, caplog):
    caplog.set_level("INFO", logger="kithooks")
    pm = PluginManager()
    rec = recorded(pm)
    ended, closed = threading.Event(), threading.Event()
    ends: list[str] = []

    class End:
        @hookimpl
        def on_agent_end(self, event):
            ends.append(event.stop_reason)
            ended.set()
            if len(ends) % 2 == 0:  # the late call's own agent_end: the turn is closed
                closed.set()

    pm.register(End())

    @tool
    def boom(x: str) -> str:
        """Fails."""
        raise ValueError("kaput")

    @tool
    def ok(x: str) -> str:
        """Fine."""
        return "ok"

    mw = KitHooksMiddleware(pm, max_open_runs=2)
    model = Replay(replies=[ai("", ("boom", {"x": "1"}, "c1"), ("ok", {"x": "2"}, "c2"))])
    agent = create_agent(model, [boom, ok], middleware=[HoldSecond(ended), mw])

    async def arun_to_the_late_close() -> None:
        # The run fails while the step's late call still waits in its own task: that task
        # is awaited before the loop closes (asyncio.run would cancel it).
        with pytest.raises(ValueError, match="kaput"):
            await asyncio.wait_for(agent.ainvoke(prompt("go")), TIMEOUT)
        assert await asyncio.to_thread(closed.wait, TIMEOUT), "the late call never ended"

    for _ in range(3):
        ended.clear()
        closed.clear()
        if mode == "sync":
            with pytest.raises(ValueError, match="kaput"):
                run(agent, prompt("go"), mode)
        else:
            asyncio.run(arun_to_the_late_close())
        assert closed.wait(TIMEOUT), "the late call never ended"
    assert mw._runs == {}  # no turn reopened by its late call, none pushing real ones out
    assert pm.turn_aggregator is not None and pm.turn_aggregator.open_turns == 0
    events = [(e.event_type.value, getattr(e, "tool_call_id", "")) for _, e in rec.events]
    one_turn = events[: len(events) // 3]
    fail = one_turn.index(("error", ""))
    assert [name for name, _ in one_turn[fail:]] == [
        "error", "agent_end", "tool_call", "tool_execution_start", "tool_execution_end",
        "tool_result", "agent_end",
    ]  # fmt: skip
    assert {call for _, call in one_turn[fail + 2 :] if call} == {"c2"}
    assert len(set(rec.turns())) == 3
    assert [e.stop_reason for e in rec.of(kithooks.AgentEndEvent)] == ["error"] * 6
    assert "runs after the turn failed" in caplog.text and "WARNING" not in caplog.text


def test_a_sub_agent_run_from_an_async_handler_uses_its_own_managers_loop():
    """An async handler that runs a sync sub-agent on another manager: the sub-agent's
    coroutine handlers get that manager's one loop on every event, so a guard holding
    loop-bound state (a queue and its worker, as a pooled client) guards every call."""
    loops: list[int] = []
    ran: list[str] = []

    class PooledGuard:
        def __init__(self) -> None:
            self.queue: asyncio.Queue[tuple[asyncio.Future[bool], str]] | None = None
            self.worker: asyncio.Task[None] | None = None

        async def serve(self) -> None:
            assert self.queue is not None
            while True:
                answer, text = await self.queue.get()
                answer.set_result("rm" in text)

        @hookimpl
        async def on_tool_call(self, event):
            loop = asyncio.get_running_loop()
            loops.append(id(loop))
            if self.queue is None:
                self.queue = asyncio.Queue()
                self.worker = loop.create_task(self.serve())
            answer = loop.create_future()
            await self.queue.put((answer, event.input))
            if await asyncio.wait_for(answer, TIMEOUT):
                return kithooks.ToolCallResult(block=True, reason="no rm")
            return None

    @tool
    def sh(cmd: str) -> str:
        """Run a command."""
        ran.append(cmd)
        return "ran " + cmd

    sub_pm = PluginManager()
    sub_pm.register(PooledGuard(), name="pooled")
    replies = [ai("", ("sh", {"cmd": "ls"}, "s1")), ai("", ("sh", {"cmd": "rm -rf /"}, "s2"))]
    sub = create_agent(
        Replay(replies=[*replies, ai("judged")]), [sh], middleware=[KitHooksMiddleware(sub_pm)]
    )

    class Judge:
        @hookimpl
        async def on_agent_start(self, event):
            sub.invoke(prompt("judge"))

    pm = PluginManager()
    pm.register(Judge(), name="judge")
    outer = create_agent(Replay(replies=[ai("done")]), [], middleware=[KitHooksMiddleware(pm)])
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(outer.invoke(prompt("go"))))
    worker.start()
    join_all([worker])
    assert result and result[0]["messages"][-1].text == "done"
    assert len(loops) == 2 and len(set(loops)) == 1
    assert ran == ["ls"]


@tool
def echo_text(text: str) -> str:
    """Echo the text."""
    return text


def test_message_end_has_the_answer_as_the_model_gave_it():
    """A middleware placed before KitHooksMiddleware may change the answer's message in place
    after the model call; message_end carries the text the model gave, as message_update."""

    class Redact(AgentMiddleware):  # type: ignore[type-arg]
        def wrap_model_call(self, request, handler):
            response = handler(request)
            for message in response.result:
                if isinstance(message, AIMessage):
                    message.content = "[redacted]"
            return response

    seen: list[tuple[str, str]] = []

    class Texts:
        @hookimpl
        def on_message_update(self, event):
            seen.append(("update", event.chunk))

        @hookimpl
        def on_message_end(self, event):
            seen.append(("end", event.content))

    pm = PluginManager()
    pm.register(Texts())
    agent = create_agent(
        Replay(replies=[ai("secret 42")]), [], middleware=[Redact(), KitHooksMiddleware(pm)]
    )
    agent.invoke(prompt("hi"))
    assert seen == [("update", "secret 42"), ("end", "secret 42")]


def test_a_prepare_step_plugin_registered_at_agent_start_sees_the_first_step():
    """Each window rewrite is asked when its turn comes: a plugin an agent_start handler
    registers rewrites the turn's first step already."""
    steps: list[int] = []

    class Late:
        @hookimpl
        def on_prepare_step(self, event):
            steps.append(event.step_number)

    class Starter:
        @hookimpl
        def on_agent_start(self, event):
            pm.register(Late(), name="late")

    pm = PluginManager()
    pm.register(Starter())
    model = Replay(replies=[ai("", ("echo_text", {"text": "x"}, "c1")), ai("done")])
    create_agent(model, [echo_text], middleware=[KitHooksMiddleware(pm)]).invoke(prompt("hi"))
    assert steps == [0, 1]


def test_each_model_call_gets_its_own_injected_message():
    """before_agent_start's inject_text is a new message on every model call: a middleware
    inside KitHooksMiddleware that edits the request's messages in place edits that call's."""

    class Rules:
        @hookimpl
        def on_before_agent_start(self, event):
            return kithooks.BeforeAgentStartResult(inject_text="Rules.")

    class Tag(AgentMiddleware):  # type: ignore[type-arg]
        def wrap_model_call(self, request, handler):
            for message in request.messages:
                if isinstance(message, HumanMessage) and message.id is None:
                    message.content = f"{message.content} [seen]"
            return handler(request)

    pm = PluginManager()
    pm.register(Rules())
    model = Replay(
        replies=[
            ai("", ("echo_text", {"text": "x"}, "c1")),
            ai("", ("echo_text", {"text": "y"}, "c2")),
            ai("done"),
        ]
    )
    create_agent(model, [echo_text], middleware=[KitHooksMiddleware(pm), Tag()]).invoke(
        prompt("hi")
    )
    injected = [next(m.content for m in call if isinstance(m, HumanMessage)) for call in model.seen]
    assert injected == ["Rules. [seen]"] * 3
