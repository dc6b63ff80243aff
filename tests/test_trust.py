"""A plugin never silently does nothing, and kithooks.PluginManager keeps pluggy's promises
(issue 13: events, names, contexts, fail-closed, registration)."""

from __future__ import annotations

import asyncio
import logging

import attrs
import pluggy
import pytest
from pluggy import PluginValidationError

import kithooks
from kithooks import (
    AgentStartEvent,
    Context,
    PluginManager,
    StateStore,
    ToolCallEvent,
    ToolCallResult,
    hookimpl,
)
from kithooks.hosting import Turn


class Gate:
    """The README's gate, in short: it reads parsed_args."""

    @hookimpl
    def on_tool_call(self, event):
        if "rm -rf" in (event.parsed_args or {}).get("command", ""):
            return ToolCallResult(block=True, reason="dangerous")
        return None


# ---------------------------------------------------------------- events and names


def test_the_readme_hosting_snippet_is_blocked():
    pm = PluginManager()
    pm.register(Gate())
    result = pm.emit(ToolCallEvent(tool_name="bash", input='{"command": "rm -rf /"}'))
    assert result.block and result.reason == "dangerous"


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", '"str"', "{bad", "1" * 5000])
def test_parsed_args_is_none_when_input_is_not_a_json_object(text):
    assert ToolCallEvent(input=text).parsed_args is None


def test_given_parsed_args_win_over_input():
    event = ToolCallEvent(input='{"a": 1}', parsed_args={"b": 2})
    assert dict(event.parsed_args) == {"b": 2}


@pytest.mark.parametrize("call", ["has_handlers", "handler_names"])
def test_unknown_event_names_are_errors_with_a_suggestion(call):
    pm = PluginManager()
    with pytest.raises(
        ValueError, match=r"unknown event type 'tool_cal'; did you mean 'tool_call'"
    ):
        getattr(pm, call)("tool_cal")
    with pytest.raises(ValueError, match="unknown event type 'nothing'"):
        getattr(pm, call)("nothing")


def test_changing_a_payload_says_it_is_immutable_and_what_to_return():
    errors = []
    pm = PluginManager(on_error=errors.append)

    class Mutator:
        @hookimpl
        def on_tool_call(self, event):
            event.tool_name = "safe"

        @hookimpl
        def on_message_update(self, event):
            event.parsed_args = None

    pm.register(Mutator(), name="mutator")
    pm.emit(ToolCallEvent(tool_name="bash"))
    pm.emit(kithooks.MessageUpdateEvent())
    assert "ToolCallEvent is immutable" in errors[0].message
    assert "return a ToolCallResult from on_tool_call" in errors[0].message
    assert "observed only" in errors[1].message
    assert isinstance(errors[0].error, attrs.exceptions.FrozenInstanceError)
    event = ToolCallEvent(input='{"command": "ls"}')
    with pytest.raises(TypeError, match=r"read-only.*ToolCallResult\(args="):
        event.parsed_args["command"] = "rm -rf /"  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError, match="build a new one"):
        ToolCallResult().block = True  # type: ignore[misc]


@pytest.mark.parametrize("verb", ["emit", "aemit"])
def test_wrong_argument_types_are_type_errors_naming_the_argument(verb):
    pm = PluginManager()
    pm.register(Gate())

    def call(*args):
        out = getattr(pm, verb)(*args)
        return asyncio.run(out) if verb == "aemit" else out

    with pytest.raises(TypeError, match=r"ctx must be a kithooks.Context or None, not dict"):
        call(ToolCallEvent(), {})
    with pytest.raises(TypeError, match=f"{verb}\\(\\) takes a kithooks event, not object"):
        call(object())


# ---------------------------------------------------------------- contexts


class Writer:
    def __init__(self, key):
        self.key = key

    @hookimpl
    def on_agent_start(self, event, ctx):
        ctx.set_state(self.key, ctx.session_id)


def test_one_context_in_two_managers_never_crosses_stores():
    ctx = Context(session_id="s1")
    first = PluginManager(state=StateStore())
    second = PluginManager(state=StateStore())
    first.register(Writer("first"))
    second.register(Writer("second"))
    for _ in range(2):
        first.emit(AgentStartEvent(), ctx)
        second.emit(AgentStartEvent(), ctx)
    assert first.state.keys() == ["first"]
    assert second.state.keys() == ["second"]


def test_a_plugin_cannot_rewrite_the_ids_later_plugins_see():
    errors = []
    pm = PluginManager(on_error=errors.append, context=Context(session_id="real", turn_id="t"))
    seen = []

    class Rewriter:
        @hookimpl(tryfirst=True)
        def on_agent_start(self, ctx):
            ctx.session_id = "forged"

    class Reader:
        @hookimpl
        def on_agent_start(self, ctx):
            seen.append((ctx.session_id, ctx.turn_id))

    pm.register(Rewriter(), name="rewriter")
    pm.register(Reader())
    pm.emit(AgentStartEvent())
    assert seen == [("real", "t")]
    assert errors[0].plugin == "rewriter" and "cannot change ctx.session_id" in errors[0].message


def test_handlers_see_the_hosts_changes_between_turns():
    ctx = Context(turn_id="1")
    pm = PluginManager(context=ctx)
    seen = []

    class Reader:
        @hookimpl
        def on_agent_start(self, ctx):
            seen.append(ctx.turn_id)

    pm.register(Reader())
    pm.emit(AgentStartEvent())
    ctx.turn_id = "2"
    pm.emit(AgentStartEvent())
    assert seen == ["1", "2"]


def test_turn_context_reaches_the_store_before_any_emit():
    pm = PluginManager()
    pm.state.set("k", "v")
    assert Turn(pm).ctx.get_state("k") == "v"


# ---------------------------------------------------------------- fail closed


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("cannot print me")


def test_fail_closed_with_an_unprintable_exception_still_blocks(caplog):
    errors = []
    pm = PluginManager(fail_closed=True, on_error=errors.append)

    class Broken:
        @hookimpl
        def on_tool_call(self, event):
            raise Unprintable

    pm.register(Broken(), name="broken")
    with caplog.at_level(logging.CRITICAL, logger="kithooks"):
        result = pm.emit(ToolCallEvent(tool_name="bash"))
        aresult = asyncio.run(asyncio.wait_for(pm.aemit(ToolCallEvent(tool_name="bash")), 30))
    for r in (result, aresult):
        assert r.block and "'broken'" in r.reason and "Unprintable" in r.reason
    assert "could not be printed" in errors[0].message


# ---------------------------------------------------------------- pluggy's promises


class Obs:
    def __init__(self):
        self.seen = 0

    @hookimpl
    def on_agent_start(self, event):
        self.seen += 1


def test_registering_an_object_twice_is_a_value_error_and_keeps_the_first():
    pm = PluginManager()
    plugin = Obs()
    pm.register(plugin, name="obs")
    with pytest.raises(ValueError, match="'obs' is already registered"):
        pm.register(plugin, name="obs")
    with pytest.raises(ValueError, match="'obs' is already registered"):
        pm.register(plugin, name="other")
    with pytest.raises(ValueError, match="a plugin named 'obs' is already registered"):
        pm.register(Obs(), name="obs")
    assert pm.is_registered(plugin)
    pm.emit(AgentStartEvent())
    pm.hook.on_agent_start(event=AgentStartEvent(), ctx=Context())
    assert plugin.seen == 2
    pm.unregister(plugin)
    assert not pm.is_registered(plugin)
    assert pm.handler_names("agent_start") == ["turn-aggregator"]


def test_unregistering_an_unknown_plugin_names_it():
    pm = PluginManager()
    with pytest.raises(ValueError, match="no plugin named 'ghost' is registered"):
        pm.unregister(name="ghost")
    with pytest.raises(ValueError, match="is not registered"):
        pm.unregister(Obs())


def test_a_host_adds_its_own_hooks_before_their_plugins_register():
    hookspec = pluggy.HookspecMarker("kithooks")

    class HostSpecs:
        @hookspec
        def on_deploy(self, target: str) -> str: ...

    class Deployer:
        @hookimpl
        def on_deploy(self, target):
            return f"deploying {target}"

    pm = PluginManager()
    # before the spec: refused (pluggy would keep it pending, silently, until check_pending)
    with pytest.raises(PluginValidationError, match=r"'on_deploy' is marked .* matches no hook"):
        pm.register(Deployer())
    assert pm.get_plugin("Deployer") is None
    pm.add_hookspecs(HostSpecs)
    pm.register(Deployer())
    pm.check_pending()
    assert pm.hook.on_deploy(target="prod") == ["deploying prod"]


def test_a_misspelt_kithooks_hook_stays_an_error_with_a_suggestion():
    class Typo:
        @hookimpl
        def on_tool_cal(self, event):
            pass

    with pytest.raises(PluginValidationError, match="did you mean 'on_tool_call'"):
        PluginManager().register(Typo())


def test_an_overridden_get_canonical_name_is_honoured():
    class Named(PluginManager):
        def get_canonical_name(self, plugin):
            return "custom-" + type(plugin).__name__.lower()

    pm = Named()
    assert pm.register(Obs()) == "custom-obs"


def test_a_hook_named_function_that_is_not_marked_is_an_error():
    class Forgot:
        def on_tool_call(self, event):
            return ToolCallResult(block=True)

    with pytest.raises(
        PluginValidationError, match=r"'on_tool_call' is named like a kithooks hook"
    ):
        PluginManager().register(Forgot())


def test_has_async_handlers_tells_a_sync_host_to_use_aemit():
    pm = PluginManager()

    class Async:
        @hookimpl
        async def on_tool_call(self, event):
            return None

    assert not pm.has_async_handlers("tool_call")
    pm.register(Async(), name="async")
    assert pm.has_async_handlers("tool_call") and not pm.has_async_handlers("agent_end")
    with pytest.raises(TypeError, match=r"coroutine handlers \('async'\); use 'await pm.aemit"):
        pm.emit(ToolCallEvent())
    assert asyncio.run(asyncio.wait_for(pm.aemit(ToolCallEvent()), 30)) is None


# ---------------------------------------------------------------- review findings


def _async_behind_a_sync_wrapper():
    import functools

    async def guard(self, event):
        return ToolCallResult(block=True, reason="never reached")

    @functools.wraps(guard)
    def wrapper(*args, **kwargs):
        return guard(*args, **kwargs)  # hides the coroutine function

    return wrapper


@pytest.mark.parametrize("fail_closed", [False, True])
def test_an_async_guard_behind_a_sync_decorator_is_never_silently_dropped(fail_closed):
    errors = []
    pm = PluginManager(fail_closed=fail_closed, on_error=errors.append)

    class Wrapped:
        on_tool_call = hookimpl(_async_behind_a_sync_wrapper())

    pm.register(Wrapped(), name="wrapped")
    for result in (
        pm.emit(ToolCallEvent(tool_name="bash")),
        asyncio.run(asyncio.wait_for(pm.aemit(ToolCallEvent(tool_name="bash")), 10)),
    ):
        if fail_closed:
            assert result.block and "'wrapped'" in result.reason and "awaitable" in result.reason
        else:
            assert result is None
    assert len(errors) == 2 and all("never ran" in e.message for e in errors)


def test_a_result_of_the_wrong_type_blocks_under_fail_closed():
    pm = PluginManager(fail_closed=True)

    class Sloppy:
        @hookimpl
        def on_tool_call(self, event):
            return {"block": True}

    pm.register(Sloppy(), name="sloppy")
    result = pm.emit(ToolCallEvent(tool_name="bash"))
    assert result.block and "returned dict" in result.reason and "'sloppy'" in result.reason


def test_a_handler_that_swallows_its_cancellation_still_times_out():
    import time

    errors = []
    pm = PluginManager(fail_closed=True, on_error=errors.append)

    class Stubborn:
        @hookimpl(timeout=0.1)
        async def on_tool_call(self, event):
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                await asyncio.sleep(0.2)  # ignores the cancellation, finishes later
            return

    pm.register(Stubborn(), name="stubborn")
    started = time.monotonic()
    result = asyncio.run(asyncio.wait_for(pm.aemit(ToolCallEvent(tool_name="bash")), 10))
    assert time.monotonic() - started < 5
    assert result.block and "timed out after 0.1s" in result.reason
    assert "ignored cancellation" in errors[0].message


def test_a_custom_event_never_runs_beside_a_suspended_handler_of_its_plugin():
    errors = []
    pm = PluginManager(on_error=errors.append)
    state = {"active": 0, "most": 0}

    class Plugin:
        @hookimpl
        async def on_agent_start(self, event):
            state["active"] += 1
            state["most"] = max(state["most"], state["active"])
            await asyncio.sleep(0.05)
            state["active"] -= 1

        @kithooks.custom_event("ping")
        def ping(self, data):
            state["active"] += 1
            state["most"] = max(state["most"], state["active"])
            state["active"] -= 1

    pm.register(Plugin(), name="plugin")

    async def main():
        holder = asyncio.create_task(pm.aemit(AgentStartEvent()))
        await asyncio.sleep(0.01)  # the coroutine handler is suspended, holding the plugin
        pm.emit_custom_event("ping")
        await asyncio.wait_for(holder, 10)

    asyncio.run(asyncio.wait_for(main(), 20))
    assert state["most"] == 1
    assert [e.plugin for e in errors] == ["plugin"] and "use aemit" in errors[0].message


def test_a_handler_cannot_reach_the_hosts_context_through_its_view():
    pm = PluginManager(context=Context(session_id="real"))
    seen = []

    class Reader:
        @hookimpl
        def on_agent_start(self, ctx):
            seen.append((ctx.session_id, hasattr(ctx, "host")))

    pm.register(Reader())
    pm.emit(AgentStartEvent())
    assert seen == [("real", False)]


@pytest.mark.parametrize("name", ["tool_call", "before_tool_call", "handle_tool_call"])
def test_an_event_name_without_on_is_refused_with_the_hook_it_meant(name):
    Plugin = type("Plugin", (), {name: hookimpl(lambda self, event: ToolCallResult(block=True))})
    with pytest.raises(PluginValidationError, match="did you mean 'on_tool_call'"):
        PluginManager().register(Plugin())


def test_call_extra_and_subset_hook_caller_honour_their_handlers():
    pm = PluginManager()
    gate = Gate()
    pm.register(gate, name="gate")
    rm = ToolCallEvent(tool_name="bash", input='{"command": "rm -rf /"}')

    def extra_guard(event):
        if event.tool_name == "curl":
            return ToolCallResult(block=True, reason="no network")
        return None

    curl = ToolCallEvent(tool_name="curl")
    assert pm.hook.on_tool_call(event=curl, ctx=Context()) is None
    got = pm.hook.on_tool_call.call_extra([extra_guard], {"event": curl, "ctx": Context()})
    assert got.block and got.reason == "no network"
    assert pm.hook.on_tool_call.call_extra([extra_guard], {"event": rm, "ctx": Context()}).block
    without_gate = pm.subset_hook_caller("on_tool_call", remove_plugins=[gate])
    assert without_gate(event=rm, ctx=Context()) is None
    assert pm.hook.on_tool_call(event=rm, ctx=Context()).block
