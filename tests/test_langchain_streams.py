"""What LangChain's streaming surfaces show of kithooks' results, with real agents.

The middleware changes what the graph stores, so every surface built from the state and
the nodes' outputs (``stream`` / ``astream`` chunks of ``updates``, ``messages`` and
``values``, the ``tools`` node's ``on_chain_*`` entries of ``astream_events``, the final
state) carries a ``tool_result`` rewrite and a block's error message. The tool's own
callbacks fire inside the tool, before any wrapper sees its result: ``on_tool_start`` /
``on_tool_end`` and LangGraph's ``tools`` stream mode carry the tool's raw output (a secret
the redactor removed is there) and the arguments the tool ran with. These tests pin that,
as the module docs and docs/adapters.md describe it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("langchain.agents")

from examples.langchain_agent import ScriptedModel
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool

import kithooks
from kithooks import PluginManager, hookimpl
from kithooks.adapters.langchain import KitHooksMiddleware
from kithooks.examples import secret_redactor
from kithooks.testing.conformance import TIMEOUT

SECRET = "sk-proj-Zx81kQp0vT3mW9aLr5sYc2Nd"
REDACTED = "[REDACTED:openai-key]"
MODES = ["updates", "messages", "values", "tools"]
PROMPT = {"messages": [{"role": "user", "content": "read the notes, then clean up"}]}


class Gate:
    @hookimpl
    def on_tool_call(self, event):
        if event.tool_name == "bash" and "rm" in (event.parsed_args or {}).get("command", ""):
            return kithooks.ToolCallResult(block=True, reason="dangerous")
        return None


class Redirect:
    @hookimpl
    def on_tool_call(self, event):
        if event.tool_name == "read_file":
            return kithooks.ToolCallResult(args={"path": "safe.txt"})
        return None


def _agent(*plugins: Any) -> tuple[Any, list[str]]:
    """The example's scripted agent: read_file (whose output holds a secret), then bash
    ``rm -rf /``, then an answer quoting both results; also the commands bash ran."""
    ran: list[str] = []

    @tool
    def read_file(path: str) -> str:
        """Read a file."""
        return f"{path}: deploy key {SECRET}"

    @tool
    def bash(command: str) -> str:
        """Run a command."""
        ran.append(command)
        return f"ran {command}"

    pm = PluginManager()
    for plugin in plugins:
        pm.register(plugin)
    agent = create_agent(ScriptedModel(), [read_file, bash], middleware=[KitHooksMiddleware(pm)])
    return agent, ran


def _stream(agent: Any, how: str) -> list[tuple[str, Any]]:
    """(mode, chunk) of a ``stream`` or ``astream`` run in every mode that shows tools."""
    if how == "stream":
        return list(agent.stream(PROMPT, stream_mode=MODES))

    async def collect() -> list[tuple[str, Any]]:
        return [chunk async for chunk in agent.astream(PROMPT, stream_mode=MODES)]

    return asyncio.run(asyncio.wait_for(collect(), TIMEOUT))


def _events(agent: Any) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event async for event in agent.astream_events(PROMPT, version="v2")]

    return asyncio.run(asyncio.wait_for(collect(), TIMEOUT))


def _tool_messages(chunk: Any) -> list[ToolMessage]:
    """The ToolMessages of an ``updates`` chunk of the tools node."""
    update = chunk.get("tools") or {}
    return [m for m in update.get("messages", []) if isinstance(m, ToolMessage)]


@pytest.mark.parametrize("how", ["stream", "astream"])
def test_a_redaction_is_in_every_state_surface_and_the_raw_output_only_in_the_tools_mode(how):
    agent, _ = _agent(secret_redactor)
    chunks = _stream(agent, how)

    state_chunks = [(mode, chunk) for mode, chunk in chunks if mode != "tools"]
    assert state_chunks and all(SECRET not in repr(chunk) for _, chunk in state_chunks)
    streamed = [chunk[0] for mode, chunk in chunks if mode == "messages"]
    updated = [m for mode, chunk in chunks if mode == "updates" for m in _tool_messages(chunk)]
    final = next(chunk for mode, chunk in reversed(chunks) if mode == "values")["messages"]
    for messages in (streamed, updated, final):
        notes = next(m for m in messages if isinstance(m, ToolMessage) and m.name == "read_file")
        assert notes.text == f"notes.txt: deploy key {REDACTED}"

    # LangGraph's tools mode comes from the tool's own callbacks, before the rewrite
    finished = [
        chunk for mode, chunk in chunks if mode == "tools" and chunk["event"] == "tool-finished"
    ]
    raw = next(c["output"] for c in finished if c["tool_call_id"] == "call_1")
    assert raw.text == f"notes.txt: deploy key {SECRET}"


def test_a_redaction_misses_only_the_tools_own_on_tool_end_in_astream_events():
    agent, _ = _agent(secret_redactor)
    events = _events(agent)

    with_secret = [(e["event"], e["name"]) for e in events if SECRET in repr(e["data"])]
    assert with_secret == [("on_tool_end", "read_file")]
    node = [e for e in events if e["name"] == "tools" and e["event"] != "on_chain_start"]
    assert {e["event"] for e in node} == {"on_chain_stream", "on_chain_end"}
    assert all(REDACTED in repr(e["data"]) for e in node if "call_1" in repr(e["data"]))
    final = next(e for e in events if e["event"] == "on_chain_end" and e["name"] == "LangGraph")
    assert SECRET not in repr(final["data"]["output"])


def test_a_blocked_call_has_no_tool_entry_and_only_its_error_message_streams():
    agent, ran = _agent(Gate())
    events = _events(agent)
    chunks = _stream(agent, "stream")

    assert ran == []
    assert [(e["event"], e["name"]) for e in events if e["event"].startswith("on_tool")] == [
        ("on_tool_start", "read_file"),
        ("on_tool_end", "read_file"),
    ]
    tools_mode = [chunk for mode, chunk in chunks if mode == "tools"]
    assert {c["tool_call_id"] for c in tools_mode} == {"call_1"}
    node_out = [
        m
        for e in events
        if e["name"] == "tools" and e["event"] == "on_chain_end"
        for m in e["data"]["output"]["messages"]
    ]
    updated = [m for mode, chunk in chunks if mode == "updates" for m in _tool_messages(chunk)]
    streamed = [chunk[0] for mode, chunk in chunks if mode == "messages"]
    for messages in (node_out, updated, streamed):
        blocked = [m for m in messages if isinstance(m, ToolMessage) and m.tool_call_id == "call_2"]
        assert [(m.text, m.status) for m in blocked] == [("Error: dangerous", "error")]


def test_an_args_rewrite_shows_in_the_tool_entries_and_not_in_the_models_message():
    agent, _ = _agent(Redirect())
    events = _events(agent)
    chunks = _stream(agent, "stream")

    tool_inputs = [
        (e["event"], e["data"]["input"])
        for e in events
        if e["name"] == "read_file" and e["event"] in ("on_tool_start", "on_tool_end")
    ]
    assert tool_inputs == [
        ("on_tool_start", {"path": "safe.txt"}),
        ("on_tool_end", {"path": "safe.txt"}),
    ]
    started = [
        c["input"]
        for mode, c in chunks
        if mode == "tools" and c["event"] == "tool-started" and c["tool_name"] == "read_file"
    ]
    assert started == [{"path": "safe.txt"}]
    final = next(chunk for mode, chunk in reversed(chunks) if mode == "values")["messages"]
    asked = next(m for m in final if isinstance(m, AIMessage) and m.tool_calls)
    assert asked.tool_calls[0]["args"] == {"path": "notes.txt"}  # what the model asked for
    result = next(m for m in final if isinstance(m, ToolMessage) and m.name == "read_file")
    assert result.text.startswith("safe.txt: ")


def test_the_private_turn_channel_is_in_values_chunks_but_not_in_the_invoke_output():
    agent, _ = _agent(secret_redactor)  # a hooked agent (with no plugin it has no channel)
    chunks = list(agent.stream(PROMPT, stream_mode="values"))

    assert any("kithooks_turn" in chunk for chunk in chunks)
    assert "kithooks_turn" not in agent.invoke(PROMPT)


def test_a_redaction_replaces_the_content_and_keeps_the_artifact():
    @tool(response_format="content_and_artifact")
    def read_file(path: str) -> tuple[str, dict[str, str]]:
        """Read a file."""
        return f"deploy key {SECRET}", {"raw": SECRET}

    @tool
    def bash(command: str) -> str:
        """Run a command."""
        return "ok"

    pm = PluginManager()
    pm.register(secret_redactor)
    agent = create_agent(
        ScriptedModel(command="ls"), [read_file, bash], middleware=[KitHooksMiddleware(pm)]
    )
    state = agent.invoke(PROMPT)

    notes = next(m for m in state["messages"] if isinstance(m, ToolMessage))
    assert (notes.text, notes.artifact) == (f"deploy key {REDACTED}", {"raw": SECRET})


@pytest.mark.filterwarnings("ignore:The v3 streaming protocol")
def test_the_v3_tool_calls_carry_the_raw_output_and_the_state_the_redaction():
    agent, _ = _agent(secret_redactor)
    run = agent.stream_events(PROMPT, version="v3")
    calls = []
    for call in run.tool_calls:
        list(call)  # to its end
        calls.append((call.tool_name, call.output))

    assert calls[0] == ("read_file", f"notes.txt: deploy key {SECRET}")
    assert SECRET not in repr(run.output)
    assert REDACTED in repr(run.output)
