"""The conformance suite fails adapters that break a promise (it is not a rubber stamp)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

pytest.importorskip("langchain.agents")

from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from kithooks import PluginManager
from kithooks.adapters.langchain import KitHooksMiddleware
from kithooks.testing import conformance
from kithooks.testing.conformance import (
    Adapter,
    AdapterConformance,
    Reply,
    Script,
    ToolCall,
    standard_script,
)
from test_conformance_langchain import LangChainAdapter
from test_langchain import ScriptedChatModel


class IgnoresBlocks(KitHooksMiddleware):
    """Runs every tool, whatever tool_call said."""

    def wrap_tool_call(self, request: Any, handler: Any) -> Any:
        return handler(request)


class SharesOneTurn(KitHooksMiddleware):
    """Keeps every run under one turn id: concurrent runs mix."""

    def _open(self, runtime: Any) -> Any:
        run = super()._open(runtime)
        with self._lock:
            del self._runs[run.ctx.turn_id]
            run.ctx = attrs.evolve(run.ctx, turn_id="one")
            self._runs["one"] = run
        return run


class GuardsFirstCallOnly(KitHooksMiddleware):
    """Hooks only the first tool call of each model reply; the others run unguarded."""

    @staticmethod
    def _first(request: Any) -> bool:
        last = [m for m in request.state["messages"] if isinstance(m, AIMessage)][-1]
        return bool(request.tool_call["id"] == last.tool_calls[0]["id"])

    def wrap_tool_call(self, request: Any, handler: Any) -> Any:
        if self._first(request):
            return super().wrap_tool_call(request, handler)
        return handler(request)


def broken(middleware_class: type[KitHooksMiddleware]) -> Adapter:
    class Broken(LangChainAdapter):
        sync_modes = ("invoke",)
        async_modes = ()

        def build(self, pm: PluginManager, script: Script) -> Any:
            @tool
            def shell(command: str) -> str:
                """Run a shell command."""
                return script.shell(command)

            model = ScriptedChatModel(script=script, seen=[])
            return create_agent(model, [shell], middleware=[middleware_class(pm)])

    return Broken()


def test_an_adapter_that_ignores_blocks_fails_the_block_test():
    class Suite(AdapterConformance):
        adapter = broken(IgnoresBlocks)

    with pytest.raises(AssertionError):
        Suite().test_a_blocked_call_never_runs_and_the_model_sees_the_reason("invoke")
    Suite().test_usage_per_model_call("invoke")  # the rest of it still works


def test_an_adapter_that_guards_only_the_first_parallel_call_fails_the_parallel_tests():
    class Suite(AdapterConformance):
        adapter = broken(GuardsFirstCallOnly)

    with pytest.raises(AssertionError, match="ran"):
        Suite().test_every_parallel_tool_call_is_guarded("invoke")
    with pytest.raises(AssertionError, match="ran"):
        Suite().test_every_parallel_tool_call_is_rewritten("invoke")
    Suite().test_a_blocked_call_never_runs_and_the_model_sees_the_reason("invoke")  # one call


def test_a_parallel_script_makes_one_call_per_command_in_one_reply():
    script = conformance.parallel_script("ls", "pwd")
    first = script.respond([("user", "hi")])
    assert [(c.id, dict(c.args)) for c in first.tool_calls] == [
        ("c1", {"command": "ls"}),
        ("c2", {"command": "pwd"}),
    ]
    with pytest.raises(ValueError, match="at least one command"):
        conformance.parallel_script()


def test_an_adapter_that_mixes_turns_fails_the_concurrency_test():
    class Suite(AdapterConformance):
        adapter = broken(SharesOneTurn)

    with pytest.raises(AssertionError):
        Suite().test_concurrent_runs_of_one_agent_do_not_mix("invoke")


def test_an_adapter_without_modes_is_refused():
    class NoModes(LangChainAdapter):
        sync_modes = ()
        async_modes = ()

    class Suite(AdapterConformance):
        adapter = NoModes()

    class Metafunc:
        fixturenames = ("mode",)

        def parametrize(self, *args: Any) -> None:
            raise AssertionError("not reached")

    with pytest.raises(TypeError, match="NoModes declares no sync or async modes"):
        Suite().pytest_generate_tests(Metafunc())  # type: ignore[arg-type]


def test_a_script_picks_replies_by_the_answers_so_far_and_fills_in_the_tool_text():
    script = Script([Reply(text="first", tool_calls=(ToolCall(),)), Reply(text="got {tool}")])
    assert script.respond([("user", "hi")]).text == "first"
    second = script.respond([("user", "hi"), ("assistant", "first"), ("tool", "out")])
    assert second.text == "got out"
    assert script.respond([("assistant", "a"), ("assistant", "b"), ("assistant", "c")]).text == (
        "got "
    )  # past the end: the last reply again
    assert len(script.requests) == 3 and script.shell("ls") == "output of ls"
    assert script.ran == ["ls"]
    with pytest.raises(ValueError, match="at least one Reply"):
        Script([])
    assert standard_script("pwd").replies[0].tool_calls[0].args == {"command": "pwd"}
