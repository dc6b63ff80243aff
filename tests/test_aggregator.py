"""The turn aggregator enriches agent_end, per (session_id, turn_id)."""

from __future__ import annotations

import threading

import pluggy
import pytest
from hypothesis import given
from hypothesis import strategies as st

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


def _failing_turn(pm, clock=None):
    pm.emit(kithooks.AgentStartEvent(prompt="p"))
    pm.emit(kithooks.ToolCallEvent(tool_name="bash"))
    if clock is None:  # two costs whose sum overflows to infinity
        for _ in range(2):
            pm.emit(kithooks.LLMUsageEvent(input_tokens=1, output_tokens=1, cost=1.7e308))
    else:  # a custom clock giving floats
        clock.now += 2.5e9


@pytest.mark.parametrize("emit", ["emit", "aemit", "pm.hook"])
@pytest.mark.parametrize(
    ("float_clock", "error", "message"),
    [
        (False, ValueError, "cost_delta must be a finite number"),
        (True, TypeError, "duration_ms must be int"),
    ],
)
def test_an_enrich_that_fails_is_the_aggregators_failure_and_agent_end_is_still_delivered(
    emit, float_clock, error, message, caplog
):
    """Found in review: enrich ran outside handler isolation, so a summed cost that
    overflowed to infinity (or a custom clock giving floats) made the host's emit of
    agent_end raise, and no on_agent_end handler ran (the exporter's root span never
    ended). Now the failure is logged and reported naming turn-aggregator and the field,
    the turn is ended, and every handler gets agent_end as the host emitted it."""
    import asyncio

    clock = Clock()
    clock.now = 2.5e9 if float_clock else 0
    errors = []
    pm, ends = manager(clock, on_error=errors.append)
    _failing_turn(pm, clock if float_clock else None)
    end = kithooks.AgentEndEvent(response="done", stop_reason="stop")
    if emit == "emit":
        assert pm.emit(end) is None
    elif emit == "aemit":
        assert asyncio.run(asyncio.wait_for(pm.aemit(end), 30)) is None
    else:
        pm.hook.on_agent_end(event=end, ctx=pm.context)
    assert ends.events == [end]  # un-enriched: the host's own values
    (failure,) = errors
    assert failure.plugin == "turn-aggregator" and failure.hook == "on_agent_end"
    assert isinstance(failure.error, error) and message in str(failure.error)
    assert "plugin 'turn-aggregator' failed in on_agent_end" in caplog.text
    assert pm.turn_aggregator.open_turns == 0
    # the next turn is counted as usual
    pm.emit(kithooks.AgentStartEvent(prompt="p"))
    pm.emit(kithooks.ToolCallEvent(tool_name="read"))
    pm.emit(kithooks.AgentEndEvent(response="done"))
    assert ends.events[-1].tool_names == ("read",)


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


def _turn_events(steps):
    events = []
    for kind, n in steps:
        if kind == "tool":
            events.append(kithooks.ToolCallEvent(tool_name=f"t{n}"))
        else:
            events.append(kithooks.LLMUsageEvent(input_tokens=n, output_tokens=1, cost=n / 8))
    return events


@given(
    steps=st.lists(st.tuples(st.sampled_from(["tool", "usage"]), st.integers(0, 50)), max_size=8),
    data=st.data(),
)
def test_a_listener_registered_mid_turn_gets_the_whole_turns_counts(steps, data):
    """Found in review: while nothing handled agent_end the aggregator was left out of
    dispatch, so a plugin handling agent_end registered mid-turn (a reload, a host adding
    plugins late) got only what came after it, with no start and no duration. Wherever
    in the turn it registers, it gets what one registered from the start gets."""
    events = _turn_events(steps)
    at = data.draw(st.integers(0, len(events)), label="registered before event")
    clock = Clock()
    late = PluginManager(aggregate_turns=False)
    late.register(TurnAggregator(clock=clock), name="turn-aggregator")
    early, early_ends = manager(clock)
    late_ends = Ends()
    for pm in (early, late):
        pm.emit(kithooks.AgentStartEvent(prompt="p"))
    clock.now += 7_000_000
    for i, event in enumerate(events):
        if i == at:
            late.register(late_ends)
        for pm in (early, late):
            pm.emit(event)
    if at == len(events):
        late.register(late_ends)
    for pm in (early, late):
        pm.emit(kithooks.AgentEndEvent(response="done"))
    assert late_ends.events == early_ends.events
    assert late_ends.events[0].duration_ms == 7


def test_a_turn_nobody_listens_to_is_ended_at_agent_end():
    """With no plugin handling agent_end the aggregator still counts (so a late listener
    gets the whole turn), and its own on_agent_end ends the turn: none is left open."""
    pm = PluginManager()
    ctx = Context(session_id="s", turn_id="t")
    pm.emit(kithooks.AgentStartEvent(prompt="p"), ctx)
    pm.emit(kithooks.ToolCallEvent(tool_name="ls"), ctx)
    assert pm.turn_aggregator.open_turns == 1
    assert pm.emit(kithooks.AgentEndEvent(response="done"), ctx) is None
    assert pm.turn_aggregator.open_turns == 0


def test_plugins_handle_leaves_the_turn_aggregator_out():
    """What a host asks before hooking into a run: the aggregator alone is not a listener."""
    pm = kithooks.PluginManager()
    events = [kithooks.EventType.AGENT_START, kithooks.EventType.TOOL_CALL]
    assert pm.has_handlers(kithooks.EventType.TOOL_CALL)  # the aggregator counts tool calls
    assert not pm.plugins_handle(events)

    class Gate:
        @kithooks.hookimpl
        def on_tool_call(self, event):
            return None

    pm.register(Gate(), name="gate")
    assert pm.plugins_handle(events)
    assert not pm.plugins_handle([kithooks.EventType.AGENT_START])
    assert kithooks.PluginManager(aggregate_turns=False).plugins_handle(events) is False


class _ToolCap(TurnAggregator):
    """A guard reusing the aggregator's counting: blocks every tool call."""

    @hookimpl(tryfirst=True)
    def on_tool_call(self, event, ctx):
        super().on_tool_call(event, ctx)
        return kithooks.ToolCallResult(block=True, reason="tool cap")


@pytest.mark.parametrize("aggregate_turns", [True, False])
def test_a_guard_subclassing_the_aggregator_is_never_skipped(aggregate_turns):
    """Found in review: plugins_handle left out every handler of the plugin the manager
    took for its aggregator (any TurnAggregator instance, by its name), so a guard that
    subclasses TurnAggregator, in a manager made with aggregate_turns=False, was not a
    listener: a pydantic-ai run got no hook at all and the blocked tool's body ran. Only
    an instance of exactly TurnAggregator counts for no one."""
    import asyncio

    from pydantic_ai import Agent
    from pydantic_ai.models.test import TestModel

    from kithooks.adapters.pydantic_ai import KitHooks

    pm = PluginManager(aggregate_turns=aggregate_turns)
    pm.register(_ToolCap(), name="tool-cap")
    assert pm.plugins_handle([kithooks.EventType.TOOL_CALL])
    ran = []
    agent = Agent(TestModel(call_tools=["shell"]), capabilities=[KitHooks(pm)])

    @agent.tool_plain
    def shell(cmd: str) -> str:
        ran.append(cmd)
        return "ran"

    asyncio.run(asyncio.wait_for(agent.run("go"), 30))
    assert ran == []


def test_plugins_handle_leaves_out_only_exact_turn_aggregators():
    pm = PluginManager(aggregate_turns=False)
    pm.register(TurnAggregator(max_open_turns=8), name="my-counter")  # a host's own, plain
    every = list(kithooks.EventType)
    assert not pm.plugins_handle(every)
    pm.register(_ToolCap(), name="tool-cap")
    assert pm.plugins_handle([kithooks.EventType.TOOL_CALL])
    assert pm.plugins_handle([kithooks.EventType.AGENT_END])  # inherited: still its handler
    assert not pm.plugins_handle([kithooks.EventType.MESSAGE_END])


def test_a_subclass_reading_agent_end_alone_gets_it_enriched():
    """A host's own aggregator subclass, the only plugin, whose on_agent_end reads the
    counts: the event is enriched for it (its handlers are a plugin's)."""
    seen = []

    class Reporting(TurnAggregator):
        @hookimpl
        def on_agent_end(self, event, ctx):
            seen.append((event.tool_call_count, event.tool_names))

    pm = PluginManager(aggregate_turns=False)
    pm.register(Reporting())
    assert pm.plugins_handle([kithooks.EventType.AGENT_END])
    ctx = Context(turn_id="t")
    pm.emit(kithooks.AgentStartEvent(prompt="p"), ctx)
    pm.emit(kithooks.ToolCallEvent(tool_name="ls"), ctx)
    pm.emit(kithooks.AgentEndEvent(response="done"), ctx)
    assert seen == [(1, ("ls",))]
    assert pm.turn_aggregator.open_turns == 0


@given(
    events=st.lists(
        st.one_of(
            st.builds(kithooks.ToolCallEvent, tool_name=st.sampled_from(["", "bash", "read"])),
            st.builds(kithooks.LLMUsageEvent, input_tokens=st.integers(0, 100)),
            st.just(kithooks.AgentEndEvent()),
        ),
        max_size=30,
    ),
    session=st.sampled_from(["", "s"]),
)
def test_events_with_no_turn_id_and_no_agent_start_keep_nothing(events, session):
    """Found in review: a default manager with no plugin, whose host emits tool_call /
    llm_usage without turn ids or agent_start (as hosting.run_tool does), kept one turn
    open whose tool_names grew with every call (1,000,000 calls: 8.6 MB). A host that
    sets no turn id and emits no agent_start runs no turns: nothing is kept."""
    pm = PluginManager()
    ctx = Context(session_id=session)
    for event in events:
        pm.emit(event, ctx)
    assert pm.turn_aggregator.open_turns == 0


def test_events_with_no_turn_id_count_between_agent_start_and_agent_end():
    pm, ends = manager()
    pm.emit(kithooks.ToolCallEvent(tool_name="before"))  # no turn running: not kept
    pm.emit(kithooks.AgentStartEvent(prompt="p"))
    pm.emit(kithooks.ToolCallEvent(tool_name="ls"))
    pm.emit(kithooks.LLMUsageEvent(input_tokens=3))
    pm.emit(kithooks.AgentEndEvent(response="done"))
    pm.emit(kithooks.ToolCallEvent(tool_name="after"))
    pm.emit(kithooks.AgentEndEvent(response="again"))  # agent_end with no agent_start: zeros
    first, second = ends.events
    assert first.tool_names == ("ls",) and first.input_tokens_delta == 3
    assert second.tool_call_count == 0 and second.tool_names == ()
    assert pm.turn_aggregator.open_turns == 0


@given(
    names=st.lists(st.sampled_from(["", "bash", "read"]), max_size=40),
    cap=st.integers(0, 12),
)
def test_a_turn_lists_the_names_of_its_first_max_tool_names_calls(names, cap):
    """Found in review: one turn that never ends grew without bound (the cap was on the
    number of turns only). Each turn lists the names of its first max_tool_names tool
    calls; tool_call_count still counts every call."""
    pm = PluginManager(aggregate_turns=False)
    pm.register(TurnAggregator(max_tool_names=cap), name="turn-aggregator")
    ends = Ends()
    pm.register(ends)
    ctx = Context(turn_id="t")
    pm.emit(kithooks.AgentStartEvent(prompt="p"), ctx)
    for name in names:
        pm.emit(kithooks.ToolCallEvent(tool_name=name), ctx)
    pm.emit(kithooks.AgentEndEvent(response="done"), ctx)
    (end,) = ends.events
    assert end.tool_call_count == len(names)
    assert end.tool_names == tuple(n for n in names[:cap] if n)


def test_a_turn_past_max_tool_names_is_logged_once_by_name(caplog):
    agg = TurnAggregator(max_tool_names=2)
    pm = PluginManager(aggregate_turns=False)
    pm.register(agg)
    ctx = Context(session_id="s", turn_id="stuck")
    pm.emit(kithooks.AgentStartEvent(prompt="p"), ctx)
    for _ in range(1000):
        pm.emit(kithooks.ToolCallEvent(tool_name="bash"), ctx)
    assert len(agg._turns[("s", "stuck")].tool_names) == 2
    warnings = [r for r in caplog.records if "more than 2 tool calls" in r.getMessage()]
    assert len(warnings) == 1 and "('s', 'stuck')" in warnings[0].getMessage()
    assert warnings[0].levelname == "WARNING"


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (-1, ValueError, "max_tool_names must be >= 0, got -1"),
        ("9", TypeError, "max_tool_names must be an int, got str"),
        (True, TypeError, "max_tool_names must be an int, got bool"),
    ],
)
def test_max_tool_names_is_validated(value, error, message):
    with pytest.raises(error, match=message):
        TurnAggregator(max_tool_names=value)
