"""``pm.reload()`` re-reads the ``hooks.json`` files as it re-reads ``.py`` plugins
(docs/plugins.md): a new file loads, a changed one replaces the old plugin, and one that no
longer loads loses its plugin and is a load error, like a ``.py`` plugin that broke."""

from __future__ import annotations

import json
import os

import kithooks

DENY = {
    "hooks": {
        "PreToolUse": [
            {"hooks": [{"type": "command", "command": "cat >/dev/null; echo no >&2; exit 2"}]}
        ]
    }
}
RM = kithooks.ToolCallEvent(tool_name="bash", tool_call_id="1", input='{"command": "rm -rf /"}')


def _manager(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / ".kithooks" / "plugins").mkdir(parents=True)
    monkeypatch.chdir(project)
    monkeypatch.setenv("XDG_CONFIG_HOME", os.fspath(tmp_path / "config"))
    pm = kithooks.PluginManager()
    return pm, project / ".kithooks" / "hooks.json"


def _blocks(pm) -> bool:
    result = pm.emit(RM)
    return bool(result is not None and result.block)


def _names(pm) -> list[str]:
    return [n for n, _ in pm.list_name_plugin() if n != "turn-aggregator"]


def test_reload_loads_a_hooks_json_written_after_the_first_load(tmp_path, monkeypatch):
    pm, path = _manager(tmp_path, monkeypatch)
    assert pm.load_plugin_files() == []
    path.write_text(json.dumps(DENY))
    assert pm.reload() == [f"command-hooks:{path}"]
    assert _blocks(pm) and pm.load_errors == []
    assert pm.plugin_source(f"command-hooks:{path}").location == str(path)


def test_reload_reports_a_corrupted_hooks_json_and_drops_its_plugin(tmp_path, monkeypatch):
    pm, path = _manager(tmp_path, monkeypatch)
    path.write_text(json.dumps(DENY))
    pm.load_plugin_files()
    assert _blocks(pm)
    path.write_text("{bad json")
    assert pm.reload() == []
    [error] = pm.load_errors
    assert error.location == str(path) and "invalid JSON" in error.message
    assert _names(pm) == [] and not _blocks(pm)
    # fixed again: the error goes, the guard comes back
    path.write_text(json.dumps(DENY))
    assert pm.reload() == [f"command-hooks:{path}"]
    assert pm.load_errors == [] and _blocks(pm)


def test_reload_of_an_emptied_hooks_json_drops_the_stale_guard_loudly(tmp_path, monkeypatch):
    pm, path = _manager(tmp_path, monkeypatch)
    path.write_text(json.dumps(DENY))
    pm.load_plugin_files()
    path.write_text(json.dumps({"hooks": {}}))
    pm.reload()
    assert not _blocks(pm) and _names(pm) == []
    [error] = pm.load_errors
    assert '"hooks" is empty' in error.message
    # removed: no plugin, no error
    path.unlink()
    assert pm.reload() == [] and pm.load_errors == [] and _names(pm) == []


def test_reload_keeps_the_hooks_json_in_its_place_and_once(tmp_path, monkeypatch):
    """Dispatch order stays that of registration: the file batch (its .py plugins, then its
    hooks.json) keeps its place before a host plugin registered later."""
    pm, path = _manager(tmp_path, monkeypatch)
    log = tmp_path / "order.log"
    record = f"cat >/dev/null; echo hooks.json >> {log}"
    path.write_text(
        json.dumps({"hooks": {"PreToolUse": [{"hooks": [{"type": "command", "command": record}]}]}})
    )
    (path.parent / "plugins" / "gate.py").write_text(
        "import kithooks\n@kithooks.hookimpl\ndef on_tool_call(event, ctx):\n"
        f"    with open({str(log)!r}, 'a') as fh:\n        fh.write('gate\\n')\n"
    )
    first = pm.load_plugin_files()
    assert first == ["gate", f"command-hooks:{path}"]
    assert pm.load_plugin_files() == []  # the same sources again: loaded once

    class Host:
        @kithooks.hookimpl
        def on_tool_call(self, event):
            with log.open("a") as fh:
                fh.write("host\n")

    pm.register(Host())
    pm.emit(RM)
    assert log.read_text().split() == ["gate", "hooks.json", "host"]
    log.unlink()
    assert pm.reload() == first and pm.load_errors == []
    pm.emit(RM)
    assert log.read_text().split() == ["gate", "hooks.json", "host"]


def test_reload_skips_hooks_json_when_the_load_did(tmp_path, monkeypatch):
    pm, path = _manager(tmp_path, monkeypatch)
    pm.load_plugin_files(command_hooks=False)
    path.write_text(json.dumps(DENY))
    assert pm.reload() == [] and not _blocks(pm)
