"""Documentation checks: hookspecs.md is generated and complete, every hook is documented.

Like datasette's test_docs.py, these fail when a hook lacks documentation or a section.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

import kithooks
from kithooks import EventType
from kithooks.dispatch import KINDS, RULES
from kithooks.docgen import render
from kithooks.events import EVENT_CLASSES
from kithooks.hookspecs import KitHookSpecs

ROOT = Path(__file__).resolve().parent.parent
HOOKSPECS_MD = ROOT / "hookspecs.md"


def test_hookspecs_md_is_up_to_date():
    assert HOOKSPECS_MD.read_text(encoding="utf-8") == render(), (
        "hookspecs.md is stale: run 'python -m kithooks.docgen --write hookspecs.md'"
    )


def test_docgen_check_command_fails_on_a_stale_file(tmp_path):
    stale = tmp_path / "hookspecs.md"
    stale.write_text("old", encoding="utf-8")
    cmd = [sys.executable, "-m", "kithooks.docgen", "--check", str(stale)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "--write" in proc.stderr
    subprocess.run([sys.executable, "-m", "kithooks.docgen", "--write", str(stale)], check=True)
    assert subprocess.run(cmd, check=False).returncode == 0


@pytest.mark.parametrize("et", list(EventType), ids=str)
def test_every_event_has_payload_hookspec_and_section(et):
    text = HOOKSPECS_MD.read_text(encoding="utf-8")
    assert f"\n### {et.value}\n" in text
    section = text.split(f"\n### {et.value}\n", 1)[1].split("\n### ", 1)[0]
    cls = EVENT_CLASSES[et]
    assert f"`{cls.__name__}`" in section
    assert f"kind: **{KINDS[et].value}**" in section
    for f in attrs.fields(cls):
        assert f"| `{f.name}` |" in section, f"{et}: field {f.name} missing"
    if et in RULES:
        assert f"Result `{RULES[et].result_type.__name__}`" in section
        assert RULES[et].text in section


@pytest.mark.parametrize("et", list(EventType), ids=str)
def test_hookspec_docstring_names_its_kind_and_result(et):
    doc = inspect.getdoc(getattr(KitHookSpecs, et.hook_name)) or ""
    first = doc.splitlines()[0]
    assert KINDS[et].value.capitalize() in first, f"{et.hook_name}: first line must say the kind"
    assert "Emitted" in doc, f"{et.hook_name}: docstring must say when it is emitted"
    if et in RULES:
        assert RULES[et].result_type.__name__ in first


def test_public_api_is_documented():
    for name in kithooks.__all__:
        obj = getattr(kithooks, name)
        if callable(obj) and not isinstance(obj, type(kithooks.hookimpl)):
            assert inspect.getdoc(obj), f"kithooks.{name} has no docstring"
    for name, member in inspect.getmembers(kithooks.PluginManager):
        if not name.startswith("_") and name in vars(kithooks.PluginManager) and callable(member):
            assert inspect.getdoc(member), f"PluginManager.{name} has no docstring"


def test_changelog_keeps_a_changelog_form():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog")
    assert "## [Unreleased]" in text
    assert re.search(r"^### (Added|Changed|Fixed)", text, re.M)


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    match = re.search(r"<!-- test-command -->\n```sh\n(.+?)\n```", readme, re.S)
    assert match, "README must show the test command in a marked block"
    command = match.group(1).strip()
    assert command in ci, ".ci/run must run the README's test command as written"


def test_readme_code_blocks_are_the_tested_files():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- file: (\S+) -->\n```python\n(.*?)```", readme, re.S)
    assert len(blocks) >= 2
    for path, code in blocks:
        assert (ROOT / path).read_text(encoding="utf-8") == code, f"README block of {path} is stale"


def test_readme_demo_command_installs_and_runs_the_demo():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = re.search(r"```sh\n(.+?)\n```", readme, re.S)
    assert first and first.group(1).endswith("kithooks demo"), (
        "the demo is the README's first command"
    )


def test_reference_documents_the_context():
    text = HOOKSPECS_MD.read_text(encoding="utf-8")
    section = text.split("\n## Context\n", 1)[1]
    for f in attrs.fields(kithooks.Context):
        if not f.name.startswith("_"):
            assert f"| `{f.name}` |" in section, f"Context.{f.name} is not documented"
            assert f.metadata.get("doc"), f"Context.{f.name} has no meaning"
    for name in ("get_state", "set_state", "delete_state", "list_state", "emit_custom_event"):
        assert f"`{name}(" in section
