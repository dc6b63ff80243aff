"""Start-up: ``import kithooks``, ``import genai_prices`` and ``kithooks --help``, each the
CPU time (user + system) of a fresh process less that of ``python -c pass``, best of N
interleaved rounds. CPU time, not wall time: on a busy machine wall time measures the other
processes. The modules
that weigh most come from ``python -X importtime`` of the best run."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

from .timing import table

#: Without this, a tree installed with PYTHONDONTWRITEBYTECODE=1 compiles every import.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _cpu_ms(commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    """Best CPU milliseconds of each command's process over ``runs`` interleaved rounds
    (each round runs every command once, so a change in the machine's load hits all)."""
    best = dict.fromkeys(commands, float("inf"))
    for _ in range(runs):
        for name, argv in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(argv, capture_output=True, check=True, env=_ENV, timeout=120)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            best[name] = min(best[name], used * 1000)
    return best


def _heaviest(module: str, runs: int) -> tuple[list[tuple[str, float]], bool]:
    """The modules under ``module`` costing most (cumulative ms, -X importtime) in the
    fastest of ``runs`` imports, and whether genai-prices was among them."""
    best: tuple[float, dict[str, float]] | None = None
    genai = False
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            check=True,
            env=_ENV,
            timeout=120,
        )
        modules: dict[str, float] = {}
        total = 0.0
        for line in proc.stderr.splitlines():
            if not line.startswith("import time:") or line.count("|") != 2:
                continue
            _, cumulative, name = line.split("|")
            if not cumulative.strip().isdigit():
                continue
            depth = (len(name) - len(name.lstrip())) // 2
            genai = genai or name.strip() == "genai_prices"
            if depth == 0 and name.strip() == module:
                total = float(cumulative)
            elif 1 <= depth <= 2:
                modules[name.strip()] = max(modules.get(name.strip(), 0.0), float(cumulative))
        if best is None or total < best[0]:
            best = (total, modules)
    assert best is not None
    ranked = sorted(best[1].items(), key=lambda kv: -kv[1])[:6]
    return [(name, us / 1000) for name, us in ranked], genai


def run(runs: int) -> tuple[str, dict[str, float]]:
    python = sys.executable
    script = Path(python).with_name("kithooks")
    help_argv = [str(script), "--help"] if script.exists() else [python, "-m", "kithooks"]
    best = _cpu_ms(
        {
            "bare": [python, "-c", "pass"],
            "kithooks": [python, "-c", "import kithooks"],
            "genai": [python, "-c", "import genai_prices"],
            "help": help_argv,
        },
        runs,
    )
    bare = best["bare"]
    kithooks_ms, genai_ms, help_ms = (best[k] - bare for k in ("kithooks", "genai", "help"))
    heaviest, genai = _heaviest("kithooks", runs)
    rows = [
        ["import kithooks", f"{kithooks_ms:.0f}"],
        ["import genai_prices", f"{genai_ms:.0f}"],
        ["kithooks --help", f"{help_ms:.0f}"],
        ["python -c pass (the baseline taken off the others)", f"{bare:.0f}"],
    ]
    text = table(f"Start-up, CPU ms of a fresh process (best of {runs})", rows, ["what", "ms"])
    text += (
        f"\ngenai-prices imported by `import kithooks`: {'yes' if genai else 'no'}. "
        "Heaviest imports under it (-X importtime, cumulative ms): "
        + ", ".join(f"{name} {ms:.1f}" for name, ms in heaviest)
        + ".\n"
    )
    return text, {
        "import_ms": kithooks_ms,
        "genai_import_ms": genai_ms,
        "help_ms": help_ms,
        "python_ms": bare,
        "genai_prices": float(genai),
    }
