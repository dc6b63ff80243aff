"""The testing kit loads plugins as the loaders do: an object, module or file with no hook
that can run fails its test, naming it, instead of passing with nothing checked; and
``check_contract`` loads a path (docs/plugins.md: every way of loading a plugin registers
one with at least one hook, or is a load error)."""

from __future__ import annotations

import types

import pytest

import kithooks
from kithooks.testing import ContractViolation, Harness, PluginFailed, check_contract


class NoHooks:
    def helper(self, event, ctx):
        return None


class OnlyUnknownOptional:
    @kithooks.hookimpl(optionalhook=True)
    def on_tool_cal(self, event, ctx):
        return None


class Custom:
    @kithooks.custom_event("deploy")
    def deployed(self, data):
        return None


def test_check_contract_refuses_an_object_with_no_hooks():
    with pytest.raises(ContractViolation, match=r"plugin 'NoHooks': NoHooks object has no hooks"):
        check_contract(NoHooks())
    with pytest.raises(ContractViolation, match="has no hook that can run"):
        check_contract(OnlyUnknownOptional())
    empty = types.ModuleType("empty_plugin")
    with pytest.raises(ContractViolation, match="module empty_plugin has no hooks"):
        check_contract(empty)


def test_check_contract_loads_a_path_and_checks_every_plugin_in_it(tmp_path):
    plugin = tmp_path / "gate.py"
    plugin.write_text(
        "import kithooks\n"
        "@kithooks.hookimpl\n"
        "def on_tool_call(event, ctx):\n"
        "    return None\n"
        "class Audit:\n"
        "    @kithooks.hookimpl\n"
        "    def on_agent_end(self, event):\n"
        "        return None\n"
    )
    assert check_contract(plugin, max_examples=5) == ["on_agent_end", "on_tool_call"]
    assert check_contract(str(plugin), max_examples=5) == ["on_agent_end", "on_tool_call"]


def test_check_contract_on_a_path_finds_the_violation(tmp_path):
    plugin = tmp_path / "bad.py"
    plugin.write_text(
        "import kithooks\n"
        "@kithooks.hookimpl(tools='Bash')\n"
        "def on_tool_call(event, ctx):\n"
        "    return event.parsed_args['nope']\n"
    )
    with pytest.raises(ContractViolation, match=r"plugin 'bad' failed in on_tool_call: "):
        check_contract(str(plugin), max_examples=20)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = 1\n", "has no hooks"),
        (
            "import kithooks\n@kithooks.hookimpl\ndef on_tool_cal(event, ctx):\n    pass\n",
            "on_tool_cal",
        ),
        ("def on_tool_call(event, ctx):\n    pass\n", "not marked"),
        ("import kithooks\n@kithooks.hookimpl\ndef on_tool_call(event, ctx)\n", "SyntaxError"),
    ],
)
def test_check_contract_on_a_path_that_does_not_load_fails_naming_it(tmp_path, source, expected):
    plugin = tmp_path / "broken.py"
    plugin.write_text(source)
    with pytest.raises(ContractViolation) as info:
        check_contract(str(plugin), max_examples=5)
    assert str(plugin) in str(info.value) and expected in str(info.value)


def test_check_contract_on_a_missing_path_fails_naming_it(tmp_path):
    with pytest.raises(ContractViolation, match="does not exist"):
        check_contract(tmp_path / "nope.py")


def test_harness_refuses_an_object_with_no_hooks():
    with pytest.raises(PluginFailed, match=r"plugin 'NoHooks': NoHooks object has no hooks"):
        Harness(NoHooks())
    h = Harness()
    with pytest.raises(PluginFailed, match="has no hook that can run"):
        h.load(OnlyUnknownOptional(), name="optional")
    assert h.pm.get_plugin("optional") is None
    h.close()


def test_a_plugin_with_only_custom_event_handlers_loads_as_the_loader_loads_it():
    """It loads (custom events are hooks to the loader), but check_contract has nothing it
    can draw for it: that is said, never passed as checked."""
    with pytest.raises(ContractViolation, match="no kithooks event handler to check"):
        check_contract(Custom())
    with Harness(Custom()) as h:
        assert h.pm.get_plugin("Custom") is not None


def test_harness_still_loads_a_plugin_with_hooks():
    class Gate:
        @kithooks.hookimpl
        def on_tool_call(self, event):
            return kithooks.ToolCallResult(block=True, reason="no")

    with Harness(Gate()) as h:
        assert h.emit(kithooks.ToolCallEvent(tool_name="bash")).block


def test_check_contract_raises_one_contract_violation_for_several_distinct_bugs():
    """The reviewer's ``bad.py``: ``parsed_args`` None (TypeError) and a missing key
    (KeyError) are two bugs; the check still raises one ContractViolation."""

    class Bad:
        @kithooks.hookimpl(tools="Bash")
        def on_tool_call(self, event, ctx):
            return event.parsed_args["nope"]

    with pytest.raises(ContractViolation, match=r"plugin 'Bad' failed in on_tool_call: "):
        check_contract(Bad(), max_examples=50)
