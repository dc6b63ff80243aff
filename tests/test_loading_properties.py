"""Property: whatever a plugin file holds, it registers plugins with hooks or is a LoadError.

Files are generated from the building blocks users combine (module-level hooks, classes with
marked, unmarked or no methods, constructors that need arguments, private classes, imports
that fail or exit), loaded from a real directory, and checked against a model of the rules
in docs/plugins.md.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from kithooks import PluginManager

HOOKS = ("on_tool_call", "on_agent_end", "on_input", "on_message_update")


@attrs.frozen
class ClassSpec:
    name: str
    marked: tuple[str, ...]
    unmarked: bool
    needs_arg: bool

    def source(self) -> list[str]:
        lines = [f"class {self.name}:"]
        if self.needs_arg:
            lines += ["    def __init__(self, token):", "        self.token = token"]
        for hook in self.marked:
            lines += [
                "    @kithooks.hookimpl",
                f"    def {hook}(self, event):",
                "        return None",
            ]
        if self.unmarked:
            lines += ["    def on_session_start(self, event):", "        return None"]
        lines.append("    level = 1")
        return lines

    def outcome(self, stem: str) -> tuple[str, bool] | None:
        """(plugin name, registers?) or None when the class is not a plugin at all."""
        if self.name.startswith("_") or not (self.marked or self.unmarked):
            return None
        return f"{stem}:{self.name}", not self.unmarked and not self.needs_arg


@attrs.frozen
class FileSpec:
    module_hooks: tuple[str, ...]
    module_unmarked: bool
    classes: tuple[ClassSpec, ...]
    breaks: str  # "", "syntax", "exit", "raise"

    def source(self) -> str:
        lines = ["import sys", "import kithooks", ""]
        if self.breaks == "syntax":
            lines.append("def broken(:")
        elif self.breaks == "exit":
            lines.append("sys.exit(2)")
        elif self.breaks == "raise":
            lines.append("raise RuntimeError('plugin import failed')")
        for hook in self.module_hooks:
            lines += ["@kithooks.hookimpl", f"def {hook}(event):", "    return None", ""]
        if self.module_unmarked:
            lines += ["def on_tool_result(event):", "    return None", ""]
        for cls in self.classes:
            lines += [*cls.source(), ""]
        return "\n".join(lines) + "\n"

    def expected(self, stem: str) -> tuple[set[str], set[str]]:
        """(names registered, names of load errors) the rules give for this file."""
        if self.breaks:
            return set(), {stem}
        outcomes = []
        if self.module_hooks or self.module_unmarked:
            outcomes.append((stem, not self.module_unmarked))
        outcomes += [o for c in self.classes if (o := c.outcome(stem)) is not None]
        if not outcomes:
            return set(), {stem}
        return {n for n, ok in outcomes if ok}, {n for n, ok in outcomes if not ok}


class_specs = st.builds(
    ClassSpec,
    name=st.sampled_from(["Gate", "Logger", "Budget", "_Private", "Helper"]),
    marked=st.lists(st.sampled_from(HOOKS), max_size=2, unique=True).map(tuple),
    unmarked=st.booleans(),
    needs_arg=st.booleans(),
)
file_specs = st.builds(
    FileSpec,
    module_hooks=st.lists(st.sampled_from(HOOKS), max_size=2, unique=True).map(tuple),
    module_unmarked=st.booleans(),
    classes=st.lists(class_specs, max_size=3, unique_by=lambda c: c.name).map(tuple),
    breaks=st.sampled_from(["", "", "", "syntax", "exit", "raise"]),
)


@settings(max_examples=60)
@given(files=st.lists(file_specs, min_size=1, max_size=4))
def test_every_plugin_file_registers_hooks_or_is_a_load_error(files):
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        stems = [f"plugin_{i}" for i in range(len(files))]
        for stem, spec in zip(stems, files, strict=True):
            (directory / f"{stem}.py").write_text(spec.source())
        pm = PluginManager(aggregate_turns=False)
        names = pm.load_plugin_files([directory], user_dir=None, project_dir=None)
        want_loaded: set[str] = set()
        want_errors: set[str] = set()
        for stem, spec in zip(stems, files, strict=True):
            loaded, errors = spec.expected(stem)
            want_loaded |= loaded
            want_errors |= errors
        assert set(names) == want_loaded
        assert {e.name for e in pm.load_errors} == want_errors
        for name in names:
            plugin = pm.get_plugin(name)
            assert pm.get_hookcallers(plugin), f"{name} registered without hooks"
        for error in pm.load_errors:
            stem = error.name.split(":")[0]
            assert error.location == str((directory / f"{stem}.py").resolve())
            assert stem in error.message
            if ":" in error.name:
                assert f"{error.name!r}" in error.message
