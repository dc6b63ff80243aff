"""`kithooks new-plugin`: the generated project installs and its own tests pass."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from kithooks.scaffold import ScaffoldError, new_plugin

ROOT = Path(__file__).resolve().parent.parent
KITHOOKS = Path(sys.executable).parent / "kithooks"


def test_generated_project_installs_and_its_tests_pass(tmp_path):
    proc = subprocess.run(
        [str(KITHOOKS), "new-plugin", "token-meter", "--dir", str(tmp_path / "token-meter")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    project = tmp_path / "token-meter"
    assert (project / "src" / "token_meter" / "plugin.py").is_file()
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    for target in (f"{ROOT}[testing]", str(project)):
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", target],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert pip.returncode == 0, pip.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HYPOTHESIS_PROFILE")}
    tests = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "4 passed" in tests.stdout


def test_bad_names_and_non_empty_directories_are_refused(tmp_path):
    with pytest.raises(ScaffoldError, match="must be lowercase"):
        new_plugin("Bad Name", tmp_path / "x")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(ScaffoldError, match="not an empty directory"):
        new_plugin("ok", tmp_path / "taken")
    proc = subprocess.run(
        [str(KITHOOKS), "new-plugin", "Nope!"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("kithooks: plugin name 'Nope!'")
