"""Run the benchmarks: ``python -m bench`` (``--quick`` for a smoke run with tiny counts)."""

from __future__ import annotations

import argparse
import platform
import sys
from importlib.metadata import version

from . import dispatch, state


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts: proves the suite runs")
    args = parser.parse_args()
    number, rounds, mutations = (200, 3, 5) if args.quick else (20_000, 15, 200)
    print(f"## kithooks benchmarks ({'quick' if args.quick else 'full'} run)\n")
    print(
        f"Python {platform.python_version()} on {platform.machine()} ({platform.system()}), "
        f"pluggy {version('pluggy')}, attrs {version('attrs')}, kithooks {version('kithooks')}\n"
    )
    text, _ = dispatch.observe((0, 1, 3, 10), number, rounds)
    print(text)
    text, _ = state.run((10, 1_000, 10_000), mutations)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
