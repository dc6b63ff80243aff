"""agent_end enrichment follows the active turn aggregator when the aggregator itself
changes: registered into a manager made without one, unregistered, blocked by name, or
replaced (``_replace``), after agent_end's plan was built. Its plan used to keep enriching
with the aggregator of before (or with none)."""

from __future__ import annotations

import asyncio

import pytest

from kithooks import (
    AgentEndEvent,
    AgentStartEvent,
    PluginManager,
    ToolCallEvent,
    TurnAggregator,
    hookimpl,
)

DEADLINE = 10  # seconds, for every event loop run here


class Observer:
    def __init__(self):
        self.seen: list[tuple[int, tuple[str, ...]]] = []

    @hookimpl
    def on_agent_end(self, event):
        self.seen.append((event.tool_call_count, event.tool_names))


def dispatch(pm: PluginManager, mode: str, event):
    if mode == "emit":
        return pm.emit(event)

    async def bounded():
        return await asyncio.wait_for(pm.aemit(event), DEADLINE)

    return asyncio.run(bounded())


def turn(pm: PluginManager, mode: str, end: AgentEndEvent | None = None) -> None:
    dispatch(pm, mode, AgentStartEvent(prompt="x"))
    dispatch(pm, mode, ToolCallEvent(tool_name="bash", input="{}"))
    dispatch(pm, mode, end or AgentEndEvent(response="r"))


MODES = ["emit", "aemit"]


@pytest.mark.parametrize("mode", MODES)
def test_an_aggregator_registered_after_agent_end_was_planned_enriches_it(mode):
    pm = PluginManager(aggregate_turns=False)
    obs = Observer()
    pm.register(obs, name="obs")
    dispatch(pm, mode, AgentEndEvent(response="warm-up"))  # plans agent_end, no aggregator
    agg = TurnAggregator()
    pm.register(agg, name="my-aggregator")
    turn(pm, mode)
    assert obs.seen == [(0, ()), (1, ("bash",))]
    assert agg.open_turns == 0  # the turn it opened was closed by agent_end


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", ["unregister", "set_blocked"])
def test_an_aggregator_gone_no_longer_enriches_agent_end(mode, how):
    pm = PluginManager()
    obs = Observer()
    pm.register(obs, name="obs")
    turn(pm, mode)  # every plan built, enriched by the default aggregator
    old = pm.turn_aggregator
    assert old is not None
    if how == "unregister":
        pm.unregister(name=TurnAggregator.NAME)
    else:
        pm.set_blocked(TurnAggregator.NAME)
    assert pm.turn_aggregator is None
    # the host's own counts reach the handlers untouched
    turn(pm, mode, AgentEndEvent(response="r", tool_call_count=7, tool_names=("host",)))
    assert obs.seen == [(1, ("bash",)), (7, ("host",))]
    assert old.open_turns == 0


@pytest.mark.parametrize("mode", MODES)
def test_a_replaced_aggregator_enriches_agent_end_with_the_new_one(mode):
    pm = PluginManager()
    obs = Observer()
    pm.register(obs, name="obs")
    turn(pm, mode)
    new = TurnAggregator()
    old = pm._replace(TurnAggregator.NAME, new)
    assert pm.turn_aggregator is new and old is not new
    turn(pm, mode)
    assert obs.seen == [(1, ("bash",)), (1, ("bash",))]
    assert new.open_turns == 0 and old.open_turns == 0


@pytest.mark.parametrize("mode", MODES)
def test_an_aggregator_registered_again_after_unregister_enriches_again(mode):
    pm = PluginManager()
    obs = Observer()
    pm.register(obs, name="obs")
    turn(pm, mode)
    agg = pm.unregister(name=TurnAggregator.NAME)
    # plans built without an aggregator: the host's counts stand
    turn(pm, mode, AgentEndEvent(response="r", tool_call_count=7, tool_names=("host",)))
    pm.register(agg, name=TurnAggregator.NAME)
    turn(pm, mode)
    assert obs.seen == [(1, ("bash",)), (7, ("host",)), (1, ("bash",))]
