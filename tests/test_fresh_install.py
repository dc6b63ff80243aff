"""`kithooks demo` on a fresh virtual environment installed from the checkout (a wheel
build, so packaging mistakes such as a missing data file show up here)."""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_demo_runs_from_a_fresh_install(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    pip = subprocess.run(
        [
            str(bindir / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    env.pop("PYTHONPATH", None)

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    proc = run(str(bindir / "kithooks"), "demo")
    assert proc.returncode == 0, proc.stderr
    assert "permission-gate blocked tool_call" in proc.stdout
    assert "agent_end: stop=stop tools=5" in proc.stdout
    # The demo ran from the installed wheel, not from this checkout: kithooks and its data
    # file are inside the fresh environment, and `python -m kithooks` is the same command.
    where = run(
        str(bindir / "python"),
        "-c",
        "import kithooks, kithooks.demo as d; print(kithooks.__file__); print(d.demo_recording())",
    )
    assert where.returncode == 0, where.stderr
    module, recording = (Path(line) for line in where.stdout.splitlines())
    assert module.is_relative_to(env_dir) and not module.is_relative_to(ROOT)
    assert recording.is_relative_to(env_dir) and recording.stat().st_size > 10_000
    as_module = run(str(bindir / "python"), "-m", "kithooks", "demo")
    assert as_module.returncode == 0 and as_module.stdout == proc.stdout
