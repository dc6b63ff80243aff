"""`--settings` naming the project's own `.kithooks/hooks.json` (by any path), or one file
twice, runs its hooks once and never crashes (real subprocesses: `plugins`, `replay`,
`demo`)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from test_cli_support import run_cli
from test_cli_wiring import recording


def counting_hooks(path: Path, log: Path) -> Path:
    """A settings file whose PreToolUse hook appends a line to ``log`` on every call."""
    command = f"cat >/dev/null; echo ran >> {shlex.quote(str(log))}"
    hooks = {"PreToolUse": [{"hooks": [{"type": "command", "command": command}]}]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"hooks": hooks}))
    return path


def runs(log: Path) -> int:
    return len(log.read_text().split()) if log.exists() else 0


def project(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "ran.log"
    return counting_hooks(tmp_path / ".kithooks" / "hooks.json", log), log


SAME_FILE = [
    pytest.param(lambda p: [str(p)], id="absolute"),
    pytest.param(lambda p: [".kithooks/hooks.json"], id="relative"),
    pytest.param(lambda p: ["./.kithooks/../.kithooks/hooks.json"], id="dotted"),
    pytest.param(lambda p: [str(p), ".kithooks/hooks.json"], id="twice"),
]


def settings_args(paths: list[str]) -> list[str]:
    return [arg for path in paths for arg in ("--settings", path)]


@pytest.mark.parametrize("given", SAME_FILE)
def test_plugins_lists_the_projects_hooks_json_once(tmp_path, given):
    hooks, _ = project(tmp_path)
    proc = run_cli(tmp_path, "plugins", "--no-entrypoints", "--json", *settings_args(given(hooks)))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "already registered" not in proc.stderr
    report = json.loads(proc.stdout)
    names = [p["name"] for p in report["plugins"] if p["name"].startswith("command-hooks:")]
    assert names == [f"command-hooks:{hooks}"] and report["load_errors"] == []


@pytest.mark.parametrize("given", SAME_FILE)
def test_replay_runs_the_projects_hooks_json_once(tmp_path, given):
    hooks, log = project(tmp_path)
    rec = recording(tmp_path, "ls")
    proc = run_cli(tmp_path, "replay", str(rec), "--no-entrypoints", *settings_args(given(hooks)))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert runs(log) == 1


def test_one_settings_file_given_twice_runs_once(tmp_path):
    log = tmp_path / "ran.log"
    other = counting_hooks(tmp_path / "conf" / "settings.json", log)
    rec = recording(tmp_path, "ls")
    args = settings_args([str(other), "conf/settings.json", "conf/../conf/settings.json"])
    proc = run_cli(tmp_path, "replay", str(rec), "--no-entrypoints", *args)
    assert proc.returncode == 0, proc.stderr
    assert runs(log) == 1
    listed = run_cli(tmp_path, "plugins", "--no-entrypoints", "--json", *args)
    assert listed.returncode == 0, listed.stderr
    names = [p["name"] for p in json.loads(listed.stdout)["plugins"]]
    assert (
        names.count(f"command-hooks:{other}") == 1
        and len([n for n in names if n.startswith("command-hooks:")]) == 1
    )


def test_demo_runs_the_projects_hooks_json_once(tmp_path):
    hooks, log = project(tmp_path)
    alone = run_cli(tmp_path, "demo", "--no-entrypoints", "--json")
    assert alone.returncode == 0, alone.stderr
    once = runs(log)
    assert once > 0
    log.unlink()
    proc = run_cli(tmp_path, "demo", "--no-entrypoints", "--json", "--settings", str(hooks))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert runs(log) == once
