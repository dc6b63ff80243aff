"""Run the benchmarks: ``python -m bench`` (``--quick``: tiny counts, proves the suite runs;
``--write``: also write bench/RESULTS.md). Every ratio comes from one process run, the
candidates measured in interleaved rounds."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from importlib.metadata import version
from pathlib import Path

from . import dispatch, payloads, state, turn
from .peers import versions

HERE = Path(__file__).resolve().parent


def _check(label: str, ok: bool, detail: str) -> str:
    return f"| {label} | {detail} | {'met' if ok else 'MISSED'} |"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts: proves the suite runs")
    parser.add_argument("--write", action="store_true", help="write bench/RESULTS.md")
    args = parser.parse_args()
    if args.quick:
        number, rounds, mutations, turns = 200, 3, 5, 3
    else:
        number, rounds, mutations, turns = 20_000, 15, 200, 40
    out: list[str] = []
    peers = versions()
    out.append(f"## kithooks benchmarks ({'quick' if args.quick else 'full'} run)\n")
    out.append(
        f"Python {platform.python_version()} on {platform.machine()} ({platform.system()}, "
        f"{os.cpu_count()} cores); kithooks {version('kithooks')}, attrs {version('attrs')}, "
        + ", ".join(f"{k} {v}" for k, v in peers.items())
        + "\n"
    )
    observe_text, observe = dispatch.observe((0, 1, 3, 10), number, rounds)
    out.append(observe_text)
    gt_text, _ = dispatch.guard_and_transform(number, rounds)
    out.append(gt_text)
    turn_text, turn_result = turn.run(turns, rounds)
    out.append(turn_text)
    pay_text, _ = payloads.run(number, rounds)
    out.append(pay_text)
    state_text, _ = state.run((10, 1_000, 10_000), mutations)
    out.append(state_text)

    three, empty = observe[3], observe[0]
    targets = ["### Targets", "", "| target | measured | |", "|---|---|---|"]
    targets.append(
        _check(
            "emit to 3 observers <= 0.5 x pluggy",
            three["kithooks"] <= 0.5 * three["pluggy"],
            f"{three['kithooks'] / three['pluggy']:.2f} x",
        )
    )
    targets.append(
        _check(
            "emit to 3 observers <= 3 x plain loop",
            three["kithooks"] <= 3 * three["plain loop"],
            f"{three['kithooks'] / three['plain loop']:.2f} x",
        )
    )
    if "langchain" in three:
        targets.append(
            _check(
                "emit >= 4 x faster than LangChain",
                three["langchain"] >= 4 * three["kithooks"],
                f"{three['langchain'] / three['kithooks']:.1f} x faster",
            )
        )
    if "strands" in three:
        targets.append(
            _check(
                "emit >= 1.5 x faster than Strands",
                three["strands"] >= 1.5 * three["kithooks"],
                f"{three['strands'] / three['kithooks']:.1f} x faster",
            )
        )
    targets.append(
        _check(
            "emit, no handlers <= 0.3 x pluggy's empty call",
            empty["kithooks"] <= 0.3 * empty["pluggy"],
            f"{empty['kithooks'] / empty['pluggy']:.2f} x",
        )
    )
    targets.append(
        _check(
            "turn with no plugins < 10% of the turn with them",
            turn_result["ratio"] < 0.10,
            f"{turn_result['ratio']:.1%}",
        )
    )
    out.append("\n".join(targets) + "\n")
    if "not installed" in peers.values():
        out.append(
            "(LangChain / Strands not installed: `pip install -e '.[bench]'` to compare "
            "with them.)\n"
        )
    text = "\n".join(out)
    print(text)
    if args.write:
        (HERE / "RESULTS.md").write_text(
            "# Benchmark results\n\nWritten by `python -m bench --write`.\n\n"
            + text.replace("## kithooks", "## kithooks", 1),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
