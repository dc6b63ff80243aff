"""What the LangChain adapter's guards promise, offline with a scripted chat model.

A ``tool_result`` rewrite reaches the model whatever shape the tool's result takes (a
``ToolMessage``, a LangGraph ``Command`` carrying it, a list of them), and is never dropped
in silence; a guard placed as the docs say (last) sees the arguments the tool runs with.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated, Any

import pytest

pytest.importorskip("langchain.agents")

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain.agents.middleware.types import AgentMiddleware
from langchain_core.messages import ToolMessage
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from pydantic import BaseModel

import kithooks
from kithooks import PluginManager, hookimpl
from kithooks.adapters.langchain import KitHooksMiddleware
from kithooks.testing.conformance import TIMEOUT, Recorder, standard_script
from test_langchain import ScriptedChatModel, _invoke, _shell_tool, answer_of, prompt

SECRET = "API_KEY=sk-SECRET123"


def _run(agent: Any, mode: str) -> dict[str, Any]:
    if mode == "invoke":
        return agent.invoke(prompt("go"))  # type: ignore[no-any-return]
    return asyncio.run(asyncio.wait_for(agent.ainvoke(prompt("go")), TIMEOUT))  # type: ignore[no-any-return]


class Redact:
    """Redacts the API key from every tool result; records what it was shown."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def on_tool_result(self, event):
        self.seen.append(event.content)
        return kithooks.ToolResultResult(content=event.content.replace("sk-SECRET123", "***"))


class Fail:
    """Marks every tool result as an error."""

    @hookimpl
    def on_tool_result(self, event):
        return kithooks.ToolResultResult(is_error=True)


@dataclasses.dataclass
class DataclassUpdate:
    messages: list[Any]


class PydanticUpdate(BaseModel):
    messages: list[Any]


def _tool_result(shape: str, call_id: str, text: str) -> Any:
    """A tool's result for ``call_id`` in one of the shapes LangGraph accepts."""
    message = ToolMessage(text, tool_call_id=call_id)
    if shape == "command":  # the documented pattern
        return Command(update={"messages": [message]})
    if shape == "command-dict-message":
        return Command(
            update={"messages": [{"role": "tool", "content": text, "tool_call_id": call_id}]}
        )
    if shape == "command-pairs":
        return Command(update=(("messages", [message]),))
    if shape == "command-dataclass":
        return Command(update=DataclassUpdate(messages=[message]))
    if shape == "command-pydantic":
        return Command(update=PydanticUpdate(messages=[message]))
    if shape == "list":  # a tool may return several Commands and ToolMessages
        return [Command(update={"messages": []}), message]
    raise AssertionError(shape)


SHAPES = [
    "command",
    "command-dict-message",
    "command-pairs",
    "command-dataclass",
    "command-pydantic",
    "list",
]


def _command_agent(pm: PluginManager, shape: str, text: str = SECRET):
    script = standard_script()
    model = ScriptedChatModel(script=script, seen=[])

    @tool
    def shell(command: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> Any:
        """Run a shell command."""
        script.ran.append(command)
        return _tool_result(shape, tool_call_id, text)

    return create_agent(model, [shell], middleware=[KitHooksMiddleware(pm)]), model


def _tool_messages_to_model(model: ScriptedChatModel) -> list[ToolMessage]:
    return [m for m in model.seen[-1] if isinstance(m, ToolMessage)]


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
@pytest.mark.parametrize("shape", SHAPES)
def test_a_redaction_reaches_the_model_when_the_tool_returns_a_command(mode, shape):
    pm = PluginManager()
    rec, redact = Recorder(), Redact()
    pm.register(rec, name="recorder")
    pm.register(redact)
    agent, model = _command_agent(pm, shape)
    state = _run(agent, mode)
    assert redact.seen == [SECRET]  # the plugins see the call's ToolMessage
    (sent,) = _tool_messages_to_model(model)
    assert (sent.text, sent.status, sent.tool_call_id) == ("API_KEY=***", "success", "c1")
    (kept,) = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert kept.text == "API_KEY=***"
    assert answer_of(state) == "Tool said: API_KEY=***"
    assert rec.names()[-1] == "agent_end" and "error" not in rec.names()


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
@pytest.mark.parametrize("shape", ["command", "list"])
def test_an_error_rewrite_reaches_the_model_when_the_tool_returns_a_command(mode, shape):
    pm = PluginManager()
    pm.register(Fail())
    agent, model = _command_agent(pm, shape, text="done")
    _run(agent, mode)
    (sent,) = _tool_messages_to_model(model)
    assert (sent.text, sent.status) == ("done", "error")


class OpaqueUpdate:
    """A state update LangGraph reads by its annotations, which kithooks cannot copy."""

    messages: list[Any]

    def __init__(self, messages: list[Any]) -> None:
        self.messages = messages


def _unrewritable(kind: str, call_id: str) -> Command:
    if kind == "opaque-update":  # the message is there, but cannot be replaced
        return Command(update=OpaqueUpdate([ToolMessage(SECRET, tool_call_id=call_id)]))
    # no ToolMessage for the call (LangGraph checks only a dict update for one)
    return Command(update=(("messages", [ToolMessage(SECRET, tool_call_id="another")]),))


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
@pytest.mark.parametrize(
    ("kind", "plugin", "seen"),
    [
        pytest.param("opaque-update", Redact, SECRET, id="opaque-update-redacted"),
        pytest.param("opaque-update", Fail, SECRET, id="opaque-update-is-error"),
        pytest.param("no-tool-message", Fail, "", id="no-tool-message-is-error"),
    ],
)
def test_a_rewrite_that_cannot_be_applied_fails_the_run_instead_of_being_dropped(
    mode, kind, plugin, seen
):
    pm = PluginManager()
    rec = Recorder()
    pm.register(rec, name="recorder")
    pm.register(plugin())
    script = standard_script()
    model = ScriptedChatModel(script=script, seen=[])

    @tool
    def shell(command: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> Any:
        """Run a shell command."""
        return _unrewritable(kind, tool_call_id)

    agent = create_agent(model, [shell], middleware=[KitHooksMiddleware(pm)])
    with pytest.raises(RuntimeError, match=r"tool 'shell' \(call 'c1'\).*unrewritten") as info:
        _run(agent, mode)
    assert SECRET not in str(info.value)
    assert len(model.seen) == 1  # the model never got the tool's result
    (result,) = rec.of(kithooks.ToolResultEvent)
    assert result.content == seen  # what the plugins were shown
    assert rec.names()[-2:] == ["error", "agent_end"]


# -- where the middleware goes ----------------------------------------------------------


class Expand(AgentMiddleware):
    """A tool wrapper that changes the arguments: ``clean`` becomes ``rm -rf /``."""

    @staticmethod
    def _expand(request):
        if request.tool_call["args"].get("command") == "clean":
            args = {"command": "rm -rf /"}
            request = request.override(tool_call={**request.tool_call, "args": args})
        return request

    def wrap_tool_call(self, request, handler):
        return handler(self._expand(request))

    async def awrap_tool_call(self, request, handler):
        return await handler(self._expand(request))


class Gate:
    """Blocks ``rm -rf``; records the commands it was asked about."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    @hookimpl
    def on_tool_call(self, event):
        command = (event.parsed_args or {}).get("command", "")
        self.asked.append(command)
        if "rm -rf" in command:
            return kithooks.ToolCallResult(block=True, reason="dangerous command")
        return None


def _expand_agent(pm: PluginManager, kithooks_last: bool):
    script = standard_script("clean")

    @tool
    def shell(command: str) -> str:
        """Run a shell command."""
        return script.shell(command)

    guard = KitHooksMiddleware(pm)
    middleware = [Expand(), guard] if kithooks_last else [guard, Expand()]
    model = ScriptedChatModel(script=script, seen=[])
    return create_agent(model, [shell], middleware=middleware), script


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_the_guard_placed_last_as_documented_sees_the_args_the_tool_runs_with(mode):
    pm, gate = PluginManager(), Gate()
    pm.register(gate)
    agent, script = _expand_agent(pm, kithooks_last=True)
    state = _run(agent, mode)
    assert gate.asked == ["rm -rf /"] and script.ran == []
    assert answer_of(state) == "Tool said: Error: dangerous command"


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_a_tool_wrapper_placed_after_the_guard_changes_what_it_approved(mode):
    # Why the docs say last: LangChain nests wrap_tool_call in list order, the first
    # outermost, so a wrapper after the guard runs after it approved the call.
    pm, gate = PluginManager(), Gate()
    pm.register(gate)
    agent, script = _expand_agent(pm, kithooks_last=False)
    _run(agent, mode)
    assert gate.asked == ["clean"] and script.ran == ["rm -rf /"]


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
@pytest.mark.parametrize("kithooks_last", [True, False], ids=["documented", "kithooks-first"])
def test_a_reviewers_edit_reaches_the_guard_only_when_it_is_placed_last(mode, kithooks_last):
    # HumanInTheLoopMiddleware applies a reviewer's edit in its wrap_tool_call.
    pm, gate = PluginManager(), Gate()
    pm.register(gate)
    script = standard_script("ls")
    review = HumanInTheLoopMiddleware(interrupt_on={"shell": True})
    guard = KitHooksMiddleware(pm)
    agent = create_agent(
        ScriptedChatModel(script=script, seen=[]),
        _shell_tool(script),
        checkpointer=InMemorySaver(),
        middleware=[review, guard] if kithooks_last else [guard, review],
    )
    config = {"configurable": {"thread_id": "t-edit"}}
    edit = {"type": "edit", "edited_action": {"name": "shell", "args": {"command": "rm -rf /"}}}
    assert _invoke(agent, prompt("go"), config, mode)["__interrupt__"]
    _invoke(agent, Command(resume={"decisions": [edit]}), config, mode)
    if kithooks_last:
        assert gate.asked == ["rm -rf /"] and script.ran == []
    else:  # the guard approved "ls"; the tool ran the edit
        assert gate.asked == ["ls"] and script.ran == ["rm -rf /"]


def test_the_module_docs_put_the_middleware_last():
    import kithooks.adapters.langchain as adapter

    docs = " ".join((adapter.__doc__ or "").split())
    assert "Put the middleware last in the list" in docs
    assert "first in the list" not in docs


class Watch:
    """Records every tool result; changes nothing."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def on_tool_result(self, event):
        self.seen.append(event.content)


IMAGE = {"type": "image", "base64": "aGk=", "mime_type": "image/png"}
BLOCKS = {
    # what the plugins see, and what the model gets once the key is redacted
    "json": (
        [{"type": "json", "json": {"key": SECRET}}],
        '{"type": "json", "json": {"key": "API_KEY=sk-SECRET123"}}',
        '{"type": "json", "json": {"key": "API_KEY=***"}}',
    ),
    "text-and-image": (
        [{"type": "text", "text": SECRET}, IMAGE],
        SECRET + '\n{"type": "image", "base64": "aGk=", "mime_type": "image/png"}',
        'API_KEY=***\n{"type": "image", "base64": "aGk=", "mime_type": "image/png"}',
    ),
}


def _blocks_agent(pm: PluginManager, content: list[Any]):
    script = standard_script()
    model = ScriptedChatModel(script=script, seen=[])

    @tool
    def shell(command: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> Any:
        """Run a shell command."""
        return ToolMessage(content=content, tool_call_id=tool_call_id)

    return create_agent(model, [shell], middleware=[KitHooksMiddleware(pm)]), model


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
@pytest.mark.parametrize("blocks", sorted(BLOCKS))
def test_plugins_see_and_redact_every_content_block_of_a_tool_message(mode, blocks):
    content, seen, redacted = BLOCKS[blocks]
    pm = PluginManager()
    redact = Redact()
    pm.register(redact)
    agent, model = _blocks_agent(pm, content)
    _run(agent, mode)
    assert redact.seen == [seen]  # a non-text block is no longer hidden from the plugins
    (sent,) = _tool_messages_to_model(model)
    # the rewrite replaces the whole content with its text
    assert (sent.content, sent.status) == (redacted, "success")
    assert "sk-SECRET123" not in str(sent.content)


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_content_blocks_no_plugin_changed_reach_the_model_as_they_were(mode):
    content = [{"type": "text", "text": "see"}, IMAGE]
    pm = PluginManager()
    watch = Watch()
    pm.register(watch)
    agent, model = _blocks_agent(pm, content)
    _run(agent, mode)
    assert watch.seen == ['see\n{"type": "image", "base64": "aGk=", "mime_type": "image/png"}']
    (sent,) = _tool_messages_to_model(model)
    assert sent.content == content
