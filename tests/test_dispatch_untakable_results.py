"""A result that passes its class's checks but that the merge cannot take is the handler's
failure: logged with the plugin's name, reported to on_error listeners, contributing
nothing (fail open) or blocking naming the plugin (fail closed); dispatch goes on.

The case met in the wild: ``ToolCallResult(args={"x": <an int too long to print>})`` is
valid JSON data, but writing it as the event's ``input`` raises ValueError (Python's limit
on int-to-str digits). It used to escape ``emit`` to the host, past ``fail_closed``.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest

from kithooks import (
    InputEvent,
    InputResult,
    PluginManager,
    ToolCallEvent,
    ToolCallResult,
    hookimpl,
)
from kithooks.listeners import HandlerError

DEADLINE = 10  # seconds, for every event loop run here


@pytest.fixture(autouse=True)
def int_digits_limit():
    """Python's default limit on int-to-str digits (an environment may change it)."""
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(4300)
    yield
    sys.set_int_max_str_digits(before)


def huge() -> int:
    return int("9" * 4000) * 10**1000  # > 4300 digits: json.dumps raises ValueError


class Rewriter:
    def __init__(self, args):
        self.args = args

    @hookimpl
    def on_tool_call(self, event):
        return ToolCallResult(args=self.args)


class Seen:
    """Records the arguments it sees; blocks when told to."""

    def __init__(self, block: bool = False):
        self.block = block
        self.seen: list = []

    @hookimpl
    def on_tool_call(self, event):
        self.seen.append(dict(event.parsed_args or {}))
        return ToolCallResult(block=True, reason="later guard") if self.block else None


def run(coro):
    async def bounded():
        return await asyncio.wait_for(coro, DEADLINE)

    return asyncio.run(bounded())


def dispatchers(pm: PluginManager):
    """emit, aemit, pm.hook.on_tool_call and call_extra: every way to dispatch tool_call."""
    return {
        "emit": pm.emit,
        "aemit": lambda ev: run(pm.aemit(ev)),
        "pm.hook": lambda ev: pm.hook.on_tool_call(event=ev, ctx=None),
        "call_extra": lambda ev: pm.hook.on_tool_call.call_extra([], {"event": ev, "ctx": None}),
    }


VIAS = ["emit", "aemit", "pm.hook", "call_extra"]


@pytest.mark.parametrize("via", VIAS)
def test_fail_open_the_result_is_skipped_reported_and_later_guards_run(via, caplog):
    errors: list = []
    results: list = []
    pm = PluginManager(on_error=errors.append, on_result=lambda *a: results.append(a))
    pm.register(Rewriter({"command": "ls"}), name="first")
    pm.register(Rewriter({"x": huge()}), name="rewriter")
    later = Seen(block=True)
    pm.register(later, name="gate")
    with caplog.at_level(logging.ERROR, logger="kithooks"):
        out = dispatchers(pm)[via](ToolCallEvent(tool_name="bash", input='{"command": "rm"}'))
    assert out is not None and out.block and out.reason == "later guard"
    # the later guard saw the first rewrite, not the one that could not be taken
    assert later.seen == [{"command": "ls"}]
    (error,) = errors
    assert isinstance(error, HandlerError)
    assert (error.plugin, error.hook) == ("rewriter", "on_tool_call")
    assert "cannot be used" in str(error.error)
    assert isinstance(error.error.__cause__, ValueError)
    assert "'rewriter' failed in on_tool_call" in caplog.text
    # result listeners hear only the results that were taken
    assert [(plugin, type(r).__name__) for plugin, _hook, r in results] == [
        ("first", "ToolCallResult"),
        ("gate", "ToolCallResult"),
    ]


@pytest.mark.parametrize("via", VIAS)
def test_fail_open_the_merged_result_keeps_what_came_before(via):
    pm = PluginManager()
    pm.register(Rewriter({"command": "ls"}), name="first")
    pm.register(Rewriter({"x": huge()}), name="rewriter")
    out = dispatchers(pm)[via](ToolCallEvent(tool_name="bash", input='{"command": "rm"}'))
    assert out == ToolCallResult(args={"command": "ls"})


@pytest.mark.parametrize("via", VIAS)
def test_fail_closed_it_blocks_naming_the_plugin(via):
    errors: list = []
    pm = PluginManager(fail_closed=True, on_error=errors.append)
    pm.register(Rewriter({"x": huge()}), name="rewriter")
    later = Seen()
    pm.register(later, name="gate")
    out = dispatchers(pm)[via](ToolCallEvent(tool_name="bash", input="{}"))
    assert out is not None and out.block
    assert out.reason.startswith("plugin 'rewriter' failed in on_tool_call: ValueError:")
    assert out.args is None
    assert [e.plugin for e in errors] == ["rewriter"]
    assert later.seen == []  # a fail-closed failure stops dispatch, like a raising guard


def test_an_async_handler_result_that_cannot_be_taken_is_isolated_too():
    class AsyncRewriter:
        @hookimpl
        async def on_tool_call(self, event):
            await asyncio.sleep(0)
            return ToolCallResult(args={"x": huge()})

    later = Seen(block=True)
    pm = PluginManager()
    pm.register(AsyncRewriter(), name="rewriter")
    pm.register(later, name="gate")
    out = run(pm.aemit(ToolCallEvent(tool_name="bash", input='{"a": 1}')))
    assert out.reason == "later guard"
    assert later.seen == [{"a": 1}]


def test_a_block_is_taken_whatever_its_args():
    """A block stops dispatch before any rewrite is written: nothing to fail."""
    pm = PluginManager()
    pm.register(
        type(
            "G",
            (),
            {
                "on_tool_call": hookimpl(
                    lambda self, event: ToolCallResult(block=True, reason="no", args={"x": huge()})
                )
            },
        )(),
        name="g",
    )
    assert pm.emit(ToolCallEvent(tool_name="bash")).reason == "no"


@pytest.mark.parametrize("via", ["emit", "aemit"])
def test_a_transform_merge_that_raises_is_the_handlers_failure(via, monkeypatch):
    """Any merge step that raises (here a stand-in in the input merge) is isolated the same
    way, for transform events too: the handler contributes nothing, the next one runs."""
    from kithooks import dispatch

    real = dispatch._InputMerge.add

    def add(self, result):
        if result.text == "poison":
            raise RuntimeError("cannot merge this")
        return real(self, result)

    monkeypatch.setattr(dispatch._InputMerge, "add", add)

    class Upper:
        @hookimpl
        def on_input(self, event):
            return InputResult(action="transform", text=event.text.upper())

    class Poison:
        @hookimpl
        def on_input(self, event):
            return InputResult(action="transform", text="poison")

    class Exclaim:
        @hookimpl
        def on_input(self, event):
            return InputResult(action="transform", text=event.text + "!")

    errors: list = []
    pm = PluginManager(fail_closed=True, on_error=errors.append)  # transforms fail open
    pm.register(Upper(), name="upper")
    pm.register(Poison(), name="poison")
    pm.register(Exclaim(), name="exclaim")
    ev = InputEvent(text="hi")
    out = pm.emit(ev) if via == "emit" else run(pm.aemit(ev))
    assert out == InputResult(action="transform", text="HI!")
    assert [(e.plugin, e.hook) for e in errors] == [("poison", "on_input")]
