"""The benchmarks still run (tiny counts; never timed here: no target is asserted)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_quick_run_works():
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for section in (
        "Observe dispatch",
        "Guard and transform",
        "A whole turn",
        "Payload construction",
        "State store",
        "Targets",
    ):
        assert section in proc.stdout
