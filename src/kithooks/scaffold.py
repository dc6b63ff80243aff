"""``kithooks new-plugin NAME``: write a pip-installable plugin project whose tests pass.

The project has a ``pyproject.toml`` with the ``kithooks`` entry point, a plugin module,
and tests that use the harness and the contract check of the shipped pytest plugin.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["ScaffoldError", "new_plugin"]

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")


class ScaffoldError(ValueError):
    """The project cannot be written (bad name, or the directory is not empty)."""


PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[project]
name = "{name}"
version = "0.1.0"
description = "A kithooks plugin."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["kithooks>={kithooks_version}"]

[project.optional-dependencies]
test = ["kithooks[testing]>={kithooks_version}"]

# This is how kithooks finds the plugin once the package is installed.
[project.entry-points.kithooks]
{name} = "{package}.plugin"

[tool.hatch.build.targets.wheel]
packages = ["src/{package}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

README = """\
# {name}

A [kithooks](https://pypi.org/project/kithooks/) plugin. Installed, it is found through
the `kithooks` entry-point group (`kithooks plugins` lists it).

    python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest

`src/{package}/plugin.py` holds the handlers; `tests/test_plugin.py` drives them with the
kithooks harness and property-tests them against the event contracts.
"""

PLUGIN = '''\
"""{name}: a kithooks plugin.

It blocks shell commands that mention a forbidden word, and counts the session's turns in
the session state. Add handlers named after any event (see hookspecs.md of kithooks).
"""

from __future__ import annotations

import kithooks

FORBIDDEN = ("rm -rf /", "mkfs")
TURNS_KEY = "{name}:turns"


@kithooks.hookimpl
def on_tool_call(event: kithooks.ToolCallEvent, ctx: kithooks.Context) -> kithooks.ToolCallResult | None:
    """Block a shell call whose command holds a forbidden word."""
    if event.tool_name.lower() not in ("bash", "shell"):
        return None
    command = str((event.parsed_args or {{}}).get("command", event.input))
    for word in FORBIDDEN:
        if word in command:
            return kithooks.ToolCallResult(block=True, reason=f"{name}: {{word!r}} is forbidden")
    return None


@kithooks.hookimpl
def on_agent_end(event: kithooks.AgentEndEvent, ctx: kithooks.Context) -> None:
    """Count turns in the session state and report this one."""
    turns = int(ctx.get_state(TURNS_KEY) or 0) + 1
    ctx.set_state(TURNS_KEY, str(turns))
    ctx.print(f"turn {{turns}}: {{event.tool_call_count}} tool calls, ${{event.cost_delta:.4f}}")
'''

TESTS = '''\
"""Tests of {name}, with the fixtures kithooks' pytest plugin provides."""

from __future__ import annotations

import importlib.metadata
import json

import kithooks
from {package} import plugin


def test_blocks_forbidden_commands(kithooks_harness):
    h = kithooks_harness(plugin)
    command = "rm -rf / --no-preserve-root"
    event = kithooks.ToolCallEvent(
        tool_name="bash", input=json.dumps({{"command": command}}), parsed_args={{"command": command}}
    )
    result = h.emit(event)
    assert result.block and "forbidden" in result.reason
    assert h.emit(kithooks.ToolCallEvent(tool_name="bash", parsed_args={{"command": "ls"}})) is None


def test_counts_turns_in_state(kithooks_harness):
    h = kithooks_harness(plugin)
    h.emit(kithooks.AgentStartEvent())
    h.emit(kithooks.ToolCallEvent(tool_name="read"))
    h.emit(kithooks.AgentEndEvent(response="done"))
    h.emit(kithooks.AgentEndEvent(response="again"))
    assert h.state.get(plugin.TURNS_KEY) == "2"
    assert h.printed == ["turn 1: 1 tool calls, $0.0000", "turn 2: 0 tool calls, $0.0000"]


def test_meets_the_event_contracts(kithooks_contract):
    assert kithooks_contract(plugin) == ["on_agent_end", "on_tool_call"]


def test_is_found_through_its_entry_point():
    names = [ep.name for ep in importlib.metadata.entry_points(group="kithooks")]
    assert "{name}" in names
    pm = kithooks.PluginManager()
    assert "{name}" in pm.load_entrypoints()
    assert pm.has_handlers("tool_call")
'''


def new_plugin(
    name: str, directory: str | Path | None = None, *, kithooks_version: str = "0.1"
) -> Path:
    """Write the project for plugin ``name`` into ``directory`` (default ``./<name>``).

    Raises :class:`ScaffoldError` when the name is not a lowercase package name
    (``token-meter``) or the directory exists and is not empty.
    """
    if not _NAME.match(name):
        raise ScaffoldError(
            f"plugin name {name!r} must be lowercase letters and digits, words joined by - or _ "
            "(e.g. token-meter)"
        )
    root = Path(directory) if directory is not None else Path(name)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ScaffoldError(f"{root} already exists and is not an empty directory")
    package = name.replace("-", "_")
    values = {"name": name, "package": package, "kithooks_version": kithooks_version}
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"src/{package}/__init__.py": '"""{name}: a kithooks plugin."""\n',
        f"src/{package}/plugin.py": PLUGIN,
        "tests/test_plugin.py": TESTS,
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values), encoding="utf-8")
    return root
