"""What a command hook costs per tool call, next to an in-process plugin doing the same check.

Every row answers one ``tool_call`` for ``grep -r TODO src`` (blocked) with the same rule:
"a bare grep is refused in favour of rg". The candidates are measured in interleaved rounds
in one process; each is timed over its own number of calls (thousands in process, a few as
subprocesses) and reported per call. ``python -m bench.command_hooks [--quick]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from kithooks import PluginManager, ToolCallEvent, ToolCallResult, hookimpl
from kithooks.command_hooks import AsyncCommandHooks, CommandHooks
from kithooks.command_hooks.runner import SHELL

from .timing import per_call_ns, table

VALIDATOR = Path(__file__).resolve().parent.parent / "tests" / "hooks" / "bash_validator.py"
_GREP = re.compile(r"^\s*grep\b(?!.*\|)")
_COMMAND = "grep -r TODO src"
_EVENT = ToolCallEvent(tool_name="bash", tool_call_id="c1", input=json.dumps({"command": _COMMAND}))

CLAUDE_HOOK_PLUGIN = """
import json, re
import kithooks

@kithooks.hookimpl
def on_tool_call(event):
    command = json.loads(event.input or "{}").get("command", "")
    if re.search(r"^\\s*grep\\b(?!.*\\|)", command):
        return kithooks.ToolCallResult(block=True, reason="use rg")
    return None
"""


class InProcessValidator:
    """The validator's rule as a kithooks plugin."""

    @hookimpl
    def on_tool_call(self, event: ToolCallEvent) -> ToolCallResult | None:
        command = json.loads(event.input or "{}").get("command", "")
        if _GREP.search(command):
            return ToolCallResult(block=True, reason="use rg")
        return None


def _hook_settings(command: str) -> dict[str, object]:
    hook = {"type": "command", "command": command, "timeout": 30}
    return {"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [hook]}]}}


def _manager(plugin: object) -> PluginManager:
    pm = PluginManager(aggregate_turns=False)
    pm.register(plugin)
    return pm


def _blocked(result: object) -> object:
    assert isinstance(result, ToolCallResult) and result.block, result
    return result


def _candidates(
    tmp: Path, loop: asyncio.AbstractEventLoop
) -> tuple[dict[str, Callable[[], object]], dict[str, str]]:
    python_hook = shlex.join([sys.executable, str(VALIDATOR)])
    shell_hook = "read -r -d '' input; case $input in *'\"grep '*) echo 'use rg' >&2; exit 2;; esac"
    in_process = _manager(InProcessValidator())
    shell = _manager(CommandHooks.from_settings(_hook_settings(shell_hook), project_dir=tmp))
    python = _manager(CommandHooks.from_settings(_hook_settings(python_hook), project_dir=tmp))
    async_pm = _manager(
        AsyncCommandHooks.from_settings(_hook_settings(python_hook), project_dir=tmp)
    )
    plugin_file = tmp / "validator_plugin.py"
    plugin_file.write_text(CLAUDE_HOOK_PLUGIN)
    stdin = json.dumps(
        {
            "session_id": "bench",
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": _COMMAND},
            "tool_use_id": "toolu_1",
        }
    )
    # The command the docs wire into Claude Code (the console script; else python -m kithooks).
    script = Path(sys.executable).with_name("kithooks")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "kithooks"]
    argv = [*command, "claude-hook", "--no-entrypoints"]
    env = {**os.environ, "KITHOOKS_STATE_DIR": str(tmp / "state"), "XDG_CONFIG_HOME": str(tmp)}

    def claude_hook() -> object:
        done = subprocess.run(
            [*argv, "-p", str(plugin_file)],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env=env,
            cwd=tmp,
        )
        assert '"deny"' in done.stdout, done.stdout + done.stderr
        return done

    hook_stdin = json.dumps({"hook_event_name": "PreToolUse", "tool_input": {"command": _COMMAND}})

    def bare_shell() -> object:
        done = subprocess.run(
            [SHELL, "-c", shell_hook],
            input=hook_stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done
        return done

    def import_only() -> object:
        return subprocess.run(
            [sys.executable, "-c", "import kithooks"], timeout=60, check=True, env=env, cwd=tmp
        )

    candidates: dict[str, Callable[[], object]] = {
        "in-process plugin": lambda: _blocked(in_process.emit(_EVENT)),
        "command hook, bash": lambda: _blocked(shell.emit(_EVENT)),
        "bare subprocess, bash": bare_shell,
        "command hook, python script": lambda: _blocked(python.emit(_EVENT)),
        "async command hook, python script": lambda: _blocked(
            loop.run_until_complete(async_pm.aemit(_EVENT))
        ),
        "claude-hook process": claude_hook,
        "python -c 'import kithooks'": import_only,
    }
    what = {
        "in-process plugin": "`pm.emit(tool_call)` to a plugin applying the rule in Python",
        "command hook, bash": "`CommandHooks`: one `bash -c` hook applying the rule (exit 2)",
        "bare subprocess, bash": "the same `bash -c` command through `subprocess.run`, "
        "no kithooks: the floor of a shell hook",
        "command hook, python script": "`CommandHooks`: tests/hooks/bash_validator.py (exit 2)",
        "async command hook, python script": "`AsyncCommandHooks` under `aemit`, same script",
        "claude-hook process": "what Claude Code pays to ask kithooks: one "
        "`kithooks claude-hook -p plugin.py` process, the command the docs wire in",
        "python -c 'import kithooks'": "starting Python and importing kithooks, nothing else: "
        "the floor of the row above",
    }
    return candidates, what


def run(quick: bool) -> str:
    """The markdown section: per-call cost of each way of running the check."""
    rounds = 2 if quick else 5
    calls = {
        "in-process plugin": 200 if quick else 2_000,
        "claude-hook process": 1 if quick else 3,
        "python -c 'import kithooks'": 1 if quick else 3,
    }
    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory() as tmp_name, contextlib.closing(loop):
        candidates, what = _candidates(Path(tmp_name), loop)
        samples: dict[str, list[float]] = {name: [] for name in candidates}
        for fn in candidates.values():  # warm up: imports, page cache
            fn()
        for _ in range(rounds):
            for name, fn in candidates.items():
                samples[name].append(per_call_ns(fn, calls.get(name, 1 if quick else 10)))
    medians = {name: statistics.median(v) for name, v in samples.items()}
    base = medians["in-process plugin"]
    rows = [[name, what[name], _format(ns), f"{ns / base:,.0f} x"] for name, ns in medians.items()]
    header = ["candidate", "what one call measures", "per tool call", "vs in-process"]
    note = (
        f"\nPython {platform.python_version()}, {os.cpu_count()} cores, {rounds} interleaved "
        "rounds, median per call. A command hook costs what starting its process costs (compare "
        "the bare subprocess row); a `claude-hook` call costs a little more than importing "
        "kithooks.\n"
    )
    return table("Command hooks: cost per tool call", rows, header) + note


def _format(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:,.1f} ms"
    return f"{ns / 1e3:,.1f} µs"


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv[1:]))
