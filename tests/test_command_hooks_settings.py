"""Command-hook settings: validation errors name the file and entry; the protocol's merge."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hooks.command_hooks_support import settings
from kithooks import EventType
from kithooks.command_hooks import (
    CommandHooks,
    SettingsError,
    discover_settings,
    load_settings,
    plugins_for,
)
from kithooks.command_hooks.protocol import Verdict, combine, read_answer
from kithooks.command_hooks.runner import CommandRun


def error_of(data) -> str:
    with pytest.raises(SettingsError) as info:
        load_settings(data)
    return str(info.value)


def test_a_missing_command_names_file_and_entry(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"hooks": {"PreToolUse": [{"hooks": [{"type": "command"}]}]}}))
    with pytest.raises(SettingsError) as info:
        CommandHooks.from_settings(path)
    assert str(info.value) == f'{path}: hooks.PreToolUse[0].hooks[0]: "command" is missing'


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "<settings>: settings must be a JSON object, got list"),
        ({"hooks": []}, "<settings>: hooks: must be an object, got list"),
        ({"hooks": {"Stop": {}}}, "<settings>: hooks.Stop: must be a list, got dict"),
        ({"hooks": {"Stop": [3]}}, "<settings>: hooks.Stop[0]: must be an object, got int"),
        ({"hooks": {"Stop": [{}]}}, '<settings>: hooks.Stop[0]: "hooks" is missing'),
        (
            {"hooks": {"Stop": [{"hooks": {}}]}},
            "<settings>: hooks.Stop[0].hooks: must be a list, got dict",
        ),
        (
            {"hooks": {"Stop": [{"hooks": [{"command": "x"}]}]}},
            '<settings>: hooks.Stop[0].hooks[0]: "type" is missing',
        ),
        (
            {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": ""}]}]}},
            "<settings>: hooks.Stop[0].hooks[0]: \"command\" must be a non-empty string, got ''",
        ),
        (
            {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "x", "timeout": 0}]}]}},
            '<settings>: hooks.Stop[0].hooks[0]: "timeout" must be a positive number of '
            "seconds, got 0",
        ),
        (
            {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "x", "timeout": "9"}]}]}},
            '<settings>: hooks.Stop[0].hooks[0]: "timeout" must be a positive number of '
            "seconds, got '9'",
        ),
        (
            {"hooks": {"PreToolUse": [{"matcher": 5, "hooks": []}]}},
            '<settings>: hooks.PreToolUse[0]: "matcher" must be a string, got 5',
        ),
    ],
)
def test_bad_entries(data, message):
    assert error_of(data) == message


def test_a_bad_regex_matcher_names_the_entry():
    message = error_of(
        {"hooks": {"PreToolUse": [{"hooks": []}, {"matcher": "Bash(", "hooks": []}]}}
    )
    assert message.startswith('<settings>: hooks.PreToolUse[1]: "matcher": ')
    assert "Bash(" in message


def test_invalid_json_names_line_and_column(tmp_path):
    path = tmp_path / "hooks.json"
    path.write_text('{\n  "hooks": {\n    "Stop": [,]\n  }\n}\n')
    message = error_of(path)
    assert message.startswith(f"{path}: line 3 column 14: invalid JSON")


def test_a_missing_file_is_an_error_naming_it(tmp_path):
    assert error_of(tmp_path / "nope.json").startswith(f"{tmp_path / 'nope.json'}: cannot read")


def test_claude_only_events_and_hook_types_are_skipped_with_a_warning(caplog):
    loaded = load_settings(
        {
            "hooks": {
                "Notification": [{"hooks": [{"type": "command", "command": "notify-send hi"}]}],
                "PreToolUse": [{"hooks": [{"type": "command", "command": "x"}]}],
                "Stop": [{"hooks": [{"type": "prompt", "prompt": "done?"}]}],
            }
        }
    )
    assert loaded.kit_events() == {EventType.TOOL_CALL}  # the Stop group has no command left
    assert len(loaded.skipped) == 2
    assert "no counterpart of Notification" in loaded.skipped[0]
    assert "type 'prompt'" in loaded.skipped[1]
    assert caplog.text.count("skipped") == 2


def test_defaults_timeout_and_matcher():
    loaded = load_settings(settings("PreToolUse", "x"))
    [group] = loaded.events["PreToolUse"]
    assert group.matcher == "" and group.matches("anything")
    loaded = load_settings({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "x"}]}]}})
    assert loaded.events["Stop"][0].hooks[0].timeout == 60.0
    assert loaded.kit_events() == {EventType.AGENT_END}


_NAME = st.from_regex(r"[A-Za-z0-9_-]{1,10}", fullmatch=True)
_AROUND = st.from_regex(r"[A-Za-z0-9_]{0,4}", fullmatch=True)


def _matches(matcher: str, name: str) -> bool:
    [group] = load_settings(settings("PreToolUse", "x", matcher=matcher)).events["PreToolUse"]
    return group.matches(name)


@given(name=_NAME, before=_AROUND, after=_AROUND, at=st.integers(min_value=0))
def test_a_settings_pattern_matches_anywhere_in_the_name_as_in_claude_code(name, before, after, at):
    """Claude Code tests a pattern with RegExp.test: a pattern that fits a name fits every
    name containing it (``^Bash`` matches ``BashOutput``)."""
    at %= len(name)
    pattern = name[:at] + "." + name[at + 1 :]  # a "." makes it a pattern
    assert _matches(pattern, before + name + after)
    assert _matches("^" + pattern, name + after)
    assert _matches(pattern + "$", before + name)


@given(name=_NAME, before=_AROUND, after=_AROUND, pad=st.sampled_from(["", " ", "  "]))
def test_a_plain_settings_matcher_is_exact(name, before, after, pad):
    """Letters, digits, _, -, spaces, "," and "|" only: exact names, never a substring."""
    assert _matches(f"{pad}{name}{pad}", name)
    assert _matches(f"x{pad}|{pad}{name},y", name)
    assert _matches(name, before + name + after) is (before + after == "")


def test_discovery_finds_user_then_project_hooks_json(tmp_path):
    user, project = tmp_path / "user", tmp_path / "project" / ".kithooks"
    user.mkdir()
    project.mkdir(parents=True)
    assert discover_settings(user, project) == []
    (project / "hooks.json").write_text(json.dumps(settings("Stop", "true")))
    (user / "hooks.json").write_text("{broken")
    found = discover_settings(user, project)
    assert found == [user / "hooks.json", project / "hooks.json"]
    assert discover_settings(project, project) == [project / "hooks.json"]
    plugins, errors = plugins_for(found)
    assert [p.__name__ for p in plugins] == [f"command-hooks:{project / 'hooks.json'}"]
    [error] = errors
    assert error.location == str(user / "hooks.json") and "invalid JSON" in error.message


# -- the protocol's answers --------------------------------------------------------------------


def run(code=0, stdout="", stderr="") -> CommandRun:
    return CommandRun(command="hook", returncode=code, stdout=stdout, stderr=stderr)


def test_exit_2_ignores_stdout_and_uses_stderr():
    verdict = read_answer("PreToolUse", run(2, '{"continue": false}', "no\n"))
    assert verdict == Verdict(command="hook", decision="deny", reason="no")


def test_plain_stdout_is_context_only_where_claude_code_reads_it():
    assert read_answer("UserPromptSubmit", run(0, "ctx\n")).context == "ctx"
    assert read_answer("SessionStart", run(0, "ctx")).context == "ctx"
    assert read_answer("PreToolUse", run(0, "ctx")) == Verdict(command="hook")
    assert read_answer("PreToolUse", run(0, "checking...\n{}")) == Verdict(command="hook")


_objects = st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.integers(), max_size=3)


@given(
    stdout=st.one_of(
        # a JSON object with something after it: a second JSON line, a stray character
        st.tuples(_objects, st.sampled_from(["\n{}", '\n{"debug": 1}', ",", "}", " x"])).map(
            lambda t: json.dumps(t[0]) + t[1]
        ),
        # a JSON object cut short
        _objects.map(json.dumps).filter(lambda t: len(t) > 2).map(lambda t: t[:-1]),
        # anything else that starts with "{" and does not parse
        st.text(max_size=20).map(lambda t: "{" + t).filter(lambda t: not _parses(t)),
    ),
    event=st.sampled_from(["PreToolUse", "UserPromptSubmit", "SessionStart", "Stop"]),
)
def test_stdout_starting_with_a_brace_that_does_not_parse_is_a_failure(stdout, event):
    verdict = read_answer(event, run(0, stdout))
    assert verdict.error.startswith("hook command 'hook' gave a malformed JSON answer: ")
    assert verdict == Verdict(command="hook", error=verdict.error)  # and nothing else


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def test_legacy_decisions_and_permission_decisions():
    assert read_answer("PreToolUse", run(0, '{"decision": "approve"}')).decision == "allow"
    assert read_answer("Stop", run(0, '{"decision": "block", "reason": "r"}')).reason == "r"
    both = '{"decision": "approve", "hookSpecificOutput": {"permissionDecision": "deny"}}'
    assert read_answer("PreToolUse", run(0, both)).decision == "deny"
    defer = '{"hookSpecificOutput": {"permissionDecision": "defer"}}'
    assert read_answer("PreToolUse", run(0, defer)).decision == ""
    assert read_answer("Stop", run(0, '{"decision": "approve"}')).decision == ""


def test_other_exit_codes_are_errors():
    verdict = read_answer("PreToolUse", run(3, "", ""))
    assert verdict.decision == "" and "exit code 3: no stderr output" in verdict.error


_decisions = st.sampled_from(["", "allow", "ask", "deny"])


@given(st.lists(st.tuples(_decisions, st.text(max_size=5)), max_size=6))
def test_combine_the_most_restrictive_decision_wins_in_any_order(answers):
    verdicts = [Verdict(command=str(i), decision=d, reason=r) for i, (d, r) in enumerate(answers)]
    combined = combine(verdicts)
    rank = ["", "allow", "ask", "deny"]
    expected = max((d for d, _ in answers), key=rank.index, default="")
    assert combined.decision == expected
    assert combined.reason == "\n".join(r for d, r in answers if d == expected and r and d)
    assert combine(list(reversed(verdicts))).decision == expected


@given(st.lists(st.one_of(st.none(), st.sampled_from([{"a": 1}, {"a": 2}, {}])), max_size=6))
def test_combine_the_last_rewrite_wins_and_the_dropped_ones_are_named(rewrites):
    verdicts = [Verdict(command=f"c{i}", updated_input=u) for i, u in enumerate(rewrites)]
    combined = combine(verdicts)
    given_ = [(f"c{i}", u) for i, u in enumerate(rewrites) if u is not None]
    assert combined.updated_input == (given_[-1][1] if given_ else None)
    dropped = [c for c, u in given_[:-1] if u != given_[-1][1]]
    if dropped:
        assert combined.warning.startswith(f"hook commands {', '.join(map(repr, dropped))} and")
    else:
        assert combined.warning == ""


@given(
    code=st.integers(min_value=-64, max_value=255).filter(lambda c: c not in (0, 2)),
    stdout=st.text(max_size=30),
    stderr=st.text(max_size=30),
)
def test_any_other_exit_code_is_a_non_blocking_error(code, stdout, stderr):
    for event in ("PreToolUse", "UserPromptSubmit", "Stop"):
        verdict = read_answer(event, run(code, stdout, stderr))
        assert verdict.decision == "" and verdict.context == "" and verdict.updated_input is None
        assert f"exit code {code}" in verdict.error


@given(st.text(max_size=40))
def test_exit_2_always_blocks_with_a_reason(stderr):
    verdict = read_answer("PreToolUse", run(2, "", stderr))
    assert verdict.decision == "deny" and verdict.reason
    assert verdict.reason == (stderr.strip() or "blocked by hook command 'hook'")
