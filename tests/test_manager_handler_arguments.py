"""Handlers whose arguments pluggy would never pass are refused when they register.

pluggy drops a defaulted parameter from a hookimpl's argnames, and handlers are called
with their arguments by position: ``def on_tool_call(self, event, ctx=None)`` would always
get ``ctx=None`` (a guard that checks it never blocks), and ``def on_tool_call(self, *,
event, ctx)`` would fail on every call (a guard that fails open). Both are refused by
``register``, and so by every load path (plugin files, entry points).
"""

from __future__ import annotations

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


def test_a_hook_argument_with_a_default_is_refused_naming_plugin_hook_and_argument():
    pm = PluginManager()
    pm.state.set("locked", "1")
    with pytest.raises(PluginValidationError) as raised:
        pm.register(DefaultCtx(), name="lockdown")
    message = str(raised.value)
    assert "plugin 'lockdown': 'on_tool_call' gives 'ctx' a default" in message
    assert "remove the default" in message
    assert "\n" not in message
    # nothing left behind: the guard is not half-registered
    assert pm.get_plugin("lockdown") is None
    assert not pm.has_handlers("tool_call")

    class Lockdown:  # without the default, the same guard gets the context and blocks
        @hookimpl
        def on_tool_call(self, event, ctx):
            return DefaultCtx.on_tool_call(self, event, ctx)

    pm.register(Lockdown(), name="lockdown")
    assert pm.emit(ToolCallEvent(tool_name="bash"), Context(session_id="s")).block


@pytest.mark.parametrize(
    ("hook", "source"),
    [
        ("on_tool_call", "def on_tool_call(event=None, ctx=None): pass"),
        ("on_agent_end", "def on_agent_end(event, ctx=None): pass"),
        ("on_outcome", "def on_outcome(event, result=None): pass"),
        ("on_input", "def on_input(event=None): pass"),
    ],
)
def test_every_defaulted_hook_argument_is_refused(hook, source):
    ns: dict[str, object] = {}
    exec(source, ns)
    plugin = type("P", (), {hook: staticmethod(hookimpl(ns[hook]))})()
    with pytest.raises(PluginValidationError, match=r"plugin 'p': '\w+' gives '\w+'.* a default"):
        PluginManager().register(plugin, name="p")


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
    assert pm.get_plugin("gate") is None and not pm.has_handlers("tool_call")


@pytest.mark.parametrize(
    "signature",
    [
        "event, *, ctx",
        "*, event",
        "event, *, verbose=False",
        "event, *args, ctx",
        "*args, event, **kwargs",
    ],
)
def test_any_keyword_only_parameter_is_refused(signature):
    ns: dict[str, object] = {}
    exec(f"def on_tool_call({signature}): pass", ns)
    plugin = type("P", (), {"on_tool_call": staticmethod(hookimpl(ns["on_tool_call"]))})()
    with pytest.raises(PluginValidationError, match=r"plugin 'p': 'on_tool_call' takes .* keyword"):
        PluginManager().register(plugin, name="p")


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


def test_plugin_files_with_such_handlers_are_load_errors(tmp_path):
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
    assert loaded == []
    assert not pm.has_handlers("tool_call")
    messages = {e.name: e.message for e in pm.load_errors}
    assert len(messages) == 2, messages
    assert [e.name for e in errors] == [e.name for e in pm.load_errors]
    text = " | ".join(messages.values())
    assert "'on_tool_call' gives 'ctx' a default" in text
    assert "'on_tool_call' takes 'event', 'ctx' as keyword-only" in text


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


def test_entry_points_with_such_handlers_are_load_errors(site):
    _install(
        site,
        {"kh_args_default": MODULE_DEFAULT, "kh_args_kwonly": MODULE_KWONLY},
        {"lockdown": "kh_args_default", "kwonly": "kh_args_kwonly:Gate"},
    )
    pm = PluginManager()
    assert pm.load_entrypoints() == []
    assert not pm.has_handlers("tool_call")
    by_name = {e.name: e.message for e in pm.load_errors}
    assert set(by_name) == {"lockdown", "kwonly"}
    assert "'on_tool_call' gives 'ctx' a default" in by_name["lockdown"]
    assert "keyword-only" in by_name["kwonly"]
