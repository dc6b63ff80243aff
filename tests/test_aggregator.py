"""The turn aggregator enriches agent_end, per (session_id, turn_id)."""

from __future__ import annotations

import threading

import pluggy
import pytest

import kithooks
from kithooks import Context, PluginManager, TurnAggregator, hookimpl


class Ends:
    def __init__(self):
        self.events: list[kithooks.AgentEndEvent] = []

    @hookimpl
    def on_agent_end(self, event):
        self.events.append(event)


class Clock:
    def __init__(self):
        self.now = 0

    def __call__(self):
        return self.now


def manager(clock=None, **kwargs):
    pm = PluginManager(aggregate_turns=False, **kwargs)
    pm.register(TurnAggregator(clock=clock or Clock()), name="turn-aggregator")
    ends = Ends()
    pm.register(ends)
    return pm, ends


def test_enriches_agent_end_like_the_original_test():
    clock = Clock()
    pm, ends = manager(clock)
    clock.now = 1_000_000_000
    pm.emit(kithooks.AgentStartEvent(prompt="p"))
    for name in ("bash", "read", "bash", ""):
        pm.emit(kithooks.ToolCallEvent(tool_name=name))
    pm.emit(
        kithooks.LLMUsageEvent(
            input_tokens=100,
            output_tokens=50,
            cache_read_tokens=10,
            cache_write_tokens=5,
            cost=0.25,
        )
    )
    pm.emit(kithooks.LLMUsageEvent(input_tokens=200, output_tokens=75, cost=0.5))
    clock.now += 1_234_567_890
    pm.emit(kithooks.AgentEndEvent(response="done", stop_reason="stop"))
    (end,) = ends.events
    assert end == kithooks.AgentEndEvent(
        response="done",
        stop_reason="stop",
        tool_call_count=4,
        tool_names=("bash", "read", "bash"),
        llm_call_count=2,
        input_tokens_delta=300,
        output_tokens_delta=125,
        cache_read_tokens_delta=10,
        cache_write_tokens_delta=5,
        cost_delta=0.75,
        duration_ms=1234,
    )


def test_blocked_tool_calls_are_counted_too():
    pm, ends = manager()

    class Gate:
        @hookimpl(tryfirst=True)
        def on_tool_call(self, event):
            return kithooks.ToolCallResult(block=True)

    pm.register(Gate())
    pm.emit(kithooks.AgentStartEvent())
    assert pm.emit(kithooks.ToolCallEvent(tool_name="bash")).block
    pm.emit(kithooks.AgentEndEvent())
    assert ends.events[0].tool_call_count == 1 and ends.events[0].tool_names == ("bash",)


def test_agent_end_without_agent_start_gives_zeros():
    pm, ends = manager()
    pm.emit(kithooks.AgentEndEvent(response="r", stop_reason="error"))
    assert ends.events[0] == kithooks.AgentEndEvent(response="r", stop_reason="error")


def test_interleaved_turns_are_counted_apart():
    clock = Clock()
    pm, ends = manager(clock)
    a = Context(session_id="s", turn_id="a")
    b = Context(session_id="s", turn_id="b")
    other = Context(session_id="t", turn_id="a")
    pm.emit(kithooks.AgentStartEvent(), a)
    clock.now = 5_000_000
    pm.emit(kithooks.AgentStartEvent(), b)
    pm.emit(kithooks.AgentStartEvent(), other)
    pm.emit(kithooks.ToolCallEvent(tool_name="a1"), a)
    pm.emit(kithooks.ToolCallEvent(tool_name="b1"), b)
    pm.emit(kithooks.LLMUsageEvent(input_tokens=7, cost=0.1), b)
    pm.emit(kithooks.ToolCallEvent(tool_name="a2"), a)
    pm.emit(kithooks.ToolCallEvent(tool_name="t1"), other)
    clock.now = 9_000_000
    pm.emit(kithooks.AgentEndEvent(), b)
    pm.emit(kithooks.AgentEndEvent(), a)
    pm.emit(kithooks.AgentEndEvent(), other)
    end_b, end_a, end_other = ends.events
    assert end_a.tool_names == ("a1", "a2") and end_a.llm_call_count == 0 and end_a.duration_ms == 9
    assert end_b.tool_names == ("b1",) and end_b.input_tokens_delta == 7 and end_b.duration_ms == 4
    assert end_other.tool_names == ("t1",)
    assert pm.turn_aggregator.open_turns == 0


def test_turns_that_never_end_are_bounded():
    agg = TurnAggregator(max_open_turns=3)
    pm = PluginManager(aggregate_turns=False)
    pm.register(agg)
    pm.register(Ends())
    for i in range(50):
        pm.emit(kithooks.AgentStartEvent(), Context(turn_id=str(i)))
    assert agg.open_turns == 3
    with pytest.raises(ValueError):
        TurnAggregator(max_open_turns=0)


def test_restart_of_a_turn_resets_it():
    pm, ends = manager()
    pm.emit(kithooks.AgentStartEvent())
    pm.emit(kithooks.ToolCallEvent(tool_name="x"))
    pm.emit(kithooks.AgentStartEvent())
    pm.emit(kithooks.AgentEndEvent())
    assert ends.events[0].tool_call_count == 0


def test_threads_on_different_turns():
    pm, ends = manager()

    def turn(i):
        ctx = Context(turn_id=str(i))
        pm.emit(kithooks.AgentStartEvent(), ctx)
        for _ in range(50):
            pm.emit(kithooks.ToolCallEvent(tool_name=f"t{i}"), ctx)
            pm.emit(kithooks.LLMUsageEvent(output_tokens=1), ctx)
        pm.emit(kithooks.AgentEndEvent(response=str(i)), ctx)

    threads = [threading.Thread(target=turn, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
        assert not t.is_alive(), "a thread still runs after 30 s: a deadlock"
    assert len(ends.events) == 8
    for end in ends.events:
        assert end.tool_call_count == 50 and end.output_tokens_delta == 50
        assert set(end.tool_names) == {f"t{end.response}"}


def test_default_manager_enriches_every_handler_and_pluggy_path_too():
    pm = PluginManager()
    ends = Ends()
    pm.register(ends)
    pm.emit(kithooks.AgentStartEvent())
    pm.emit(kithooks.ToolCallEvent(tool_name="bash"))
    pm.hook.on_agent_end(event=kithooks.AgentEndEvent(), ctx=pm.context)
    assert ends.events[0].tool_call_count == 1


def test_enriched_values_are_still_checked_where_they_can_go_wrong():
    """enrich copies agent_end without re-validating the counts (they come from validated
    payloads), but a summed cost can overflow to infinity and a custom clock can give
    floats: those still fail with the field named, as attrs.evolve reports them."""
    pm, ends = manager()
    pm.emit(kithooks.AgentStartEvent(prompt="p"))
    for _ in range(2):
        pm.emit(kithooks.LLMUsageEvent(input_tokens=1, output_tokens=1, cost=1.7e308))
    with pytest.raises(ValueError, match="cost_delta must be a finite number"):
        pm.emit(kithooks.AgentEndEvent(response="done"))

    clock = Clock()
    pm, ends = manager(clock)
    clock.now = 2.5e9
    pm.emit(kithooks.AgentStartEvent(prompt="p"))
    clock.now += 2.5e9
    with pytest.raises(TypeError, match="duration_ms must be int"):
        pm.emit(kithooks.AgentEndEvent(response="done"))
    assert ends.events == []


def test_an_agent_end_subclass_is_enriched_too():
    """Found in review: enrich's fast copy knows the payload classes only; a host's
    AgentEndEvent subclass (which the manager accepts) is enriched through attrs.evolve."""

    class MyEnd(kithooks.AgentEndEvent):
        pass

    pm, ends = manager()
    pm.emit(kithooks.AgentStartEvent(prompt="p"))
    pm.emit(kithooks.ToolCallEvent(tool_name="bash"))
    pm.emit(MyEnd(response="done"))
    (end,) = ends.events
    assert type(end) is MyEnd and end.tool_call_count == 1 and end.tool_names == ("bash",)


def test_replacing_the_aggregator_keeps_its_place_and_a_failed_replace_keeps_it():
    pm = PluginManager()
    ends = Ends()

    class Gate:
        @hookimpl(tryfirst=True)
        def on_tool_call(self, event):
            return kithooks.ToolCallResult(block=True)

    pm.register(Gate())
    pm.register(ends)
    original = pm.turn_aggregator

    class Broken:
        @hookimpl
        def on_tool_cal(self, event):  # no such hook: refused at registration
            pass

    with pytest.raises(pluggy.PluginValidationError):
        pm._replace("turn-aggregator", Broken())
    assert pm.turn_aggregator is original
    fresh = TurnAggregator()
    assert pm._replace("turn-aggregator", fresh) is original
    assert pm.turn_aggregator is fresh and pm.get_name(fresh) == "turn-aggregator"
    for event in (
        kithooks.AgentStartEvent(),
        kithooks.ToolCallEvent(tool_name="rm"),
        kithooks.AgentEndEvent(),
    ):
        pm.emit(event)
    assert [e.tool_names for e in ends.events] == [("rm",)]  # still before the guard
    with pytest.raises(ValueError, match="no plugin named 'nope'"):
        pm._replace("nope", TurnAggregator())
