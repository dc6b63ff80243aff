"""The features that meet in the `kithooks` command: command hooks from `--settings` and
`.kithooks/hooks.json`, `claude-hook`, and `replay --otel` (real subprocesses)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from test_cli_support import run_cli

HOOKS = Path(__file__).parent / "hooks"


def recording(tmp_path: Path, command: str) -> Path:
    """One turn with one bash call of ``command``."""
    events = [
        {"type": "agent_start", "prompt": "clean up"},
        {
            "type": "tool_call",
            "tool_name": "bash",
            "tool_call_id": "c1",
            "tool_kind": "execute",
            "input": json.dumps({"command": command}),
            "source": "llm",
        },
        {"type": "agent_end", "response": "done", "stop_reason": "stop"},
    ]
    path = tmp_path / "session.jsonl"
    path.write_text(
        "".join(json.dumps({"session_id": "s", "turn_id": "t1", "event": e}) + "\n" for e in events)
    )
    return path


def settings(path: Path) -> Path:
    script = shutil.copy(HOOKS / "deny_rm.sh", path.parent / "deny_rm.sh")
    Path(script).chmod(0o755)
    path.write_text(
        json.dumps(
            {
                "hooks": {
                    "PreToolUse": [
                        {"matcher": "Bash", "hooks": [{"type": "command", "command": str(script)}]}
                    ]
                }
            }
        )
    )
    return path


def test_settings_option_runs_a_claude_code_hook_in_replay(tmp_path):
    rec = recording(tmp_path, "rm -rf build")
    cfg = settings(tmp_path / "settings.json")
    proc = run_cli(
        tmp_path, "replay", str(rec), "--no-entrypoints", "--settings", str(cfg), "--json"
    )
    assert proc.returncode == 0, proc.stderr
    assert "rm is not allowed here" in proc.stdout
    allowed = run_cli(
        tmp_path,
        "replay",
        str(recording(tmp_path, "ls")),
        "--no-entrypoints",
        "--settings",
        str(cfg),
        "--json",
    )
    assert allowed.returncode == 0 and "rm is not allowed here" not in allowed.stdout


def test_project_hooks_json_is_discovered(tmp_path):
    rec = recording(tmp_path, "rm -rf build")
    (tmp_path / ".kithooks").mkdir()
    settings(tmp_path / ".kithooks" / "hooks.json")
    proc = run_cli(tmp_path, "replay", str(rec), "--no-entrypoints", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "rm is not allowed here" in proc.stdout
    listed = run_cli(tmp_path, "plugins", "--no-entrypoints")
    assert "command-hooks:" in listed.stdout


def test_a_bad_hooks_json_is_a_load_error_naming_the_file(tmp_path):
    (tmp_path / ".kithooks").mkdir()
    (tmp_path / ".kithooks" / "hooks.json").write_text('{"hooks": {"PreToolUse": [{}]}}')
    proc = run_cli(tmp_path, "replay", str(recording(tmp_path, "ls")), "--no-entrypoints")
    assert proc.returncode == 1
    assert "hooks.json" in proc.stderr and "PreToolUse[0]" in proc.stderr


def test_claude_hook_is_a_subcommand_of_kithooks(tmp_path):
    gate = tmp_path / "gate.py"
    gate.write_text(
        "import kithooks\n\n"
        "@kithooks.hookimpl\n"
        "def on_tool_call(event):\n"
        "    if 'rm -rf' in (event.parsed_args or {}).get('command', ''):\n"
        "        return kithooks.ToolCallResult(block=True, reason='not here')\n"
    )
    data = {
        "session_id": "s1",
        "cwd": str(tmp_path),
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "rm -rf /"},
        "tool_use_id": "t1",
    }
    proc = run_cli(
        tmp_path,
        "claude-hook",
        "-p",
        str(gate),
        "--no-entrypoints",
        stdin=json.dumps(data).encode(),
        KITHOOKS_STATE_DIR=str(tmp_path / "state"),
    )
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)["hookSpecificOutput"]
    assert (
        answer["permissionDecision"] == "deny" and "not here" in answer["permissionDecisionReason"]
    )


def test_replay_exports_the_sessions_traces_to_the_console(tmp_path):
    pytest.importorskip("opentelemetry.sdk")
    rec = recording(tmp_path, "ls")
    proc = run_cli(tmp_path, "replay", str(rec), "--no-entrypoints", "--otel", "console", "--json")
    assert proc.returncode == 0, proc.stderr
    json.loads(proc.stdout)  # the report stays valid JSON: spans go to stderr
    names = [
        json.loads(chunk)["name"]
        for chunk in proc.stderr.replace("}\n{", "}\x00{").split("\x00")
        if chunk.strip().startswith("{")
    ]
    assert any(n.startswith("invoke_agent") for n in names)
    assert "execute_tool bash" in names


def test_claude_hook_blocks_when_a_guard_plugin_fails_to_load(tmp_path):
    gate = tmp_path / "gate.py"
    gate.write_text(
        "import kithooks\n\n"
        "class Gate:\n"
        "    def __init__(self, config):\n"
        "        self.config = config\n\n"
        "    @kithooks.hookimpl\n"
        "    def on_tool_call(self, event):\n"
        "        return kithooks.ToolCallResult(block=True)\n"
    )
    data = {
        "session_id": "s1",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "rm -rf /"},
    }
    proc = run_cli(
        tmp_path,
        "claude-hook",
        "-p",
        str(gate),
        "--no-entrypoints",
        stdin=json.dumps(data).encode(),
        KITHOOKS_STATE_DIR=str(tmp_path / "state"),
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)  # Claude Code: exit 2 blocks
    assert "gate:Gate" in proc.stderr and proc.stdout == ""
    stop = {**data, "hook_event_name": "Stop"}
    proc = run_cli(
        tmp_path,
        "claude-hook",
        "-p",
        str(gate),
        "--no-entrypoints",
        stdin=json.dumps(stop).encode(),
        KITHOOKS_STATE_DIR=str(tmp_path / "state"),
    )
    assert proc.returncode == 1 and "gate:Gate" in proc.stderr
