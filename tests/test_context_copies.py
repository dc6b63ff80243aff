"""Copies of a Context: the handlers of a copy see the copy's fields, never the original's."""

from __future__ import annotations

import asyncio
import copy

import attrs
import pytest

from kithooks import Context, PluginManager, ToolCallEvent, ToolCallResult, hookimpl


class CwdGuard:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    @hookimpl
    def on_tool_call(self, event, ctx):
        self.seen.append((ctx.cwd, ctx.turn_id))
        if ctx.cwd == "/etc":
            return ToolCallResult(block=True, reason="no tools in /etc")
        return None


def _emit(pm, ctx, mode):
    event = ToolCallEvent(tool_name="bash", input="{}")
    if mode == "aemit":
        return asyncio.run(asyncio.wait_for(pm.aemit(event, ctx), 10))
    if mode == "set_context":
        pm.set_context(ctx)
        return pm.emit(event)
    return pm.emit(event, ctx)


@pytest.mark.parametrize("how", [copy.copy, copy.deepcopy, attrs.evolve])
@pytest.mark.parametrize("mode", ["emit", "aemit", "set_context"])
def test_a_copied_context_shows_the_handlers_its_own_fields(how, mode):
    # copy.copy carried the original's cached handler view along, so the guard read the
    # original's cwd and turn id and the block was lost.
    guard = CwdGuard()
    pm = PluginManager()
    pm.register(guard)
    base = Context(cwd="/home/u", turn_id="t1")
    assert _emit(pm, base, mode) is None
    other = how(base)
    other.cwd, other.turn_id = "/etc", "t2"
    result = _emit(pm, other, mode)
    assert result is not None and result.block, guard.seen
    assert guard.seen == [("/home/u", "t1"), ("/etc", "t2")]
    assert (base.cwd, base.turn_id) == ("/home/u", "t1")


def test_a_copy_keeps_the_callbacks_and_the_manager_binding():
    printed: list[str] = []
    pm = PluginManager()
    base = Context(cwd="/w", print=printed.append)
    pm.set_context(base)  # binds base to pm
    pm.state.set("k", "v")
    for other in (copy.copy(base), copy.deepcopy(base)):
        assert other.get_state("k") == "v"  # the same manager's store
        other.print("hi")
        assert other == base  # equal data fields


def test_a_copy_of_a_handler_view_is_a_plain_context_of_the_hosts_fields():
    copies: list[Context] = []

    class Keeper:
        @hookimpl
        def on_tool_call(self, event, ctx):
            copies.append(copy.copy(ctx))

    pm = PluginManager()
    pm.register(Keeper())
    pm.emit(ToolCallEvent(tool_name="bash"), Context(cwd="/w", turn_id="t"))
    [kept] = copies
    assert type(kept) is Context and (kept.cwd, kept.turn_id) == ("/w", "t")
    kept.cwd = "/elsewhere"  # the copy is the plugin's own: it may change it


def test_a_copy_of_a_view_writes_to_the_state_of_the_manager_that_dispatched():
    # Two managers share a host context; pm_a bound it first. A copy pm_b's handler makes
    # of its ctx must stay pm_b's, as ctx itself is: one manager's plugins never write into
    # another's store.
    class Writer:
        @hookimpl
        def on_tool_call(self, event, ctx):
            copy.copy(ctx).set_state("k", "from b")

    pm_a, pm_b = PluginManager(), PluginManager()
    pm_b.register(Writer())
    host = Context()
    pm_a.set_context(host)
    pm_b.emit(ToolCallEvent(tool_name="bash"), host)
    assert pm_b.state.get("k") == "from b" and pm_a.state.keys() == []


@attrs.define(kw_only=True, slots=True)
class CountingContext(Context):
    count: int = attrs.field(default=0, init=False)

    def out(self, text: str) -> None:
        self.count += 1


def test_a_subclass_keeps_its_own_fields_and_callbacks_bound_to_itself():
    base = CountingContext(cwd="/w")
    base.count = 5
    for made in (copy.copy(base), copy.deepcopy(base)):
        assert type(made) is CountingContext and made.count == 5 and made.cwd == "/w"
    base.print = base.out  # a callback bound to the context itself
    deep = copy.deepcopy(base)  # no RecursionError: the copy is in the memo first
    deep.print("x")
    assert (deep.count, base.count) == (6, 5)
