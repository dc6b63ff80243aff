"""State store throughput: durable mutations per second at 10, 1,000 and 10,000 keys."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from kithooks import StateStore

from .timing import table


def run(sizes: tuple[int, ...], mutations: int) -> tuple[str, dict[int, tuple[float, float]]]:
    results: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            store = StateStore(Path(tmp) / f"s{size}.ext-state.json")
            with store.batch():
                for i in range(size):
                    store.set(f"plugin:key-{i}", f"value-{i}-" + "x" * 20)
            start = time.perf_counter()
            for i in range(mutations):
                store.set(f"plugin:key-{i % size}", f"new-{i}")
            durable = mutations / (time.perf_counter() - start)
            start = time.perf_counter()
            with store.batch():
                for i in range(mutations * 100):
                    store.set(f"plugin:key-{i % size}", f"batched-{i}")
            batched = mutations * 100 / (time.perf_counter() - start)
            results[size] = (durable, batched)
    rows = [[f"{s:,}", f"{d:,.0f}", f"{b:,.0f}"] for s, (d, b) in results.items()]
    header = ["keys", "durable mutations/s (each saved + fsynced)", "mutations/s inside batch()"]
    return table("State store", rows, header), results
