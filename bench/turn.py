"""A whole realistic turn, as a host emits it: about 40 lifecycle events and 500 streamed
``message_update`` chunks, through the turn aggregator and three example plugins
(permission gate, usage budget, stream monitor), once with the durable ``StateStore`` the
README recommends (a session file, each mutation saved and fsynced) and once with the
in-memory store; and the same turn with no plugins (a manager made with
``aggregate_turns=False``) and with the turn aggregator alone (a default manager: the
aggregator counts every turn, so the host builds and emits ``agent_start``, ``tool_call``,
``llm_usage`` and ``agent_end``).

The host does what a host should: ``if pm.has_handlers(type): pm.emit(Payload(...))``, so
the turn without plugins builds no payload at all.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import kithooks
from kithooks.examples import permission_gate, stream_monitor, usage_budget

from .timing import table


def script() -> list[tuple[type[kithooks.Event], dict[str, Any]]]:
    """The turn: (payload class, fields) in the original's order."""
    k = kithooks
    steps: list[tuple[type[k.Event], dict[str, Any]]] = [
        (k.InputEvent, {"text": "Fix the failing test", "source": "interactive"}),
        (k.BeforeAgentStartEvent, {"prompt": "Fix the failing test"}),
        (
            k.ContextPrepareEvent,
            {"messages": (k.ContextMessage(index=0, role="system", content="sys"),)},
        ),
        (k.AgentStartEvent, {"prompt": "Fix the failing test"}),
        (k.MessageStartEvent, {}),
    ]
    chunks_per_step = (200, 150, 150)
    for step, chunks in enumerate(chunks_per_step):
        steps += [
            (k.PrepareStepEvent, {"step_number": step}),
            (k.StepStartEvent, {"step_number": step}),
        ]
        steps += [(k.MessageUpdateEvent, {"chunk": f"tok{i} "}) for i in range(chunks)]
        if step < 2:
            call = f"call_{step}"
            args = json.dumps({"command": "pytest -q"})
            steps += [
                (
                    k.ToolCallInputStartEvent,
                    {"tool_call_id": call, "tool_name": "bash", "tool_kind": "execute"},
                ),
                (k.ToolCallInputDeltaEvent, {"tool_call_id": call, "delta": args}),
                (k.ToolCallInputEndEvent, {"tool_call_id": call}),
                (
                    k.ToolCallEvent,
                    {
                        "tool_name": "bash",
                        "tool_call_id": call,
                        "tool_kind": "execute",
                        "input": args,
                        "parsed_args": {"command": "pytest -q"},
                        "source": "llm",
                    },
                ),
                (
                    k.ToolExecutionStartEvent,
                    {"tool_call_id": call, "tool_name": "bash", "tool_kind": "execute"},
                ),
                (
                    k.ToolOutputEvent,
                    {
                        "tool_call_id": call,
                        "tool_name": "bash",
                        "tool_kind": "execute",
                        "chunk": "2 passed\n",
                    },
                ),
                (
                    k.ToolExecutionEndEvent,
                    {"tool_call_id": call, "tool_name": "bash", "tool_kind": "execute"},
                ),
                (
                    k.ToolResultEvent,
                    {
                        "tool_call_id": call,
                        "tool_name": "bash",
                        "tool_kind": "execute",
                        "input": args,
                        "content": "2 passed",
                    },
                ),
            ]
        finish = "tool-calls" if step < 2 else "stop"
        usage = {
            "input_tokens": 1200,
            "output_tokens": 80,
            "cache_read_tokens": 400,
            "cache_write_tokens": 0,
        }
        steps += [
            (
                k.StepFinishEvent,
                {"step_number": step, "has_tool_calls": step < 2, "finish_reason": finish, **usage},
            ),
            (
                k.LLMUsageEvent,
                {
                    **usage,
                    "cost": 0.0049,
                    "model": "claude-sonnet-4-5",
                    "provider": "anthropic",
                    "step_number": step,
                    "finish_reason": finish,
                },
            ),
        ]
    steps += [
        (k.MessageEndEvent, {"content": "done"}),
        (k.AgentEndEvent, {"response": "done", "stop_reason": "stop"}),
    ]
    return steps


def play(
    pm: kithooks.PluginManager,
    turn: list[tuple[type[kithooks.Event], dict[str, Any]]],
    ctx: kithooks.Context,
) -> None:
    has, emit = pm.has_handlers, pm.emit
    for cls, fields in turn:
        if has(cls.event_type):
            emit(cls(**fields), ctx)


ROWS = (
    "with plugins, durable StateStore",
    "with plugins, in-memory store",
    "no plugins",
    "turn aggregator alone",
)


def _with_plugins(state: kithooks.StateStore | None) -> kithooks.PluginManager:
    pm = kithooks.PluginManager(state=state)
    for name, p in (
        ("permission-gate", permission_gate),
        ("usage-budget", usage_budget),
        ("stream-monitor", stream_monitor.StreamMonitor()),
    ):
        pm.register(p, name=name)
    return pm


def run(turns: int, rounds: int) -> tuple[str, dict[str, float]]:
    turn = script()
    lifecycle = sum(1 for cls, _ in turn if cls is not kithooks.MessageUpdateEvent)
    with tempfile.TemporaryDirectory() as tmp:
        store = kithooks.StateStore.for_session(Path(tmp) / "session.jsonl")
        managers = {
            ROWS[0]: _with_plugins(store),
            ROWS[1]: _with_plugins(None),
            ROWS[2]: kithooks.PluginManager(aggregate_turns=False),
            ROWS[3]: kithooks.PluginManager(),
        }
        contexts = {label: kithooks.Context(session_id="bench", turn_id="t") for label in ROWS}
        samples: dict[str, list[float]] = {label: [] for label in ROWS}
        for label, pm in managers.items():
            play(pm, turn, contexts[label])  # warm up
        for _ in range(rounds):
            for label, pm in managers.items():
                start = time.perf_counter()
                for _ in range(turns):
                    play(pm, turn, contexts[label])
                samples[label].append((time.perf_counter() - start) / turns)
        assert store.keys(), "the durable store was never written"
    per_turn = {label: statistics.median(values) for label, values in samples.items()}
    events = len(turn)
    rows = [
        [label, f"{per_turn[label] * 1e6:,.0f}", f"{events / per_turn[label]:,.0f}"]
        for label in ROWS
    ]
    ratio = per_turn["no plugins"] / per_turn[ROWS[1]]
    text = table(
        f"A whole turn ({events} events: {lifecycle} lifecycle + "
        f"{events - lifecycle} message_update)",
        rows,
        ["plugins", "µs per turn", "events per second"],
    )
    text += (
        "\nThe host checks `has_handlers` before building a payload. The usage budget saves "
        "its total at each `llm_usage` (3 per turn): with the durable store each save appends "
        "one line to the journal and waits for fdatasync.\n"
        f"The turn with no plugins costs {ratio:.1%} of the turn with them (in-memory store), "
        f"{per_turn['no plugins'] / per_turn[ROWS[0]]:.2%} of it with the durable store.\n"
    )
    return text, {**per_turn, "ratio": ratio, "events": events}
