"""``claude-hook``: what reaches Claude Code is the plugins' answer, whatever they print, exit
or however the command was written (real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REASON = "no rm"

NOISY = textwrap.dedent(
    """
    import atexit, os, subprocess, sys
    import kithooks

    print("import-time print")
    os.system("echo import-time shell")
    atexit.register(lambda: print("atexit print"))


    @kithooks.hookimpl
    def on_tool_call(event, ctx):
        print("handler print", dict(event.parsed_args))
        sys.__stdout__.write("handler __stdout__\\n")
        subprocess.run(["echo", "handler subprocess"], check=True)
        os.write(1, b"handler fd 1\\n")
        return kithooks.ToolCallResult(block=True, reason="no rm")
    """
)


def run(
    args: list[str], data: object, tmp_path: Path, *, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KITHOOKS_STATE_DIR": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    env.pop("KITHOOKS_FAIL_CLOSED", None)
    env.pop("CLAUDE_PROJECT_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "kithooks", "claude-hook", *args],
        input=json.dumps(data) if stdin is None else stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env=env,
    )


def plugin_file(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    return path


def call(event: str = "PreToolUse", **more: object) -> dict[str, object]:
    data: dict[str, object] = {"session_id": "s1", "cwd": "/work", "hook_event_name": event}
    if event == "PreToolUse":
        data |= {"tool_name": "Bash", "tool_input": {"command": "rm -rf /"}, "tool_use_id": "t1"}
    return data | more


def deny_reason(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    specific = json.loads(done.stdout)["hookSpecificOutput"]
    assert specific["permissionDecision"] == "deny", done.stdout
    return str(specific["permissionDecisionReason"])


# -- 1. stdout is the answer's alone -------------------------------------------------------


@pytest.mark.parametrize("extra", [[], ["--fail-closed"]])
def test_what_a_plugin_prints_goes_to_stderr_and_the_deny_stands(tmp_path, extra):
    noisy = plugin_file(tmp_path, "noisy", NOISY)
    done = run(["-p", str(noisy), "--no-entrypoints", *extra], call(), tmp_path)
    assert deny_reason(done) == REASON
    assert done.stdout.count("\n") == 1  # one line: the answer, nothing before or after it
    for text in (
        "import-time print",
        "import-time shell",
        "handler print {'command': 'rm -rf /'}",
        "handler __stdout__",
        "handler subprocess",
        "handler fd 1",
        "atexit print",
    ):
        assert text in done.stderr, text


def test_an_answer_with_no_output_stays_empty_however_much_the_plugins_print(tmp_path):
    chatty = plugin_file(
        tmp_path,
        "chatty",
        "import kithooks\nprint('hello')\n\n@kithooks.hookimpl\n"
        "def on_tool_call(event):\n    print('allowed')\n",
    )
    done = run(["-p", str(chatty), "--no-entrypoints"], call(), tmp_path)
    assert (done.returncode, done.stdout) == (0, "")
    assert "hello" in done.stderr and "allowed" in done.stderr


# -- 2. a handler that exits ----------------------------------------------------------------

EXITER = textwrap.dedent(
    """
    import sys
    import kithooks


    class Stop(BaseException):
        pass


    def leave(how):
        if how == "base":
            raise Stop("not an Exception")
        sys.exit(how)


    @kithooks.hookimpl
    def on_tool_call(event):
        leave({how!r})


    @kithooks.hookimpl
    def on_input(event):
        leave({how!r})


    @kithooks.hookimpl
    def on_agent_end(event):
        leave({how!r})
    """
)

DENIER = (
    "import kithooks\n\n@kithooks.hookimpl(trylast=True)\ndef on_tool_call(event):\n"
    "    return kithooks.ToolCallResult(block=True, reason='denier says no')\n"
)

EXITS = [0, 1, 2, "bye", None, "base"]


def exiter(tmp_path: Path, how: object) -> Path:
    return plugin_file(tmp_path, "exiter", EXITER.format(how=how))


@pytest.mark.parametrize("fail_closed", [[], ["--fail-closed"]], ids=["default", "fail-closed"])
@pytest.mark.parametrize("how", EXITS)
def test_a_handler_that_exits_blocks_a_guarded_call_like_a_load_failure(tmp_path, how, fail_closed):
    # The dispatch ended at the exit: the guards after it never ran, so whatever
    # --fail-closed says the call is denied, as when a plugin fails to load.
    path = exiter(tmp_path, how)
    args = ["-p", str(path), "--no-entrypoints", *fail_closed]
    done = run(args, call(), tmp_path)
    reason = deny_reason(done)
    assert reason.startswith("plugin 'exiter' failed in on_tool_call: ")
    assert ("SystemExit" if how != "base" else "Stop: not an Exception") in reason
    note = json.loads(done.stdout)["systemMessage"]
    assert "plugin 'exiter' failed in on_tool_call" in note and "skipped" not in note
    assert "plugin 'exiter' failed in on_tool_call" in done.stderr
    done = run([*args, "--block-with-exit-code"], call(), tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert "plugin 'exiter' failed in on_tool_call" in done.stderr


def test_an_exit_loses_the_other_plugins_deny_so_the_call_is_denied(tmp_path):
    first = exiter(tmp_path, 0)
    second = plugin_file(tmp_path, "denier", DENIER)
    args = ["-p", str(first), "-p", str(second), "--no-entrypoints"]
    assert "plugin 'exiter' failed in on_tool_call" in deny_reason(run(args, call(), tmp_path))


def test_an_exit_in_the_other_guarded_events_and_in_observers(tmp_path):
    path = exiter(tmp_path, 0)
    args = ["-p", str(path), "--no-entrypoints", "--fail-closed"]
    prompt = run(args, call("UserPromptSubmit", prompt="hi"), tmp_path)
    assert prompt.returncode == 0, prompt.stderr
    answer = json.loads(prompt.stdout)
    assert answer["decision"] == "block"
    assert answer["reason"].startswith("plugin 'exiter' failed in on_input: SystemExit")
    # Stop is no guard: the failure is said, and Claude may stop (exit 0, no block).
    stop = run(args, call("Stop", last_assistant_message="done"), tmp_path)
    assert stop.returncode == 0, stop.stderr
    answer = json.loads(stop.stdout)
    assert "decision" not in answer
    assert "plugin 'exiter' failed in on_agent_end" in answer["systemMessage"]


# -- 3. usage errors are answered by the event ----------------------------------------------


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ("PreToolUse", 2),
        ("UserPromptSubmit", 2),
        ("PreCompact", 2),
        ("Stop", 1),
        ("SubagentStop", 1),
        ("PostToolUse", 1),
    ],
)
@pytest.mark.parametrize("mistake", ["missing plugin", "unknown option", "bad choice"])
def test_a_usage_error_is_answered_by_the_invocations_event(tmp_path, event, code, mistake):
    args = {
        "missing plugin": ["-p", str(tmp_path / "missing.py")],
        "unknown option": ["--fail-closd"],
        "bad choice": ["--rewrite-decision", "maybe"],
    }[mistake]
    done = run(["--no-entrypoints", *args], call(event), tmp_path)
    assert (done.returncode, done.stdout) == (code, "")
    assert "Error:" in done.stderr  # click's message
    assert f"bad usage, so no plugin answered this {event}" in done.stderr


@pytest.mark.parametrize("stdin", ["not json", "[1]", ""])
def test_a_usage_error_with_stdin_that_is_no_invocation_is_exit_1(tmp_path, stdin):
    done = run(["-p", str(tmp_path / "missing.py")], None, tmp_path, stdin=stdin)
    assert (done.returncode, done.stdout) == (1, "")
    assert "does not exist" in done.stderr


def test_help_still_works(tmp_path):
    done = run(["--help"], None, tmp_path, stdin="")
    assert done.returncode == 0
    assert "--fail-closed" in done.stdout


# -- what a plugin asks of the host through ctx ---------------------------------------------

TALKER = textwrap.dedent(
    """
    import kithooks


    @kithooks.hookimpl
    def on_tool_call(event, ctx):
        ctx.print("first line")
        ctx.print_error("second line")
        {action}
        return {result}
    """
)


def talker(tmp_path, action="pass", result="None"):
    return plugin_file(tmp_path, "talker", TALKER.format(action=action, result=result))


def test_what_a_plugin_prints_is_shown_to_the_user(tmp_path):
    done = run(["-p", str(talker(tmp_path)), "--no-entrypoints"], call(), tmp_path)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer == {"systemMessage": "first line\nsecond line"}


@pytest.mark.parametrize("how", ["ctx.abort()", "ctx.exit()"])
def test_a_plugin_that_aborts_stops_claude(tmp_path, how):
    done = run(["-p", str(talker(tmp_path, how)), "--no-entrypoints"], call(), tmp_path)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["continue"] is False
    assert answer["stopReason"].startswith("a kithooks plugin ")
    assert answer["systemMessage"] == "first line\nsecond line"


def test_an_abort_with_a_block_keeps_the_deny(tmp_path):
    block = 'kithooks.ToolCallResult(block=True, reason="no")'
    path = talker(tmp_path, "ctx.abort()", block)
    done = run(["-p", str(path), "--no-entrypoints"], call(), tmp_path)
    answer = json.loads(done.stdout)
    assert answer["continue"] is False
    assert answer["hookSpecificOutput"]["permissionDecision"] == "deny"
    # An exit-code answer carries no JSON: the stop cannot be said, and that is said.
    done = run(["-p", str(path), "--no-entrypoints", "--block-with-exit-code"], call(), tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert "which an exit-code answer cannot carry: not stopped" in done.stderr


def test_a_message_for_a_new_turn_is_dropped_loudly(tmp_path):
    path = talker(tmp_path, 'ctx.send_message("again")')
    done = run(["-p", str(path), "--no-entrypoints"], call(), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ctx.send_message has no counterpart in Claude Code's hook protocol" in done.stderr
    assert "'again'" in done.stderr


# -- answers that could not be written -------------------------------------------------------

REWRITER = textwrap.dedent(
    """
    import kithooks


    @kithooks.hookimpl
    def on_tool_call(event, ctx):
        return kithooks.ToolCallResult(args={{**event.parsed_args, "extra": {value}}})
    """
)


def test_a_lone_surrogate_in_the_answer_is_written_as_its_escape(tmp_path):
    # A split emoji in the model's input, echoed in the rewrite: a strict UTF-8 encode
    # failed, exit 1, and Claude Code ran the original call.
    path = plugin_file(tmp_path, "rewriter", REWRITER.format(value="'ok'"))
    data = call(tool_input={"command": "git push --force", "description": "push \ud83d"})
    done = run(["-p", str(path), "--no-entrypoints"], data, tmp_path)
    assert done.returncode == 0, done.stderr
    specific = json.loads(done.stdout)["hookSpecificOutput"]
    assert specific["updatedInput"]["description"] == "push \ud83d"
    assert specific["permissionDecision"] == "ask"


@pytest.mark.parametrize("value", ["float('nan')", "float('inf')"])
def test_an_answer_json_cannot_carry_denies_instead_of_being_unreadable(tmp_path, value):
    path = plugin_file(tmp_path, "rewriter", REWRITER.format(value=value))
    done = run(["-p", str(path), "--no-entrypoints"], call(), tmp_path)
    assert "NaN or Infinity" in deny_reason(done)
    json.loads(done.stdout, parse_constant=pytest.fail)  # strict JSON: Claude Code reads it


INTERRUPTER = textwrap.dedent(
    """
    import kithooks


    @kithooks.hookimpl
    def on_agent_end(event, ctx):
        raise KeyboardInterrupt


    @kithooks.hookimpl
    def on_tool_call(event, ctx):
        raise KeyboardInterrupt
    """
)


def test_an_interrupt_exits_by_the_events_rule_never_2_on_stop(tmp_path):
    path = plugin_file(tmp_path, "interrupter", INTERRUPTER)
    args = ["-p", str(path), "--no-entrypoints"]
    stop = run(args, call("Stop", last_assistant_message="done"), tmp_path)
    assert stop.returncode == 1 and "interrupted while answering Stop" in stop.stderr
    assert run(args, call(), tmp_path).returncode == 2  # a guarded call: blocked


def test_prints_stay_out_of_an_exit_2_answer_which_claude_code_gives_the_model(tmp_path):
    block = 'kithooks.ToolCallResult(block=True, reason="no")'
    path = talker(tmp_path, "pass", block)
    done = run(["-p", str(path), "--no-entrypoints", "--block-with-exit-code"], call(), tmp_path)
    assert done.returncode == 2 and done.stderr.strip().endswith("no")
    assert "first line" not in done.stderr and "second line" not in done.stderr


def test_a_print_of_something_other_than_text_keeps_the_other_plugins_deny(tmp_path):
    # "\n".join over a ValueError raised TypeError after the dispatch: exit 1, no answer,
    # and Claude Code ran the call another plugin denied.
    chatty = plugin_file(
        tmp_path,
        "chatty",
        "import kithooks\n\n@kithooks.hookimpl(tryfirst=True)\n"
        "def on_tool_call(event, ctx):\n    ctx.print_error(ValueError('noticed'))\n"
        "    ctx.print(None)\n",
    )
    denier = plugin_file(tmp_path, "denier", DENIER)
    done = run(["-p", str(chatty), "-p", str(denier), "--no-entrypoints"], call(), tmp_path)
    deny_reason(done)
    assert json.loads(done.stdout)["systemMessage"] == "noticed\nNone"


def test_an_interrupt_while_loading_exits_by_the_events_rule(tmp_path):
    path = plugin_file(tmp_path, "interrupts", "raise KeyboardInterrupt\n")
    stop = run(["-p", str(path), "--no-entrypoints"], call("Stop"), tmp_path)
    assert stop.returncode == 1 and "interrupted while loading" in stop.stderr


RAW_GUARD = textwrap.dedent(
    """
    import kithooks


    @kithooks.hookimpl
    def on_tool_call(event, ctx):
        if "rm -rf" in event.input:
            return kithooks.ToolCallResult(block=True, reason=f"saw {event.input}")
    """
)


def test_a_tool_input_that_is_no_object_is_shown_as_its_json_not_as_no_arguments(tmp_path):
    path = plugin_file(tmp_path, "raw_guard", RAW_GUARD)
    done = run(["-p", str(path), "--no-entrypoints"], call(tool_input="rm -rf /"), tmp_path)
    assert deny_reason(done) == 'saw "rm -rf /"'
