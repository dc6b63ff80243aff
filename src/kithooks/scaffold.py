"""``kithooks new-plugin NAME``: write a pip-installable plugin project whose tests pass.

The project has a ``pyproject.toml`` with the ``kithooks`` entry point, a plugin module,
and tests that use the harness and the contract check of the shipped pytest plugin. It
depends on the kithooks the generator runs from: by its ``file://`` location when that
kithooks was installed from a path or a checkout (it is not on a package index), else by
version.
"""

from __future__ import annotations

import importlib.util
import json
import keyword
import re
import shlex
import sys
from importlib import metadata
from pathlib import Path

import attrs

__all__ = ["KithooksSource", "ScaffoldError", "kithooks_requirement", "new_plugin", "next_steps"]

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
dependencies = ["{requirement}"]

[project.optional-dependencies]
test = ["{test_requirement}"]
{direct}
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

A kithooks plugin. Installed, it is found through the `kithooks` entry-point group
(`kithooks plugins` lists it). Install it with its tests' dependencies and run them:

    {steps}

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


@attrs.frozen
class KithooksSource:
    """Where a generated project gets kithooks: a ``file://`` URL, or an index by version."""

    version: str
    url: str | None = None  #: the checkout or file kithooks was installed from

    def requirement(self, extra: str = "") -> str:
        """The PEP 508 requirement, e.g. ``kithooks[testing] @ file:///src/kithooks``."""
        name = f"kithooks[{extra}]" if extra else "kithooks"
        return f"{name} @ {self.url}" if self.url else f"{name}>={self.version}"


def kithooks_requirement() -> KithooksSource:
    """The kithooks this code runs from.

    Installed from a path or a checkout (pip records its ``file://`` URL), or imported from
    a source tree, it is named by that location; installed from an index, by version.
    """
    here = Path(__file__).resolve().parent.parent.parent
    try:
        dist = metadata.distribution("kithooks")
    except metadata.PackageNotFoundError:
        return KithooksSource(version="0", url=here.as_uri())
    direct = dist.read_text("direct_url.json")
    url = json.loads(direct).get("url") if direct else None
    if isinstance(url, str) and url.startswith("file://"):
        return KithooksSource(version=dist.version, url=url)
    return KithooksSource(version=dist.version)


def next_steps(root: Path) -> list[str]:
    """The commands that install the project at ``root`` and run its tests, in order (its
    ``pyproject.toml`` says where kithooks comes from)."""
    return [
        f"cd {shlex.quote(str(root))}",
        "python3 -m venv .venv",
        ".venv/bin/pip install -e '.[test]'",
        ".venv/bin/python -m pytest",
    ]


def _check_name(name: str) -> str:
    """The package name for plugin ``name``; ScaffoldError when it is not one or shadows one."""
    if not _NAME.match(name):
        raise ScaffoldError(
            f"plugin name {name!r} must be lowercase letters and digits starting with a letter, "
            "words joined by single - or _ (e.g. token-meter, meter2)"
        )
    package = name.replace("-", "_")
    if keyword.iskeyword(package):
        raise ScaffoldError(f"plugin name {name!r} is a Python keyword; choose another name")
    if package in sys.stdlib_module_names:
        raise ScaffoldError(
            f"plugin name {name!r} would shadow the standard library module {package!r}; "
            "choose another name"
        )
    spec = importlib.util.find_spec(package)
    if spec is not None:
        where = f" ({spec.origin})" if spec.origin else ""
        raise ScaffoldError(
            f"plugin name {name!r} would shadow the installed module {package!r}{where}; "
            "choose another name"
        )
    return package


def new_plugin(
    name: str,
    directory: str | Path | None = None,
    *,
    requirement: KithooksSource | None = None,
) -> Path:
    """Write the project for plugin ``name`` into ``directory`` (default ``./<name>``).

    ``requirement`` says where the project gets kithooks (default: where this kithooks came
    from, :func:`kithooks_requirement`). Raises :class:`ScaffoldError` when the name is not
    a lowercase package name starting with a letter (``token-meter``), would shadow an importable module
    (``kithooks``, ``json``), or the directory exists and is not empty.
    """
    package = _check_name(name)
    source = kithooks_requirement() if requirement is None else requirement
    root = Path(directory) if directory is not None else Path(name)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ScaffoldError(f"{root} already exists and is not an empty directory")
    values = {
        "name": name,
        "package": package,
        "requirement": source.requirement(),
        "test_requirement": source.requirement("testing"),
        "direct": (
            "\n# kithooks is named by its location (it is not on a package index).\n"
            "[tool.hatch.metadata]\nallow-direct-references = true\n"
            if source.url
            else ""
        ),
        "steps": " && ".join(next_steps(Path("."))[1:]),
    }
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
