"""The usage-budget example plugin, driven through a manager as a plain-file plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

import kithooks
from kithooks import Context, PluginManager, StateStore, usage_event

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "usage_budget.py"


@pytest.fixture
def host(tmp_path):
    out: list[str] = []
    errors: list[str] = []
    ctx = Context(session_id="s1", turn_id="t1", print=out.append, print_error=errors.append)
    pm = PluginManager(state=StateStore.for_session(tmp_path / "s1.jsonl"), context=ctx)
    assert pm.load_plugin_files([EXAMPLE], user_dir=None, project_dir=None) == ["usage_budget"]
    return pm, out, errors, tmp_path / "s1.ext-state.json"


def turn(pm, *usages):
    pm.emit(kithooks.AgentStartEvent(prompt="p"))
    pm.emit(kithooks.ToolCallEvent(tool_name="bash"))
    pm.emit(kithooks.ToolCallEvent(tool_name="read"))
    for u in usages:
        pm.emit(u)
    pm.emit(kithooks.AgentEndEvent(response="ok", stop_reason="stop"))


def test_usage_lines_running_total_and_turn_report(host):
    pm, out, errors, sidecar = host
    pm.emit(kithooks.SessionStartEvent(session_id="s1"))
    assert pm.state.get("usage-budget:warn-at-usd") == "0.50"
    u0 = usage_event(
        provider="anthropic",
        model="claude-sonnet-4-5",
        input_tokens=10_000,
        output_tokens=1_000,
        step_number=0,
        finish_reason="tool-calls",
    )
    u1 = usage_event(
        provider="anthropic",
        model="claude-sonnet-4-5",
        input_tokens=12_000,
        output_tokens=500,
        cache_read_tokens=10_000,
        step_number=1,
        finish_reason="stop",
    )
    turn(pm, u0, u1)
    assert out[0].startswith("[usage] step=0 anthropic/claude-sonnet-4-5 tokens=↑10000 ↓1000")
    assert "cost=$0.0450 (tool-calls)" in out[0]
    total = u0.cost + u1.cost
    # The sidecar holds the journal's writes once compacted; a StateStore reads both.
    assert StateStore(sidecar).get("usage-budget:total-cost") == f"{total:.6f}"
    assert out[2].startswith("[turn] stop=stop tools=2 llm-calls=2 tokens=↑22000 ↓1500")
    assert f"cost=${total:.4f}" in out[2]
    assert out[3] == "[turn] tool order: bash, read"
    assert errors == []


def test_soft_cap_warns_once_over(host):
    pm, _out, errors, _ = host
    pm.state.set("usage-budget:warn-at-usd", "0.10")
    pm.emit(kithooks.SessionStartEvent())
    assert pm.state.get("usage-budget:warn-at-usd") == "0.10"  # not overwritten
    turn(pm, kithooks.LLMUsageEvent(cost=0.06), kithooks.LLMUsageEvent(cost=0.06))
    assert errors == ["[usage] session cost $0.1200 exceeds soft cap $0.10"]


def test_total_survives_a_new_manager_on_the_same_session(host, tmp_path):
    pm, _, _, _ = host
    turn(pm, kithooks.LLMUsageEvent(cost=0.2))
    again = PluginManager(state=StateStore.for_session(tmp_path / "s1.jsonl"))
    again.load_plugin_files([EXAMPLE], user_dir=None, project_dir=None)
    turn(again, kithooks.LLMUsageEvent(cost=0.3))
    assert again.state.get("usage-budget:total-cost") == "0.500000"


def test_a_bad_cap_is_reported_not_fatal(host):
    pm, _, errors, _ = host
    pm.state.set("usage-budget:warn-at-usd", "lots")
    pm.emit(kithooks.LLMUsageEvent(cost=0.01))
    assert errors == ["[usage] ignoring usage-budget:warn-at-usd='lots': not a number"]
