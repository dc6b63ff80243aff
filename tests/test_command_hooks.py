"""Command hooks run from a kithooks host: real hook scripts in subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from hooks.command_hooks_support import context_with_confirm, script, settings
from kithooks import (
    AgentEndEvent,
    BeforeCompactEvent,
    Context,
    InputEvent,
    PluginManager,
    SessionStartEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from kithooks.command_hooks import AsyncCommandHooks, CommandHookError, CommandHooks
from kithooks.hosting import Turn, run_tool


def manager(plugin: CommandHooks, **kw) -> tuple[PluginManager, list]:
    errors: list = []
    pm = PluginManager(on_error=errors.append, **kw)
    pm.register(plugin)
    return pm, errors


def bash(command: str, tool: str = "bash", call_id: str = "c1") -> ToolCallEvent:
    return ToolCallEvent(
        tool_name=tool,
        tool_call_id=call_id,
        input=json.dumps({"command": command}),
        parsed_args={"command": command},
    )


# -- the published-style validator, unchanged ------------------------------------------------


def test_bash_validator_blocks_grep_with_its_stderr_as_the_reason(tmp_path):
    plugin = CommandHooks.from_settings(
        settings("PreToolUse", script("bash_validator.py"), matcher="Bash"), project_dir=tmp_path
    )
    pm, errors = manager(plugin)
    result = pm.emit(bash("grep -r TODO src"))
    assert result.block
    assert "Prefer 'rg' (ripgrep) to 'grep'" in result.reason
    assert pm.emit(bash("rg TODO src")) is None
    assert pm.emit(bash("ps aux | grep python")) is None  # a grep in a pipe is fine
    assert errors == []


def test_the_validator_script_also_runs_from_a_settings_file(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {
                "permissions": {"allow": ["Bash(ls:*)"]},  # the rest of a settings file is ignored
                **settings("PreToolUse", script("bash_validator.py"), matcher="Bash"),
            }
        )
    )
    pm, _ = manager(CommandHooks.from_settings(path, project_dir=tmp_path))
    assert pm.emit(bash("find . -name '*.py'")).reason.startswith("- Prefer 'rg --files")


# -- answers --------------------------------------------------------------------------------


def test_json_deny_blocks_with_the_permission_reason(tmp_path):
    pm, _ = manager(
        CommandHooks.from_settings(
            settings("PreToolUse", script("deny_rm.sh")), project_dir=tmp_path
        )
    )
    result = pm.emit(bash("rm -rf build"))
    assert result.block and result.reason == "rm is not allowed here"
    assert pm.emit(bash("ls")) is None


def test_updated_input_reaches_the_tool_through_run_tool(tmp_path):
    pm, errors = manager(
        CommandHooks.from_settings(
            settings("PreToolUse", script("rewrite_dry_run.py"), matcher="Bash"),
            project_dir=tmp_path,
        )
    )
    received: list[str] = []

    def tool(text: str) -> str:
        received.append(text)
        return "ok"

    outcome = run_tool(
        pm, tool, tool_name="bash", tool_call_id="c1", input=json.dumps({"command": "make all"})
    )
    assert outcome.content == "ok"
    assert [json.loads(t) for t in received] == [{"command": "make all --dry-run"}]
    assert errors == []


def test_a_non_blocking_exit_1_is_reported_naming_the_command_and_the_call_goes_on(tmp_path):
    command = script("fail.sh")
    pm, errors = manager(
        CommandHooks.from_settings(settings("PreToolUse", command), project_dir=tmp_path)
    )
    assert pm.emit(bash("ls")) is None
    [error] = errors
    assert isinstance(error.error, CommandHookError)
    assert command in str(error.error)
    assert "exit code 1" in str(error.error) and "linter crashed" in str(error.error)


def test_a_failing_hook_does_not_undo_another_hooks_block(tmp_path, caplog):
    pm, errors = manager(
        CommandHooks.from_settings(
            settings("PreToolUse", script("fail.sh"), script("deny_rm.sh")), project_dir=tmp_path
        )
    )
    result = pm.emit(bash("rm x"))
    assert result.block and result.reason == "rm is not allowed here"
    # The plugin answered, and the failure is reported beside the answer.
    [error] = errors
    assert "linter crashed" in error.message and "fail.sh" in error.message
    assert "linter crashed" in caplog.text


# -- failures: a malformed answer, a crash, a timeout ----------------------------------------


def answering(**specific: object) -> str:
    """A command answering ``{"hookSpecificOutput": specific}`` on stdout."""
    return "echo " + shlex.quote(json.dumps({"hookSpecificOutput": specific}))


DENY = answering(permissionDecision="deny", permissionDecisionReason="no")
ALLOW = answering(permissionDecision="allow")
REWRITE = answering(permissionDecision="allow", updatedInput={"command": "ls"})
MALFORMED = {
    "a trailing comma": """echo '{"decision": "block", "reason": "no rm",}'""",
    "a second JSON line": f"{DENY}; echo '{{\"debug\": 1}}'",
    "truncated JSON": """printf '{"decision": "block", "reason": "no'""",
}


@pytest.mark.parametrize("label", sorted(MALFORMED))
def test_a_malformed_answer_is_a_reported_failure_that_fail_closed_blocks(tmp_path, label):
    command = MALFORMED[label]
    for fail_closed in (False, True):
        plugin = CommandHooks.from_settings(settings("PreToolUse", command), project_dir=tmp_path)
        errors: list = []
        pm = PluginManager(on_error=errors.append, fail_closed=fail_closed)
        pm.register(plugin, name="rm-guard")
        result = pm.emit(bash("rm -rf /"))
        [error] = errors
        assert error.plugin == "rm-guard" and isinstance(error.error, CommandHookError)
        assert f"hook command {command!r} gave a malformed JSON answer" in str(error.error)
        if fail_closed:
            assert result.block and result.reason == error.message
        else:
            assert result is None


FAILING = {"exit 1": ("echo broken >&2; exit 1", 10), "a timeout": ("sleep 5", 0.5)}


@pytest.mark.parametrize("failure", sorted(FAILING))
@pytest.mark.parametrize("sibling", [ALLOW, REWRITE])
def test_fail_closed_blocks_on_a_failed_command_whatever_its_siblings_answer(
    tmp_path, caplog, failure, sibling
):
    command, timeout = FAILING[failure]
    hooks = {"hooks": [{"type": "command", "command": command, "timeout": timeout}]}
    other = {"hooks": [{"type": "command", "command": sibling}]}
    plugin = CommandHooks.from_settings(
        {"hooks": {"PreToolUse": [hooks, other]}}, project_dir=tmp_path
    )
    errors: list = []
    pm = PluginManager(on_error=errors.append, fail_closed=True)
    pm.register(plugin, name="security")
    result = pm.emit(bash("rm -rf /"))
    [error] = errors
    assert error.plugin == "security" and error.hook == "on_tool_call"
    assert repr(command) in error.message
    assert result.block and result.args is None and result.reason == error.message
    [record] = [r for r in caplog.records if r.name == "kithooks"]
    assert "plugin 'security'" in record.getMessage() and repr(command) in record.getMessage()
    assert "blocked (fail_closed)" in record.getMessage()


def test_fail_open_keeps_the_siblings_answers_and_reports_every_failure(tmp_path):
    plugin = CommandHooks.from_settings(
        settings("PreToolUse", script("fail.sh"), "exit 3", REWRITE), project_dir=tmp_path
    )
    pm, errors = manager(plugin)
    result = pm.emit(bash("rm -rf /"))
    assert not result.block and result.args == {"command": "ls"}
    first, second = sorted(e.message for e in errors)
    assert "fail.sh' failed with exit code 1: linter crashed" in first
    assert "'exit 3' failed with exit code 3" in second
    assert {e.plugin for e in errors} == {"command-hooks"}  # the name it was registered by


def test_fail_closed_cancels_compaction_but_leaves_other_events_answers(tmp_path):
    on_compact = CommandHooks.from_settings(settings("PreCompact", "exit 1"), project_dir=tmp_path)
    pm, errors = manager(on_compact, fail_closed=True)
    result = pm.emit(BeforeCompactEvent(is_automatic=True))
    assert result.cancel and "'exit 1'" in result.reason and len(errors) == 1
    # tool_result is not a guard: the failure is reported, the other hook's context stands.
    context = answering(additionalContext="note")
    on_result = CommandHooks.from_settings(
        settings("PostToolUse", "exit 1", context), project_dir=tmp_path
    )
    pm, errors = manager(on_result, fail_closed=True)
    result = pm.emit(ToolResultEvent(tool_name="bash", content="out"))
    assert result.content == "out\n\nnote" and len(errors) == 1


def test_a_failure_outside_a_managers_dispatch_raises(tmp_path):
    plugin = CommandHooks.from_settings(settings("PreToolUse", "exit 1", DENY))
    with pytest.raises(CommandHookError, match="'exit 1' failed with exit code 1"):
        plugin.on_tool_call(bash("ls"), Context(cwd=str(tmp_path)))


def test_async_command_hooks_fail_closed_the_same_way(tmp_path):
    plugin = AsyncCommandHooks.from_settings(
        settings("PreToolUse", "exit 1", ALLOW), project_dir=tmp_path
    )
    pm, errors = manager(plugin, fail_closed=True)
    result = asyncio.run(pm.aemit(bash("rm -rf /")))
    assert result.block and "'exit 1'" in result.reason and len(errors) == 1


_ANSWERS = {
    "fails": "exit 1",
    "malformed": "echo '{'",
    "denies": DENY,
    "allows": ALLOW,
    "rewrites": REWRITE,
    "says nothing": "true",
}


@settings_(max_examples=25, deadline=None)
@given(
    answers=st.lists(st.sampled_from(sorted(_ANSWERS)), min_size=1, max_size=4),
    fail_closed=st.booleans(),
)
def test_every_failed_command_is_reported_and_blocks_only_when_fail_closed(
    tmp_path_factory, answers, fail_closed
):
    # `: i` keeps each command distinct (identical commands run once).
    commands = [f"{_ANSWERS[a]}; : {i}" for i, a in enumerate(answers)]
    plugin = CommandHooks.from_settings(
        settings("PreToolUse", *commands), project_dir=tmp_path_factory.mktemp("p")
    )
    pm, errors = manager(plugin, fail_closed=fail_closed)
    result = pm.emit(bash("rm -rf /"))
    failed = [c for c, a in zip(commands, answers, strict=True) if a in ("fails", "malformed")]
    assert len(errors) == len(failed)
    for command in failed:
        assert sum(repr(command) in e.message for e in errors) == 1
    blocks = "denies" in answers or (fail_closed and bool(failed))
    assert bool(result and result.block) == blocks
    if not blocks and "rewrites" in answers:
        assert result.args == {"command": "ls"}


def test_fail_closed_managers_block_on_a_failing_hook(tmp_path):
    pm, _ = manager(
        CommandHooks.from_settings(settings("PreToolUse", script("fail.sh")), project_dir=tmp_path),
        fail_closed=True,
    )
    result = pm.emit(bash("ls"))
    assert result.block and "fail.sh" in result.reason


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has exited: only its parent has not reaped it yet
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_timeout_kills_the_whole_process_group_within_a_second_and_fails_open(tmp_path):
    pids = tmp_path / "pids"
    command = script("sleepy.sh", pids)
    pm, errors = manager(
        CommandHooks.from_settings(
            settings("PreToolUse", command, timeout=0.5), project_dir=tmp_path
        )
    )
    start = time.monotonic()
    assert pm.emit(bash("ls")) is None
    took = time.monotonic() - start
    assert took < 0.5 + 1.0
    shell_pid, sleep_pid = map(int, pids.read_text().split())
    deadline = time.monotonic() + 1.0
    while (_alive(shell_pid) or _alive(sleep_pid)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(shell_pid) and not _alive(sleep_pid)
    [error] = errors
    assert "timed out after 0.5s" in str(error.error) and command in str(error.error)


def test_matching_hooks_run_in_parallel(tmp_path):
    starts = tmp_path / "starts"
    plugin = CommandHooks.from_settings(
        {
            "hooks": {
                "PreToolUse": [
                    {
                        "matcher": "Bash",
                        "hooks": [{"type": "command", "command": script("slow_ok.sh", 1, starts)}],
                    },
                    {
                        "matcher": "*",
                        "hooks": [
                            {"type": "command", "command": script("slow_ok.sh", 1.0, starts)}
                        ],
                    },
                ]
            }
        },
        project_dir=tmp_path,
    )
    pm, errors = manager(plugin)
    start = time.monotonic()
    assert pm.emit(bash("ls")) is None
    took = time.monotonic() - start
    assert len(starts.read_text().split()) == 2
    assert 1.0 <= took < 1.8, took  # one after the other would take 2 s
    assert errors == []


def test_identical_commands_run_once(tmp_path):
    log = tmp_path / "seen.jsonl"
    command = script("record.py", log)
    plugin = CommandHooks.from_settings(
        {
            "hooks": {
                "PreToolUse": [
                    {"matcher": "Bash", "hooks": [{"type": "command", "command": command}]},
                    {"hooks": [{"type": "command", "command": command, "timeout": 5}]},
                ]
            }
        },
        project_dir=tmp_path,
    )
    pm, _ = manager(plugin)
    pm.emit(bash("ls"))
    assert len(log.read_text().splitlines()) == 1


def test_the_most_restrictive_decision_wins(tmp_path):
    allow = 'cat >/dev/null; echo \'{"hookSpecificOutput": {"permissionDecision": "allow"}}\''
    pm, _ = manager(
        CommandHooks.from_settings(
            settings("PreToolUse", allow, script("ask.sh"), script("deny_rm.sh")),
            project_dir=tmp_path,
        )
    )
    asked: list[str] = []
    result = pm.emit(bash("rm -r x"), context_with_confirm(True, asked))
    assert result.block and result.reason == "rm is not allowed here"
    assert asked == []  # deny beats ask: nobody is asked


def test_ask_goes_to_the_hosts_confirmation(tmp_path):
    pm, _ = manager(
        CommandHooks.from_settings(settings("PreToolUse", script("ask.sh")), project_dir=tmp_path)
    )
    asked: list[str] = []
    assert pm.emit(bash("deploy"), context_with_confirm(True, asked)) is None
    assert asked == ["Bash: deploys need a human"]
    result = pm.emit(bash("deploy"), context_with_confirm(False, asked))
    assert result.block and result.reason == "deploys need a human"
    # no one to ask: denied with the reason
    assert pm.emit(bash("deploy"), Context()).reason == "deploys need a human"


# -- updatedInput: applied only with allow or ask, as in Claude Code ---------------------------

RM = {"command": "rm -rf /"}


def _warnings(caplog) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "kithooks" and r.levelname == "WARNING"
    ]


def test_updated_input_without_a_permission_decision_is_ignored_with_a_warning(tmp_path, caplog):
    # Claude Code runs the original call (anthropics/claude-code#32060); so does kithooks,
    # and says so. Another hook's allow does not make the rewrite count.
    lone = answering(updatedInput=RM)
    for commands in ([lone], [lone, ALLOW]):
        caplog.clear()
        pm, errors = manager(
            CommandHooks.from_settings(settings("PreToolUse", *commands), project_dir=tmp_path)
        )
        result = pm.emit(bash("ls"))
        assert result is None or (result.args is None and not result.block)
        assert errors == []
        [warning] = _warnings(caplog)
        assert repr(lone) in warning and "plugin 'command-hooks'" in warning
        assert "updatedInput without permissionDecision is ignored, as in Claude Code" in warning
        assert 'add permissionDecision "allow" or "ask"' in warning


def test_defer_ignores_updated_input(tmp_path, caplog):
    defer = answering(permissionDecision="defer", updatedInput=RM)
    pm, _ = manager(CommandHooks.from_settings(settings("PreToolUse", defer), project_dir=tmp_path))
    assert pm.emit(bash("ls")) is None
    [warning] = _warnings(caplog)
    assert repr(defer) in warning and "permissionDecision defer is ignored" in warning


def test_allow_and_the_older_approve_apply_updated_input(tmp_path, caplog):
    approve = "echo " + shlex.quote(
        json.dumps({"decision": "approve", "hookSpecificOutput": {"updatedInput": RM}})
    )
    for command in (answering(permissionDecision="allow", updatedInput=RM), approve):
        pm, _ = manager(
            CommandHooks.from_settings(settings("PreToolUse", command), project_dir=tmp_path)
        )
        assert pm.emit(bash("ls")).args == RM
    assert _warnings(caplog) == []


def test_a_rewrite_a_later_hook_replaced_is_dropped_with_a_warning(tmp_path, caplog):
    # The last allow + updatedInput in settings order wins (as documented); the earlier,
    # different rewrite is not applied, and the log says which command's was dropped.
    first = answering(permissionDecision="allow", updatedInput={"command": "ls -a"})
    pm, _ = manager(
        CommandHooks.from_settings(settings("PreToolUse", first, REWRITE), project_dir=tmp_path)
    )
    assert pm.emit(bash("rm -rf build")).args == {"command": "ls"}
    [warning] = _warnings(caplog)
    assert "plugin 'command-hooks'" in warning
    assert f"hook commands {first!r} and {REWRITE!r} each rewrote the tool input" in warning
    assert f"({REWRITE!r}) is used" in warning
    caplog.clear()  # the same rewrite twice: nothing is lost, nothing to say
    pm, _ = manager(
        CommandHooks.from_settings(settings("PreToolUse", REWRITE, REWRITE), project_dir=tmp_path)
    )
    assert pm.emit(bash("rm -rf build")).args == {"command": "ls"}
    assert _warnings(caplog) == []


@pytest.mark.parametrize("plugin_class", [CommandHooks, AsyncCommandHooks])
def test_ask_with_updated_input_shows_the_person_the_rewritten_input(tmp_path, plugin_class):
    ask = answering(permissionDecision="ask", permissionDecisionReason="rewrote", updatedInput=RM)
    pm, _ = manager(plugin_class.from_settings(settings("PreToolUse", ask), project_dir=tmp_path))
    asked: list[str] = []
    emit = (
        (lambda e, c: asyncio.run(pm.aemit(e, c))) if plugin_class is AsyncCommandHooks else pm.emit
    )
    result = emit(bash("ls"), context_with_confirm(True, asked))
    assert result.args == RM and not result.block
    [question] = asked
    assert question.startswith("Bash: rewrote\n")  # the hook's reason
    assert '{"command": "rm -rf /"}' in question  # what will run
    result = emit(bash("ls"), context_with_confirm(False, asked))
    assert result.block and result.reason == "rewrote"


# -- what the command sees ------------------------------------------------------------------


def test_stdin_fields_cwd_and_project_dir(tmp_path):
    log = tmp_path / "seen.jsonl"
    project = tmp_path / "project"
    project.mkdir()
    plugin = CommandHooks.from_settings(
        {
            "hooks": {
                "PreToolUse": [
                    {"hooks": [{"type": "command", "command": script("record.py", log)}]}
                ],
                "PostToolUse": [
                    {"hooks": [{"type": "command", "command": script("record.py", log)}]}
                ],
            }
        },
        project_dir=project,
    )
    pm, _ = manager(plugin)
    ctx = Context(session_id="s1", cwd=str(project), get_session_path=lambda: "/t/s1.jsonl")
    pm.emit(bash("ls -l", call_id="toolu_1"), ctx)
    pm.emit(
        ToolResultEvent(
            tool_call_id="toolu_1", tool_name="bash", input='{"command": "ls -l"}', content="a\nb"
        ),
        ctx,
    )
    pre, post = (json.loads(line) for line in log.read_text().splitlines())
    assert pre["cwd"] == str(project) and pre["project_dir"] == str(project)
    assert pre["stdin"] == {
        "session_id": "s1",
        "transcript_path": "/t/s1.jsonl",
        "cwd": str(project),
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "ls -l"},
        "tool_use_id": "toolu_1",
    }
    assert post["stdin"]["hook_event_name"] == "PostToolUse"
    assert post["stdin"]["tool_response"] == "a\nb"
    assert post["stdin"]["tool_input"] == {"command": "ls -l"}


@pytest.mark.slow
def test_matchers_exact_alternatives_regex_and_everything(tmp_path):
    log = tmp_path / "seen.jsonl"

    def plugin_for(matcher):
        return CommandHooks.from_settings(
            settings("PreToolUse", script("record.py", log), matcher=matcher), project_dir=tmp_path
        )

    cases = {
        "Bash": {"Bash"},
        "Edit|Write": {"Edit", "Write"},
        "Notebook.*": {"NotebookEdit"},
        "mcp__.*": {"mcp__github__search"},
        "*": {"Bash", "Edit", "Write", "NotebookEdit", "mcp__github__search", "Read"},
        "": {"Bash", "Edit", "Write", "NotebookEdit", "mcp__github__search", "Read"},
    }
    tools = ["bash", "edit", "write", "notebook_edit", "mcp__github__search", "read"]
    for matcher, expected in cases.items():
        log.write_text("")
        pm, _ = manager(plugin_for(matcher))
        for tool in tools:
            pm.emit(bash("x", tool=tool))
        seen = {json.loads(line)["stdin"]["tool_name"] for line in log.read_text().splitlines()}
        assert seen == expected, matcher


#: Claude Code's matcher rule (hooks reference, "Matcher patterns"; measured against the
#: claude CLI in zernie/vigiles#132): only letters, digits, _, -, spaces, "," and "|" is a
#: list of exact names; anything else a JavaScript regular expression, tested with
#: RegExp.test, so it matches anywhere in the name.
CLAUDE_CODE_MATCHES = {
    "Bash": {"Bash"},
    "Edit|Write": {"Edit", "Write"},  # not MultiEdit: plain names are exact
    "Edit, Write": {"Edit", "Write"},
    " Edit ,Write|Read ": {"Edit", "Write", "Read"},
    "Writ": set(),  # a plain name is not a prefix
    "^Bash": {"Bash", "BashOutput"},
    "Bash.*": {"Bash", "BashOutput"},
    "rit.": {"Write"},
    "Edit$": {"Edit", "MultiEdit", "NotebookEdit"},
    "^(Edit|Write)$": {"Edit", "Write"},
    "mcp__.*__delete": {"mcp__fs__delete_file"},
    "mcp__fs__.*": {"mcp__fs__delete_file", "mcp__fs__read"},
    "mcp__fs": set(),  # plain: the server prefix alone names no tool
    "mcp__brave-search": set(),  # plain too (Claude Code 2.1.195): exact, not a substring
    "Notebook.*": {"NotebookEdit"},
    "*": None,
    "": None,
}
CLAUDE_CODE_TOOLS = [
    ("bash", "Bash"),
    ("BashOutput", "BashOutput"),
    ("edit", "Edit"),
    ("multi_edit", "MultiEdit"),
    ("write", "Write"),
    ("read", "Read"),
    ("notebook_edit", "NotebookEdit"),
    ("mcp__fs__delete_file", "mcp__fs__delete_file"),
    ("mcp__fs__read", "mcp__fs__read"),
    ("mcp__brave-search__web", "mcp__brave-search__web"),
]


@pytest.mark.parametrize("matcher", list(CLAUDE_CODE_MATCHES))
def test_settings_matchers_fire_the_hooks_claude_code_fires(tmp_path, matcher):
    """A settings file written for Claude Code runs the same hooks here: a pattern matches
    anywhere in the name (an anchored pattern would leave a deny hook silently unrun)."""
    plugin = CommandHooks.from_settings(
        settings("PreToolUse", "true", matcher=matcher), project_dir=tmp_path
    )
    fired = {
        claude
        for host, claude in CLAUDE_CODE_TOOLS
        if plugin.prepare(bash("x", tool=host), Context()) is not None
    }
    expected = CLAUDE_CODE_MATCHES[matcher]
    assert fired == ({c for _, c in CLAUDE_CODE_TOOLS} if expected is None else expected)


def test_aliases_give_scripts_claude_names_and_can_be_extended(tmp_path):
    log = tmp_path / "seen.jsonl"
    plugin = CommandHooks.from_settings(
        settings("PreToolUse", script("record.py", log), matcher="Bash"),
        project_dir=tmp_path,
        aliases={"run_in_terminal": "Bash"},
    )
    pm, _ = manager(plugin)
    pm.emit(bash("ls", tool="shell"))
    pm.emit(bash("ls", tool="run_in_terminal"))
    pm.emit(bash("ls", tool="python"))  # no alias, and "python" does not match "Bash"
    seen = [json.loads(line)["stdin"]["tool_name"] for line in log.read_text().splitlines()]
    assert seen == ["Bash", "Bash"]


def test_the_host_name_matches_too(tmp_path):
    log = tmp_path / "seen.jsonl"
    pm, _ = manager(
        CommandHooks.from_settings(
            settings("PreToolUse", script("record.py", log), matcher="bash"), project_dir=tmp_path
        )
    )
    pm.emit(bash("ls"))
    assert json.loads(log.read_text())["stdin"]["tool_name"] == "Bash"


# -- prompts, results, turns ------------------------------------------------------------------


def test_user_prompt_submit_blocks_and_adds_context(tmp_path):
    pm, _ = manager(
        CommandHooks.from_settings(
            settings("UserPromptSubmit", script("prompt_guard.sh")), project_dir=tmp_path
        )
    )
    shown: list[str] = []
    ctx = Context(session_id="s", print_error=shown.append)
    turn = Turn(pm, ctx=ctx)
    assert turn.input("my password is hunter2").handled
    assert shown == ["Prompts must not contain passwords."]
    prompt = turn.input("fix the bug")
    assert not prompt.handled and prompt.text == "fix the bug"
    assert turn.before_agent_start(prompt.text).inject_text == "Current branch: main"
    assert turn.before_agent_start(prompt.text).inject_text is None  # used once


def test_session_start_context_reaches_the_first_turn(tmp_path):
    pm, _ = manager(
        CommandHooks.from_settings(
            settings("SessionStart", "cat >/dev/null; echo 'Project uses uv.'"),
            project_dir=tmp_path,
        )
    )
    ctx = Context(session_id="s2")
    pm.emit(SessionStartEvent(session_id="s2"), ctx)
    assert Turn(pm, ctx=ctx).before_agent_start("hi").inject_text == "Project uses uv."
    # another session's turn does not get it
    pm.emit(SessionStartEvent(session_id="s3"), Context(session_id="s3"))
    assert Turn(pm, ctx=Context(session_id="s4")).before_agent_start("hi").inject_text is None


def test_post_tool_use_block_and_context_reach_the_model_with_the_result(tmp_path):
    answer = json.dumps(
        {
            "decision": "block",
            "reason": "Lint failed: line 3",
            "hookSpecificOutput": {
                "hookEventName": "PostToolUse",
                "additionalContext": "Run ruff.",
            },
        }
    )
    pm, _ = manager(
        CommandHooks.from_settings(
            settings("PostToolUse", f"cat >/dev/null; echo '{answer}'", matcher="Edit"),
            project_dir=tmp_path,
        )
    )
    result = pm.emit(ToolResultEvent(tool_name="edit", input="{}", content="edited"))
    assert result.content == "edited\n\nLint failed: line 3\nRun ruff."


def test_post_tool_use_failure_gets_failed_results(tmp_path):
    log = tmp_path / "seen.jsonl"
    pm, _ = manager(
        CommandHooks.from_settings(
            settings("PostToolUseFailure", script("record.py", log)), project_dir=tmp_path
        )
    )
    pm.emit(ToolResultEvent(tool_name="bash", input="{}", content="ok"))
    pm.emit(ToolResultEvent(tool_name="bash", input="{}", content="boom", is_error=True))
    [seen] = [json.loads(line)["stdin"] for line in log.read_text().splitlines()]
    assert seen["error"] == "boom" and seen["hook_event_name"] == "PostToolUseFailure"


def test_pre_compact_exit_2_cancels(tmp_path):
    pm, _ = manager(
        CommandHooks.from_settings(
            settings("PreCompact", "cat >/dev/null; echo 'mid-task' >&2; exit 2", matcher="auto"),
            project_dir=tmp_path,
        )
    )
    result = pm.emit(BeforeCompactEvent(is_automatic=True))
    assert result.cancel and result.reason == "mid-task"
    assert pm.emit(BeforeCompactEvent(is_automatic=False)) is None  # matcher: auto only


def test_stop_block_continues_the_session_once(tmp_path):
    hook = script("stop_once.py")
    pm, errors = manager(CommandHooks.from_settings(settings("Stop", hook), project_dir=tmp_path))
    sent: list[str] = []
    ctx = Context(session_id="s", send_message=sent.append)
    pm.emit(AgentEndEvent(response="done"), ctx)
    assert sent == ["run the tests"]
    pm.emit(AgentEndEvent(response="tests pass"), ctx)
    assert sent == ["run the tests"]
    assert errors == []


def test_continue_false_stops_the_turn(tmp_path):
    answer = json.dumps({"continue": False, "stopReason": "budget exhausted"})
    aborted: list[bool] = []
    shown: list[str] = []
    pm, _ = manager(
        CommandHooks.from_settings(
            settings("PreToolUse", f"cat >/dev/null; echo '{answer}'"), project_dir=tmp_path
        )
    )
    ctx = Context(abort=lambda: aborted.append(True), print_info=shown.append)
    result = pm.emit(bash("ls"), ctx)
    assert result.block and result.reason == "budget exhausted"
    assert aborted == [True] and shown == ["budget exhausted"]


def test_invalid_json_fields_are_a_reported_error(tmp_path):
    answer = json.dumps({"hookSpecificOutput": {"permissionDecision": "maybe"}})
    pm, errors = manager(
        CommandHooks.from_settings(
            settings("PreToolUse", f"cat >/dev/null; echo '{answer}'"), project_dir=tmp_path
        )
    )
    assert pm.emit(bash("ls")) is None
    assert "permissionDecision" in str(errors[0].error)


def test_only_the_configured_hooks_are_implemented():
    pm, _ = manager(CommandHooks.from_settings(settings("PreToolUse", "true")))
    assert pm.has_handlers("tool_call")
    assert not pm.has_handlers("tool_result") and not pm.has_handlers("input")
    assert not pm.has_handlers("before_agent_start")


def test_input_event_runs_user_prompt_submit_hooks(tmp_path):
    log = tmp_path / "seen.jsonl"
    pm, _ = manager(
        CommandHooks.from_settings(
            settings("UserPromptSubmit", script("record.py", log), matcher="ignored"),
            project_dir=tmp_path,
        )
    )
    pm.emit(InputEvent(text="hello"))
    assert json.loads(log.read_text())["stdin"]["prompt"] == "hello"


# -- async hosts ------------------------------------------------------------------------------


def test_async_plugin_runs_hooks_in_parallel_without_blocking_the_loop(tmp_path):
    starts = tmp_path / "starts"
    plugin = AsyncCommandHooks.from_settings(
        settings(
            "PreToolUse",
            script("slow_ok.sh", 1, starts),
            script("slow_ok.sh", "1.0", starts),
            script("deny_rm.sh"),
        ),
        project_dir=tmp_path,
    )
    pm, errors = manager(plugin)

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        task = asyncio.create_task(ticker())
        start = time.monotonic()
        result = await asyncio.wait_for(pm.aemit(bash("rm -rf /")), timeout=10)
        took = time.monotonic() - start
        task.cancel()
        return result, took, ticks

    result, took, ticks = asyncio.run(main())
    assert result.block and result.reason == "rm is not allowed here"
    assert took < 1.8 and ticks >= 10  # the loop kept running meanwhile
    assert errors == []
    with pytest.raises(TypeError, match="aemit"):
        pm.emit(bash("ls"))


def test_async_timeout_kills_the_process_group(tmp_path):
    pids = tmp_path / "pids"
    pm, errors = manager(
        AsyncCommandHooks.from_settings(
            settings("PreToolUse", script("sleepy.sh", pids), timeout=0.5), project_dir=tmp_path
        )
    )
    start = time.monotonic()
    assert asyncio.run(asyncio.wait_for(pm.aemit(bash("ls")), timeout=10)) is None
    assert time.monotonic() - start < 1.5
    shell_pid, sleep_pid = map(int, pids.read_text().split())
    deadline = time.monotonic() + 1.0
    while (_alive(shell_pid) or _alive(sleep_pid)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(shell_pid) and not _alive(sleep_pid)
    assert "timed out" in str(errors[0].error)


def test_the_sync_plugin_works_under_aemit(tmp_path):
    pm, _ = manager(
        CommandHooks.from_settings(
            settings("PreToolUse", script("deny_rm.sh")), project_dir=tmp_path
        )
    )
    result = asyncio.run(asyncio.wait_for(pm.aemit(bash("rm a")), timeout=10))
    assert result.block


def test_a_cancelled_async_handler_kills_its_process_group(tmp_path):
    pids = tmp_path / "pids"
    pm, _ = manager(
        AsyncCommandHooks.from_settings(
            settings("PreToolUse", script("sleepy.sh", pids), timeout=60), project_dir=tmp_path
        )
    )

    async def main():
        task = asyncio.create_task(pm.aemit(bash("ls")))
        deadline = time.monotonic() + 10
        while not (pids.exists() and len(pids.read_text().split()) == 2):
            assert time.monotonic() < deadline, "the hook never started"
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10)

    asyncio.run(main())
    _shell_pid, sleep_pid = map(int, pids.read_text().split())
    deadline = time.monotonic() + 2.0
    while _alive(sleep_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(sleep_pid)


def test_big_input_and_output_do_not_deadlock(tmp_path):
    big = "x" * 1_000_000
    # One hook never reads its stdin; the other prints a megabyte that is not JSON.
    quiet = "exit 0"
    chatty = "cat > /dev/null; head -c 1000000 /dev/zero | tr '\\0' 'y'"
    pm, errors = manager(
        CommandHooks.from_settings(settings("PreToolUse", quiet, chatty), project_dir=tmp_path)
    )
    assert pm.emit(bash(big)) is None
    assert errors == []


def test_the_project_dir_is_made_absolute(tmp_path, monkeypatch):
    log = tmp_path / "seen.jsonl"
    (tmp_path / "p").mkdir()
    monkeypatch.chdir(tmp_path)
    pm, _ = manager(
        CommandHooks.from_settings(
            settings("PreToolUse", script("record.py", log)), project_dir="p"
        )
    )
    pm.emit(bash("ls"))
    seen = json.loads(log.read_text())
    assert seen["project_dir"] == str(tmp_path / "p") == seen["cwd"]
