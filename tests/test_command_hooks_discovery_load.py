"""`.kithooks/hooks.json` is loaded wherever file plugins are (issue 18): by
`PluginManager.load_plugin_files`, not only by the `kithooks` command."""

from __future__ import annotations

import json
import os
import stat
import sys

import kithooks


def test_load_plugin_files_runs_the_project_hooks_json(tmp_path, monkeypatch):
    hook = tmp_path / "deny.py"
    hook.write_text(
        "import json, sys\n"
        "data = json.load(sys.stdin)\n"
        "if 'rm -rf' in data['tool_input'].get('command', ''):\n"
        "    print('no rm -rf', file=sys.stderr)\n"
        "    sys.exit(2)\n"
    )
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    project = tmp_path / "project"
    (project / ".kithooks" / "plugins").mkdir(parents=True)
    settings = {
        "hooks": {
            "PreToolUse": [
                {
                    "matcher": "Bash",
                    "hooks": [{"type": "command", "command": f"{sys.executable} {hook}"}],
                }
            ]
        }
    }
    (project / ".kithooks" / "hooks.json").write_text(json.dumps(settings))
    monkeypatch.chdir(project)
    monkeypatch.setenv("XDG_CONFIG_HOME", os.fspath(tmp_path / "config"))
    pm = kithooks.PluginManager()
    names = pm.load_plugin_files()
    assert any(n.startswith("command-hooks:") and n.endswith("hooks.json") for n in names)
    result = pm.emit(kithooks.ToolCallEvent(tool_name="bash", input='{"command": "rm -rf /"}'))
    assert result.block and "no rm -rf" in result.reason
    other = kithooks.PluginManager()
    assert other.load_plugin_files(command_hooks=False) == []


def test_an_invalid_hooks_json_is_a_load_error_naming_it(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / ".kithooks").mkdir(parents=True)
    (project / ".kithooks" / "hooks.json").write_text('{"hooks": {"PreToolUse": [{}]}}')
    monkeypatch.chdir(project)
    monkeypatch.setenv("XDG_CONFIG_HOME", os.fspath(tmp_path / "config"))
    pm = kithooks.PluginManager()
    assert pm.load_plugin_files() == []
    assert "hooks.json" in pm.load_errors[0].message
    assert "PreToolUse[0]" in pm.load_errors[0].message
