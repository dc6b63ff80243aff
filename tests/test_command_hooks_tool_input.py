"""Command hooks run from a kithooks host: a hook sees the call's arguments (raw text as
``{"input": <the text>}``, never an emptied object), and an answer reads as Claude Code reads
it (real hook commands)."""

from __future__ import annotations

import asyncio
import json
import logging
import shlex
import sys
from pathlib import Path

import pytest

from hooks.command_hooks_support import context_with_confirm, settings
from kithooks import Context, PluginManager, ToolCallEvent, ToolResultEvent
from kithooks.command_hooks import AsyncCommandHooks, CommandHooks
from kithooks.command_hooks.aliases import ToolAliases
from kithooks.command_hooks.protocol import (
    ToolInputError,
    hook_input,
    read_answer,
    text_input_error,
)
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


def deny_by_name(seen: Path, tool: str) -> str:
    """A guard on the tool's name alone ("no WebFetch at all"): it saves its stdin."""
    return f"cat > {shlex.quote(str(seen))}; echo 'no {tool} here' >&2; exit 2"


def field_guard(seen: Path) -> str:
    """``jq -e '.tool_input.command | test("rm")'`` in Python: blocks what it finds in
    ``tool_input.command`` and saves its stdin."""
    code = (
        "import json, sys; raw = sys.stdin.read(); "
        f"open({str(seen)!r}, 'w').write(raw); "
        "command = json.loads(raw)['tool_input'].get('command', ''); "
        "sys.exit(2 if 'rm' in command else 0)"
    )
    return shlex.join([sys.executable, "-c", code])


@pytest.mark.parametrize("text", NOT_OBJECTS)
@pytest.mark.parametrize("fail_closed", [False, True])
def test_a_guard_on_the_tool_name_blocks_a_call_whose_arguments_are_raw_text(
    tmp_path, text, fail_closed
):
    """It used to fail the plugin without running: under fail open the call went through."""
    seen = tmp_path / "stdin.json"
    plugin = guard("PreToolUse", deny_by_name(seen, "WebFetch"), tmp_path, matcher="WebFetch")
    pm, errors = manager(plugin, fail_closed=fail_closed)
    result = pm.emit(ToolCallEvent(tool_name="web_fetch", tool_call_id="c1", input=text))
    assert (result.block, result.reason, errors) == (True, "no WebFetch here", [])
    assert json.loads(seen.read_text())["tool_input"] == {"input": text}


@pytest.mark.parametrize("text", NOT_OBJECTS)
@pytest.mark.parametrize("fail_closed", [False, True])
def test_a_script_grepping_its_whole_stdin_sees_raw_text_arguments(tmp_path, text, fail_closed):
    seen = tmp_path / "stdin.json"
    pm, errors = manager(guard("PreToolUse", rm_guard(seen), tmp_path), fail_closed=fail_closed)
    result = pm.emit(ToolCallEvent(tool_name="bash", tool_call_id="c1", input=text))
    data = json.loads(seen.read_text())
    assert data["tool_input"] == {"input": text} and data["tool_name"] == "Bash"
    if "rm -rf" in text:
        assert (result.block, result.reason, errors) == (True, "rm -rf seen", [])
    else:  # the script ran and allowed: the arguments it might have missed are a failure
        [error] = errors
        assert isinstance(error.error, ToolInputError)
        assert (result is not None and result.block) == fail_closed


@pytest.mark.parametrize("fail_closed", [False, True])
def test_a_guard_reading_tool_input_command_that_allows_raw_text_is_a_plugin_failure(
    tmp_path, caplog, fail_closed
):
    """``.tool_input.command`` cannot see raw text: the command runs, and when nothing blocks
    the plugin fails for the call (allowed and reported under fail open, blocked under fail
    closed), as it did before the commands ran at all."""
    seen = tmp_path / "stdin.json"
    pm, errors = manager(guard("PreToolUse", field_guard(seen), tmp_path), fail_closed=fail_closed)
    with caplog.at_level(logging.ERROR, logger="kithooks"):
        result = pm.emit(ToolCallEvent(tool_name="bash", tool_call_id="c1", input="rm -rf /"))
    assert json.loads(seen.read_text())["tool_input"] == {"input": "rm -rf /"}
    [error] = errors
    assert (error.plugin, error.hook) == ("guard", "on_tool_call")
    assert isinstance(error.error, ToolInputError)
    assert "not a JSON object" in str(error.error) and "'rm -rf /'" in str(error.error)
    assert any("plugin 'guard' failed in on_tool_call" in r.getMessage() for r in caplog.records)
    if fail_closed:
        assert result.block
        assert result.reason.startswith("plugin 'guard' failed in on_tool_call: ToolInputError")
    else:
        assert result is None  # fail open: the call goes on, reported


@pytest.mark.parametrize(("confirmed", "blocked"), [(False, True), (True, False)])
def test_an_always_ask_hook_on_raw_text_blocks_unless_confirmed(tmp_path, confirmed, blocked):
    answer = json.dumps({"hookSpecificOutput": {"permissionDecision": "ask"}})
    plugin = guard("PreToolUse", f"cat >/dev/null; echo {shlex.quote(answer)}", tmp_path)
    asked: list[str] = []
    errors: list = []
    pm = PluginManager(on_error=errors.append, context=context_with_confirm(confirmed, asked))
    pm.register(plugin, name="guard")
    result = pm.emit(ToolCallEvent(tool_name="bash", tool_call_id="c1", input="ls -la"))
    assert asked == ["Allow this Bash call?"]
    if blocked:
        assert (result.block, errors) == (True, [])
    else:  # confirmed: what the hook could not see is reported
        assert result is None
        [error] = errors
        assert isinstance(error.error, ToolInputError)


@pytest.mark.parametrize("fail_closed", [False, True])
def test_an_ask_with_a_rewrite_on_raw_text_never_shows_a_rewrite_it_cannot_apply(
    tmp_path, fail_closed
):
    # The person was shown "the call runs with: echo safe", said yes, and rm -rf / ran (fail
    # open); under fail_closed the call was blocked after the yes.
    answer = json.dumps(
        {
            "hookSpecificOutput": {
                "permissionDecision": "ask",
                "permissionDecisionReason": "check",
                "updatedInput": {"command": "echo safe"},
            }
        }
    )
    plugin = guard("PreToolUse", f"cat >/dev/null; echo {shlex.quote(answer)}", tmp_path)
    asked: list[str] = []
    errors: list = []
    pm = PluginManager(
        on_error=errors.append, fail_closed=fail_closed, context=context_with_confirm(True, asked)
    )
    pm.register(plugin, name="guard")
    result = pm.emit(ToolCallEvent(tool_name="bash", tool_call_id="c1", input="rm -rf /"))
    [error] = errors
    assert isinstance(error.error, ToolInputError)
    if fail_closed:  # blocked whatever the person says: nobody is asked
        assert result.block and asked == []
    else:
        assert result is None  # the call runs as it is, reported; no rewrite was promised
        [question] = asked
        assert question.startswith("Bash: check\n")
        assert "the arguments are plain text: the call would run as it is" in question
        assert "echo safe" not in question


def test_the_plain_text_result_warning_stops_after_a_hundred_tools(tmp_path, caplog):
    answer = json.dumps({"hookSpecificOutput": {"additionalContext": "noted"}})
    pm, _ = manager(
        guard("PostToolUse", f"cat >/dev/null; echo {shlex.quote(answer)}", tmp_path),
        fail_closed=False,
    )
    with caplog.at_level(logging.WARNING, logger="kithooks"):
        for i in range(120):
            pm.emit(ToolResultEvent(tool_name=f"t{i}", input="x", content="out"))
    warnings = [r.getMessage() for r in caplog.records if "not a JSON object" in r.getMessage()]
    assert len(warnings) == 101 and "no more such warnings" in warnings[-1]


def test_async_command_hooks_run_on_raw_text_arguments_too(tmp_path):
    seen = tmp_path / "stdin.json"
    plugin = AsyncCommandHooks.from_settings(
        settings("PreToolUse", deny_by_name(seen, "WebFetch"), matcher="WebFetch"),
        project_dir=tmp_path,
    )
    pm, errors = manager(plugin, fail_closed=False)

    async def main():
        return await pm.aemit(ToolCallEvent(tool_name="fetch", tool_call_id="c1", input="x.org"))

    result = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert (result.block, result.reason, errors) == (True, "no WebFetch here", [])
    assert json.loads(seen.read_text())["tool_input"] == {"input": "x.org"}


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


@pytest.mark.parametrize("is_error", [False, True])
def test_tool_result_hooks_run_for_a_tool_whose_arguments_are_raw_text(tmp_path, caplog, is_error):
    """They were skipped (the plugin failed for the result); they are no guards, so they run
    with ``{"input": <the text>}`` and nothing fails, with one warning per tool."""
    seen = tmp_path / "stdin.json"
    event_name = "PostToolUseFailure" if is_error else "PostToolUse"
    answer = json.dumps(
        {"hookSpecificOutput": {"hookEventName": event_name, "additionalContext": "noted"}}
    )
    command = f"cat > {shlex.quote(str(seen))}; echo {shlex.quote(answer)}"
    pm, errors = manager(guard(event_name, command, tmp_path), fail_closed=True)
    with caplog.at_level(logging.WARNING, logger="kithooks"):
        for tool, call in [("bash", "c1"), ("bash", "c2"), ("sql", "c3")]:
            event = ToolResultEvent(
                tool_name=tool, tool_call_id=call, input="ls -la", content="out", is_error=is_error
            )
            result = pm.emit(event)
            assert result.content == "out\n\nnoted"
            data = json.loads(seen.read_text())
            assert data["tool_input"] == {"input": "ls -la"}
            assert data["hook_event_name"] == event_name
    assert errors == []
    warnings = [r.getMessage() for r in caplog.records if "not a JSON object" in r.getMessage()]
    assert len(warnings) == 2  # once per tool
    assert "plugin 'guard'" in warnings[0] and "'bash'" in warnings[0]
    assert "'sql'" in warnings[1]


@pytest.mark.parametrize("text", NOT_OBJECTS)
def test_hook_input_refuses_what_it_cannot_pass_faithfully(text):
    event = ToolCallEvent(tool_name="bash", tool_call_id="c1", input=text)
    with pytest.raises(ToolInputError, match="not a JSON object"):
        hook_input("PreToolUse", event, Context(), project_dir="/p", aliases=ToolAliases())
    data = hook_input(
        "PreToolUse", event, Context(), project_dir="/p", aliases=ToolAliases(), wrap_text=True
    )
    assert data["tool_input"] == {"input": text}
    assert isinstance(text_input_error(event), ToolInputError)


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
