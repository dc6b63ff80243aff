"""Building the payloads of the hottest events, against a frozen slotted dataclass that
validates nothing (what a hand-written payload would cost)."""

from __future__ import annotations

import dataclasses

import kithooks

from .timing import compare, table


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PlainMessageUpdate:
    chunk: str = ""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PlainToolOutput:
    tool_call_id: str = ""
    tool_name: str = ""
    tool_kind: str = ""
    chunk: str = ""
    is_stderr: bool = False


def run(number: int, rounds: int) -> tuple[str, dict[str, dict[str, float]]]:
    cases = {
        "message_update": (
            lambda: kithooks.MessageUpdateEvent(chunk="tok"),
            lambda: PlainMessageUpdate(chunk="tok"),
        ),
        "tool_output": (
            lambda: kithooks.ToolOutputEvent(
                tool_call_id="c1",
                tool_name="bash",
                tool_kind="execute",
                chunk="line\n",
                is_stderr=False,
            ),
            lambda: PlainToolOutput(
                tool_call_id="c1",
                tool_name="bash",
                tool_kind="execute",
                chunk="line\n",
                is_stderr=False,
            ),
        ),
        "tool_call_input_delta": (
            lambda: kithooks.ToolCallInputDeltaEvent(tool_call_id="c1", delta='{"a'),
            None,
        ),
    }
    results: dict[str, dict[str, float]] = {}
    for name, (ours, plain) in cases.items():
        candidates = {"kithooks (validated)": ours}
        if plain is not None:
            candidates["dataclass (unvalidated)"] = plain
        results[name] = compare(candidates, number=number, rounds=rounds)
    rows = [
        [
            name,
            f"{r['kithooks (validated)']:.0f}",
            f"{r['dataclass (unvalidated)']:.0f}" if "dataclass (unvalidated)" in r else "-",
        ]
        for name, r in results.items()
    ]
    return table(
        "Payload construction, ns per payload",
        rows,
        ["event", "kithooks ns", "frozen dataclass ns"],
    ), results
