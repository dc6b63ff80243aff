"""A settings source that gives no command hook kithooks can run is a load error naming the
file and what is wrong, never a plugin with no hooks (docs/plugins.md: every way of loading
a plugin registers one with at least one hook, or is a load error). ``"disableAllHooks":
true`` turns a file's hooks off, as in Claude Code, with a warning."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

import kithooks
from kithooks.command_hooks import CommandHooks, SettingsError, load_settings, plugins_for

GUARD = [{"matcher": "Bash", "hooks": [{"type": "command", "command": "exit 2"}]}]


def _error(data) -> str:
    with pytest.raises(SettingsError) as info:
        load_settings(data)
    return str(info.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"PreToolUse": GUARD},
            'no "hooks" object: the top-level keys "PreToolUse" look like hook events; '
            'did you mean {"hooks": {"PreToolUse": [...]}}?',
        ),
        (
            {"hook": {"PreToolUse": GUARD}},
            'no "hooks" object (top-level keys: "hook"); did you mean "hooks" instead of "hook"?',
        ),
        (
            {"permissions": {"allow": []}, "env": {}},
            'no "hooks" object (top-level keys: "permissions", "env"), so no command hook to run',
        ),
        ({}, 'no "hooks" object (the settings are an empty object)'),
        ({"hooks": {}}, '"hooks" is empty, so no command hook to run'),
        (
            {"hooks": {"pretooluse": GUARD}},
            "hooks.pretooluse: unknown hook event 'pretooluse' (did you mean 'PreToolUse'?)",
        ),
        (
            {"hooks": {"PreTooluse": GUARD}},
            "hooks.PreTooluse: unknown hook event 'PreTooluse' (did you mean 'PreToolUse'?)",
        ),
        (
            {"hooks": {"PreToolUse": [{"hooks": [{"type": "Command", "command": "exit 2"}]}]}},
            "hooks.PreToolUse[0].hooks[0]: unknown hook type 'Command' (did you mean 'command'?)",
        ),
        (
            {"hooks": {"PreToolUse": [{"matcher": "Bash", "hook": []}]}},
            'hooks.PreToolUse[0]: "hooks" is missing; did you mean "hooks" instead of "hook"?',
        ),
        (
            {"hooks": {"Notification": [{"hooks": [{"type": "command", "command": "x"}]}]}},
            "no command hook that kithooks can run: hooks.Notification: kithooks has no "
            "counterpart of Notification",
        ),
        (
            {"hooks": {"Stop": [{"hooks": [{"type": "prompt", "prompt": "done?"}]}]}},
            "no command hook that kithooks can run: hooks.Stop[0].hooks[0]: hooks of type "
            "'prompt' are not run (only 'command')",
        ),
        (
            {"hooks": {"PreToolUse": [], "Stop": [{"hooks": []}]}},
            "no command hook that kithooks can run: hooks.PreToolUse: the list is empty; "
            "hooks.Stop[0].hooks: the list is empty",
        ),
        (
            {"hooks": {"PreToolUse": GUARD}, "disableAllHooks": "yes"},
            "disableAllHooks: must be true or false, got 'yes'",
        ),
    ],
)
def test_settings_giving_no_runnable_hook_are_an_error_saying_why(data, expected):
    assert _error(data).startswith("<settings>: ")
    assert expected in _error(data)


def test_a_typo_beside_a_valid_hook_is_an_error_too():
    """A guard under a misspelt event or type would silently never run."""
    data = {"hooks": {"PreToolUse": GUARD, "PostTooluse": GUARD}}
    assert "unknown hook event 'PostTooluse' (did you mean 'PostToolUse'?)" in _error(data)


@pytest.mark.parametrize("name", ["AfterTeleport", "PostToolCall", "SessionStop", "TaskFailed"])
def test_an_event_no_misspelling_of_a_known_one_is_skipped_with_a_warning(name):
    """A Claude Code event newer than this kithooks must not take the file's guards down,
    even when it is named in a known one's family (PostToolBatch beside PostToolUse)."""
    data = {"hooks": {"PreToolUse": GUARD, name: GUARD}}
    loaded = load_settings(data)
    assert list(loaded.events) == ["PreToolUse"]
    assert any(f"unknown hook event {name!r} (newer" in line for line in loaded.skipped)
    assert name in _error({"hooks": {name: GUARD}})  # nothing runnable left: still an error


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("Stopp", "Stop"),
        ("Sotp", "Stop"),
        ("Stop ", "Stop"),
        ("pre_tool_use", "PreToolUse"),
        ("PreTolUze", "PreToolUse"),
        ("ConfigChanged", "ConfigChange"),
    ],
)
def test_a_misspelt_event_even_of_a_short_name_is_refused(name, meant):
    assert f"did you mean {meant!r}?" in _error({"hooks": {"PreToolUse": GUARD, name: GUARD}})


@pytest.mark.parametrize("kind", ["commend", "Comand", "comandd", "cmomand", "command "])
def test_a_misspelt_command_type_is_refused(kind):
    hooks = [{"matcher": "Bash", "hooks": [{"type": kind, "command": "exit 2"}]}]
    assert "did you mean 'command'?" in _error({"hooks": {"PreToolUse": GUARD + hooks}})


def test_a_hook_type_newer_than_kithooks_is_skipped_and_a_misspelt_one_refused():
    newer = [{"matcher": "Bash", "hooks": [{"type": "websocket", "url": "ws://x"}]}]
    loaded = load_settings({"hooks": {"PreToolUse": GUARD + newer}})
    assert any("unknown hook type 'websocket' (newer" in line for line in loaded.skipped)
    misspelt = [{"matcher": "Bash", "hooks": [{"type": "comand", "command": "exit 2"}]}]
    assert "did you mean 'command'?" in _error({"hooks": {"PreToolUse": GUARD + misspelt}})


def test_from_settings_refuses_a_mapping_with_no_runnable_hook():
    with pytest.raises(SettingsError, match='no "hooks" object'):
        CommandHooks.from_settings({"PreToolUse": GUARD})


def test_a_key_given_twice_in_a_file_is_an_error(tmp_path):
    path = tmp_path / "hooks.json"
    path.write_text(f'{{"hooks": {{"PreToolUse": {json.dumps(GUARD)}, "PreToolUse": []}}}}')
    message = _error(path)
    assert message.startswith(f"{path}: the key 'PreToolUse' appears twice in one object")


def test_disable_all_hooks_turns_the_file_off_with_a_warning(tmp_path, caplog):
    path = tmp_path / "hooks.json"
    path.write_text(json.dumps({"hooks": {"PreToolUse": GUARD}, "disableAllHooks": True}))
    with caplog.at_level(logging.WARNING, logger="kithooks"):
        loaded = load_settings(path)
    assert loaded.disabled and loaded.events == {}
    assert f'{path}: "disableAllHooks" is true, so its hooks are off' in caplog.text
    assert plugins_for([path]) == ([], [])
    # false is the default: the hooks run
    path.write_text(json.dumps({"hooks": {"PreToolUse": GUARD}, "disableAllHooks": False}))
    [plugin], [] = plugins_for([path])
    assert plugin.settings.kit_events() == {kithooks.EventType.TOOL_CALL}


def _project(tmp_path, monkeypatch, content: str):
    project = tmp_path / "project"
    (project / ".kithooks").mkdir(parents=True)
    (project / ".kithooks" / "hooks.json").write_text(content)
    monkeypatch.chdir(project)
    monkeypatch.setenv("XDG_CONFIG_HOME", os.fspath(tmp_path / "config"))
    return project / ".kithooks" / "hooks.json"


def test_a_hooks_json_without_the_hooks_key_is_a_load_error(tmp_path, monkeypatch):
    path = _project(tmp_path, monkeypatch, json.dumps({"PreToolUse": GUARD}))
    pm = kithooks.PluginManager(fail_closed=True)
    assert pm.load_plugin_files() == []
    [error] = pm.load_errors
    assert error.location == str(path) and error.name == f"command-hooks:{path}"
    assert 'did you mean {"hooks": {"PreToolUse": [...]}}?' in error.message
    assert [n for n, _ in pm.list_name_plugin()] == ["turn-aggregator"]


def _cli(*args: str, cwd, env_dir) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CONFIG_HOME": os.fspath(env_dir), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "kithooks", *args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (json.dumps({"PreToolUse": GUARD}), 'did you mean {"hooks": {"PreToolUse": [...]}}?'),
        (json.dumps({"hook": {"PreToolUse": GUARD}}), 'did you mean "hooks" instead of "hook"?'),
        (
            json.dumps(
                {"hooks": {"PreToolUse": [{"hooks": [{"type": "Command", "command": "x"}]}]}}
            ),
            "unknown hook type 'Command' (did you mean 'command'?)",
        ),
        (
            json.dumps({"hooks": {"PreToolUze": GUARD}}),
            "unknown hook event 'PreToolUze' (did you mean 'PreToolUse'?)",
        ),
    ],
)
def test_kithooks_plugins_reports_a_hooks_json_giving_no_hook(
    tmp_path, monkeypatch, content, expected
):
    path = _project(tmp_path, monkeypatch, content)
    proc = _cli("plugins", "--no-entrypoints", cwd=path.parent.parent, env_dir=tmp_path / "config")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"load error: plugin 'command-hooks:{path}'" in proc.stderr
    assert expected in proc.stderr
    assert "command-hooks:" not in proc.stdout


def test_a_named_claude_settings_file_without_hooks_is_a_load_error(tmp_path):
    """``--settings`` names the file for its hooks: a permissions-only one is a mistake."""
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"permissions": {"allow": ["Bash(ls)"]}}))
    proc = _cli(
        "plugins", "--no-entrypoints", "--settings", str(settings), cwd=tmp_path, env_dir=tmp_path
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f'{settings}: no "hooks" object (top-level keys: "permissions")' in proc.stderr


def test_kithooks_plugins_says_a_disabled_hooks_json_is_off(tmp_path, monkeypatch):
    content = json.dumps({"hooks": {"PreToolUse": GUARD}, "disableAllHooks": True})
    path = _project(tmp_path, monkeypatch, content)
    proc = _cli("plugins", "--no-entrypoints", cwd=path.parent.parent, env_dir=tmp_path / "config")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f'{path}: "disableAllHooks" is true, so its hooks are off' in proc.stderr
    assert "command-hooks:" not in proc.stdout and "load error" not in proc.stderr
