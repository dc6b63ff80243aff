"""Start-up: ``import kithooks`` (``python -X importtime``, best of N fresh processes) and
``kithooks --help``, next to a bare ``python -c pass``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .timing import table


def _import_times(runs: int) -> tuple[float, dict[str, float], bool]:
    """Best total µs of ``import kithooks``, that run's kithooks-level modules, and whether
    any run imported genai-prices."""
    best: tuple[float, dict[str, float]] | None = None
    genai = False
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import kithooks"],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            timeout=120,
        )
        modules: dict[str, float] = {}
        total = 0.0
        for line in proc.stderr.splitlines():
            if not line.startswith("import time:") or "|" not in line:
                continue
            _, cumulative, name = line.split("|")
            if not cumulative.strip().isdigit():
                continue
            depth = (len(name) - len(name.lstrip())) // 2
            if name.strip() == "genai_prices":
                genai = True
            if depth == 0 and name.strip() == "kithooks":
                total = float(cumulative)
            elif depth <= 2:
                modules[name.strip()] = max(modules.get(name.strip(), 0.0), float(cumulative))
        if best is None or total < best[0]:
            best = (total, modules)
    assert best is not None
    return best[0], best[1], genai


def _wall_ms(argv: list[str], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, timeout=120)
        best = min(best, time.perf_counter() - start)
    return best * 1000


def run(runs: int) -> tuple[str, dict[str, float]]:
    total_us, modules, genai = _import_times(runs)
    script = Path(sys.executable).with_name("kithooks")
    help_argv = [str(script), "--help"] if script.exists() else [sys.executable, "-m", "kithooks"]
    python_ms = _wall_ms([sys.executable, "-c", "pass"], runs)
    import_ms = _wall_ms([sys.executable, "-c", "import kithooks"], runs)
    help_ms = _wall_ms(help_argv, runs)
    heaviest = sorted(modules.items(), key=lambda kv: -kv[1])[:6]
    rows = [
        ["import kithooks (-X importtime, cumulative)", f"{total_us / 1000:.1f}"],
        ["python -c pass (process, wall)", f"{python_ms:.0f}"],
        ["python -c 'import kithooks' (process, wall)", f"{import_ms:.0f}"],
        ["kithooks --help (process, wall)", f"{help_ms:.0f}"],
    ]
    text = table(f"Start-up, ms (best of {runs})", rows, ["what", "ms"])
    text += (
        f"\ngenai-prices imported by `import kithooks`: {'yes' if genai else 'no'}. "
        "Heaviest imports under it (cumulative ms): "
        + ", ".join(f"{name} {us / 1000:.1f}" for name, us in heaviest)
        + ".\n"
    )
    return text, {
        "import_ms": total_us / 1000,
        "help_ms": help_ms,
        "python_ms": python_ms,
        "genai_prices": float(genai),
    }
