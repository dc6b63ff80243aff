"""The demo: a scripted two-turn agent session, its bundled recording, and the plugins.

``kithooks demo`` replays ``data/demo.jsonl`` through the discovered plugins and the bundled
examples. The recording was made by :func:`record_session`, which drives the scripted
session through the host helpers (:class:`kithooks.hosting.Turn`) with the example plugins
registered, as a real host would: the blocked command has no execution events, the
redacted result is recorded as the tool gave it. ``python -m kithooks.demo PATH`` writes it
again (a test checks the bundled file is what the script produces).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from types import ModuleType

from . import hosting
from .context import Context
from .events import (
    ModelChangeEvent,
    SessionShutdownEvent,
    SessionStartEvent,
    SubagentChunkEvent,
    SubagentEndEvent,
    SubagentStartEvent,
    ToolCallInputDeltaEvent,
    ToolCallInputEndEvent,
    ToolCallInputStartEvent,
    tool_kind_for,
)
from .examples import context_injector, permission_gate, secret_redactor, tool_logger, usage_budget
from .manager import PluginManager
from .recording import Recorder
from .usage import Usage

__all__ = [
    "DEMO_PREFIX",
    "EXAMPLE_PLUGINS",
    "demo_plugins",
    "demo_project",
    "demo_recording",
    "record_session",
]

SESSION = "demo-session"
#: The scripted session's clock: it starts at 2025-11-29 09:00 UTC and each recorded event
#: takes 40 ms, so the bundled recording (and the durations replay reports) never change.
START_MS, STEP_MS = 1_764_406_800_000, 40


def _scripted_clock() -> Callable[[], int]:
    ticks = itertools.count()
    return lambda: START_MS + STEP_MS * next(ticks)


#: The bundled example plugins, in the order the demo registers them.
EXAMPLE_PLUGINS: tuple[tuple[str, ModuleType], ...] = (
    ("permission-gate", permission_gate),
    ("secret-redactor", secret_redactor),
    ("context-injector", context_injector),
    ("usage-budget", usage_budget),
    ("tool-logger", tool_logger),
)


#: What ``kithooks demo`` puts before each bundled example's name.
DEMO_PREFIX = "demo:"


def demo_plugins() -> tuple[tuple[str, ModuleType], ...]:
    """The bundled examples as ``kithooks demo`` registers them: ``demo:permission-gate``
    and so on. The demo runs beside the user's own plugins, and a user's entry point may
    well be named ``permission-gate`` (the README's example is): under its bare name the
    bundled example would hold that name, and the user's plugin would fail to load."""
    return tuple((DEMO_PREFIX + name, module) for name, module in EXAMPLE_PLUGINS)


def demo_recording() -> Path:
    """The bundled recording."""
    return Path(str(resources.files("kithooks") / "data" / "demo.jsonl"))


def demo_project() -> Path:
    """The demo's working directory (it has an ``AGENTS.md`` for the context injector)."""
    return Path(str(resources.files("kithooks") / "data" / "demo-project"))


def _history(turn: hosting.Turn, history: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return turn.context_prepare(history, describe=lambda m: m, make=lambda r, c: (r, c))


def _stream_tool_input(
    pm: PluginManager, ctx: Context, call_id: str, name: str, args: dict[str, str]
) -> str:
    text = json.dumps(args)
    pm.emit(
        ToolCallInputStartEvent(
            tool_call_id=call_id, tool_name=name, tool_kind=tool_kind_for(name)
        ),
        ctx,
    )
    for i in range(0, len(text), 12):
        pm.emit(ToolCallInputDeltaEvent(tool_call_id=call_id, delta=text[i : i + 12]), ctx)
    pm.emit(ToolCallInputEndEvent(tool_call_id=call_id), ctx)
    return text


def _words(turn: hosting.Turn, text: str) -> None:
    for word in text.split(" "):
        turn.text(word + " ")


_PYTEST_OUTPUT = (
    "F.                                                                       [100%]",
    "FAILED tests/test_api.py::test_create_user - KeyError: 'email'",
    "1 failed, 1 passed in 0.21s",
)


def _pytest(pm: PluginManager, ctx: Context, call_id: str) -> str:
    for line in _PYTEST_OUTPUT:  # a streaming tool: one tool_output per line
        hosting.tool_output(pm, line + "\n", tool_call_id=call_id, tool_name="bash", ctx=ctx)
    return "\n".join(_PYTEST_OUTPUT)


def _read_env(_: str) -> str:
    return (
        "DATABASE_URL=postgres://localhost/app\n"
        "OPENAI_API_KEY=sk-proj-Zx81kQp0vT3mW9aLr5sYc2Nd\n"
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"
        "DEBUG=1"
    )


def _turn_one(pm: PluginManager, base: Context) -> None:
    turn = hosting.Turn(pm, turn_id="turn-1", ctx=base)
    ctx = turn.ctx
    prompt = turn.input(
        "The API tests fail. Find out why, then clean up the build output.", source="interactive"
    )
    turn.before_agent_start(prompt.text)
    history = [
        ("system", "You are a careful coding agent."),
        ("user", "Hi"),
        ("assistant", "Hello! What shall we work on?"),
    ]
    _history(turn, history)
    turn.agent_start(prompt.text)
    model = ("anthropic", "claude-sonnet-4-5")

    # step 0: run the failing tests, read the environment
    turn.prepare_step(0, history, describe=lambda m: m, make=lambda r, c: (r, c))
    turn.step_start(0)
    _words(turn, "I'll run the API tests first to see the failure.")
    args = _stream_tool_input(
        pm, ctx, "call_01", "bash", {"command": "pytest -q tests/test_api.py"}
    )
    turn.run_tool(
        lambda _: _pytest(pm, ctx, "call_01"), tool_name="bash", tool_call_id="call_01", input=args
    )
    args = _stream_tool_input(pm, ctx, "call_02", "read", {"path": ".env"})
    turn.run_tool(_read_env, tool_name="read", tool_call_id="call_02", input=args)
    turn.step_finish(
        0,
        provider=model[0],
        model=model[1],
        usage=Usage(input_tokens=3_412, output_tokens=187, cache_write_tokens=2_048),
        finish_reason="tool-calls",
        has_tool_calls=True,
    )

    # step 1: fix, then a dangerous clean-up the gate blocks
    turn.prepare_step(1, history, describe=lambda m: m, make=lambda r, c: (r, c))
    turn.step_start(1)
    _words(
        turn,
        "The test posts a user without an email. I'll fix the fixture and clean the build output.",
    )
    args = _stream_tool_input(
        pm,
        ctx,
        "call_03",
        "edit",
        {
            "path": "tests/conftest.py",
            "old": "name='ann'",
            "new": "name='ann', email='ann@example.com'",
        },
    )
    turn.run_tool(
        lambda _: "Edited tests/conftest.py (1 change)",
        tool_name="edit",
        tool_call_id="call_03",
        input=args,
    )
    args = _stream_tool_input(
        pm, ctx, "call_04", "bash", {"command": "rm -rf / --no-preserve-root"}
    )
    turn.run_tool(lambda _: "", tool_name="bash", tool_call_id="call_04", input=args)
    args = _stream_tool_input(pm, ctx, "call_05", "bash", {"command": "rm -rf build/ && pytest -q"})
    turn.run_tool(
        lambda _: "..  [100%]\n2 passed in 0.19s",
        tool_name="bash",
        tool_call_id="call_05",
        input=args,
    )
    turn.step_finish(
        1,
        provider=model[0],
        model=model[1],
        usage=Usage(input_tokens=1_203, output_tokens=402, cache_read_tokens=5_460),
        finish_reason="tool-calls",
        has_tool_calls=True,
    )

    # step 2: the answer
    turn.prepare_step(2, history, describe=lambda m: m, make=lambda r, c: (r, c))
    turn.step_start(2)
    answer = "Fixed: the user fixture lacked an email. Both API tests pass and build/ is cleaned."
    _words(turn, answer)
    turn.step_finish(
        2,
        provider=model[0],
        model=model[1],
        usage=Usage(input_tokens=980, output_tokens=96, cache_read_tokens=6_011),
        finish_reason="stop",
    )
    turn.end(response=answer, stop_reason="stop")


def _turn_two(pm: PluginManager, base: Context) -> None:
    pm.emit(
        ModelChangeEvent(
            new_model="openai/gpt-4o", previous_model="anthropic/claude-sonnet-4-5", source="user"
        ),
        base,
    )
    turn = hosting.Turn(pm, turn_id="turn-2", ctx=base)
    ctx = turn.ctx
    prompt = turn.input("Ask a subagent to summarize what changed.", source="interactive")
    turn.before_agent_start(prompt.text)
    history = [
        ("system", "You are a careful coding agent."),
        ("user", "The API tests fail..."),
        ("assistant", "Fixed: ..."),
    ]
    _history(turn, history)
    turn.agent_start(prompt.text)
    turn.prepare_step(0, history, describe=lambda m: m, make=lambda r, c: (r, c))
    turn.step_start(0)
    _words(turn, "Delegating the summary.")
    task = "Summarize the changes in this session in two sentences."
    args = _stream_tool_input(pm, ctx, "call_11", "subagent", {"task": task})
    pm.emit(SubagentStartEvent(tool_call_id="call_11", task=task), ctx)

    def subagent(_: str) -> str:
        chunks = [
            SubagentChunkEvent(tool_call_id="call_11", task=task, chunk_type="turn_start"),
            SubagentChunkEvent(
                tool_call_id="call_11", task=task, chunk_type="text", content="Reading the diff. "
            ),
            SubagentChunkEvent(
                tool_call_id="call_11",
                task=task,
                chunk_type="tool_call",
                tool_name="bash",
                tool_args='{"command": "git diff --stat"}',
            ),
            SubagentChunkEvent(
                tool_call_id="call_11",
                task=task,
                chunk_type="tool_execution_start",
                tool_name="bash",
            ),
            SubagentChunkEvent(
                tool_call_id="call_11", task=task, chunk_type="tool_execution_end", tool_name="bash"
            ),
            SubagentChunkEvent(
                tool_call_id="call_11",
                task=task,
                chunk_type="tool_result",
                tool_name="bash",
                tool_result=" tests/conftest.py | 2 +-",
            ),
            SubagentChunkEvent(
                tool_call_id="call_11",
                task=task,
                chunk_type="text",
                content="The fixture now has an email; tests pass.",
            ),
            SubagentChunkEvent(tool_call_id="call_11", task=task, chunk_type="turn_end"),
        ]
        for chunk in chunks:
            pm.emit(chunk, ctx)
        return "The user fixture gained an email field. The API tests pass again."

    result = turn.run_tool(subagent, tool_name="subagent", tool_call_id="call_11", input=args)
    pm.emit(SubagentEndEvent(tool_call_id="call_11", task=task, response=result.content), ctx)
    turn.step_finish(
        0,
        provider="openai",
        model="gpt-4o",
        usage=Usage(input_tokens=2_210, output_tokens=64, cache_read_tokens=1_024),
        finish_reason="tool-calls",
        has_tool_calls=True,
    )
    turn.prepare_step(1, history, describe=lambda m: m, make=lambda r, c: (r, c))
    turn.step_start(1)
    answer = "Summary: the user fixture gained an email field, and the API tests pass again."
    _words(turn, answer)
    turn.step_finish(
        1,
        provider="openai",
        model="gpt-4o",
        usage=Usage(input_tokens=2_391, output_tokens=41, cache_read_tokens=2_048),
        finish_reason="stop",
    )
    turn.end(response=answer, stop_reason="stop")


def record_session(path: str | os.PathLike[str]) -> None:
    """Run the scripted session with the example plugins and record it to ``path``."""
    target = Path(path)
    if target.exists():
        target.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        old = os.environ.get("KITHOOKS_TOOL_LOG")
        os.environ["KITHOOKS_TOOL_LOG"] = os.path.join(tmp, "tools.jsonl")
        try:
            pm = PluginManager(
                aggregate_turns=False, context=Context(session_id=SESSION, cwd=str(demo_project()))
            )
            with Recorder(target, clock=_scripted_clock()) as recorder:
                pm.register(recorder, name="recorder")
                for name, module in EXAMPLE_PLUGINS:
                    pm.register(module, name=name)
                base = pm.context
                pm.emit(SessionStartEvent(session_id=SESSION), base)
                _turn_one(pm, base)
                _turn_two(pm, base)
                pm.emit(SessionShutdownEvent(), base)
        finally:
            if old is None:
                del os.environ["KITHOOKS_TOOL_LOG"]
            else:
                os.environ["KITHOOKS_TOOL_LOG"] = old


if __name__ == "__main__":
    record_session(sys.argv[1] if len(sys.argv) > 1 else demo_recording())
