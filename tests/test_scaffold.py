"""`kithooks new-plugin`: the generated project installs and its own tests pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kithooks.scaffold import KithooksSource, ScaffoldError, kithooks_requirement, new_plugin

ROOT = Path(__file__).resolve().parent.parent
KITHOOKS = Path(sys.executable).parent / "kithooks"


@pytest.mark.slow
def test_the_printed_next_steps_run_green_in_a_fresh_venv(tmp_path):
    """Every printed instruction, run verbatim, on a machine where kithooks is on no index."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "HYPOTHESIS_PROFILE", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if Path(p) != KITHOOKS.parent
    )
    proc = subprocess.run(
        [str(KITHOOKS), "new-plugin", "token-meter"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    header, *steps = proc.stdout.splitlines()
    assert header == "Created token-meter. Next:"
    steps = [s.strip() for s in steps]
    assert steps[0] == "cd token-meter" and steps[-1] == ".venv/bin/python -m pytest"
    pyproject = (tmp_path / "token-meter" / "pyproject.toml").read_text()
    assert f'"kithooks @ {ROOT.as_uri()}"' in pyproject  # this checkout, by location
    run = subprocess.run(
        " && ".join(steps),
        shell=True,
        executable="/bin/bash",
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "4 passed" in run.stdout
    installed = tmp_path / "token-meter" / ".venv" / "bin" / "kithooks"
    listed = subprocess.run(
        [str(installed), "plugins", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "token-meter" in [p["name"] for p in json.loads(listed.stdout)["plugins"]]


def test_the_project_names_where_kithooks_comes_from(tmp_path):
    local = KithooksSource(version="0.1.0", url="file:///src/kithooks")
    new_plugin("meter-a", tmp_path / "a", requirement=local)
    text = (tmp_path / "a" / "pyproject.toml").read_text()
    assert 'dependencies = ["kithooks @ file:///src/kithooks"]' in text
    assert 'test = ["kithooks[testing] @ file:///src/kithooks"]' in text
    assert "allow-direct-references = true" in text
    indexed = KithooksSource(version="1.2.0")
    new_plugin("meter-b", tmp_path / "b", requirement=indexed)
    text = (tmp_path / "b" / "pyproject.toml").read_text()
    assert 'dependencies = ["kithooks>=1.2.0"]' in text
    assert "allow-direct-references" not in text
    readme = (tmp_path / "b" / "README.md").read_text()
    assert "python3 -m venv .venv && .venv/bin/pip install -e '.[test]'" in readme
    assert "pypi.org" not in readme
    # This test runs from an editable install of the checkout: named by its location.
    assert kithooks_requirement().url == ROOT.as_uri()


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("kithooks", "would shadow the installed module 'kithooks'"),
        ("pytest", "would shadow the installed module 'pytest'"),
        ("json", "would shadow the standard library module 'json'"),
        ("class", "is a Python keyword"),
    ],
)
def test_names_that_shadow_a_module_are_refused(tmp_path, name, why):
    with pytest.raises(ScaffoldError, match=why):
        new_plugin(name, tmp_path / name)
    assert not (tmp_path / name).exists()
    proc = subprocess.run(
        [str(KITHOOKS), "new-plugin", name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and why in proc.stderr and "Traceback" not in proc.stderr


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


@pytest.mark.parametrize("name", ["1abc", "9", "-abc", "_abc"])
def test_a_name_not_starting_with_a_letter_is_told_so(name, tmp_path):
    """The message states the whole rule: lowercase, digits, a letter first, - or _ joins."""
    with pytest.raises(ScaffoldError, match="starting with a letter") as refused:
        new_plugin(name, tmp_path / "x")
    assert "lowercase letters and digits" in str(refused.value)
    assert "- or _" in str(refused.value)


@given(st.text(alphabet="ab1-_A ", max_size=8))
def test_every_name_refused_by_its_form_is_refused_with_the_whole_rule(name):
    """A name the rule refuses is told every part of it (whatever part it breaks)."""
    first_ok = name[:1].islower() and name[:1].isalpha()
    words = name.replace("_", "-").split("-")
    valid = first_ok and all(w and w.isalnum() and w == w.lower() for w in words)
    if valid:
        return  # a well-formed name may still be refused for shadowing a module
    with pytest.raises(ScaffoldError) as refused:
        new_plugin(name, "/nonexistent-never-written")
    message = str(refused.value)
    for part in ("lowercase letters and digits", "starting with a letter", "- or _"):
        assert part in message
