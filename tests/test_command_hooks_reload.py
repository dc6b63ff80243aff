"""``pm.reload()`` re-reads the ``hooks.json`` files as it re-reads ``.py`` plugins
(docs/plugins.md): a new file loads, a changed one replaces the old plugin, one that no
longer loads (half saved) is a load error and keeps its previous, working version, and one
removed or turned off loses its plugin, like a ``.py`` plugin."""

from __future__ import annotations

import json
import logging
import os
import threading
import time

import pytest

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


HALF_SAVED = [
    pytest.param("", id="emptied"),
    pytest.param("{", id="brace"),
    pytest.param(json.dumps(DENY)[:30], id="truncated"),
    pytest.param("{bad json", id="bad-json"),
    pytest.param(json.dumps({"hooks": {}}), id="no-hooks-yet"),
]


@pytest.mark.parametrize("text", HALF_SAVED)
def test_reload_of_a_half_saved_hooks_json_keeps_its_guard_and_says_so(
    tmp_path, monkeypatch, caplog, text
):
    """An editor saving in place: the reload used to drop the plugin, so its PreToolUse
    guard stopped blocking. The previous version stays, and the error is loud."""
    pm, path = _manager(tmp_path, monkeypatch)
    path.write_text(json.dumps(DENY))
    name = f"command-hooks:{path}"
    assert pm.load_plugin_files() == [name]
    before = pm.get_plugin(name)
    path.write_text(text)
    with caplog.at_level(logging.ERROR, logger="kithooks"):
        assert pm.reload() == [name]
    assert pm.get_plugin(name) is before and _blocks(pm)
    [error] = pm.load_errors
    assert (error.location, error.kept) == (str(path), (name,))
    [record] = [r for r in caplog.records if "failed to load" in r.getMessage()]
    assert str(path) in record.getMessage()
    assert "the previous version of" in record.getMessage() and "is kept" in record.getMessage()
    # saved whole: the error goes, the new version runs
    allow = {"hooks": {"PreToolUse": [{"hooks": [{"type": "command", "command": "true"}]}]}}
    path.write_text(json.dumps(allow))
    assert pm.reload() == [name]
    assert pm.load_errors == [] and not _blocks(pm) and pm.get_plugin(name) is not before


def test_reload_reports_every_failure_to_on_error(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / ".kithooks" / "plugins").mkdir(parents=True)
    monkeypatch.chdir(project)
    monkeypatch.setenv("XDG_CONFIG_HOME", os.fspath(tmp_path / "config"))
    errors: list = []
    pm = kithooks.PluginManager(on_error=errors.append)
    path = project / ".kithooks" / "hooks.json"
    path.write_text(json.dumps(DENY))
    pm.load_plugin_files()
    path.write_text("{")
    pm.reload()
    [error] = errors
    assert error.kept == (f"command-hooks:{path}",) and "invalid JSON" in error.message


def test_a_hooks_json_removed_or_turned_off_loses_its_plugin(tmp_path, monkeypatch):
    pm, path = _manager(tmp_path, monkeypatch)
    path.write_text(json.dumps(DENY))
    pm.load_plugin_files()
    path.write_text(json.dumps({**DENY, "disableAllHooks": True}))
    assert pm.reload() == [] and pm.load_errors == [] and not _blocks(pm)
    path.write_text(json.dumps(DENY))
    assert pm.reload() == [f"command-hooks:{path}"] and _blocks(pm)
    path.unlink()
    assert pm.reload() == [] and pm.load_errors == [] and _names(pm) == []


def test_a_hooks_json_invalid_from_the_start_has_nothing_to_keep(tmp_path, monkeypatch):
    pm, path = _manager(tmp_path, monkeypatch)
    path.write_text("{")
    assert pm.load_plugin_files() == []
    path.write_text("{bad")
    assert pm.reload() == []
    [error] = pm.load_errors
    assert error.kept == () and "is kept" not in error.message and not _blocks(pm)


def test_no_dispatch_misses_the_hooks_json_guard_while_it_is_saved_in_place(tmp_path, monkeypatch):
    pm, path = _manager(tmp_path, monkeypatch)
    whole = json.dumps(DENY)
    path.write_text(whole)
    pm.load_plugin_files()
    stop = threading.Event()
    missed: list[object] = []

    def emitter() -> None:
        while not stop.is_set():
            if not _blocks(pm):
                missed.append(1)

    thread = threading.Thread(target=emitter, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        for _ in range(10):
            assert time.monotonic() < deadline
            for partial in ("", "{", whole[: len(whole) // 2], whole):
                path.write_text(partial)
                pm.reload()
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive(), "the dispatch thread is stuck"
    assert missed == [] and pm.load_errors == []


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
