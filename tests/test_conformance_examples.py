"""Across adapters: the example agents tell the same story, the message helpers agree."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ADAPTERS = [("pydantic_ai", "pydantic_ai"), ("langchain", "langchain.agents")]


def run_example(name: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"{name}_agent.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize(("adapter", "needs"), ADAPTERS)
def test_the_example_agent_runs_offline(adapter, needs):
    pytest.importorskip(needs)
    out = run_example(adapter)
    assert "[REDACTED:openai-key]" in out and "sk-proj" not in out
    assert "permission gate: `rm -rf /`" in out
    assert "[turn] stop=stop tools=2 llm-calls=3" in out


def test_both_example_agents_print_the_same_report():
    for _, needs in ADAPTERS:
        pytest.importorskip(needs)
    outputs = [re.sub(r"duration=\d+ms", "duration=_", run_example(a)) for a, _ in ADAPTERS]
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize(("adapter", "needs"), ADAPTERS)
def test_make_message_and_describe_message_round_trip(adapter, needs):
    pytest.importorskip(needs)
    module = importlib.import_module(f"kithooks.adapters.{adapter}")
    describe, make = module.describe_message, module.make_message
    assert describe(make("assistant", "a")) == ("assistant", "a")
    assert describe(make("system", "s")) == ("system", "s")
    assert describe(make("user", "u")) == ("user", "u")
    assert describe(make("tool", "t")) == ("user", "t")  # a plugin's tool message is user text
