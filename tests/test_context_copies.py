"""Copies of a Context: the handlers of a copy see the copy's fields, never the original's."""

from __future__ import annotations

import asyncio
import copy

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kithooks import Context, PluginManager, ToolCallEvent, ToolCallResult, hookimpl
from kithooks.context import HandlerContext


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


@pytest.mark.parametrize(
    "how", [copy.copy, copy.deepcopy, attrs.evolve, lambda ctx: ctx.for_turn(ctx.turn_id)]
)
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


_TEXT = st.text(max_size=8)


@given(
    fields=st.fixed_dictionaries(
        {"session_id": _TEXT, "cwd": _TEXT, "model": _TEXT, "interactive": st.booleans()}
    ),
    turn_id=_TEXT,
    session_id=st.none() | _TEXT,
    bound=st.booleans(),
)
def test_for_turn_is_evolve_with_the_turns_ids(fields, turn_id, session_id, bound):
    """Context.for_turn (what the adapters and Turn make each turn with) gives what
    attrs.evolve gives: every field copied (the callbacks too), the ids changed, and no
    manager binding or handler view carried over."""
    printed: list[str] = []
    base = Context(**fields, print=printed.append)
    if bound:
        PluginManager().set_context(base)
    changes = (
        {"turn_id": turn_id}
        if session_id is None
        else {"turn_id": turn_id, "session_id": session_id}
    )
    made = base.for_turn(turn_id, session_id=session_id)
    expected = attrs.evolve(base, **changes)
    assert type(made) is Context and made is not base
    for field in attrs.fields(Context):
        assert getattr(made, field.name) == getattr(expected, field.name), field.name
    assert made._manager is None and made._view is None
    made.print("x")
    assert printed == ["x"]


def test_for_turn_of_a_subclass_or_a_handler_view():
    base = CountingContext(cwd="/w", turn_id="t1")
    base.count = 3
    made = base.for_turn("t2", session_id="s")
    assert type(made) is CountingContext and (made.cwd, made.turn_id, made.session_id) == (
        "/w",
        "t2",
        "s",
    )
    pm = PluginManager()
    host = Context(cwd="/h", turn_id="t1")
    view = pm._view_for(host)
    assert isinstance(view, HandlerContext)
    copied = view.for_turn("t3")
    assert type(copied) is Context and (copied.cwd, copied.turn_id) == ("/h", "t3")
    assert host.turn_id == "t1"
