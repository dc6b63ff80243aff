"""The plugin author's toolkit, tested through pytest's own pytester: the shipped pytest
plugin, the harness, the contract checks and the turn strategy."""

from __future__ import annotations

import collections

from hypothesis import given

import kithooks
from kithooks import PluginManager, hookimpl
from kithooks.testing import Harness, HostCall, PluginFailed, check_contract
from kithooks.testing import strategies as ks

VIOLATOR = """
import kithooks

class Sloppy:
    @kithooks.hookimpl
    def on_tool_call(self, event):
        if event.tool_kind == "edit":
            return kithooks.ToolResultResult(content="oops")   # wrong result type
        return None

def test_sloppy_plugin_meets_the_contract(kithooks_contract):
    kithooks_contract(Sloppy())
"""

CRASHER = """
import kithooks

class Crashy:
    @kithooks.hookimpl
    def on_llm_usage(self, event, ctx):
        ctx.set_state("per-token", str(event.cost / event.output_tokens))

def test_crashy(kithooks_contract):
    kithooks_contract(Crashy())
"""

OBSERVER_RETURNS = """
import kithooks

@kithooks.hookimpl
def on_message_update(event):
    return event.chunk

def test_module_plugin(kithooks_contract):
    import sys
    kithooks_contract(sys.modules[__name__])
"""

GOOD = """
import kithooks

class Gate:
    @kithooks.hookimpl
    def on_tool_call(self, event, ctx):
        if "rm -rf" in event.input:
            ctx.print("blocked")
            return kithooks.ToolCallResult(block=True, reason="no")
        return None

    @kithooks.hookimpl
    def on_agent_end(self, event, ctx):
        ctx.set_state("turns", str(int(ctx.get_state("turns") or 0) + 1))

def test_contract(kithooks_contract):
    assert kithooks_contract(Gate(), max_examples=30) == ["on_agent_end", "on_tool_call"]

def test_harness(kithooks_harness):
    h = kithooks_harness(Gate())
    result = h.emit(kithooks.ToolCallEvent(tool_name="bash", input="rm -rf /"))
    assert result.block and h.printed == ["blocked"]
    h.emit(kithooks.AgentEndEvent())
    assert h.state.get("turns") == "1"

def test_manager(kithooks_manager):
    assert kithooks_manager.plugin_source("turn-aggregator").kind == "object"
    assert kithooks_manager.state.path.name == "session.ext-state.json"
"""


def test_a_contract_violation_is_caught_with_the_minimal_example(pytester):
    pytester.makepyfile(VIOLATOR)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "ContractViolation" in text
    assert (
        "plugin 'Sloppy' failed in on_tool_call: TypeError: returned ToolResultResult; "
        "on_tool_call takes ToolCallResult or None" in text
    )
    # hypothesis shrinks the event to the smallest one that breaks it
    assert "ToolCallEvent(tool_name='', tool_call_id='', tool_kind='edit', input=''" in text


def test_a_handler_that_raises_is_caught(pytester):
    pytester.makepyfile(CRASHER)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "plugin 'Crashy' failed in on_llm_usage: ZeroDivisionError" in text
    assert "output_tokens=0" in text


def test_an_observe_hook_returning_a_value_passes_as_dispatch_ignores_it(pytester):
    """The contract is dispatch's: an observer's return value is ignored (CONTRACT.md), so
    the check does not fail a plugin that dispatch runs."""
    pytester.makepyfile(OBSERVER_RETURNS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_fixtures_of_the_shipped_pytest_plugin(pytester):
    pytester.makepyfile(GOOD)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_the_pytest_plugin_is_inert_unless_asked(pytester):
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--fixtures")
    assert "kithooks_harness" in result.stdout.str()
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_harness_records_every_host_call(tmp_path):
    class Busy:
        @hookimpl
        def on_session_start(self, event, ctx):
            ctx.print("hi")
            ctx.print_error("careful")
            ctx.send_message("next")
            ctx.emit_custom_event("ping", {"n": 1})
            ctx.set_state("k", "v")
            ctx.delete_state("k")
            ctx.set_model("openai/gpt-4o")
            ctx.abort()

    with Harness(Busy(), context={"session_id": "s"}) as h:
        h.emit(kithooks.SessionStartEvent())
        assert h.calls == [
            HostCall("print", ("hi",)),
            HostCall("print_error", ("careful",)),
            HostCall("send_message", ("next",)),
            HostCall("custom_event", ("ping", {"n": 1})),
            HostCall("set_state", ("k", "v")),
            HostCall("delete_state", ("k",)),
            HostCall("set_model", ("openai/gpt-4o",)),
            HostCall("abort", ()),
        ]
        assert h.printed == ["hi", "careful"] and h.custom_events == [("ping", {"n": 1})]
        assert h.ctx.session_id == "s" and h.ctx.get_session_path().endswith("session.jsonl")


def test_harness_raises_plugin_failures_and_loads_files(tmp_path):
    plugin = tmp_path / "broken_plugin.py"
    plugin.write_text(
        "import kithooks\n\n@kithooks.hookimpl\n"
        "def on_error(event):\n    raise KeyError(event.error)\n"
    )
    h = Harness(plugin, state_dir=tmp_path)
    try:
        h.emit(kithooks.ErrorEvent(error="x"))
    except PluginFailed as exc:
        assert "'broken_plugin'" in str(exc) and "KeyError" in str(exc)
    else:
        raise AssertionError("PluginFailed not raised")
    quiet = Harness(plugin, raise_errors=False)
    quiet.emit(kithooks.ErrorEvent(error="x"))
    assert len(quiet.errors) == 1
    quiet.close()


def test_harness_awaits_async_plugins():
    class Async:
        @hookimpl
        async def on_input(self, event):
            return kithooks.InputResult(action="transform", text=event.text.upper())

    with Harness(Async()) as h:
        assert h.emit(kithooks.InputEvent(text="hi")).text == "HI"


def test_check_contract_on_the_examples():
    from kithooks.examples import context_injector, permission_gate, secret_redactor, usage_budget

    assert check_contract(permission_gate, max_examples=50) == ["on_tool_call"]
    assert check_contract(secret_redactor, max_examples=50) == ["on_tool_result"]
    assert check_contract(context_injector, max_examples=20) == ["on_before_agent_start"]
    assert check_contract(usage_budget, max_examples=50) == [
        "on_agent_end",
        "on_llm_usage",
        "on_session_start",
    ]


# ----------------------------------------------------------------------- the turn strategy


@given(ks.turns())
def test_drawn_turns_are_well_formed(turn):
    names = [e.event_type.value for e in turn]
    assert names[:5] == [
        "input",
        "before_agent_start",
        "context_prepare",
        "agent_start",
        "message_start",
    ]
    assert names[-1] == "agent_end"
    steps = [e.step_number for e in turn if e.event_type.value == "step_start"]
    assert steps == list(range(len(steps)))
    usages = [e.step_number for e in turn if e.event_type.value == "llm_usage"]
    finished = [e.step_number for e in turn if e.event_type.value == "step_finish"]
    assert usages == finished and len(set(usages)) == len(usages)
    calls = [e.tool_call_id for e in turn if e.event_type.value == "tool_call"]
    results = [e.tool_call_id for e in turn if e.event_type.value == "tool_result"]
    assert calls == results and len(set(calls)) == len(calls)
    for e in turn:
        if e.event_type.value == "subagent_chunk":
            i = turn.index(e)
            start = next(
                j
                for j, x in enumerate(turn)
                if x.event_type.value == "subagent_start" and x.tool_call_id == e.tool_call_id
            )
            end = next(
                j
                for j, x in enumerate(turn)
                if x.event_type.value == "subagent_end" and x.tool_call_id == e.tool_call_id
            )
            assert start < i < end


@given(ks.turns())
def test_the_turn_aggregator_counts_what_the_drawn_turn_contains(turn):
    ends = []

    class End:
        @hookimpl
        def on_agent_end(self, event):
            ends.append(event)

    pm = PluginManager()
    pm.register(End())
    for event in turn:
        pm.emit(event)
    (end,) = ends
    calls = [e for e in turn if isinstance(e, kithooks.ToolCallEvent)]
    usages = [e for e in turn if isinstance(e, kithooks.LLMUsageEvent)]
    assert end.tool_call_count == len(calls)
    assert list(end.tool_names) == [c.tool_name for c in calls if c.tool_name]
    assert end.llm_call_count == len(usages)
    assert end.input_tokens_delta == sum(u.input_tokens for u in usages)
    assert end.output_tokens_delta == sum(u.output_tokens for u in usages)
    assert end.cache_read_tokens_delta == sum(u.cache_read_tokens for u in usages)
    assert end.cache_write_tokens_delta == sum(u.cache_write_tokens for u in usages)
    assert abs(end.cost_delta - sum(u.cost for u in usages)) < 1e-9
    assert collections.Counter(end.tool_names) == collections.Counter(
        c.tool_name for c in calls if c.tool_name
    )
