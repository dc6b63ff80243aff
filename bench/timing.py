"""Side-by-side timing: candidates are measured in interleaved rounds in one process, so a
noisy machine slows them all alike, and each is given its fastest round. On a shared machine
the slower rounds measure the other processes (as :mod:`timeit`'s documentation says): the
median of 9 rounds of the same code put emit / plain loop anywhere from 2.6 x to 3.6 x, the
fastest round from 2.65 x to 2.71 x."""

from __future__ import annotations

import time
from collections.abc import Callable


def per_call_ns(fn: Callable[[], object], number: int) -> float:
    """Nanoseconds per call of ``fn`` over ``number`` calls."""
    start = time.perf_counter_ns()
    for _ in range(number):
        fn()
    return (time.perf_counter_ns() - start) / number


def compare(
    candidates: dict[str, Callable[[], object]], *, number: int, rounds: int
) -> dict[str, float]:
    """Ns per call of each candidate in its fastest of ``rounds`` interleaved rounds."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for fn in candidates.values():  # warm up
        per_call_ns(fn, max(1, number // 10))
    for _ in range(rounds):
        for name, fn in candidates.items():
            samples[name].append(per_call_ns(fn, number))
    return {name: min(values) for name, values in samples.items()}


def table(title: str, rows: list[list[str]], header: list[str]) -> str:
    """A Markdown table."""
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"
