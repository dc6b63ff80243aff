"""`kithooks` output at the edges: pipes, strict JSON, narrow encodings, closed pipes,
plugin names on printed lines, before -> after rewrites, recorded durations, async plugins,
``python -m kithooks``. Every test runs the real command in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kithooks.demo import demo_recording
from test_cli_support import KITHOOKS, cli_env, run_cli


@pytest.fixture
def run(tmp_path):
    return lambda *args, **kw: run_cli(tmp_path, *args, **kw)


def strict_json(text: str):
    """Parse as strict JSON: NaN, Infinity and -Infinity are errors."""

    def refuse(name):
        raise AssertionError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_piped_hooks_grep_finds_one_line_per_event(tmp_path):
    proc = subprocess.run(
        f"{KITHOOKS} hooks | grep tool_call_input_start",
        shell=True,
        cwd=tmp_path,
        env=cli_env(tmp_path, COLUMNS="40"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    assert line.split("\t") == [
        "tool_call_input_start",
        "on_tool_call_input_start",
        "observe",
        "ToolCallInputStartEvent",
        "tool_call_id,tool_name,tool_kind",
        "-",
    ]


def test_piped_listings_have_no_box_drawing(run):
    proc = run("hooks")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert len(lines) == 34
    assert all(line.count("\t") == 5 for line in lines)
    assert not any(c in proc.stdout for c in "┃━│─┏└╇")


PRINTER = """
import math
import kithooks

@kithooks.hookimpl
def on_message_update(event, ctx):
    ctx.print("chunk " + event.chunk + " " + "x" * 60)

@kithooks.hookimpl
def on_agent_end(event, ctx):
    helper(ctx)

def helper(ctx):
    ctx.print("line one\\nline two :x: [red]as typed[/red]")
    ctx.emit_custom_event("odd", {"nan": math.nan, "inf": math.inf, "obj": object()})
"""


def recording(path: Path, events: list[dict], **ids: str) -> Path:
    base = {"session_id": "s", "turn_id": "t", **ids}
    path.write_text("".join(json.dumps({**base, "event": e}) + "\n" for e in events))
    return path


def test_json_is_strict_and_names_the_plugin_of_every_action(run, tmp_path):
    (tmp_path / "printer.py").write_text(PRINTER)
    rec = recording(
        tmp_path / "r.jsonl",
        [{"type": "agent_start"}, {"type": "message_update", "chunk": "a"}, {"type": "agent_end"}],
    )
    proc = run("replay", str(rec), "-p", str(tmp_path / "printer.py"), "--json")
    assert proc.returncode == 0, proc.stderr
    data = strict_json(proc.stdout)
    actions = data["turns"][0]["actions"]
    assert [a["plugin"] for a in actions] == ["printer"] * 3
    odd = next(a for a in actions if a["kind"] == "custom_event")
    assert odd["after"]["nan"] is None and odd["after"]["inf"] is None
    assert odd["after"]["obj"].startswith("<object object")
    text = run("replay", str(rec), "-p", str(tmp_path / "printer.py"))
    # one record a line, as the plugin typed it
    assert "  printer says: line one\\nline two :x: [red]as typed[/red]" in text.stdout.splitlines()


def test_demo_json_plugin_is_never_empty(run):
    proc = run("demo", "--json")
    assert proc.returncode == 0, proc.stderr
    data = strict_json(proc.stdout)
    actions = [a for t in data["turns"] for a in t["actions"]]
    assert len(actions) > 10
    assert all(a["plugin"] for a in actions)
    says = {a["plugin"] for a in actions if a["kind"] == "print"}
    assert says == {"demo:usage-budget"}


@pytest.mark.parametrize("encoding", ["ascii", "cp1252", "latin-1"])
def test_narrow_encodings_escape_instead_of_crashing(run, encoding):
    plain = run("demo", PYTHONIOENCODING=encoding)
    assert plain.returncode == 0, plain.stderr
    assert "Traceback" not in plain.stderr
    assert "tokens=\\u21913412" in plain.stdout  # the arrow, escaped
    as_json = run("demo", "--json", PYTHONIOENCODING=encoding)
    assert as_json.returncode == 0, as_json.stderr
    utf8 = run("demo", "--json", PYTHONIOENCODING="utf-8")
    assert strict_json(as_json.stdout) == strict_json(utf8.stdout)


def test_a_closed_pipe_ends_quietly_with_exit_0(tmp_path):
    (tmp_path / "printer.py").write_text(PRINTER)
    rec = recording(
        tmp_path / "long.jsonl", [{"type": "message_update", "chunk": str(i)} for i in range(5000)]
    )
    proc = subprocess.Popen(
        [str(KITHOOKS), "replay", str(rec), "-p", str(tmp_path / "printer.py")],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout.readline().startswith(b"Replaying ")
    proc.stdout.close()  # the reader goes away, as `| head -1` does
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 0
    proc.stderr.close()
    assert stderr == b""


def test_demo_piped_into_head(tmp_path):
    proc = subprocess.run(
        f"set -o pipefail; {KITHOOKS} demo | head -1",
        shell=True,
        executable="/bin/bash",
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("Replaying ")


TRANSFORMER = """
import kithooks

@kithooks.hookimpl
def on_input(event):
    return kithooks.InputResult(action="transform", text=event.text.upper())

@kithooks.hookimpl
def on_tool_result(event):
    return kithooks.ToolResultResult(content=event.content.replace("secret", "[gone]"))

@kithooks.hookimpl
def on_tool_call(event):
    return kithooks.ToolCallResult(args={**event.parsed_args, "command": "ls -la"})
"""


def test_rewrites_show_before_and_after(run, tmp_path):
    (tmp_path / "upper.py").write_text(TRANSFORMER)
    rec = recording(
        tmp_path / "r.jsonl",
        [
            {"type": "input", "text": "make it loud"},
            {"type": "tool_result", "tool_name": "read", "content": "the secret is 42"},
            {"type": "tool_call", "tool_name": "bash", "input": '{"command": "ls", "cwd": "/"}'},
        ],
    )
    proc = run("replay", str(rec), "-p", str(tmp_path / "upper.py"), "--no-entrypoints")
    assert proc.returncode == 0, proc.stderr
    assert (
        '  upper rewrote tool_call: args {"command": "ls", "cwd": "/"} -> '
        '{"command": "ls -la", "cwd": "/"}'
    ) in proc.stdout
    assert "  upper transformed input: 'make it loud' -> 'MAKE IT LOUD'" in proc.stdout
    assert "  upper rewrote tool_result: 'the secret is 42' -> 'the [gone] is 42'" in proc.stdout
    data = strict_json(run("replay", str(rec), "-p", str(tmp_path / "upper.py"), "--json").stdout)
    rewrite = data["turns"][0]["actions"][1]
    assert rewrite["before"] == "the secret is 42"
    assert rewrite["after"]["content"] == "the [gone] is 42"


def test_the_demo_rewrite_shows_the_redaction(run):
    proc = run("demo")
    (line,) = [x for x in proc.stdout.splitlines() if "secret-redactor rewrote" in x]
    before, after = line.split(" -> ")
    assert "sk-proj-" in before and "[REDACTED:openai-key]" in after


def test_durations_are_the_recordings(run, tmp_path):
    lines = [json.loads(x) for x in demo_recording().read_text(encoding="utf-8").splitlines()]
    times = {
        r["event"]["type"]: r["time_ms"]
        for r in lines
        if r["turn_id"] == "turn-1" and r["event"]["type"] in ("agent_start", "agent_end")
    }
    data = strict_json(run("demo", "--json").stdout)
    turn1 = next(t for t in data["turns"] if t["turn_id"] == "turn-1")
    assert turn1["agent_end"]["duration_ms"] == times["agent_end"] - times["agent_start"] > 1000
    # Without times, the duration the recording's agent_end carries is kept.
    rec = recording(
        tmp_path / "untimed.jsonl",
        [{"type": "agent_start"}, {"type": "agent_end", "duration_ms": 98765}],
    )
    (tmp_path / "printer.py").write_text(PRINTER)
    out = run("replay", str(rec), "-p", str(tmp_path / "printer.py"))
    assert out.returncode == 0, out.stderr
    assert "duration=98765ms" in out.stdout


ASYNC_PLUGIN = """
import asyncio
import kithooks

@kithooks.hookimpl
async def on_tool_call(event, ctx):
    await asyncio.sleep(0)
    if "rm -rf" in (event.parsed_args or {}).get("command", ""):
        return kithooks.ToolCallResult(block=True, reason="async gate says no")
    return None

@kithooks.hookimpl
async def on_agent_end(event, ctx):
    await asyncio.sleep(0)
    ctx.print(f"async saw {event.tool_call_count} tools")
"""


def test_async_plugins_work_in_replay_and_demo(run, tmp_path):
    (tmp_path / "agate.py").write_text(ASYNC_PLUGIN)
    proc = run("demo", "-p", str(tmp_path / "agate.py"))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "  agate says: async saw 5 tools" in proc.stdout
    assert "  demo:permission-gate blocked tool_call" in proc.stdout  # the first guard wins
    rec = recording(
        tmp_path / "r.jsonl",
        [
            {"type": "agent_start"},
            {"type": "tool_call", "tool_name": "bash", "parsed_args": {"command": "rm -rf /"}},
            {"type": "agent_end"},
        ],
    )
    proc = run("replay", str(rec), "-p", str(tmp_path / "agate.py"), "--no-entrypoints")
    assert proc.returncode == 0, proc.stderr
    assert "  agate blocked tool_call: async gate says no" in proc.stdout
    assert "  agate says: async saw 1 tools" in proc.stdout


def test_python_dash_m_kithooks_is_the_command(run, tmp_path):
    as_module = run_cli(tmp_path, "hooks", "--json", command=(sys.executable, "-m", "kithooks"))
    script = run("hooks", "--json")
    assert as_module.returncode == 0 == script.returncode
    assert as_module.stdout == script.stdout
    bad = run_cli(tmp_path, "nope", command=(sys.executable, "-m", "kithooks"))
    assert bad.returncode == 2 and "No such command 'nope'" in bad.stderr
