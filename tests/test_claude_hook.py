"""``claude-hook``: kithooks plugins answering Claude Code hook invocations (real processes)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kithooks import Context, PluginManager, ToolCallResult, hookimpl
from kithooks.command_hooks import DEFAULT_TOOL_ALIASES, ToolAliases, session_state_path
from kithooks.command_hooks.answering import answer
from kithooks.command_hooks.protocol import read_answer
from kithooks.command_hooks.runner import CommandRun
from kithooks.matching import tool_matcher

PLUGIN = textwrap.dedent(
    """
    import json
    import kithooks
    from kithooks import InputResult, ToolCallResult


    @kithooks.hookimpl
    def on_tool_call(event, ctx):
        calls = int(ctx.get_state("calls") or 0) + 1
        ctx.set_state("calls", str(calls))
        if event.tool_name != "bash":
            return None
        command = (event.parsed_args or {}).get("command", "")
        if command.startswith("rm "):
            return ToolCallResult(block=True, reason=f"no rm (call {calls})")
        if command.startswith("make"):
            return ToolCallResult(args={"command": command + " --dry-run"})
        return None


    @kithooks.hookimpl
    def on_input(event):
        if event.text.startswith("/quit"):
            return InputResult(action="handled")
        return None


    @kithooks.hookimpl
    def on_before_agent_start(event):
        return kithooks.BeforeAgentStartResult(inject_text="Remember: tabs, not spaces.")
    """
)


@pytest.fixture
def plugin(tmp_path):
    path = tmp_path / "gate.py"
    path.write_text(PLUGIN)
    return path


def claude_hook(
    args: list[str], data, *, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """One ``kithooks claude-hook`` process (the main command: a subcommand of it)."""
    return subprocess.run(
        [sys.executable, "-m", "kithooks", "claude-hook", *args],
        input=data if isinstance(data, str) else json.dumps(data),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
        env=env,
    )


def hook(plugin: Path, data, *extra: str, env_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KITHOOKS_STATE_DIR": str(env_dir / "state"),
        "XDG_CONFIG_HOME": str(env_dir / "config"),
    }
    args = ["-p", str(plugin), "--no-entrypoints", *extra]
    return claude_hook(args, data, cwd=env_dir, env=env)


def pre_tool_use(command: str, session: str = "sess-1", **more) -> dict:
    return {
        "session_id": session,
        "cwd": "/work",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": command, "description": "d"},
        "tool_use_id": "toolu_01",
        **more,
    }


def test_allow_is_exit_0_with_no_output(plugin, tmp_path):
    done = hook(plugin, pre_tool_use("ls -la"), env_dir=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_deny_is_a_permission_decision_with_the_plugins_reason(plugin, tmp_path):
    done = hook(plugin, pre_tool_use("rm -rf /"), env_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": "no rm (call 1)",
        }
    }


def test_deny_as_exit_2(plugin, tmp_path):
    done = hook(plugin, pre_tool_use("rm x"), "--block-with-exit-code", env_dir=tmp_path)
    assert (done.returncode, done.stdout, done.stderr.strip()) == (2, "", "no rm (call 1)")


def test_rewrite_is_updated_input_with_a_permission_decision(plugin, tmp_path):
    # Claude Code drops an updatedInput that comes without a permissionDecision (the call
    # then runs as the model wrote it): the rewrite asks the user by default, or allows.
    for options, decision in (((), "ask"), (("--rewrite-decision", "allow"), "allow")):
        done = hook(plugin, pre_tool_use("make all"), *options, env_dir=tmp_path)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": decision,
                "permissionDecisionReason": "kithooks plugins rewrote the tool's arguments",
                "updatedInput": {"command": "make all --dry-run"},
            }
        }
    done = hook(plugin, pre_tool_use("make all"), "--rewrite-decision", "yes", env_dir=tmp_path)
    assert done.returncode == 2 and "'yes' is not one of 'ask', 'allow'" in done.stderr


@pytest.mark.slow
def test_state_persists_across_invocations_of_one_session(plugin, tmp_path):
    for _ in range(2):
        assert hook(plugin, pre_tool_use("ls"), env_dir=tmp_path).returncode == 0
    done = hook(plugin, pre_tool_use("rm a"), env_dir=tmp_path)
    assert json.loads(done.stdout)["hookSpecificOutput"]["permissionDecisionReason"] == (
        "no rm (call 3)"
    )
    other = hook(plugin, pre_tool_use("rm a", session="sess-2"), env_dir=tmp_path)
    assert "(call 1)" in other.stdout
    sidecar = tmp_path / "state" / "sess-1.ext-state.json"
    assert json.loads(sidecar.read_text()) == {"calls": "3"}


def test_state_lives_beside_the_transcript_when_there_is_one(plugin, tmp_path):
    transcript = tmp_path / "projects" / "abc.jsonl"
    transcript.parent.mkdir()
    data = pre_tool_use("ls", transcript_path=str(transcript))
    assert hook(plugin, data, env_dir=tmp_path).returncode == 0
    assert json.loads((tmp_path / "projects" / "abc.ext-state.json").read_text()) == {"calls": "1"}


def test_session_state_path_rules(tmp_path):
    assert session_state_path({"transcript_path": "/p/x.jsonl"}) == Path("/p/x.ext-state.json")
    assert session_state_path({"session_id": "a-1"}, tmp_path) == tmp_path / "a-1.ext-state.json"
    odd = session_state_path({"session_id": "../../etc"}, tmp_path)
    assert odd is not None and odd.parent == tmp_path and ".." not in odd.name
    assert session_state_path({}) is None


@pytest.mark.slow
def test_user_prompt_submit_handled_blocks_and_injection_becomes_context(plugin, tmp_path):
    base = {"session_id": "s", "hook_event_name": "UserPromptSubmit", "cwd": "/w"}
    done = hook(plugin, {**base, "prompt": "/quit now"}, env_dir=tmp_path)
    assert json.loads(done.stdout)["decision"] == "block"
    done = hook(plugin, {**base, "prompt": "fix it"}, env_dir=tmp_path)
    assert json.loads(done.stdout) == {
        "hookSpecificOutput": {
            "hookEventName": "UserPromptSubmit",
            "additionalContext": "Remember: tabs, not spaces.",
        }
    }


@pytest.mark.slow
def test_events_without_a_counterpart_and_bad_input(plugin, tmp_path):
    done = hook(plugin, {"hook_event_name": "Notification", "message": "hi"}, env_dir=tmp_path)
    assert (done.returncode, done.stdout) == (0, "")
    done = hook(plugin, "not json", env_dir=tmp_path)
    assert done.returncode == 1 and "stdin is not JSON" in done.stderr
    done = hook(plugin, "[1]", env_dir=tmp_path)
    assert done.returncode == 1 and "must be a JSON object" in done.stderr


def test_a_failing_plugin_fails_open_and_is_reported(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text(
        "import kithooks\n\n@kithooks.hookimpl\ndef on_tool_call(event):\n    1 / 0\n"
    )
    done = hook(broken, pre_tool_use("rm x"), env_dir=tmp_path)
    assert done.returncode == 0
    assert "plugin 'broken' failed in on_tool_call: ZeroDivisionError" in done.stderr
    # Claude Code shows stderr only in verbose mode: the user is told in a systemMessage.
    answer = json.loads(done.stdout)
    assert "hookSpecificOutput" not in answer  # no decision: the call goes ahead
    assert "plugin 'broken' failed in on_tool_call: ZeroDivisionError" in answer["systemMessage"]
    assert "--fail-closed" in answer["systemMessage"]


BROKEN_GUARD = (
    "import kithooks\n\n@kithooks.hookimpl\ndef on_tool_call(event):\n"
    "    return kithooks.ToolCallResult(block='rm' in event.parsed_args['command'])\n"
)


@pytest.mark.parametrize("how", ["option", "env"])
def test_fail_closed_makes_a_failing_guard_deny_naming_its_plugin(tmp_path, monkeypatch, how):
    guard = tmp_path / "rm_guard.py"
    guard.write_text(BROKEN_GUARD)
    invocation = pre_tool_use("rm -rf /")
    del invocation["tool_input"]["command"]  # the guard's KeyError
    if how == "option":
        done = hook(guard, invocation, "--fail-closed", env_dir=tmp_path)
    else:
        monkeypatch.setenv("KITHOOKS_FAIL_CLOSED", "1")
        done = hook(guard, invocation, env_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)["hookSpecificOutput"]
    assert answer["permissionDecision"] == "deny"
    reason = "plugin 'rm_guard' failed in on_tool_call: KeyError: 'command'"
    assert answer["permissionDecisionReason"] == reason
    assert reason in done.stderr  # reported as in fail-open mode
    # As exit 2, the reason on stderr, where --block-with-exit-code asks for it.
    done = hook(guard, invocation, "--fail-closed", "--block-with-exit-code", env_dir=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.strip().endswith(reason)
    # The default stays fail-open, and KITHOOKS_FAIL_CLOSED=0 is off.
    monkeypatch.setenv("KITHOOKS_FAIL_CLOSED", "0")
    done = hook(guard, invocation, env_dir=tmp_path)
    assert done.returncode == 0
    assert "hookSpecificOutput" not in json.loads(done.stdout)  # allowed, the user told
    assert reason in done.stderr
    # A guard that works still allows under --fail-closed.
    done = hook(guard, pre_tool_use("ls"), "--fail-closed", env_dir=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


@pytest.mark.parametrize("tools", ["Bash", "bash", "ba.*", "Read|Bash", ["Read", "Bash"]])
def test_a_tools_filter_may_name_the_claude_code_tool_or_its_host_alias(tmp_path, tools):
    guard = tmp_path / "bash_guard.py"
    guard.write_text(
        "import kithooks\n\n"
        f"@kithooks.hookimpl(tools={tools!r})\n"
        "def on_tool_call(event):\n"
        "    return kithooks.ToolCallResult(block=True, reason=f'{event.tool_name} blocked')\n"
    )
    done = hook(guard, pre_tool_use("ls"), env_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["hookSpecificOutput"]["permissionDecisionReason"] == (
        "bash blocked"
    )
    done = hook(guard, {**pre_tool_use("ls"), "tool_name": "Write"}, env_dir=tmp_path)
    assert (done.returncode, done.stdout) == (0, "")


@given(
    claude=st.sampled_from(sorted(set(DEFAULT_TOOL_ALIASES.values()))),
    spec=st.sampled_from(["{claude}", "{host}", "x|{claude}", "({host})", "{host}.*"]),
    listed=st.booleans(),
)
def test_every_claude_code_tool_reaches_a_filter_naming_it_or_its_host_alias(claude, spec, listed):
    """The tool a claude-hook plugin sees passes a tools= filter naming either name (a
    pattern, its own name)."""
    seen = ToolAliases().host_name(claude)
    text = spec.format(claude=claude, host=seen)
    plain = text.replace("|", "").isidentifier()
    matches = tool_matcher(text.split("|") if listed and plain else text)
    assert matches is not None and matches(seen)


def test_kithooks_answers_claude_code_through_its_own_command_hooks(plugin, tmp_path):
    """Round trip: a kithooks host runs `claude-hook` as a command hook."""
    from kithooks import PluginManager, ToolCallEvent
    from kithooks.command_hooks import CommandHooks

    command = (
        f"KITHOOKS_STATE_DIR={tmp_path / 'state'} {sys.executable} -m kithooks.command_hooks "
        f"claude-hook --no-entrypoints -p {plugin}"
    )
    pm = PluginManager()
    pm.register(
        CommandHooks.from_settings(
            {"hooks": {"PreToolUse": [{"hooks": [{"type": "command", "command": command}]}]}},
            project_dir=tmp_path,
        )
    )
    result = pm.emit(ToolCallEvent(tool_name="bash", input='{"command": "rm -r x"}'))
    assert result.block and result.reason == "no rm (call 1)"


@settings(max_examples=50)
@given(
    block=st.booleans(),
    reason=st.text(min_size=1, max_size=40).filter(str.strip),
    exit_code=st.booleans(),
)
def test_both_directions_agree(block, reason, exit_code):
    """What claude-hook answers for a plugin's decision, CommandHooks reads back as it."""

    class Gate:
        @hookimpl
        def on_tool_call(self, event):
            return ToolCallResult(block=block, reason=reason) if block else None

    pm = PluginManager()
    pm.register(Gate())
    data = pre_tool_use("anything")
    answered = asyncio.run(
        asyncio.wait_for(answer(pm, data, Context(), block_with_exit_code=exit_code), timeout=10)
    )
    stdout = "" if answered.output is None else json.dumps(answered.output)
    done = CommandRun(
        command="kithooks claude-hook",
        returncode=answered.exit_code,
        stdout=stdout,
        stderr=answered.stderr,
    )
    verdict = read_answer("PreToolUse", done)
    assert verdict.error == ""
    if block:
        assert verdict.decision == "deny"
        assert verdict.reason == (reason.strip() if exit_code else reason)
    else:
        assert verdict.decision == "" and (answered.exit_code, stdout) == (0, "")


# ----------------------------------------------------------------- emit, or aemit when needed

ASYNC_PLUGIN = textwrap.dedent(
    """
    import asyncio
    import kithooks
    from kithooks import InputResult, ToolCallResult


    @kithooks.hookimpl
    async def on_tool_call(event):
        await asyncio.sleep(0)
        if (event.parsed_args or {}).get("command", "").startswith("rm "):
            return ToolCallResult(block=True, reason="async says no")
        return None


    @kithooks.hookimpl
    def on_input(event):
        return InputResult(action="transform", text=event.text.upper())


    @kithooks.hookimpl
    async def on_before_agent_start(event):
        await asyncio.sleep(0)
        return kithooks.BeforeAgentStartResult(inject_text=f"saw {event.prompt}")
    """
)


def test_coroutine_handlers_are_awaited_in_a_claude_hook_process(tmp_path):
    """A plain handler first (emit), then a coroutine one: the rest runs on an event loop."""
    path = tmp_path / "async_gate.py"
    path.write_text(ASYNC_PLUGIN)
    done = hook(path, pre_tool_use("rm -rf /"), env_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["hookSpecificOutput"]["permissionDecisionReason"] == (
        "async says no"
    )
    prompt = {"session_id": "s", "hook_event_name": "UserPromptSubmit", "prompt": "hi"}
    done = hook(path, prompt, env_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    context = json.loads(done.stdout)["hookSpecificOutput"]["additionalContext"]
    assert context == "kithooks plugins rewrote the prompt as:\nHI\n\nsaw HI"


INVOCATIONS = st.fixed_dictionaries(
    {
        "session_id": st.text(max_size=5),
        "hook_event_name": st.sampled_from(
            [
                "PreToolUse",
                "PostToolUse",
                "PostToolUseFailure",
                "UserPromptSubmit",
                "PreCompact",
                "SessionStart",
                "SessionEnd",
                "SubagentStart",
                "SubagentStop",
                "Stop",
                "Notification",
            ]
        ),
        "tool_name": st.sampled_from(["Bash", "mcp__x__y", "Read"]),
        "tool_input": st.fixed_dictionaries(
            {"command": st.sampled_from(["ls", "rm -rf /", "make"])}
        ),
        "tool_response": st.text(max_size=10),
        "prompt": st.sampled_from(["/quit", "hello", ""]),
        "trigger": st.sampled_from(["auto", "manual"]),
        "last_assistant_message": st.text(max_size=10),
    }
)


@settings(max_examples=60, deadline=None)
@given(data=INVOCATIONS, exit_code=st.booleans(), coroutine=st.booleans())
def test_answer_sync_answers_as_answer_does(data, exit_code, coroutine):
    """`claude-hook`'s emit-first answer and the aemit one agree for every invocation, with
    the gate's handlers plain or coroutine functions."""
    from kithooks.command_hooks.answering import answer_sync

    def build() -> PluginManager:
        module = type(sys)("gate")
        exec(ASYNC_PLUGIN if coroutine else PLUGIN, module.__dict__)
        pm = PluginManager()
        pm.register(module, name="gate")
        return pm

    expected = asyncio.run(
        asyncio.wait_for(answer(build(), data, Context(), block_with_exit_code=exit_code), 10)
    )
    assert answer_sync(build(), data, Context(), block_with_exit_code=exit_code) == expected


def test_answer_sync_refuses_a_running_event_loop_before_any_event():
    from kithooks.command_hooks.answering import answer_sync

    ran: list[str] = []

    class Plain:
        @hookimpl
        def on_input(self, event):
            ran.append("input")

    pm = PluginManager()
    pm.register(Plain())
    data = {"hook_event_name": "UserPromptSubmit", "prompt": "hi"}

    async def inside_a_loop():
        with pytest.raises(RuntimeError, match="await answer"):
            answer_sync(pm, data, Context())

    asyncio.run(asyncio.wait_for(inside_a_loop(), 10))
    assert ran == []
    answer_sync(pm, data, Context())
    assert ran == ["input"]


GATE_FILE = textwrap.dedent(
    """
    import kithooks

    @kithooks.hookimpl
    def on_tool_call(event):
        if "rm -rf" in (event.parsed_args or {}).get("command", ""):
            return kithooks.ToolCallResult(block=True, reason="project gate")
        return None
    """
)


def _project_call(
    run_in: Path, payload_cwd: str | None, env_project: str | None, tmp: Path
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CLAUDE_PROJECT_DIR"}
    env |= {"KITHOOKS_STATE_DIR": str(tmp / "state"), "XDG_CONFIG_HOME": str(tmp / "config")}
    if env_project is not None:
        env["CLAUDE_PROJECT_DIR"] = env_project
    data = pre_tool_use("rm -rf /")
    if payload_cwd is None:
        del data["cwd"]
    else:
        data["cwd"] = payload_cwd
    return claude_hook(["--no-entrypoints"], data, cwd=run_in, env=env)


@pytest.mark.parametrize(
    "how", ["CLAUDE_PROJECT_DIR, run elsewhere", "payload cwd in a subdirectory", "process cwd"]
)
def test_project_plugins_guard_from_any_directory_of_the_project(tmp_path, how):
    """Claude Code runs hooks in the session's current directory, which moves with `cd`."""
    project = tmp_path / "project"
    (project / ".kithooks" / "plugins").mkdir(parents=True)
    (project / ".kithooks" / "plugins" / "gate.py").write_text(GATE_FILE)
    sub = project / "src" / "pkg"
    sub.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if how == "CLAUDE_PROJECT_DIR, run elsewhere":
        result = _project_call(elsewhere, str(elsewhere), str(project), tmp_path)
    elif how == "payload cwd in a subdirectory":
        result = _project_call(elsewhere, str(sub), None, tmp_path)
    else:
        result = _project_call(sub, None, None, tmp_path)
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)["hookSpecificOutput"]
    assert decision["permissionDecision"] == "deny"
    assert "project gate" in decision["permissionDecisionReason"]


def test_a_load_error_is_said_once(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom at import')\n")
    result = hook(broken, pre_tool_use("ls"), env_dir=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("boom at import") == 1, result.stderr


@pytest.mark.parametrize(
    ("pattern", "name", "matched"),
    [
        ("B.*", "bash", True),  # a pattern is tried on the Claude Code name too
        ("Bash|mcp__fs__.*", "bash", True),
        ("Bash|mcp__fs__.*", "mcp__fs__read", True),
        ("Bash|Read", "read_file", True),
        ("(?!bash|shell).*", "shell", True),  # shell is also Bash, which this lets through
        ("(?!(bash|shell|Bash)$).*", "shell", False),  # an exclusion names both names
        ("(?!(bash|shell|Bash)$).*", "bash", False),
        ("(?!(bash|shell|Bash)$).*", "write_file", True),
        ("(?!(read_file|Read)$).*", "read_file", False),
    ],
)
def test_a_tools_filter_is_tried_on_the_name_and_on_its_claude_code_name(pattern, name, matched):
    assert tool_matcher(pattern)(name) is matched


@pytest.mark.parametrize("spec", ["bash | shell", " Bash ", "shell |bash"])
def test_spaces_around_plain_tool_names_are_ignored(spec):
    """Not a regular expression that matches nothing: the guard would silently be absent."""
    assert tool_matcher(spec)("bash")


def _no_plugin_call(tmp_path: Path, event: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``claude-hook`` where no plugin is found: no entry point (the Python that has none,
    or with entry points turned off), no user or project plugin directory."""
    env = {
        **os.environ,
        "KITHOOKS_STATE_DIR": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "KITHOOKS_DISABLE_ENTRYPOINTS": "1",
    }
    env.pop("CLAUDE_PROJECT_DIR", None)
    env.pop("KITHOOKS_FAIL_CLOSED", None)
    data = {**pre_tool_use("rm -rf ~/"), "hook_event_name": event, "cwd": str(tmp_path)}
    return claude_hook(list(args), data, cwd=tmp_path, env=env)


@pytest.mark.parametrize("event", ["PreToolUse", "PreCompact"])
def test_fail_closed_denies_a_guard_event_when_no_plugin_was_found(tmp_path, event):
    """A guard that is not there must not look like one that allowed the call."""
    done = _no_plugin_call(tmp_path, event, "--fail-closed")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    if event == "PreToolUse":
        decision = answer["hookSpecificOutput"]
        assert decision["permissionDecision"] == "deny"
        reason = decision["permissionDecisionReason"]
    else:
        assert answer["decision"] == "block"
        reason = answer["reason"]
    assert "no kithooks plugin was found" in reason
    # Where it looked: the user and project directories, and why no entry point counted.
    assert str(tmp_path / "config" / "kithooks" / "plugins") in reason
    assert str(tmp_path / ".kithooks" / "plugins") in reason
    assert "KITHOOKS_DISABLE_ENTRYPOINTS" in reason
    assert reason in answer["systemMessage"]  # the user is told, not the model alone
    assert done.stderr.count("no kithooks plugin was found") == 1
    # As exit 2 with the reason on stderr where --block-with-exit-code asks for it (once:
    # Claude Code gives that stderr to the model).
    done = _no_plugin_call(tmp_path, event, "--fail-closed", "--block-with-exit-code")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.count("no kithooks plugin was found") == 1
    assert "--fail-closed" in done.stderr


@pytest.mark.parametrize(
    ("event", "args"),
    [
        ("PreToolUse", ()),
        ("PreCompact", ()),
        ("PostToolUse", ("--fail-closed",)),
        ("Stop", ("--fail-closed",)),
        ("UserPromptSubmit", ("--fail-closed",)),
        ("SessionStart", ()),
    ],
)
def test_no_plugin_found_is_said_once_in_the_system_message(tmp_path, event, args):
    """Allowed (fail open, or not a guard event), but never silently: Claude Code shows the
    user the systemMessage."""
    done = _no_plugin_call(tmp_path, event, *args)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert set(answer) == {"systemMessage"}  # no decision: the call goes on, Stop stops
    assert answer["systemMessage"].count("no kithooks plugin was found") == 1
    assert str(tmp_path / ".kithooks" / "plugins") in answer["systemMessage"]
    if event == "PreToolUse":
        assert "--fail-closed" in answer["systemMessage"]


def test_an_event_kithooks_does_not_answer_says_nothing_of_missing_plugins(tmp_path):
    done = _no_plugin_call(tmp_path, "Notification", "--fail-closed")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_where_no_plugin_was_found_names_the_python_whose_entry_points_were_read(tmp_path):
    """The hook command's kithooks may be another environment's than the plugin's."""
    import importlib.metadata

    if importlib.metadata.entry_points(group="kithooks"):
        pytest.skip("this environment has kithooks entry points installed")
    env = {
        **os.environ,
        "KITHOOKS_STATE_DIR": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    env.pop("KITHOOKS_DISABLE_ENTRYPOINTS", None)
    env.pop("CLAUDE_PROJECT_DIR", None)
    data = {**pre_tool_use("rm -rf ~/"), "cwd": str(tmp_path)}
    done = claude_hook(["--fail-closed"], data, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    reason = json.loads(done.stdout)["hookSpecificOutput"]["permissionDecisionReason"]
    assert f"the entry points of group 'kithooks' installed in {sys.prefix}" in reason
