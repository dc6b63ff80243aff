"""bench/adapters.py runs (quick counts; it asserts no timings)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("langchain.agents")
pytest.importorskip("pydantic_ai")

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_adapter_benchmark_runs_and_names_every_row():
    proc = subprocess.run(
        [sys.executable, "-m", "bench.adapters", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for framework in ("pydantic-ai", "LangChain"):
        for row in (
            "bare agent",
            "no-op hooks",
            "native hooks",
            "kithooks, 0 plugins",
            "kithooks, example plugins",
        ):
            assert f"| {framework} | {row} |" in out
        # The targets, judged on CPU time in a quick run (a full `python -m bench` with
        # valgrind judges them on instructions: tests/test_bench.py).
        assert f"{framework}: 0 plugins / bare agent: " in out
        assert f"{framework}: example plugins' overhead / native hooks': " in out
    assert "judged on CPU time in this run" in out


def test_native_hooks_and_the_example_plugins_do_the_same_work(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from bench import adapters

    (tmp_path / "AGENTS.md").write_text("Never delete files outside the repository.")
    with asyncio.Runner() as runner:
        made = adapters.pydantic_ai_candidates(str(tmp_path), runner)
        native, ours = made["native hooks"](), made["kithooks, example plugins"]()
        made = adapters.langchain_candidates(str(tmp_path), runner)
        lc_native, lc_ours = made["native hooks"](), made["kithooks, example plugins"]()
    assert ours.output == native.output and "[REDACTED:openai-key]" in ours.output
    parts = [
        [
            (type(p).__name__, str(getattr(p, "content", "")))
            for m in r.all_messages()
            for p in m.parts
        ]
        for r in (native, ours)
    ]
    assert parts[0] == parts[1] and "Project rules (AGENTS.md)" in parts[0][0][1]
    texts = [[(m.type, m.text) for m in state["messages"]] for state in (lc_native, lc_ours)]
    assert texts[0] == texts[1]
    # The gate checked the clean-up and let it run, as the bare agent runs it.
    assert texts[0][4] == ("tool", "ok")


def test_every_candidate_runs_the_same_tools(tmp_path, monkeypatch):
    """A candidate that skipped a tool (a blocked call) would do less framework work than
    the bare agent, and the overhead figures would count the saving as the hooks' cost
    going down: the benchmark checks every candidate's answer before measuring it."""
    monkeypatch.syspath_prepend(str(ROOT))
    from bench import adapters

    with asyncio.Runner() as runner:
        for made in (
            adapters.pydantic_ai_candidates(str(tmp_path), runner),
            adapters.langchain_candidates(str(tmp_path), runner),
        ):
            for name, run in made.items():
                adapters.check_same_work(name, run())  # raises when a tool did not run


def test_a_candidate_that_blocks_the_clean_up_is_refused(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from bench import adapters
    from examples.langchain_agent import ScriptedModel, build_agent

    import kithooks
    from kithooks.examples import permission_gate

    (tmp_path / "notes.txt").write_text("ship on Friday")
    pm = kithooks.PluginManager()
    pm.register(permission_gate)
    for command, blocked in (("rm -rf /", True), ("echo ok", False)):
        agent = build_agent(ScriptedModel(command=command), tmp_path.resolve(), pm)
        state = agent.invoke({"messages": [{"role": "user", "content": "tidy up"}]})
        if blocked:
            with pytest.raises(RuntimeError, match="did not run the clean-up"):
                adapters.check_same_work("blocking", state)
        else:
            adapters.check_same_work("allowing", state)
