"""Run the benchmarks: ``python -m bench`` (``--quick``: tiny counts, proves the suite runs;
``--write``: also write bench/RESULTS.md and the README's Performance table). Every ratio
comes from one process run, the candidates measured in interleaved rounds."""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
from importlib.metadata import version
from pathlib import Path

from . import adapters, command_hooks, cost, dispatch, otel, payloads, startup, state, turn
from .peers import versions

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
#: The README's generated block sits between these two lines.
README_START = "<!-- bench:targets start (python -m bench --write) -->"
README_END = "<!-- bench:targets end -->"


class Targets:
    """The Targets table: one row per target, named, saying what it measures."""

    def __init__(self) -> None:
        self.rows: list[list[str]] = []

    def add(
        self, name: str, measures: str, measured: str, target: str, ok: bool | str | None
    ) -> None:
        """``ok`` None: not measured in this run (a peer not installed); "reported": a figure
        with no target."""
        status = "-" if ok is None else ok if isinstance(ok, str) else ("met" if ok else "MISSED")
        self.rows.append([name, measures, measured, target, status])

    def text(self) -> str:
        lines = [
            "| row | what it measures | measured | target | |",
            "|---|---|---|---|---|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"


def _targets(
    observe: dict[int, dict[str, float]],
    guarded: dict[str, dict[int, dict[str, float]]],
    aemit: dict[str, float],
    turned: dict[str, float],
    costs: dict[str, float],
    started: dict[str, float],
    asyncs: dict[str, float],
) -> Targets:
    t = Targets()
    three, empty = observe[3], observe[0]
    emit = three["kithooks emit"]
    t.add(
        "emit / pluggy, 3 observers",
        "one message_update to 3 observers: kithooks emit against pluggy's own hook call",
        f"{emit / three['pluggy']:.2f} x",
        "<= 0.5 x",
        emit <= 0.5 * three["pluggy"],
    )
    t.add(
        "emit / plain loop, 3 observers",
        "the same against a bare loop over the handler functions (no lock, no try)",
        f"{emit / three['plain loop']:.2f} x",
        "<= 3 x",
        emit <= 3 * three["plain loop"],
    )
    for peer, label, factor in (("langchain", "LangChain", 4.0), ("strands", "Strands", 1.5)):
        if peer in three:
            t.add(
                f"{label} / emit, 3 handlers",
                f"{label}'s dispatch of a pre-built payload to 3 handlers, against emit",
                f"{three[peer] / emit:.1f} x slower",
                f">= {factor:g} x slower",
                three[peer] >= factor * emit,
            )
        else:
            t.add(f"{label} / emit, 3 handlers", f"{label} is not installed", "-", "-", None)
    t.add(
        "emit / pluggy, no handlers",
        "message_update nobody handles: emit against pluggy's empty hook call",
        f"{empty['kithooks emit'] / empty['pluggy']:.2f} x",
        "<= 0.3 x",
        empty["kithooks emit"] <= 0.3 * empty["pluggy"],
    )
    for label, short in (
        ("tool_call (guard)", "tool_call guard"),
        ("tool_result (transform)", "tool_result transform"),
        ("input (transform)", "input transform"),
    ):
        r = guarded[label][3]
        ratio = r["kithooks emit"] / r["hand-written loop"]
        t.add(
            f"{short} / hand-written loop, 3 handlers",
            "emit against a loop with the same semantics (lock, try, type check, merge)",
            f"{ratio:.2f} x",
            "<= 1.5 x",
            ratio <= 1.5,
        )
    ratio = aemit["aemit"] / aemit["emit"]
    t.add(
        "aemit / emit, 3 observers",
        "await pm.aemit against pm.emit, plain observers, inside a coroutine",
        f"{ratio:.2f} x",
        "<= 1.5 x",
        ratio <= 1.5,
    )
    strands = asyncs.get("Strands invoke_callbacks_async")
    if strands is not None:
        ratio = asyncs["kithooks aemit"] / strands
        t.add(
            "aemit / Strands async, 3 coroutine observers",
            "await pm.aemit against Strands' invoke_callbacks_async, 3 async handlers",
            f"{ratio:.2f} x",
            "<= 1 x",
            ratio <= 1.0,
        )
    else:
        t.add(
            "aemit / Strands async, 3 coroutine observers",
            "Strands is not installed",
            "-",
            "-",
            None,
        )
    ratio = three["kithooks pm.hook"] / emit
    t.add(
        "pm.hook / emit, 3 observers",
        "pm.hook.on_message_update(event=..., ctx=...) against pm.emit",
        f"{ratio:.2f} x",
        "<= 2 x",
        ratio <= 2,
    )
    # The issue's absolute targets were set on a machine where genai-prices' calc_price took
    # 49 µs per call and its import 118 ms (of kithooks' 161 ms): each is judged here as the
    # same fraction of what genai-prices costs in this run, so a busy machine does not decide.
    slowest = max(
        (m for m in costs if not m.endswith(" calc_price")),
        key=lambda m: costs[m] / costs[f"{m} calc_price"],
    )
    ratio = costs[slowest] / costs[f"{slowest} calc_price"]
    t.add(
        "compute_cost / genai_prices.calc_price",
        "pricing a call of a model priced before, against genai-prices pricing it "
        f"(the slower of a flat and an hourly price: {slowest})",
        f"{ratio:.3f} x ({costs[slowest] / 1000:.2f} µs)",
        "<= 0.10 x (5 µs where calc_price takes 49 µs)",
        ratio <= 5 / 49,
    )
    ratio = started["import_ms"] / started["genai_import_ms"]
    t.add(
        "import kithooks / import genai_prices",
        "CPU time of a fresh process importing it (less python -c pass), against importing "
        "genai-prices; "
        f"genai-prices imported by kithooks: {'yes' if started['genai_prices'] else 'no'}",
        f"{ratio:.2f} x ({started['import_ms']:.0f} ms)",
        "<= 0.51 x (60 ms where genai-prices takes 118 ms)",
        ratio <= 60 / 118 and not started["genai_prices"],
    )
    t.add(
        "kithooks --help",
        "the kithooks command's help: CPU time of a fresh process, less python -c pass",
        f"{started['help_ms']:.0f} ms",
        "no number set (issue: 'fast')",
        "reported",
    )
    t.add(
        "turn with plugins, durable store",
        "a whole turn through the example plugins with the durable StateStore, per turn",
        f"{turned['with plugins, durable StateStore'] * 1e6:,.0f} µs",
        f"in-memory store: {turned['with plugins, in-memory store'] * 1e6:,.0f} µs",
        "reported",
    )
    t.add(
        "turn without / with plugins",
        "a whole turn with no plugins against it with the example plugins (in-memory store)",
        f"{turned['ratio']:.1%}",
        "< 10%",
        turned["ratio"] < 0.10,
    )
    return t


def _write_readme(block: str) -> None:
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{README}: no {README_START!r} ... {README_END!r} block to replace")
    README.write_text(
        pattern.sub(lambda _: f"{README_START}\n{block}{README_END}", text), encoding="utf-8"
    )


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts: proves the suite runs")
    parser.add_argument(
        "--write", action="store_true", help="write bench/RESULTS.md and the README's table"
    )
    args = parser.parse_args()
    if args.quick:
        number, rounds, mutations, turns, runs = 200, 3, 5, 2, 1
    else:
        number, rounds, mutations, turns, runs = 10_000, 9, 200, 10, 7
    out: list[str] = []
    peers = versions()
    machine = (
        f"Python {platform.python_version()} on {platform.machine()} ({platform.system()}, "
        f"{os.cpu_count()} cores, {_cpu()}, load average {os.getloadavg()[0]:.1f} at start); "
        f"kithooks {version('kithooks')}, attrs {version('attrs')}, "
        f"genai-prices {version('genai-prices')}, "
        + ", ".join(f"{k} {v}" for k, v in peers.items())
    )
    out.append(f"## kithooks benchmarks ({'quick' if args.quick else 'full'} run)\n")
    out.append(machine + "\n")
    observe_text, observe = dispatch.observe((0, 1, 3, 10), number, rounds)
    out.append(observe_text)
    gt_text, guarded = dispatch.guard_and_transform((1, 3, 10), number, rounds)
    out.append(gt_text)
    aemit_text, aemit = dispatch.aemit_vs_emit(number, rounds)
    out.append(aemit_text)
    async_text, asyncs = dispatch.async_vs_strands(number, rounds)
    out.append(async_text)
    turn_text, turned = turn.run(turns, rounds)
    out.append(turn_text)
    cost_text, costs = cost.run(number, rounds)
    out.append(cost_text)
    start_text, started = startup.run(runs)
    out.append(start_text)
    pay_text, _ = payloads.run(number, rounds)
    out.append(pay_text)
    state_text, _ = state.run((10, 1_000, 10_000, 100_000), mutations)
    out.append(state_text)
    out.append(otel.run(args.quick))
    out.append(command_hooks.run(args.quick))
    adapter_text, adapter_targets = adapters.run(args.quick)
    out.append(adapter_text)

    targets = _targets(observe, guarded, aemit, turned, costs, started, asyncs)
    for row in adapter_targets:
        targets.add(*row)
    out.append("### Targets\n\n" + targets.text())
    if "not installed" in peers.values():
        out.append(
            "(LangChain / Strands not installed: `pip install -e '.[bench]'` to compare "
            "with them.)\n"
        )
    text = "\n".join(out)
    print(text)
    if args.write:
        (HERE / "RESULTS.md").write_text(
            "# Benchmark results\n\nWritten by `python -m bench --write`.\n\n" + text,
            encoding="utf-8",
        )
        _write_readme(f"One run ({machine}):\n\n" + targets.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
