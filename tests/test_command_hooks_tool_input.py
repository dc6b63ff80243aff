"""Command hooks run from a kithooks host: a hook sees the call's arguments or does not run,
and an answer reads as Claude Code reads it (real hook commands)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from hooks.command_hooks_support import settings
from kithooks import Context, PluginManager, ToolCallEvent, ToolResultEvent
from kithooks.command_hooks import CommandHooks
from kithooks.command_hooks.aliases import ToolAliases
from kithooks.command_hooks.protocol import ToolInputError, hook_input, read_answer
from kithooks.command_hooks.runner import CommandRun

NOT_OBJECTS = ["rm -rf /", json.dumps("rm -rf /"), json.dumps(["rm", "-rf", "/"]), "42"]


def rm_guard(seen: Path) -> str:
    """A script that saves its stdin and blocks anything mentioning ``rm -rf``."""
    path = shlex.quote(str(seen))
    return f"cat > {path}; grep -q 'rm -rf' {path} && {{ echo 'rm -rf seen' >&2; exit 2; }}; exit 0"


def guard(event: str, command: str, tmp_path: Path, **kw: object) -> CommandHooks:
    return CommandHooks.from_settings(settings(event, command, **kw), project_dir=tmp_path)


def manager(plugin: CommandHooks, *, fail_closed: bool) -> tuple[PluginManager, list]:
    errors: list = []
    pm = PluginManager(on_error=errors.append, fail_closed=fail_closed)
    pm.register(plugin, name="guard")
    return pm, errors


@pytest.mark.parametrize("text", NOT_OBJECTS)
@pytest.mark.parametrize("fail_closed", [False, True])
def test_arguments_that_are_no_json_object_fail_the_plugin_never_an_empty_input(
    tmp_path, text, fail_closed
):
    seen = tmp_path / "stdin.json"
    plugin = CommandHooks.from_settings(
        settings("PreToolUse", rm_guard(seen)), project_dir=tmp_path
    )
    pm, errors = manager(plugin, fail_closed=fail_closed)
    result = pm.emit(ToolCallEvent(tool_name="bash", tool_call_id="c1", input=text))
    assert not seen.exists()  # the hook never ran on an emptied tool_input
    [error] = errors
    assert (error.plugin, error.hook) == ("guard", "on_tool_call")
    assert isinstance(error.error, ToolInputError)
    assert "not a JSON object" in str(error.error)
    if fail_closed:
        assert result.block
        assert result.reason.startswith("plugin 'guard' failed in on_tool_call: ToolInputError")
    else:
        assert result is None  # fail open: the call goes on, reported


def test_parsed_args_give_the_hook_the_arguments_of_a_plain_text_call(tmp_path):
    seen = tmp_path / "stdin.json"
    plugin = CommandHooks.from_settings(
        settings("PreToolUse", rm_guard(seen)), project_dir=tmp_path
    )
    pm, errors = manager(plugin, fail_closed=True)
    event = ToolCallEvent(
        tool_name="bash", tool_call_id="c1", input="rm -rf /", parsed_args={"command": "rm -rf /"}
    )
    result = pm.emit(event)
    assert (result.block, result.reason, errors) == (True, "rm -rf seen", [])
    assert json.loads(seen.read_text())["tool_input"] == {"command": "rm -rf /"}


@pytest.mark.parametrize("text", ["", "  ", "null"])
def test_a_call_with_no_arguments_gets_an_empty_object(tmp_path, text):
    seen = tmp_path / "stdin.json"
    plugin = CommandHooks.from_settings(
        settings("PreToolUse", rm_guard(seen)), project_dir=tmp_path
    )
    pm, errors = manager(plugin, fail_closed=True)
    assert pm.emit(ToolCallEvent(tool_name="list_tools", tool_call_id="c1", input=text)) is None
    assert errors == []
    assert json.loads(seen.read_text())["tool_input"] == {}


def test_a_call_no_command_matches_does_not_fail_on_its_arguments(tmp_path):
    seen = tmp_path / "stdin.json"
    plugin = guard("PreToolUse", rm_guard(seen), tmp_path, matcher="Write")
    pm, errors = manager(plugin, fail_closed=True)
    assert pm.emit(ToolCallEvent(tool_name="search", tool_call_id="c1", input="weather")) is None
    assert errors == []
    assert not seen.exists()


def test_a_tool_result_whose_call_arguments_are_no_object_is_a_reported_failure(tmp_path):
    seen = tmp_path / "stdin.json"
    plugin = CommandHooks.from_settings(
        settings("PostToolUse", rm_guard(seen)), project_dir=tmp_path
    )
    pm, errors = manager(plugin, fail_closed=True)
    event = ToolResultEvent(tool_name="bash", tool_call_id="c1", input="rm -rf /", content="ok")
    assert pm.emit(event) is None  # tool_result is no guard: fails open
    [error] = errors
    assert isinstance(error.error, ToolInputError)
    assert not seen.exists()


@pytest.mark.parametrize("text", NOT_OBJECTS)
def test_hook_input_refuses_what_it_cannot_pass_faithfully(text):
    event = ToolCallEvent(tool_name="bash", tool_call_id="c1", input=text)
    with pytest.raises(ToolInputError, match="not a JSON object"):
        hook_input("PreToolUse", event, Context(), project_dir="/p", aliases=ToolAliases())


# -- an answer a byte order mark starts ------------------------------------------------------


@pytest.mark.parametrize(
    "stdout",
    [
        '\ufeff{"decision": "block", "reason": "bom"}',
        '\ufeff\ufeff {"decision": "block", "reason": "bom"}\n',
        ' \ufeff{"decision": "block", "reason": "bom"}\ufeff\r\n',
    ],
)
def test_a_json_answer_after_a_byte_order_mark_is_read_as_claude_code_reads_it(stdout):
    run = CommandRun(command="hook", returncode=0, stdout=stdout)
    verdict = read_answer("PreToolUse", run)
    assert (verdict.decision, verdict.reason, verdict.error) == ("deny", "bom", "")


@pytest.mark.parametrize("fail_closed", [False, True])
def test_a_hook_printing_a_bom_before_its_block_blocks(tmp_path, fail_closed):
    command = r"""cat >/dev/null; printf '\xef\xbb\xbf{"decision":"block","reason":"bom"}'"""
    plugin = guard("PreToolUse", command, tmp_path)
    pm, errors = manager(plugin, fail_closed=fail_closed)
    event = ToolCallEvent(tool_name="bash", tool_call_id="c1", input='{"command": "ls"}')
    result = pm.emit(event)
    assert (result.block, result.reason, errors) == (True, "bom", [])
