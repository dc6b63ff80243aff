"""What the commands find: the project's `.kithooks` from a subdirectory, plugin folders and
test files that are not loaded (said, not silent), and the demo beside a user's plugin named
like a bundled example."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from test_cli_support import run_cli

GATE = """
import kithooks


class Gate:
    @kithooks.hookimpl
    def on_tool_call(self, event):
        if "rm -rf" in (event.parsed_args or {}).get("command", ""):
            return kithooks.ToolCallResult(block=True, reason="project gate")
        return None
"""


def project(tmp_path: Path) -> tuple[Path, Path]:
    """A project with a guard in `.kithooks/plugins`, and a subdirectory of it."""
    plugins = tmp_path / "proj" / ".kithooks" / "plugins"
    plugins.mkdir(parents=True)
    (plugins / "gate.py").write_text(GATE)
    sub = tmp_path / "proj" / "src" / "pkg"
    sub.mkdir(parents=True)
    return plugins, sub


def test_every_command_finds_the_project_from_a_subdirectory(tmp_path):
    plugins, sub = project(tmp_path)
    listed = run_cli(sub, "plugins", "--no-entrypoints", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["plugins"]
    assert [(r["name"], r["location"]) for r in rows] == [
        ("gate:Gate", str((plugins / "gate.py").resolve()))
    ]
    demo = run_cli(sub, "demo", "--no-entrypoints", "--json")
    assert demo.returncode == 0, demo.stderr
    assert "gate:Gate" in json.loads(demo.stdout)["plugins"]
    recording = sub / "r.jsonl"
    events = (
        {"type": "agent_start"},
        {"type": "tool_call", "tool_name": "bash", "parsed_args": {"command": "rm -rf /"}},
        {"type": "agent_end"},
    )
    base = {"session_id": "s", "turn_id": "t"}
    recording.write_text("".join(json.dumps({**base, "event": e}) + "\n" for e in events))
    replay = run_cli(sub, "replay", str(recording), "--no-entrypoints")
    assert replay.returncode == 0, replay.stderr
    assert "gate:Gate blocked tool_call" in replay.stdout


def test_a_plugin_folder_without_main_and_a_test_file_are_said(tmp_path):
    plugins, sub = project(tmp_path)
    (plugins / "gate.py").unlink()
    (plugins / "gate").mkdir()
    (plugins / "gate" / "gate.py").write_text(GATE)  # meant as a directory plugin
    (plugins / "test_gate.py").write_text(GATE)  # a test beside the plugins
    proc = run_cli(sub, "plugins", "--no-entrypoints")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = " ".join(proc.stderr.split())
    assert f"plugin folder '{plugins / 'gate'}' holds Python files (gate.py)" in err
    assert "neither main.py nor __init__.py" in err
    assert f"skipped {plugins / 'test_gate.py'}: it is named like a test" in err
    data = json.loads(run_cli(sub, "plugins", "--no-entrypoints", "--json").stdout)
    assert [n["location"] for n in data["skipped"]] == [str(plugins / "test_gate.py")]
    assert [e["name"] for e in data["load_errors"]] == ["gate"]


def test_the_demo_runs_beside_a_users_plugin_named_like_a_bundled_example(tmp_path):
    # the README's own entry point name is `permission-gate`
    site = tmp_path / "site"
    info = site / "my_gate-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-gate\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[kithooks]\npermission-gate = kh_test_my_gate\n")
    (site / "kh_test_my_gate.py").write_text(
        textwrap.dedent(
            """
            import kithooks

            @kithooks.hookimpl
            def on_agent_end(event, ctx):
                ctx.print(f"mine saw {event.tool_call_count} tools")
            """
        )
    )
    proc = run_cli(tmp_path, "demo", PYTHONPATH=str(site))
    assert proc.returncode == 0, proc.stderr
    assert "already taken" not in proc.stderr
    assert "  permission-gate says: mine saw 5 tools" in proc.stdout
    assert "  demo:permission-gate blocked tool_call" in proc.stdout
