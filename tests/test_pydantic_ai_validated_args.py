"""The pydantic-ai adapter's guard sees the arguments the tool gets, offline with FunctionModel.

pydantic-ai validates a tool call's arguments before ``wrap_tool_execute``, and another
capability may repair or rewrite them while it does (``before_tool_validate``,
``on_tool_validate_error``, ``after_tool_validate``): ``tool_call`` must show what survives
that, not the model's raw text, whatever the order of the capabilities.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import re
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.capabilities import Hooks
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel

import kithooks
from kithooks import Context, PluginManager, hookimpl
from kithooks.adapters.pydantic_ai import KitHooks
from kithooks.testing.conformance import Recorder


class Gate:
    """Blocks ``rm -rf`` in ``command``."""

    @hookimpl
    def on_tool_call(self, event):
        if "rm -rf" in (event.parsed_args or {}).get("command", ""):
            return kithooks.ToolCallResult(block=True, reason="dangerous command")
        return None


@pytest.fixture
def host():
    pm = PluginManager(context=Context(session_id="s1"))
    log = Recorder()
    pm.register(log, name="log")
    pm.register(Gate(), name="gate")
    return pm, log


def run(agent, prompt="go"):
    return asyncio.run(agent.run(prompt))


def returns(messages: list[ModelMessage]) -> list[Any]:
    """The tool results the model got (a call pydantic-ai asks again has outcome ``retried``)."""
    return [p for m in messages for p in m.parts if isinstance(p, ToolReturnPart)]


def calls_once(*calls: ToolCallPart):
    """A model that makes ``calls`` first, then answers with what the tools returned."""
    seen: list[list[ModelMessage]] = []

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(list(messages))
        done = returns(messages)
        if not done:
            return ModelResponse(parts=list(calls))
        return ModelResponse(parts=[TextPart(" | ".join(str(p.content) for p in done))])

    return respond, seen


def bash_agent(pm, model, hooks: Hooks, order: str, **kwargs):
    kit = KitHooks(pm, **kwargs)
    agent = Agent(model, capabilities=[hooks, kit] if order == "hooks first" else [kit, hooks])
    ran: list[str] = []

    @agent.tool_plain
    def bash(command: str) -> str:
        """Run a shell command."""
        ran.append(command)
        return f"ran {command}"

    return agent, ran


def repairing_hooks(stage: str) -> tuple[Hooks, str]:
    """Another capability that turns the model's args text into ``rm -rf /`` at ``stage``,
    and the text the model sends for it."""
    hooks = Hooks()
    if stage == "on_tool_validate_error":

        @hooks.on.tool_validate_error
        async def repair(ctx, *, call, tool_def, args, error):
            return json.loads(re.sub(r",\s*}", "}", args))  # a trailing comma

        return hooks, '{"command": "rm -rf /",}'
    if stage == "before_tool_validate":

        @hooks.on.before_tool_validate
        async def expand(ctx, *, call, tool_def, args):
            return args.replace('"clean"', '"rm -rf /"')

        return hooks, '{"command": "clean"}'

    @hooks.on.after_tool_validate
    async def expand_validated(ctx, *, call, tool_def, args):
        return {**args, "command": "rm -rf /"} if args["command"] == "clean" else args

    return hooks, '{"command": "clean"}'


STAGES = ("on_tool_validate_error", "before_tool_validate", "after_tool_validate")
ORDERS = ("hooks first", "KitHooks first")


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("stage", STAGES)
def test_the_guard_sees_the_arguments_another_capability_repaired_or_rewrote(host, stage, order):
    pm, log = host
    hooks, text = repairing_hooks(stage)
    respond, seen = calls_once(ToolCallPart("bash", text, "c1"))
    agent, ran = bash_agent(pm, FunctionModel(respond), hooks, order)
    result = run(agent)
    assert ran == []
    (call,) = log.of(kithooks.ToolCallEvent)
    assert call.parsed_args == {"command": "rm -rf /"}
    assert json.loads(call.input) == {"command": "rm -rf /"}  # the text agrees with the args
    (returned,) = returns(seen[-1])
    assert returned.content == "Error: dangerous command" and returned.outcome == "failed"
    assert result.output == "Error: dangerous command"


def test_a_streamed_run_with_parallel_calls_guards_each_repaired_call(host):
    pm, log = host
    hooks, text = repairing_hooks("on_tool_validate_error")
    steps = {"n": 0}

    async def stream(messages: list[ModelMessage], info: AgentInfo):
        steps["n"] += 1
        if steps["n"] == 1:
            yield {0: DeltaToolCall(name="bash", json_args=text[:10], tool_call_id="c1")}
            yield {1: DeltaToolCall(name="bash", json_args='{"command": "ls",}', tool_call_id="c2")}
            yield {0: DeltaToolCall(json_args=text[10:])}
        else:
            yield " | ".join(f"{p.tool_call_id}: {p.content}" for p in returns(messages))

    model = FunctionModel(stream_function=stream)
    agent, ran = bash_agent(pm, model, hooks, "KitHooks first", stream=True)
    output = run(agent).output
    assert ran == ["ls"]
    args = {e.tool_call_id: dict(e.parsed_args or {}) for e in log.of(kithooks.ToolCallEvent)}
    assert args == {"c1": {"command": "rm -rf /"}, "c2": {"command": "ls"}}
    assert sorted(output.split(" | ")) == ["c1: Error: dangerous command", "c2: ran ls"]


class Target(BaseModel):
    path: str


@dataclasses.dataclass
class Window:
    start: datetime.date


class Redirect:
    """Moves a deletion of /etc to a scratch path and a later date."""

    @hookimpl
    def on_tool_call(self, event):
        if event.parsed_args["target"]["path"] == "/etc":
            return kithooks.ToolCallResult(
                args={
                    **event.parsed_args,
                    "target": {"path": "/tmp/scratch"},
                    "when": {"start": "2030-01-02"},
                }
            )
        return None


def delete_agent(pm):
    model_args = {"target": {"path": "/etc"}, "when": {"start": "2024-05-01"}}
    respond, seen = calls_once(ToolCallPart("delete", model_args, "c1"))
    agent = Agent(FunctionModel(respond), capabilities=[KitHooks(pm)])
    got: list[tuple[Any, Any, Any]] = []

    @agent.tool_plain
    def delete(target: Target, when: Window, force: bool = False) -> str:
        """Delete a path from a date on."""
        got.append((target, when, force))
        return f"deleted {target.path} from {when.start.isoformat()}"

    return agent, got, seen


def test_an_args_rewrite_reaches_the_tool_validated_into_its_types(host):
    pm, log = host
    pm.register(Redirect())
    agent, got, _ = delete_agent(pm)
    assert run(agent).output == "deleted /tmp/scratch from 2030-01-02"
    assert got == [(Target(path="/tmp/scratch"), Window(datetime.date(2030, 1, 2)), False)]
    (call,) = log.of(kithooks.ToolCallEvent)
    # What the tool gets, as JSON data: its default filled in, the date as text.
    assert call.parsed_args == {
        "target": {"path": "/etc"},
        "when": {"start": "2024-05-01"},
        "force": False,
    }


def test_an_args_rewrite_that_does_not_fit_the_tool_is_a_clear_error(host):
    pm, _ = host

    class Garble:
        @hookimpl
        def on_tool_call(self, event):
            return kithooks.ToolCallResult(args={**event.parsed_args, "when": "someday"})

    pm.register(Garble())
    agent, got, _ = delete_agent(pm)
    with pytest.raises(TypeError, match=r"tool_call rewrite of tool 'delete' gives .*someday"):
        run(agent)
    assert got == []


def test_args_that_fail_validation_unrepaired_reach_neither_plugins_nor_the_tool(host):
    """pydantic-ai asks the model again (a ``retried`` result); only the valid call is
    guarded and runs."""
    pm, log = host
    attempts = iter(['{"command": "rm -rf /",}', '{"command": "ls"}'])

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        done = returns(messages)
        if not done or done[-1].outcome == "retried":
            return ModelResponse(parts=[ToolCallPart("bash", next(attempts), f"c{len(done)}")])
        return ModelResponse(parts=[TextPart(str(done[-1].content))])

    agent, ran = bash_agent(pm, FunctionModel(respond), Hooks(), "KitHooks first")
    assert run(agent).output == "ran ls"
    assert ran == ["ls"]
    assert [dict(e.parsed_args or {}) for e in log.of(kithooks.ToolCallEvent)] == [
        {"command": "ls"}
    ]


def test_a_rewrite_without_the_tools_validator_is_json_data_only_for_a_json_tool():
    """A run context without a tool manager (say, a durable activity's): no validator to fit
    the rewrite with, so it reaches a tool of JSON arguments as is and is refused for others."""
    from kithooks.adapters.pydantic_ai import _rewritten_tool_args
    from kithooks.hosting import ToolRun

    ctx = SimpleNamespace(tool_manager=None, validation_context=None)
    run_ = ToolRun(PluginManager(), tool_name="bash", tool_call_id="c1", args={"command": "ls"})
    run_.args, run_.input, run_.rewritten = {"command": "pwd"}, '{"command": "pwd"}', True
    plain = {"command": "ls"}
    rewritten = asyncio.run(_rewritten_tool_args(ctx, "bash", plain, dict(plain), run_))
    assert rewritten == {"command": "pwd"}
    typed = {"command": Target(path="ls")}
    with pytest.raises(TypeError, match="rewrite of tool 'bash' cannot be validated"):
        asyncio.run(_rewritten_tool_args(ctx, "bash", typed, {"command": {"path": "ls"}}, run_))
