"""pluggy's own test suite, run against ``kithooks.PluginManager(aggregate_turns=False)``.

The sdist of the installed pluggy version is downloaded at test time (never copied into this
repository); its ``testing/`` folder runs in a subprocess where ``pluggy.PluginManager`` is a
kithooks manager. Every test that fails there must be listed, with the deliberate difference
behind it, in docs/plugins.md (between the ``pluggy-compat`` markers): a new failure is a
broken promise and fails this test, and so does a listed test that now passes (the docs would
be stale).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "plugins.md"
PLUGGY_VERSION = importlib.metadata.version("pluggy")

#: Loaded with ``-p`` into the pluggy suite's pytest: swaps in the kithooks manager and writes
#: every test's outcome (and the first line of its failure) to $KH_COMPAT_OUT.
PATCH = '''
import json
import os

import pluggy

import kithooks


class KitHooksPluginManager(kithooks.PluginManager):
    """kithooks.PluginManager(aggregate_turns=False) for another project's markers."""

    def __init__(self, project_name):
        super().__init__(aggregate_turns=False)
        self.project_name = project_name


pluggy.PluginManager = KitHooksPluginManager
OUTCOMES = {}
MESSAGES = {}
PATCHED = []


def pytest_collection_finish(session):
    for item in session.items:
        seen = getattr(item.module, "PluginManager", KitHooksPluginManager)
        PATCHED.append(seen is KitHooksPluginManager)


def pytest_runtest_logreport(report):
    if OUTCOMES.get(report.nodeid) == "failed":
        return
    if report.failed:
        OUTCOMES[report.nodeid] = "failed"
        crash = getattr(report.longrepr, "reprcrash", None)
        MESSAGES[report.nodeid] = (crash.message if crash else str(report.longrepr))[:300]
    elif report.skipped:
        OUTCOMES[report.nodeid] = "skipped"
    elif report.when == "call":
        OUTCOMES[report.nodeid] = "passed"


def pytest_sessionfinish(session):
    with open(os.environ["KH_COMPAT_OUT"], "w") as fh:
        json.dump({"outcomes": OUTCOMES, "messages": MESSAGES, "patched": PATCHED}, fh)
'''

_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*(.+?)\s*\|\s*$")
_COUNT = re.compile(r"pluggy (\S+): (\d+) of (\d+) tests pass")


def documented() -> tuple[str, int, int, dict[str, str]]:
    """The version, passed and total counts, and the known failures from docs/plugins.md."""
    text = DOC.read_text()
    start, end = (
        text.index("<!-- pluggy-compat-start -->"),
        text.index("<!-- pluggy-compat-end -->"),
    )
    section = text[start:end]
    count = _COUNT.search(section)
    assert count, "docs/plugins.md: no 'pluggy X: P of T tests pass' line in the compat section"
    known = {m.group(1): m.group(2) for m in map(_ROW.match, section.splitlines()) if m}
    return count.group(1), int(count.group(2)), int(count.group(3)), known


@pytest.fixture(scope="module")
def pluggy_testing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``testing/`` folder of the installed pluggy version's sdist, fetched now."""
    tmp = tmp_path_factory.mktemp("pluggy-sdist")
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"),
            *("--disable-pip-version-check", "--quiet", "-d", str(tmp)),
            f"pluggy=={PLUGGY_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    sdists = list(tmp.glob("pluggy-*.tar.gz"))
    if proc.returncode != 0 or not sdists:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(
            f"cannot download the pluggy {PLUGGY_VERSION} sdist (registry unreachable?): {last}"
        )
    with tarfile.open(sdists[0]) as tar:
        members = [m for m in tar.getmembers() if "/testing/" in m.name]
        tar.extractall(tmp, members=members, filter="data")
    (folder,) = tmp.glob("pluggy-*/testing")
    return folder


def run_suite(testing: Path, tmp: Path) -> dict[str, object]:
    patch_dir = tmp / "patch"
    patch_dir.mkdir()
    (patch_dir / "kh_pluggy_compat.py").write_text(textwrap.dedent(PATCH))
    out = tmp / "outcomes.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(patch_dir),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",  # only pluggy's suite and the patch
        "KH_COMPAT_OUT": str(out),
    }
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "testing", "-p", "kh_pluggy_compat", "-q"),
            *("-p", "no:cacheprovider", "-o", "addopts="),
        ],
        cwd=testing.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.exists(), (
        f"pluggy's suite did not finish:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    result: dict[str, object] = json.loads(out.read_text())
    return result


@pytest.mark.slow
def test_pluggy_suite_fails_only_where_docs_say_why(pluggy_testing, tmp_path):
    result = run_suite(pluggy_testing, tmp_path)
    outcomes: dict[str, str] = result["outcomes"]  # type: ignore[assignment]
    messages: dict[str, str] = result["messages"]  # type: ignore[assignment]
    patched: list[bool] = result["patched"]  # type: ignore[assignment]
    assert patched and all(patched), "pluggy's tests did not get the kithooks PluginManager"
    failed = {t for t, o in outcomes.items() if o == "failed"}
    passed = sum(1 for o in outcomes.values() if o == "passed")
    version, doc_passed, doc_total, known = documented()

    new = sorted(failed - set(known))
    fixed = sorted(set(known) - failed)
    problems = []
    if new:
        problems.append(
            "new failures (a pluggy promise kithooks breaks; fix it, or document the "
            "deliberate difference in docs/plugins.md):\n"
            + "\n".join(f"  {t}: {messages.get(t, '')}" for t in new)
        )
    if fixed:
        problems.append(
            "listed in docs/plugins.md but passing now (remove them):\n"
            + "\n".join(f"  {t}" for t in fixed)
        )
    count = f"pluggy {PLUGGY_VERSION}: {passed} of {len(outcomes)} tests pass"
    if (version, doc_passed, doc_total) != (PLUGGY_VERSION, passed, len(outcomes)):
        problems.append(f"docs/plugins.md should say: {count}")
    assert not problems, "\n\n".join(problems)


def test_the_documented_failures_each_give_a_reason():
    _version, passed, total, known = documented()
    assert passed + len(known) <= total
    for test, reason in known.items():
        assert test.startswith("testing/test_") and "::" in test, test
        assert len(reason) > 10, f"{test}: say why it differs"
