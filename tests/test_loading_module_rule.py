"""One rule for a module as a plugin, whichever way it is loaded (docs/plugins.md, "Shapes").

A plugin file, a directory plugin and an entry point naming a module register the same
plugins: the module's own hooks, each public instance of a hook class made there (as it is),
each hook class defined there that has no such instance (built with no arguments). What the
loader finds and does not load is said: a load error, or a :class:`kithooks.loading.Skipped`
note that ``kithooks plugins`` shows.
"""

from __future__ import annotations

import itertools
import logging
import sys
import tempfile
import textwrap
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kithooks
from kithooks import PluginManager, loading
from test_loading import install, site  # noqa: F401  (site: a fixture)
from test_loading_properties import file_specs


def rm_rf(command: str = "rm -rf /") -> kithooks.ToolCallEvent:
    return kithooks.ToolCallEvent(tool_name="bash", parsed_args={"command": command})


GATE_MODULE = """
import kithooks


@kithooks.hookimpl
def on_agent_end(event, ctx):
    return None


class PermissionGate:
    @kithooks.hookimpl
    def on_tool_call(self, event, ctx):
        if "rm -rf" in (event.parsed_args or {}).get("command", ""):
            return kithooks.ToolCallResult(block=True, reason="rm -rf is not allowed")
        return None
"""


def test_a_class_in_an_entry_point_module_is_built_as_in_a_file(site, tmp_path):  # noqa: F811
    # `kithooks new-plugin` makes `name = "pkg.plugin"`; the README's PermissionGate added to
    # that module was never built: the guard silently absent, `rm -rf` allowed
    install(
        site,
        "kh-rule-gate",
        "1.0",
        {"kh_test_rule_gate": GATE_MODULE},
        {"rmguard": "kh_test_rule_gate"},
    )
    pm = PluginManager(aggregate_turns=False)
    assert pm.load_entrypoints() == ["rmguard", "rmguard:PermissionGate"]
    assert pm.load_errors == []
    assert pm.emit(rm_rf()).block
    source = pm.plugin_source("rmguard:PermissionGate")
    assert (source.kind, source.location, source.distribution) == (
        "entrypoint",
        "kh_test_rule_gate",
        "kh-rule-gate",
    )
    assert pm.load_entrypoints() == []  # loaded already: nothing again, no error
    assert pm.load_errors == []

    by_file = PluginManager(aggregate_turns=False)
    (tmp_path / "rmguard.py").write_text(GATE_MODULE)
    assert by_file.load_plugin_files(
        [tmp_path / "rmguard.py"], user_dir=None, project_dir=None
    ) == [
        "rmguard",
        "rmguard:PermissionGate",
    ]


def test_an_entry_point_naming_an_object_registers_that_object_only(site):  # noqa: F811
    source = GATE_MODULE + "\nplugin = PermissionGate()\n"
    install(
        site,
        "kh-rule-obj",
        "1.0",
        {"kh_test_rule_obj": source},
        {"cls": "kh_test_rule_obj:PermissionGate", "inst": "kh_test_rule_obj:plugin"},
    )
    pm = PluginManager(aggregate_turns=False)
    assert pm.load_entrypoints() == ["cls", "inst"]
    assert type(pm.get_plugin("inst")).__name__ == "PermissionGate"


CONFIGURED = """
import kithooks


class Gate:
    def __init__(self, words=("rm -rf",)):
        self.words = words

    @kithooks.hookimpl
    def on_tool_call(self, event):
        command = (event.parsed_args or {}).get("command", "")
        if any(w in command for w in self.words):
            return kithooks.ToolCallResult(block=True, reason=f"blocked {command!r}")
        return None


plugin = Gate(words=("rm -rf", "curl | sh"))
also = plugin  # the same object bound twice is one plugin
"""


def test_a_configured_instance_runs_and_no_default_built_copy_of_its_class(tmp_path):
    (tmp_path / "gate.py").write_text(CONFIGURED)
    pm = PluginManager(aggregate_turns=False)
    assert pm.load_plugin_files([tmp_path], user_dir=None, project_dir=None) == ["gate:plugin"]
    assert pm.load_errors == []
    assert pm.emit(rm_rf("curl | sh")).block  # the configured words, not the defaults
    assert pm.plugin_source("gate:plugin").kind == "class"


def test_an_instance_of_an_imported_class_loads_beside_the_files_other_hooks(site, tmp_path):  # noqa: F811
    install(site, "kh-rule-lib", "1.0", {"kh_test_rule_lib": CONFIGURED}, {})
    (tmp_path / "aliased.py").write_text(
        textwrap.dedent(
            """
            import kithooks
            from kh_test_rule_lib import Gate as _G

            class Local:
                @kithooks.hookimpl
                def on_agent_end(self):
                    pass

            gate = _G(words=("curl | sh",))
            _private = _G()  # private: not a plugin
            """
        )
    )
    pm = PluginManager(aggregate_turns=False)
    assert pm.load_plugin_files([tmp_path], user_dir=None, project_dir=None) == [
        "aliased:Local",
        "aliased:gate",
    ]
    assert pm.emit(rm_rf("curl | sh")).block
    assert loading.skipped(pm) == []  # the imported class has an instance: nothing was skipped


def test_a_class_that_needs_arguments_and_has_no_instance_names_its_file_and_line(tmp_path):
    (tmp_path / "needy.py").write_text(
        "import kithooks\n\n\nclass Needy:\n    def __init__(self, words):\n        pass\n\n"
        "    @kithooks.hookimpl\n    def on_tool_call(self, event):\n        return None\n"
    )
    pm = PluginManager(aggregate_turns=False)
    assert pm.load_plugin_files([tmp_path], user_dir=None, project_dir=None) == []
    (error,) = pm.load_errors
    assert error.name == "needy:Needy"
    assert f"{(tmp_path / 'needy.py').resolve()}:4" in error.message
    assert "make the configured instance in the module (needy = Needy(...))" in error.message


def test_an_imported_hook_class_that_is_not_built_is_a_warning_and_listed(site, tmp_path, caplog):  # noqa: F811
    install(site, "kh-rule-imp", "1.0", {"kh_test_rule_imp": CONFIGURED}, {})
    (tmp_path / "reuse.py").write_text(
        "import kithooks\nfrom kh_test_rule_imp import Gate\n\n"
        "@kithooks.hookimpl\ndef on_agent_end(event):\n    return None\n"
    )
    caplog.set_level(logging.WARNING, logger="kithooks")
    pm = PluginManager(aggregate_turns=False)
    assert pm.load_plugin_files([tmp_path], user_dir=None, project_dir=None) == ["reuse"]
    (note,) = loading.skipped(pm)
    assert note.warning and note.location == str((tmp_path / "reuse.py").resolve())
    assert "class Gate (imported from kh_test_rule_imp) has hooks but is not built" in note.reason
    assert note.message in caplog.text
    pm.reload()
    assert loading.skipped(pm) == [note]  # said anew, not twice


def test_a_folder_with_python_but_no_entry_file_is_a_load_error_saying_what_it_lacks(tmp_path):
    plugins = tmp_path / "plugins"
    (plugins / "gate").mkdir(parents=True)
    (plugins / "gate" / "gate.py").write_text(CONFIGURED)
    (plugins / "_helpers").mkdir()  # private: the way to keep helpers in a plugin directory
    (plugins / "_helpers" / "util.py").write_text("raise SystemExit('must not load')\n")
    (plugins / "data").mkdir()
    (plugins / "data" / "words.txt").write_text("rm -rf\n")
    pm = PluginManager(aggregate_turns=False)
    assert pm.load_plugin_files(user_dir=None, project_dir=plugins) == []
    (error,) = pm.load_errors
    assert (error.name, error.kind, error.location) == ("gate", "directory", str(plugins / "gate"))
    assert "holds Python files (gate.py) but neither main.py nor __init__.py" in error.message
    assert [n.location for n in loading.skipped(pm)] == [str(plugins / "_helpers")]


def test_test_files_beside_the_plugins_are_listed_as_skipped(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for name in ("test_gate.py", "gate_test.py", "conftest.py", "_util.py"):
        (plugins / name).write_text(CONFIGURED)
    pm = PluginManager(aggregate_turns=False)
    assert pm.load_plugin_files(user_dir=None, project_dir=plugins) == []
    assert pm.load_errors == []
    notes = loading.skipped(pm)
    assert [Path(n.location).name for n in notes] == [
        "_util.py",
        "conftest.py",
        "gate_test.py",
        "test_gate.py",
    ]
    assert not any(n.warning for n in notes)
    assert "named like a test" in notes[-1].reason and "private" in notes[0].reason


def test_the_project_is_found_from_a_subdirectory(tmp_path, monkeypatch):
    project = tmp_path / "proj"
    deep = project / "src" / "pkg"
    deep.mkdir(parents=True)
    (project / ".kithooks" / "plugins").mkdir(parents=True)
    (project / ".kithooks" / "plugins" / "gate.py").write_text(CONFIGURED)
    assert loading.find_project_root(deep) == project
    assert loading.find_project_root(project) == project
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert loading.find_project_root(outside) == outside
    monkeypatch.chdir(deep)
    assert loading.find_project_root() == project
    pm = PluginManager(aggregate_turns=False)
    assert pm.load_plugin_files(user_dir=None) == ["gate:plugin"]
    assert pm.emit(rm_rf()).block


ORDERED = """
import kithooks

@kithooks.hookimpl
def on_agent_end(event, ctx):
    return None
"""


def test_entry_points_load_in_the_order_of_their_names(site):  # noqa: F811
    # the installer's order (entry_points.txt, directory listing) is not the pyproject's;
    # the handlers' order, and so which guard answers first, must not depend on it
    names = {"zeta": "z", "alpha": "a", "mid": "m"}
    install(
        site,
        "kh-rule-order",
        "1.0",
        {f"kh_test_rule_order_{m}": ORDERED for m in names.values()},
        {name: f"kh_test_rule_order_{m}" for name, m in names.items()},
    )
    install(
        site,
        "kh-rule-order2",
        "1.0",
        {"kh_test_rule_order_b": ORDERED},
        {"beta": "kh_test_rule_order_b"},
    )
    pm = PluginManager(aggregate_turns=False)
    loaded = [n for n in pm.load_entrypoints() if n in {*names, "beta"}]
    assert loaded == ["alpha", "beta", "mid", "zeta"]


def test_a_demo_example_holding_a_name_is_named_by_its_module(site):  # noqa: F811
    from kithooks.examples import permission_gate

    install(
        site,
        "kh-rule-taken",
        "1.0",
        {"kh_test_rule_taken": GATE_MODULE},
        {"pg": "kh_test_rule_taken"},
    )
    pm = PluginManager(aggregate_turns=False)
    pm.register(permission_gate, name="pg")
    assert pm.load_entrypoints() == []
    (error,) = pm.load_errors
    assert (
        "a plugin the host registered (module kithooks.examples.permission_gate)" in error.message
    )


# --------------------------------------------------------------------------- the property

_counter = itertools.count()


@attrs.frozen
class InstanceSpec:
    var: str
    of: str  # a class name of the file


@given(
    spec=file_specs,
    instances=st.lists(
        st.builds(
            InstanceSpec,
            var=st.sampled_from(["plugin", "gate", "guard", "_hidden"]),
            of=st.sampled_from(["Gate", "Logger", "_Private"]),
        ),
        max_size=2,
        unique_by=lambda i: i.var,
    ),
)
@settings(max_examples=40)
def test_a_module_registers_the_same_plugins_as_a_file_and_as_an_entry_point(spec, instances):
    source = spec.source()
    classes = {c.name: c for c in spec.classes}
    for inst in instances:
        if inst.of in classes:
            args = "token=1" if classes[inst.of].needs_arg else ""
            source += f"\n{inst.var} = {inst.of}({args})\n"
    stem = f"kh_test_rule_p{next(_counter)}"
    with tempfile.TemporaryDirectory() as tmp:
        site_dir = Path(tmp)
        install(site_dir, stem.replace("_", "-"), "1.0", {stem: source}, {stem: stem})
        sys.path.insert(0, str(site_dir))
        try:
            by_ep = PluginManager(aggregate_turns=False)
            ep_names = by_ep.load_entrypoints()
        finally:
            sys.path.remove(str(site_dir))
            sys.modules.pop(stem, None)
        by_file = PluginManager(aggregate_turns=False)
        file_names = by_file.load_plugin_files(
            [site_dir / f"{stem}.py"], user_dir=None, project_dir=None
        )
        ep_names = [n for n in ep_names if n == stem or n.startswith(stem + ":")]
        assert ep_names == file_names
        assert {e.name for e in by_ep.load_errors} == {e.name for e in by_file.load_errors}
        # a public instance of a class with working hooks runs as it is; its class is not
        # also built with defaults
        for inst in instances:
            cls = classes.get(inst.of)
            if spec.breaks or cls is None or inst.var.startswith("_"):
                continue
            if not cls.marked or cls.unmarked:
                continue
            assert f"{stem}:{inst.var}" in file_names
            assert f"{stem}:{inst.of}" not in file_names


def test_skipped_is_a_public_value(tmp_path):
    note = loading.Skipped(kind="file", location="x.py", reason="why")
    assert note.message == "skipped x.py: why" and not note.warning
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        note.reason = "other"  # type: ignore[misc]


ENUM_GUARD = """
import enum

import kithooks


class Mode(enum.Enum):
    STRICT = "strict"

    @kithooks.hookimpl
    def on_tool_call(self, event):
        return kithooks.ToolCallResult(block=True, reason=f"{self.value}: no")


@kithooks.hookimpl
def on_agent_end(event, ctx):
    pass
"""


def test_an_enum_hook_class_is_a_plugin_like_any_other(tmp_path):
    """dir() of an Enum class hides its methods: its hooks are found all the same, so its
    member configured at module level guards, and with none it is a load error naming it."""
    (tmp_path / "g.py").write_text(ENUM_GUARD + "\nmode = Mode.STRICT\n")
    pm = PluginManager(aggregate_turns=False)
    assert pm.load_plugin_files([tmp_path], user_dir=None, project_dir=None) == ["g", "g:mode"]
    assert pm.emit(rm_rf()).block
    (tmp_path / "g.py").write_text(ENUM_GUARD)
    pm = PluginManager(aggregate_turns=False)
    assert pm.load_plugin_files([tmp_path], user_dir=None, project_dir=None) == ["g"]
    (error,) = pm.load_errors
    assert error.name == "g:Mode" and "Mode" in error.message


def test_a_file_whose_instance_name_is_taken_goes_by_its_path(tmp_path):
    """The same file name with a configured instance in the user and the project plugin
    directories: the second goes by its path, both guard."""
    user, project = tmp_path / "user", tmp_path / "project"
    user.mkdir()
    project.mkdir()
    (user / "gate.py").write_text(CONFIGURED)
    (project / "gate.py").write_text(CONFIGURED.replace('"curl | sh"', '"mkfs"'))
    pm = PluginManager(aggregate_turns=False)
    names = pm.load_plugin_files(user_dir=user, project_dir=project)
    assert names == ["gate:plugin", f"{project / 'gate.py'}:plugin"], pm.load_errors
    assert pm.load_errors == []
    assert pm.emit(rm_rf("curl | sh")).block and pm.emit(rm_rf("mkfs /dev/sda")).block


def test_claude_hook_searches_upwards_from_claude_project_dir(tmp_path):
    """Claude Code started in a subdirectory of the project sets CLAUDE_PROJECT_DIR there:
    the project's guards still apply."""
    from kithooks.command_hooks.claude_hook import project_root

    project = tmp_path / "mono"
    deep = project / "packages" / "api"
    deep.mkdir(parents=True)
    (project / ".kithooks").mkdir()
    assert project_root({"cwd": str(deep)}, {"CLAUDE_PROJECT_DIR": str(deep)}) == project
    assert project_root({"cwd": str(tmp_path)}, {}) == tmp_path


def test_a_blocked_instance_name_is_skipped_quietly(tmp_path):
    (tmp_path / "gate.py").write_text(CONFIGURED)
    pm = PluginManager(aggregate_turns=False)
    pm.set_blocked("gate:plugin")
    assert pm.load_plugin_files([tmp_path], user_dir=None, project_dir=None) == []
    assert pm.load_errors == []
