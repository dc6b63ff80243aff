"""check_contract dispatches through a real manager, so it fails exactly the handlers that
dispatch would skip (and never the ones dispatch runs): the reviewer's c1-c5."""

from __future__ import annotations

import asyncio
import functools
from typing import Any, ClassVar

import pytest

import kithooks
from kithooks import testing
from kithooks.testing import ContractViolation, Harness, check_contract

DEADLINE = 60.0


def _traced(fn: Any) -> Any:
    """A sync decorator, as many logging and tracing decorators are."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


class WritesCtx:
    @kithooks.hookimpl
    def on_tool_call(self, event, ctx):
        ctx.model = "remember-me"  # dispatch's view refuses: the guard never blocks
        return kithooks.ToolCallResult(block=True, reason="always blocked")


class AsyncBehindSyncDecorator:
    @kithooks.hookimpl
    @_traced
    async def on_tool_call(self, event, ctx):
        return kithooks.ToolCallResult(block=True, reason="never allowed")


class TooSlow:
    @kithooks.hookimpl(timeout=0.01)
    async def on_tool_call(self, event, ctx):
        await asyncio.sleep(0.05)
        return kithooks.ToolCallResult(block=True, reason="slow policy")


@pytest.mark.parametrize(
    ("plugin", "error"),
    [
        (WritesCtx(), "AttributeError: a handler cannot change ctx.model"),
        (AsyncBehindSyncDecorator(), "TypeError: returned an awaitable from a plain function"),
        (TooSlow(), "TimeoutError: timed out after 0.01s"),
    ],
    ids=["writes-ctx", "async-behind-sync-decorator", "timeout"],
)
def test_a_guard_that_dispatch_always_skips_fails_the_contract(plugin, error):
    name = type(plugin).__name__
    # what a host sees: the guard is skipped, the call is allowed
    pm = kithooks.PluginManager(aggregate_turns=False)
    pm.register(plugin, name=name)
    event = kithooks.ToolCallEvent(tool_name="bash", input='{"command": "rm -rf /"}')
    assert asyncio.run(asyncio.wait_for(pm.aemit(event), DEADLINE)) is None
    with pytest.raises(ContractViolation) as info:
        check_contract(plugin, max_examples=5)
    message = str(info.value)
    assert message.startswith(f"plugin {name!r} failed in on_tool_call: {error}"), message
    assert "\non ToolCallEvent(" in message  # the failing (minimal) example


class EditPolicy:
    PROTECTED: ClassVar[dict[str, str]] = {
        "edit": "path",
        "write": "path",
    }  # the key each matched tool carries

    @kithooks.hookimpl(tools=["edit", "write"])
    def on_tool_call(self, event):
        key = self.PROTECTED[event.tool_name]  # only edit and write ever reach this
        if str((event.parsed_args or {}).get(key, "")).startswith("/etc/"):
            return kithooks.ToolCallResult(block=True, reason="protected path")
        return None


def test_a_handler_is_only_given_the_tools_it_matches():
    assert check_contract(EditPolicy(), max_examples=50) == ["on_tool_call"]


@pytest.mark.parametrize("tools", [["edit", "write"], "edit|write", "Edit, Write", "wr.*"])
def test_a_matched_handler_is_given_the_tools_it_names(tools):
    """The draws reach a limited handler: a bug on its tools' events is found."""

    class Buggy:
        @kithooks.hookimpl(tools=tools)
        def on_tool_result(self, event):
            if event.tool_name.lower().startswith("wr"):
                raise KeyError(event.tool_name)

    with pytest.raises(ContractViolation, match=r"plugin 'Buggy' failed in on_tool_result"):
        check_contract(Buggy(), max_examples=50)


@pytest.mark.parametrize(
    ("tools", "name"),
    [
        ("Bash", "shell"),  # a Claude Code name takes the host's names (before: "Bash" only)
        ("github.create_issue", "github.create_issue"),  # a dotted name is a pattern
        ("fs.read|github.create_issue", "github.create_issue"),
    ],
)
def test_a_handler_is_given_each_name_its_filter_takes(tools, name):
    """The draws reach every name a handler's tools= filter takes, by alias or spelt out in
    a pattern, so a bug on one of them is found."""

    class Limited:
        @kithooks.hookimpl(tools=tools)
        def on_tool_call(self, event):
            if event.tool_name == name:
                raise KeyError(event.tool_name)

    with pytest.raises(ContractViolation, match=r"plugin 'Limited' failed in on_tool_call"):
        check_contract(Limited(), max_examples=200)


def test_check_contract_in_a_running_loop_names_the_async_variant():
    class Gate:
        @kithooks.hookimpl
        async def on_tool_call(self, event):
            return None

    async def in_an_async_test() -> list[str]:
        with pytest.raises(RuntimeError, match=r"await kithooks\.testing\.acheck_contract"):
            check_contract(Gate())
        return await testing.acheck_contract(Gate(), max_examples=10)

    assert asyncio.run(asyncio.wait_for(in_an_async_test(), DEADLINE)) == ["on_tool_call"]


def test_acheck_contract_finds_violations_too():
    async def in_an_async_test() -> None:
        with pytest.raises(ContractViolation, match="TimeoutError"):
            await testing.acheck_contract(TooSlow(), max_examples=3)

    asyncio.run(asyncio.wait_for(in_an_async_test(), DEADLINE))


class Counter:
    @kithooks.hookimpl
    def on_agent_end(self, ctx):
        ctx.print("counted")
        ctx.set_state("count", str(int(ctx.get_state("count") or 0) + 1))


def test_context_is_shown_to_handlers_but_state_goes_to_a_fresh_store():
    with Harness(Counter()) as h:
        h.emit(kithooks.AgentEndEvent())
        assert h.state.get("count") == "1"
        printed = len(h.printed)
        check_contract(Counter(), context=h.ctx, max_examples=20)
        assert h.state.get("count") == "1"  # the contract run left the harness's state alone
        assert len(h.printed) > printed  # the host callbacks are the given context's


def test_each_plugin_of_a_file_is_checked_even_behind_one_that_always_blocks(tmp_path):
    plugin = tmp_path / "two.py"
    plugin.write_text(
        "import kithooks\n"
        "class A:\n"
        "    @kithooks.hookimpl\n"
        "    def on_tool_call(self, event):\n"
        "        return kithooks.ToolCallResult(block=True, reason='no')\n"
        "class B:\n"
        "    @kithooks.hookimpl\n"
        "    def on_tool_call(self, event):\n"
        "        raise ValueError('B is broken')\n"
    )
    with pytest.raises(ContractViolation, match="ValueError: B is broken"):
        check_contract(str(plugin), max_examples=5)


def test_a_plugin_with_only_custom_event_handlers_is_not_passed_unchecked():
    class Deploys:
        @kithooks.custom_event("deploy")
        def on_deploy(self, data, ctx):
            raise RuntimeError("never checked")

    with pytest.raises(ContractViolation, match="no kithooks event handler to check"):
        check_contract(Deploys())


def test_a_custom_event_only_plugin_beside_checked_ones_is_not_passed_unseen(tmp_path):
    path = tmp_path / "deploy.py"
    path.write_text(
        "import kithooks\n\n"
        "@kithooks.hookimpl\n"
        "def on_agent_end(event, ctx):\n"
        "    pass\n\n"
        "class Deploys:\n"
        "    @kithooks.custom_event('deploy')\n"
        "    def on_deploy(self, data, ctx):\n"
        "        raise RuntimeError('never checked')\n"
    )
    with pytest.raises(ContractViolation, match="'deploy:Deploys': no kithooks event handler"):
        check_contract(path, max_examples=5)
