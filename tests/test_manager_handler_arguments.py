"""Handlers get every hook argument they name, or are refused when they register.

pluggy leaves a defaulted parameter out of a hookimpl's argnames, and handlers are called
by position: ``def on_tool_call(self, event, ctx=None)`` would always get ``ctx=None`` (a
guard that checks it would never block), so kithooks passes such arguments all the same.
What cannot be passed is refused by ``register``, and so by every load path (plugin files,
entry points): a keyword-only hook argument (``def on_tool_call(self, *, event, ctx)`` would
fail on every call, a guard failing open), a keyword-only parameter without a default, and
a hook argument after a parameter of the handler's own.
"""

from __future__ import annotations

import asyncio
import re
import sys
import textwrap
from pathlib import Path

import pytest
from pluggy import PluginValidationError

from kithooks import Context, PluginManager, ToolCallEvent, ToolCallResult, hookimpl


class DefaultCtx:
    """Blocks while the session is locked; ctx is optional so unit tests can call it bare."""

    @hookimpl
    def on_tool_call(self, event, ctx=None):
        if ctx is not None and ctx.get_state("locked") == "1":
            return ToolCallResult(block=True, reason="session is locked")
        return None


class KeywordOnly:
    @hookimpl
    def on_tool_call(self, *, event, ctx):
        return ToolCallResult(block=True, reason="no rm") if "rm" in event.input else None


def test_a_hook_argument_with_a_default_is_passed_on_every_dispatch_path():
    pm = PluginManager()
    pm.register(DefaultCtx(), name="lockdown")
    pm.state.set("locked", "1")
    event, ctx = ToolCallEvent(tool_name="bash"), Context(session_id="s")
    assert pm.emit(event, ctx).block
    assert asyncio.run(asyncio.wait_for(pm.aemit(event, ctx), 10)).block
    assert pm.hook.on_tool_call(event=event, ctx=ctx).block
    assert DefaultCtx().on_tool_call(event) is None  # the default still serves a bare call


@pytest.mark.parametrize(
    ("hook", "source", "expected"),
    [
        ("on_tool_call", "def on_tool_call(event=None, ctx=None): seen.append((event, ctx))", 2),
        ("on_agent_end", "def on_agent_end(event, ctx=None): seen.append((event, ctx))", 2),
        ("on_outcome", "def on_outcome(event, result=None): seen.append((event, result))", 2),
        ("on_input", "def on_input(event=None): seen.append((event,))", 1),
    ],
)
def test_every_defaulted_hook_argument_is_passed(hook, source, expected):
    seen: list[tuple[object, ...]] = []
    ns: dict[str, object] = {"seen": seen}
    exec(source, ns)
    plugin = type("P", (), {hook: staticmethod(hookimpl(ns[hook]))})()
    pm = PluginManager()
    pm.register(plugin, name="p")
    if hook == "on_outcome":

        class Gate:
            @hookimpl
            def on_tool_call(self, event):
                return ToolCallResult(block=True, reason="no")

        pm.register(Gate())
        pm.emit(ToolCallEvent(tool_name="bash"))
    else:
        from kithooks import events

        cls = {"on_tool_call": ToolCallEvent, "on_agent_end": events.AgentEndEvent}.get(
            hook, events.InputEvent
        )
        pm.emit(cls(), Context())
    [args] = seen
    assert len(args) == expected and all(a is not None for a in args), args


def test_a_hook_argument_after_a_parameter_of_the_handlers_own_is_refused():
    class Gate:
        @hookimpl
        def on_tool_call(self, event, limit=3, ctx=None):
            return None

    pm = PluginManager()
    with pytest.raises(PluginValidationError) as raised:
        pm.register(Gate(), name="gate")
    message = str(raised.value)
    assert "plugin 'gate': 'on_tool_call' takes 'ctx' after its own parameter 'limit'" in message
    assert "put the hook's arguments (event, ctx) first" in message and "\n" not in message
    assert pm.get_plugin("gate") is None and pm.handler_names("tool_call") == ["turn-aggregator"]


def test_a_default_on_a_parameter_no_hook_passes_still_registers():
    """Not a hook argument: it was never meant to come from dispatch (unchanged rule)."""

    class Gate:
        @hookimpl
        def on_tool_call(self, event, limit=3):
            return ToolCallResult(block=True, reason=f"limit {limit}")

    pm = PluginManager()
    pm.register(Gate(), name="gate")
    assert pm.emit(ToolCallEvent(tool_name="bash")).reason == "limit 3"


def test_keyword_only_event_and_ctx_are_refused():
    pm = PluginManager()
    with pytest.raises(PluginValidationError) as raised:
        pm.register(KeywordOnly(), name="gate")
    message = str(raised.value)
    assert "plugin 'gate': 'on_tool_call' takes 'event', 'ctx' as keyword-only" in message
    assert "make them ordinary parameters" in message
    assert "\n" not in message
    assert pm.get_plugin("gate") is None and pm.handler_names("tool_call") == ["turn-aggregator"]


@pytest.mark.parametrize(
    "signature",
    ["event, *, ctx", "*, event", "event, *, extra", "event, *args, ctx", "*args, event, **kwargs"],
)
def test_a_keyword_only_hook_argument_or_one_without_a_default_is_refused(signature):
    ns: dict[str, object] = {}
    exec(f"def on_tool_call({signature}): pass", ns)
    plugin = type("P", (), {"on_tool_call": staticmethod(hookimpl(ns["on_tool_call"]))})()
    with pytest.raises(PluginValidationError, match=r"plugin 'p': 'on_tool_call' takes .* keyword"):
        PluginManager().register(plugin, name="p")


def test_a_keyword_only_helper_with_a_default_keeps_it():
    """pluggy never passes it, so its default stands: what the author wrote it for."""

    class Gate:
        @hookimpl
        def on_tool_call(self, event, ctx, *, _danger=re.compile(r"rm -rf")):
            return ToolCallResult(block=True, reason="no") if _danger.search(event.input) else None

    pm = PluginManager()
    pm.register(Gate(), name="gate")
    assert pm.emit(ToolCallEvent(tool_name="bash", input='{"command": "rm -rf /"}')).block


MODULE_DEFAULT = """
import kithooks

@kithooks.hookimpl
def on_tool_call(event, ctx=None):
    if ctx is not None:
        return kithooks.ToolCallResult(block=True, reason="locked")
"""

MODULE_KWONLY = """
import kithooks

class Gate:
    @kithooks.hookimpl
    def on_tool_call(self, *, event, ctx):
        return kithooks.ToolCallResult(block=True, reason="no")
"""


def test_plugin_files_load_a_defaulted_guard_and_refuse_a_keyword_only_one(tmp_path):
    (tmp_path / "lockdown.py").write_text(textwrap.dedent(MODULE_DEFAULT))
    (tmp_path / "kwonly.py").write_text(textwrap.dedent(MODULE_KWONLY))
    errors: list = []
    pm = PluginManager(on_error=errors.append)
    loaded = pm.load_plugin_files(
        [tmp_path / "lockdown.py", tmp_path / "kwonly.py"],
        user_dir=None,
        project_dir=None,
        command_hooks=False,
    )
    assert loaded == ["lockdown"]
    assert pm.emit(ToolCallEvent(tool_name="bash"), Context()).block
    [error] = pm.load_errors
    assert [e.name for e in errors] == [error.name]
    assert "'on_tool_call' takes 'event', 'ctx' as keyword-only" in error.message


@pytest.fixture
def site(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in list(sys.modules):
        if name.startswith("kh_args_"):
            del sys.modules[name]


def _install(site: Path, modules: dict[str, str], entry_points: dict[str, str]) -> None:
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / "kh_args-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kh-args\nVersion: 1.0\n")
    lines = ["[kithooks]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def test_entry_points_load_a_defaulted_guard_and_refuse_a_keyword_only_one(site):
    _install(
        site,
        {"kh_args_default": MODULE_DEFAULT, "kh_args_kwonly": MODULE_KWONLY},
        {"lockdown": "kh_args_default", "kwonly": "kh_args_kwonly:Gate"},
    )
    pm = PluginManager()
    assert pm.load_entrypoints() == ["lockdown"]
    assert pm.emit(ToolCallEvent(tool_name="bash"), Context()).block
    by_name = {e.name: e.message for e in pm.load_errors}
    assert set(by_name) == {"kwonly"}
    assert "keyword-only" in by_name["kwonly"]
