"""Documentation checks: hookspecs.md is generated and complete, every hook is documented.

Like datasette's test_docs.py, these fail when a hook lacks documentation or a section.
"""

from __future__ import annotations

import inspect
import os
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


# --------------------------------------------------------------------------- runnable docs
#
# Every ```python block of README.md and docs/*.md runs verbatim, each in a fresh interpreter
# in an empty temporary directory, offline (no API keys, HOME in the temporary directory). A
# block stands alone, with one documented exception: a block right under a
# `<!-- file: NAME -->` marker is also a file, and it is written as NAME into the directory
# of every later block of the same document (so a later block can import it).

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w*)\s*$")
_FILE_MARK = re.compile(r"^<!-- file: (\S+) -->$")


@attrs.frozen
class Block:
    doc: Path
    line: int  # of the first line of code
    code: str
    file: str | None  # the file it is, when marked

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def python_blocks(doc: Path) -> list[Block]:
    """The ```python blocks of ``doc``, with the line each starts on."""
    blocks: list[Block] = []
    lines = doc.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        assert end is not None, f"{doc.relative_to(ROOT)}:{i + 1}: unclosed code block"
        if fence.group(1) in ("python", "py"):
            marker = _FILE_MARK.match(lines[i - 1]) if i else None
            code = "\n".join(lines[i + 1 : end]) + "\n"
            blocks.append(Block(doc, i + 2, code, marker.group(1) if marker else None))
        i = end + 1
    return blocks


ALL_BLOCKS = [b for doc in DOCS for b in python_blocks(doc)]

# Blocks known to fail as written, by a hash of their content, each with why (none now).
# A listed block is a strict xfail: it fails the suite as soon as it passes unchanged, and
# once its text changes it runs like any other block.
KNOWN_BROKEN: dict[str, str] = {}


def _digest(code: str) -> str:
    import hashlib

    return hashlib.sha256(code.encode("utf-8")).hexdigest()[:12]


def _params() -> list[object]:
    params = []
    for b in ALL_BLOCKS:
        reason = KNOWN_BROKEN.get(_digest(b.code))
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        params.append(pytest.param(b, id=b.where, marks=marks))
    return params


def test_the_docs_have_python_blocks():
    assert len(ALL_BLOCKS) >= 3
    assert any(b.file == "examples/readme/readme_gate.py" for b in ALL_BLOCKS)


@pytest.mark.parametrize("block", _params())
def test_python_block_runs(block: Block, tmp_path):
    for earlier in python_blocks(block.doc):
        if earlier.line >= block.line:
            break
        if earlier.file is not None:
            (tmp_path / Path(earlier.file).name).write_text(earlier.code, encoding="utf-8")
    script = tmp_path / f"block_{block.line}.py"
    script.write_text(block.code, encoding="utf-8")
    secrets = ("API_KEY", "TOKEN", "SECRET")
    env = {k: v for k, v in os.environ.items() if not any(s in k for s in secrets)}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / ".config"))
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, (
        f"{block.where}: the python block fails:\n{proc.stderr[-3000:]}".replace(
            str(script), block.where
        )
    )


_CLAIMS = re.compile(r"block=True|cancel=True|\.block\b|\.cancel\b")
# The block asserts the result's flag, or what the model receives for a blocked call.
_SHOWS = re.compile(r"^\s*assert\b.*(\.(block|cancel)\b|\bblocked\b|Error: )", re.M)


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(ROOT)))
def test_a_block_that_blocks_something_shows_it_blocking(doc):
    """A block that blocks (or cancels) asserts it, itself or in a later block of the page."""
    blocks = [b for b in python_blocks(doc) if _digest(b.code) not in KNOWN_BROKEN]
    for i, b in enumerate(blocks):
        if _CLAIMS.search(b.code):
            assert any(_SHOWS.search(later.code) for later in blocks[i:]), (
                f"{b.where}: the block blocks or cancels something but no block from here on "
                "asserts the result's .block / .cancel (or what the model got for it)"
            )
