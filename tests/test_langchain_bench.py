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
    assert texts[0][4][1].startswith("Error: permission gate: `rm -rf /`")
