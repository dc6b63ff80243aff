"""The `kithooks` command, run through its real console script in a subprocess."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kithooks.demo import demo_recording
from test_cli_support import KITHOOKS, run_cli

RAISING = """
import kithooks

@kithooks.hookimpl
def on_message_update(event):
    raise RuntimeError("plugin bug")
"""

LISTENER = """
import kithooks

@kithooks.hookimpl
def on_tool_call(event, ctx):
    ctx.emit_custom_event("seen", event.tool_name)

@kithooks.hookimpl
def on_agent_end(event, ctx):
    ctx.print(f"turn used {event.tool_call_count} tools")
"""


@pytest.fixture
def run(tmp_path):
    return lambda *args: run_cli(tmp_path, *args)


def test_demo(run):
    proc = run("demo")
    assert proc.returncode == 0, proc.stderr
    assert "permission-gate blocked tool_call" in proc.stdout
    assert "secret-redactor rewrote tool_result" in proc.stdout
    assert "agent_end: stop=stop tools=5 (bash, read, edit, bash, bash) llm-calls=3" in proc.stdout
    assert "\x1b[" not in proc.stdout  # plain text when not a terminal


def test_demo_json(run):
    proc = run("demo", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    ends = [t["agent_end"] for t in data["turns"] if t["agent_end"]]
    assert [e["tool_call_count"] for e in ends] == [5, 1]
    assert "demo:permission-gate" in data["plugins"]


def test_replay_with_plugin_files_and_custom_events(run, tmp_path):
    plugin = tmp_path / "listener.py"
    plugin.write_text(LISTENER)
    recording = Path(__file__).resolve().parent.parent / "src" / "kithooks" / "data" / "demo.jsonl"
    proc = run("replay", str(recording), "--plugin", str(plugin), "--no-entrypoints", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    turn1 = next(t for t in data["turns"] if t["turn_id"] == "turn-1")
    customs = [a["detail"] for a in turn1["actions"] if a["kind"] == "custom_event"]
    assert customs == ["seen: bash", "seen: read", "seen: edit", "seen: bash", "seen: bash"]
    assert {"kind": "print", "detail": "turn used 5 tools"}.items() <= next(
        a for a in turn1["actions"] if a["kind"] == "print"
    ).items()


def test_replay_exit_1_when_a_plugin_fails(run, tmp_path):
    (tmp_path / "raising.py").write_text(RAISING)
    (tmp_path / "broken.py").write_text("def oops(:\n")
    recording = tmp_path / "r.jsonl"
    recording.write_text('{"event": {"type": "message_update", "chunk": "x"}}\n')
    proc = run("replay", str(recording), "-p", str(tmp_path / "raising.py"))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "kithooks: 1 plugin failure(s) of 1 kind(s); -v shows every traceback"
    )
    assert "raising FAILED on_message_update: RuntimeError: plugin bug" in proc.stdout
    proc = run("replay", str(recording), "-p", str(tmp_path / "broken.py"), "--json")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["events"] == 1  # the work was done
    assert data["load_errors"][0]["name"] == "broken"
    assert f"load error: plugin 'broken' (file {tmp_path / 'broken.py'})" in proc.stderr


def test_replay_bad_line_exit_2_with_one_line_reason(run, tmp_path):
    recording = tmp_path / "bad.jsonl"
    recording.write_text('{"event": {"type": "message_start"}}\n{"event": {"type": "oops"}}\n')
    proc = run("replay", str(recording))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"kithooks: {recording}:2: bad event: unknown event type 'oops' @ event.type "
        "(use --skip-bad to skip bad lines)"
    ]
    proc = run("replay", str(recording), "--skip-bad")
    assert proc.returncode == 0
    assert f"skipped {recording}:2" in proc.stderr


@pytest.mark.parametrize(
    "args", [("replay", "missing.jsonl"), ("no-such-command",), ("state", "get"), ("replay",)]
)
def test_bad_usage_exits_2(run, args):
    proc = run(*args)
    assert proc.returncode == 2
    assert proc.stderr.strip()


def test_plugins_lists_files_hooks_and_load_errors(run, tmp_path):
    d = tmp_path / "plugins"
    d.mkdir()
    (d / "listener.py").write_text(LISTENER)
    proc = run("plugins", "-p", str(d), "--no-entrypoints", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    (entry,) = data["plugins"]
    assert entry["name"] == "listener" and entry["kind"] == "file"
    assert entry["hooks"] == ["on_agent_end", "on_tool_call"]
    (d / "broken.py").write_text("import does_not_exist_anywhere\n")
    proc = run("plugins", "-p", str(d), "--no-entrypoints")
    assert proc.returncode == 1
    assert proc.stdout.startswith("listener\t")  # the listing is still printed
    assert "load error: plugin 'broken'" in proc.stderr
    assert "does_not_exist_anywhere" in proc.stderr


DEAD_FILTER = """
import kithooks

@kithooks.hookimpl(tools=["mcp__.*"])
def on_tool_call(event):
    return kithooks.ToolCallResult(block=True, reason="no MCP")
"""


def test_a_tools_filter_that_could_never_match_is_a_load_error(run, tmp_path):
    """It used to load, list its hook, and never run: a deny guard that allowed everything."""
    d = tmp_path / "plugins"
    d.mkdir()
    (d / "listener.py").write_text(LISTENER)
    (d / "dead.py").write_text(DEAD_FILTER)
    proc = run("plugins", "-p", str(d), "--no-entrypoints")
    assert proc.returncode == 1
    assert proc.stdout.startswith("listener\t")  # the others still load
    assert f"load error: plugin 'dead' (file {d / 'dead.py'}) failed to load: ValueError" in (
        proc.stderr
    )
    assert "for a regular expression write the string tools='mcp__.*'" in proc.stderr


def test_project_plugin_directory_is_discovered(run, tmp_path):
    d = tmp_path / ".kithooks" / "plugins"
    d.mkdir(parents=True)
    (d / "local.py").write_text(LISTENER)
    data = json.loads(run("plugins", "--no-entrypoints", "--json").stdout)
    assert [p["name"] for p in data["plugins"]] == ["local"]


def test_hooks_catalogue(run):
    proc = run("hooks", "--json")
    data = json.loads(proc.stdout)
    assert len(data) == 34 and data[0] == {
        "event": "tool_call",
        "hook": "on_tool_call",
        "kind": "guard",
        "payload": "ToolCallEvent",
        "fields": ["tool_name", "tool_call_id", "tool_kind", "input", "parsed_args", "source"],
        "result": "ToolCallResult",
    }
    assert run("hooks").returncode == 0


def test_state_commands(run, tmp_path):
    session = tmp_path / "sessions" / "abc.jsonl"
    sidecar = tmp_path / "sessions" / "abc.ext-state.json"
    assert run("state", "set", str(session), "budget", "1.5").returncode == 0
    assert json.loads(sidecar.read_text()) == {"budget": "1.5"}
    assert run("state", "get", str(session), "budget").stdout == "1.5\n"
    assert json.loads(run("state", "show", str(session), "--json").stdout) == {"budget": "1.5"}
    assert run("state", "show", str(sidecar)).stdout == "budget\t1.5\n"
    missing = run("state", "get", str(session), "nope")
    assert missing.returncode == 2 and missing.stderr.startswith("kithooks: no key 'nope'")
    assert run("state", "delete", str(session), "budget").returncode == 0
    assert json.loads(sidecar.read_text()) == {}
    assert run("state", "delete", str(session), "budget").returncode == 2
    sidecar.write_text("[not an object]")
    bad = run("state", "show", str(session))
    assert (
        bad.returncode == 2 and "not valid JSON" in bad.stderr and len(bad.stderr.splitlines()) == 1
    )


def _replay_with_stderr_on_a_pty(tmp_path, *args):
    """``kithooks replay ARGS`` with stderr (and stdin) on a terminal: its stdout and the
    terminal's text, read with a deadline."""
    import pty

    controller, terminal = pty.openpty()
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "TERM": "xterm",
    }
    env.pop("NO_COLOR", None)
    out = tmp_path / "stdout.txt"
    with out.open("wb") as stdout:
        proc = subprocess.Popen(
            [str(KITHOOKS), "replay", *args, "--no-entrypoints"],
            stdout=stdout,
            stderr=terminal,
            stdin=terminal,
            env=env,
            cwd=tmp_path,
        )
        os.close(terminal)
        seen = b""
        deadline = time.monotonic() + 60
        try:
            while True:
                left = deadline - time.monotonic()
                assert left > 0, "the replay on a pty did not finish within 60 s"
                ready, _, _ = select.select([controller], [], [], left)
                if not ready:
                    continue
                try:
                    chunk = os.read(controller, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            assert proc.wait(timeout=60) == 0
        finally:
            proc.kill()
            proc.wait(timeout=60)
            os.close(controller)
    return out.read_text(), seen


def test_long_replays_show_a_progress_bar_in_a_terminal(tmp_path):
    recording = tmp_path / "long.jsonl"
    line = json.dumps(
        {"session_id": "s", "turn_id": "t", "event": {"type": "message_update", "chunk": "x"}}
    )
    recording.write_text((line + "\n") * 3000)
    _, seen = _replay_with_stderr_on_a_pty(tmp_path, str(recording))
    assert b"replaying" in seen


def test_a_replay_of_a_pipe_in_a_terminal_replays_it_all(tmp_path):
    """Sizing the progress bar must not read a pipe (``kithooks replay <(cat rec.jsonl)``):
    the replay would then find it empty and report 0 events."""
    import threading

    fifo = tmp_path / "rec.fifo"
    os.mkfifo(fifo)
    recording = demo_recording().read_bytes()

    def feed() -> None:
        with fifo.open("wb") as pipe:
            pipe.write(recording)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    stdout, _ = _replay_with_stderr_on_a_pty(tmp_path, str(fifo))
    writer.join(timeout=60)
    assert not writer.is_alive()
    events = len(recording.splitlines())
    assert f"{events} events" in stdout, stdout[-500:]


GATE = """
import kithooks

@kithooks.hookimpl(tryfirst=True)
def on_tool_call(event):
    if event.tool_name == "rm":
        return kithooks.ToolCallResult(block=True, reason="no rm")
"""


def test_replay_counts_tool_calls_a_tryfirst_guard_blocks(run, tmp_path):
    (tmp_path / "gate.py").write_text(GATE)
    events = [
        {"type": "agent_start", "prompt": "p"},
        {"type": "tool_call", "tool_name": "ls", "tool_call_id": "c1"},
        {"type": "tool_call", "tool_name": "rm", "tool_call_id": "c2"},
        {"type": "agent_end", "response": "done", "stop_reason": "stop"},
    ]
    recording = tmp_path / "rec.jsonl"
    recording.write_text(
        "".join(json.dumps({"session_id": "s", "turn_id": "t", "event": e}) + "\n" for e in events)
    )
    proc = run("replay", "--no-entrypoints", "-p", "gate.py", "--json", str(recording))
    assert proc.returncode == 0, proc.stderr
    (turn,) = json.loads(proc.stdout)["turns"]
    assert turn["agent_end"]["tool_call_count"] == 2
    assert turn["agent_end"]["tool_names"] == ["ls", "rm"]
    assert [(a["kind"], a["plugin"]) for a in turn["actions"]] == [("block", "gate")]


KILLED_WRITER = """
import os, signal, sys
import kithooks

kithooks.StateStore.for_session(sys.argv[1]).set("budget:spent", "1.25")
os.kill(os.getpid(), signal.SIGKILL)  # no exit compaction: the state is in the journal only
"""


def test_state_commands_read_the_journal_of_a_killed_writer(run, tmp_path):
    session = tmp_path / "sess.jsonl"
    writer = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(session)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert writer.returncode == -signal.SIGKILL, writer.stderr
    sidecar = tmp_path / "sess.ext-state.json"
    assert not sidecar.exists() and Path(f"{sidecar}.journal").is_file()
    shown = run("state", "show", str(session))
    assert shown.returncode == 0 and shown.stdout == "budget:spent\t1.25\n", shown.stderr
    assert run("state", "show", str(sidecar), "--json").stdout == '{\n  "budget:spent": "1.25"\n}\n'
    assert run("state", "get", str(session), "budget:spent").stdout == "1.25\n"
    assert run("state", "delete", str(session), "budget:spent").returncode == 0
    assert run("state", "show", str(session), "--json").stdout == "{}\n"
    # A session with neither file still has no state.
    nothing = run("state", "show", str(tmp_path / "other.jsonl"))
    assert nothing.returncode == 2 and nothing.stderr.startswith("kithooks: no state file ")


CHATTY = """
import os
import subprocess

import kithooks

print("chatty plugin v1 loaded")
os.write(1, b"chatty fd write\\n")


@kithooks.hookimpl
def on_tool_call(event, ctx):
    print("chatty handler print")
    subprocess.run(["echo", "chatty subprocess"], check=True)
    return None
"""


@pytest.mark.parametrize("command", ["plugins", "demo", "replay"])
def test_what_a_plugin_prints_stays_out_of_the_commands_output(run, tmp_path, command):
    """Stdout is the command's output alone: what a plugin prints as it loads or in its
    handlers, by print, os.write on fd 1 or a subprocess, goes to stderr."""
    plugin = tmp_path / "chatty.py"
    plugin.write_text(CHATTY)
    args = [command, "--plugin", str(plugin), "--no-entrypoints"]
    if command == "replay":
        args.insert(1, str(demo_recording()))
    proc = run(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    json.loads(proc.stdout)  # a print before or inside the JSON broke it
    for text in ("chatty plugin v1 loaded", "chatty fd write"):
        assert text in proc.stderr
    if command != "plugins":  # plugins runs no handler
        assert "chatty handler print" in proc.stderr and "chatty subprocess" in proc.stderr
    piped = run(*args)  # the plain, piped output too: one record a line, nothing else
    assert piped.returncode == 0, piped.stderr
    assert "chatty fd write" in piped.stderr
    for text in ("loaded", "fd write", "handler print", "subprocess"):
        assert text not in piped.stdout
