"""State store throughput against SQLite, side by side in one process.

Rows: the number of keys already in the store. Columns:

- *store durable writes/s*: ``StateStore.set()`` on an existing key, each one durable when
  it returns (a journal record, fdatasync; compactions included as they fall due).
- *SQLite durable writes/s*: ``INSERT OR REPLACE`` of one row in autocommit, WAL mode,
  ``synchronous=FULL`` (each commit fsynced): the peer the issue names.
- *store/SQLite*: the ratio (1.0: as fast).
- *store writes/s inside batch()*: mutations grouped into one durable write at the end.
- *store reads/s*: ``get()`` of an existing key (it checks for other processes' writes).

Every store is filled first, then measured in interleaved rounds (each round: every size,
the store then SQLite), so a busy disk slows all alike; each figure is the median of the
rounds.

Run alone: ``python -m bench.state`` (``--quick``: tiny counts).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kithooks import StateStore

from .timing import table

SIZES = (10, 1_000, 10_000, 100_000)
VALUE = "x" * 20


def _rate(fn: Callable[[int], object], count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        fn(i)
    return count / (time.perf_counter() - start)


def _sqlite(path: Path, size: int) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO state VALUES (?, ?)",
        ((f"plugin:key-{i}", f"value-{i}-{VALUE}") for i in range(size)),
    )
    db.execute("COMMIT")
    return db


def _store(path: Path, size: int) -> StateStore:
    store = StateStore(path)
    with store.batch():
        for i in range(size):
            store.set(f"plugin:key-{i}", f"value-{i}-{VALUE}")
    store.compact()
    return store


def _store_write(store: StateStore, size: int) -> Callable[[int], object]:
    return lambda i: store.set(f"plugin:key-{i % size}", f"new-{i}")


def _sqlite_write(db: sqlite3.Connection, size: int) -> Callable[[int], object]:
    sql = "INSERT OR REPLACE INTO state VALUES (?, ?)"
    return lambda i: db.execute(sql, (f"plugin:key-{i % size}", f"new-{i}"))


def run(
    sizes: tuple[int, ...] = SIZES, mutations: int = 200, rounds: int = 5
) -> tuple[str, dict[int, dict[str, float]]]:
    """Measure every size; the Markdown section and the figures per size.

    Every round visits every size (the store, then SQLite), so drift in the disk's speed
    during the run affects all sizes and both peers alike.
    """
    samples: dict[int, dict[str, list[float]]] = {
        size: {"store": [], "sqlite": [], "batched": [], "reads": []} for size in sizes
    }
    # Under the home directory: /tmp is often a RAM disk, where fsync costs nothing.
    with tempfile.TemporaryDirectory(dir=Path.home()) as tmp:
        peers = {
            size: (
                _store(Path(tmp) / f"s{size}.ext-state.json", size),
                _sqlite(Path(tmp) / f"s{size}.sqlite", size),
            )
            for size in sizes
        }
        for _ in range(rounds):
            for size, (store, db) in peers.items():
                got = samples[size]
                got["store"].append(_rate(_store_write(store, size), mutations))
                got["sqlite"].append(_rate(_sqlite_write(db, size), mutations))
                with store.batch():
                    got["batched"].append(_rate(_store_write(store, size), mutations * 20))
                read = _rate(
                    lambda i, s=store, n=size: s.get(f"plugin:key-{i % n}"), mutations * 20
                )
                got["reads"].append(read)
        for store, db in peers.values():
            db.close()
            store.close()
    results = {
        size: {name: statistics.median(values) for name, values in got.items()}
        for size, got in samples.items()
    }
    rows = [
        [
            f"{size:,}",
            f"{r['store']:,.0f}",
            f"{r['sqlite']:,.0f}",
            f"{r['store'] / r['sqlite']:.2f}",
            f"{r['batched']:,.0f}",
            f"{r['reads']:,.0f}",
        ]
        for size, r in results.items()
    ]
    header = [
        "keys",
        "store durable writes/s",
        "SQLite WAL FULL durable writes/s",
        "store/SQLite",
        "store writes/s inside batch()",
        "store reads/s",
    ]
    text = table("State store", rows, header) + "\n" + _targets(results)
    return text, results


def _targets(results: dict[int, dict[str, float]]) -> str:
    lines = ["| state store target | measured | |", "|---|---|---|"]
    worst = min(r["store"] / r["sqlite"] for r in results.values())
    lines.append(
        f"| durable writes >= 0.5 x SQLite at every size | {worst:.2f} x at worst | "
        f"{'met' if worst >= 0.5 else 'MISSED'} |"
    )
    if 10 in results and 10_000 in results:
        flat = results[10_000]["store"] / results[10]["store"]
        lines.append(
            f"| at 10,000 keys >= 0.5 x the rate at 10 keys | {flat:.2f} x | "
            f"{'met' if flat >= 0.5 else 'MISSED'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.state", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts: proves it runs")
    args = parser.parse_args()
    text, _ = run(SIZES, 10 if args.quick else 300, 2 if args.quick else 7)
    print(text)


if __name__ == "__main__":
    main()
