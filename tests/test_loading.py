"""Loading plugins: entry points from real (tmp) distributions, plain files, reload."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import kithooks
from kithooks import PluginManager


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A directory on sys.path where tests install distributions (dist-info + modules)."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in list(sys.modules):
        if name.startswith("kh_test_"):
            del sys.modules[name]


def install(
    site: Path, dist: str, version: str, modules: dict[str, str], entry_points: dict[str, str]
):
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    # named as pip names it (``-`` in the name is ``_``): importlib.metadata tells
    # distributions apart by this name, so ``kh-a-1.0.dist-info`` and ``kh-b-1.0.dist-info``
    # would both be distribution ``kh``, and one of them hidden
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = ["[kithooks]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


GOOD = """
import kithooks

@kithooks.hookimpl
def on_tool_call(event):
    if "rm -rf" in event.input:
        return kithooks.ToolCallResult(block=True, reason="dangerous")
"""

BAD_ARGS = """
import kithooks

@kithooks.hookimpl
def on_message_update(event, chunk):
    pass

@kithooks.hookimpl
def on_agent_end(event):
    pass
"""


def test_entrypoints_load_and_a_broken_one_does_not_stop_the_others(site, caplog):
    install(
        site,
        "kh-plugins",
        "1.2.3",
        {
            "kh_test_good": GOOD,
            "kh_test_import_error": "raise ImportError('missing dependency frobnicate')",
            "kh_test_bad_args": BAD_ARGS,
        },
        {
            "broken-import": "kh_test_import_error",
            "gate": "kh_test_good",
            "bad-args": "kh_test_bad_args",
            "no-such-attr": "kh_test_good:nothing",
        },
    )
    errors: list = []
    pm = PluginManager(on_error=errors.append)
    with caplog.at_level(logging.ERROR, logger="kithooks"):
        loaded = pm.load_entrypoints()
    assert loaded == ["gate"]
    assert {e.name for e in pm.load_errors} == {"broken-import", "bad-args", "no-such-attr"}
    assert {e.name for e in errors} == {"broken-import", "bad-args", "no-such-attr"}
    assert "frobnicate" in caplog.text and "'broken-import'" in caplog.text
    # the plugin that failed validation left nothing behind (its valid hook neither)
    assert pm.get_plugin("bad-args") is None
    assert not pm.has_handlers("message_update")
    assert pm.handler_names("agent_end") == ["turn-aggregator"]
    source = pm.plugin_source("gate")
    assert (source.kind, source.distribution, source.version) == (
        "entrypoint",
        "kh-plugins",
        "1.2.3",
    )
    assert pm.emit(kithooks.ToolCallEvent(input='{"cmd": "rm -rf /"}')).reason == "dangerous"
    assert pm.load_entrypoints() == []  # loading again registers nothing twice


def test_entrypoints_can_be_blocked_or_disabled_by_environment(site, monkeypatch):
    install(
        site,
        "kh-more",
        "0.1",
        {"kh_test_good2": GOOD},
        {"gate2": "kh_test_good2", "gate3": "kh_test_good2:on_tool_call"},
    )
    monkeypatch.setenv("KITHOOKS_DISABLE_ENTRYPOINTS", "1")
    assert PluginManager().load_entrypoints() == []
    monkeypatch.delenv("KITHOOKS_DISABLE_ENTRYPOINTS")
    monkeypatch.setenv("KITHOOKS_BLOCK_PLUGINS", "gate2, other")
    pm = PluginManager()
    assert "gate2" not in pm.load_entrypoints()


PLUGIN = """
import kithooks
LOG = []

@kithooks.hookimpl
def on_message_update(event, ctx):
    ctx.emit_custom_event("log", "{name}:{version}")
"""


def write_plugin(directory: Path, name: str, version: int = 1) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(PLUGIN).format(name=name, version=version))
    return path


class Collector:
    def __init__(self):
        self.log: list[str] = []

    @kithooks.custom_event("log")
    def collect(self, data):
        self.log.append(data)


def run(pm: PluginManager, collector: Collector) -> list[str]:
    collector.log.clear()
    pm.emit(kithooks.MessageUpdateEvent())
    return list(collector.log)


def test_file_plugins_load_in_the_originals_order_and_dedupe(tmp_path):
    user, project, extra = tmp_path / "user", tmp_path / "project", tmp_path / "extra"
    write_plugin(user, "b_user")
    write_plugin(user, "a_user")
    write_plugin(project, "c_project")
    (project / "_private.py").write_text("raise SystemExit('must not load')")
    (project / "test_thing.py").write_text("raise SystemExit('must not load')")
    (project / "notes.txt").write_text("not python")
    single = write_plugin(extra, "z_single")
    pm = PluginManager()
    collector = Collector()
    pm.register(collector)
    names = pm.load_plugin_files(
        [single, project, tmp_path / "missing.py"], user_dir=user, project_dir=project
    )
    assert names == ["a_user", "b_user", "c_project", "z_single"]
    assert run(pm, collector) == ["a_user:1", "b_user:1", "c_project:1", "z_single:1"]
    assert pm.plugin_source("a_user").location == str((user / "a_user.py").resolve())


def test_same_stem_in_two_dirs_gets_a_path_name(tmp_path):
    write_plugin(tmp_path / "one", "gate")
    write_plugin(tmp_path / "two", "gate")
    pm = PluginManager()
    names = pm.load_plugin_files(
        [tmp_path / "one", tmp_path / "two"], user_dir=None, project_dir=None
    )
    assert names[0] == "gate" and names[1] == str((tmp_path / "two" / "gate.py").resolve())


def test_a_broken_file_is_reported_and_skipped(tmp_path, caplog):
    d = tmp_path / "plugins"
    write_plugin(d, "good")
    (d / "broken.py").write_text("import kithooks\n\ndef oops(:\n")
    pm = PluginManager()
    with caplog.at_level(logging.ERROR, logger="kithooks"):
        assert pm.load_plugin_files([d], user_dir=None, project_dir=None) == ["good"]
    assert [e.name for e in pm.load_errors] == ["broken"]
    assert "SyntaxError" in pm.load_errors[0].message and "broken.py" in pm.load_errors[0].message


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (["a", "b"], ["a", "b", "c", "d"]),  # more
        (["a", "b", "c"], ["b"]),  # fewer
        (["a", "b"], []),  # none
        ([], ["a"]),  # from none
    ],
)
def test_reload_with_more_fewer_and_changed_files(tmp_path, before, after):
    d = tmp_path / "plugins"
    d.mkdir()
    for name in before:
        write_plugin(d, name)
    lifecycle: list[str] = []

    class Entry:
        @kithooks.hookimpl
        def on_session_shutdown(self):
            lifecycle.append("shutdown")

        @kithooks.hookimpl
        def on_session_start(self, event):
            lifecycle.append(f"start {event.session_id}")

    pm = PluginManager(context=kithooks.Context(session_id="sess"))
    collector = Collector()
    pm.register(collector)
    pm.load_plugin_files([d], user_dir=None, project_dir=None)
    pm.register(Entry())  # registered after the files: stays after them
    pm.state.set("kept", "yes")
    assert run(pm, collector) == [f"{n}:1" for n in before]
    for path in d.glob("*.py"):
        path.unlink()
    for name in after:
        write_plugin(d, name, version=2)
    assert pm.reload() == after
    assert run(pm, collector) == [f"{n}:2" for n in after]
    assert pm.has_handlers("message_update") == bool(after)
    assert pm.state.get("kept") == "yes"
    assert lifecycle == ["shutdown", "start sess"]
    assert pm.handler_names("session_start") == ["Entry"]


def test_reload_keeps_a_file_batch_in_its_place(tmp_path):
    d = tmp_path / "plugins"
    write_plugin(d, "b")
    pm = PluginManager()
    collector = Collector()
    pm.register(collector)
    pm.load_plugin_files([d], user_dir=None, project_dir=None)

    class Late:
        @kithooks.hookimpl
        def on_message_update(self, ctx):
            ctx.emit_custom_event("log", "late")

    pm.register(Late())
    write_plugin(d, "a")
    pm.reload()
    assert run(pm, collector) == ["a:1", "b:1", "late"]


def test_reload_rereads_a_file_changed_within_the_same_second(tmp_path):
    d = tmp_path / "plugins"
    path = write_plugin(d, "p", version=1)
    pm = PluginManager()
    collector = Collector()
    pm.register(collector)
    pm.load_plugin_files([d], user_dir=None, project_dir=None)
    for version in (2, 3, 4):
        write_plugin(d, "p", version=version)
        pm.reload()
        assert run(pm, collector) == [f"p:{version}"]
    assert path.exists()


# --------------------------------------------------------------------------- loud failures
# Every way of loading a plugin either registers hooks or is a LoadError naming the file,
# class or entry point (issue 13).


def errors_by_name(pm: PluginManager) -> dict[str, str]:
    return {e.name: e.message for e in pm.load_errors}


def load_dir(tmp_path: Path, files: dict[str, str]) -> PluginManager:
    d = tmp_path / "plugins"
    for rel, source in files.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text(textwrap.dedent(source))
    pm = PluginManager()
    pm.load_plugin_files([d], user_dir=None, project_dir=None)
    return pm


def test_a_file_with_no_hooks_is_a_load_error_naming_it(tmp_path):
    pm = load_dir(
        tmp_path,
        {
            "empty.py": "import kithooks\n\ndef helper():\n    return 1\n",
            # a class imported from elsewhere is not this file's plugin
            "imported.py": "from kithooks.aggregator import TurnAggregator\n",
            "helpers/main.py": "X = 1\n",
        },
    )
    errors = errors_by_name(pm)
    assert set(errors) == {"empty", "imported", "helpers"}
    assert "empty.py has no hooks" in errors["empty"]
    assert "imported.py has no hooks" in errors["imported"]
    assert "directory plugin" in errors["helpers"] and "helpers has no hooks" in errors["helpers"]
    assert "@kithooks.hookimpl" in errors["empty"]
    assert [n for n, _ in pm.list_name_plugin()] == ["turn-aggregator"]


def test_classes_in_a_file_are_built_and_named_file_colon_class(tmp_path):
    pm = load_dir(
        tmp_path,
        {
            "gates.py": """
                import kithooks
                from kithooks.aggregator import TurnAggregator  # imported: not ours

                class Settings:  # no hooks: a helper class, left alone
                    level = 1

                class First:
                    @kithooks.hookimpl
                    def on_tool_call(self, event):
                        return kithooks.ToolCallResult(block=True, reason="first")

                class Needy:
                    def __init__(self, token):
                        self.token = token

                    @kithooks.hookimpl
                    def on_tool_call(self, event):
                        return None

                class Exploding:
                    def __init__(self):
                        raise RuntimeError("no config")

                    @kithooks.hookimpl
                    def on_agent_end(self, event):
                        pass

                @kithooks.hookimpl
                def on_agent_start(event):
                    pass
            """
        },
    )
    assert [n for n, _ in pm.list_name_plugin()] == ["turn-aggregator", "gates", "gates:First"]
    errors = errors_by_name(pm)
    assert set(errors) == {"gates:Needy", "gates:Exploding"}
    needy = next(e for e in pm.load_errors if e.name == "gates:Needy")
    assert needy.kind == "class" and needy.location.endswith("gates.py")
    assert "class Needy in" in needy.message and "gates.py" in needy.message
    assert "cannot be built with no arguments" in needy.message and "token" in needy.message
    assert "RuntimeError: no config" in errors["gates:Exploding"]
    assert pm.plugin_source("gates:First").kind == "class"
    assert pm.emit(kithooks.ToolCallEvent()).reason == "first"


@pytest.mark.parametrize(
    ("source", "plugin", "hook"),
    [
        (
            "import kithooks\n\ndef on_tool_call(event):\n    return None\n",
            "unmarked",
            "on_tool_call",
        ),
        (
            "import kithooks\n\nclass Gate:\n    def on_tool_call(self, event):\n        pass\n\n"
            "    @kithooks.hookimpl\n    def on_agent_end(self, event):\n        pass\n",
            "unmarked:Gate",
            "on_tool_call",
        ),
        (
            "class Gate:\n    def on_session_start(self, event):\n        pass\n",
            "unmarked:Gate",
            "on_session_start",
        ),
    ],
    ids=["module-function", "method-beside-marked", "class-with-only-unmarked"],
)
def test_a_function_named_like_a_hook_but_unmarked_is_an_error_saying_to_mark_it(
    tmp_path, source, plugin, hook
):
    pm = load_dir(tmp_path, {"unmarked.py": source})
    errors = errors_by_name(pm)
    assert set(errors) == {plugin}
    assert f"{hook!r} is named like a kithooks hook but is not marked" in errors[plugin]
    assert "@kithooks.hookimpl" in errors[plugin] and "rename it" in errors[plugin]
    assert pm.get_plugin(plugin) is None
    assert pm.handler_names("agent_end") == ["turn-aggregator"]


def test_a_helper_renamed_away_from_a_hook_name_is_fine(tmp_path):
    pm = load_dir(
        tmp_path,
        {
            "helper.py": """
                import kithooks

                def _on_tool_call(command):  # a helper: not a hook's name
                    return command.startswith("rm")

                @kithooks.hookimpl
                def on_agent_end(event):
                    pass

                class Gate:
                    @staticmethod
                    def is_dangerous(text):
                        return _on_tool_call(text)

                    @kithooks.hookimpl
                    def on_tool_call(self, event):
                        if self.is_dangerous(event.input):
                            return kithooks.ToolCallResult(block=True, reason="helper said so")
            """
        },
    )
    assert pm.load_errors == []
    assert [n for n, _ in pm.list_name_plugin()][1:] == ["helper", "helper:Gate"]
    assert pm.handler_names("tool_call")[-1] == "helper:Gate"
    assert pm.emit(kithooks.ToolCallEvent(input="rm x")).reason == "helper said so"


def test_a_file_calling_sys_exit_is_a_load_error_not_an_exit(tmp_path):
    pm = load_dir(
        tmp_path,
        {"quits.py": "import sys\nsys.exit(3)\n", "good.py": GOOD},
    )
    assert [n for n, _ in pm.list_name_plugin()][1:] == ["good"]
    (error,) = pm.load_errors
    assert error.name == "quits" and isinstance(error.error, SystemExit)
    assert "sys.exit(3)" in error.message and "quits.py" in error.message


def test_a_missing_explicit_path_is_a_load_error(tmp_path):
    pm = PluginManager()
    missing = tmp_path / "nope.py"
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    assert (
        pm.load_plugin_files([missing, notes], user_dir=tmp_path / "absent", project_dir=None) == []
    )
    messages = [e.message for e in pm.load_errors]
    assert len(messages) == 2
    assert "nope.py" in messages[0] and "does not exist" in messages[0]
    assert "notes.txt" in messages[1] and "is not a .py file or a directory" in messages[1]


def test_directory_plugins_main_or_package_with_sibling_imports_and_reload(tmp_path):
    d = tmp_path / "plugins"
    (d / "gate").mkdir(parents=True)
    (d / "gate" / "rules.py").write_text("WORD = 'rm -rf'\n")
    (d / "gate" / "main.py").write_text(
        textwrap.dedent(
            """
            import kithooks
            from .rules import WORD

            @kithooks.hookimpl
            def on_tool_call(event):
                if WORD in event.input:
                    return kithooks.ToolCallResult(block=True, reason=f"v1 {WORD}")
            """
        )
    )
    (d / "pkg").mkdir()
    (d / "pkg" / "__init__.py").write_text(
        "import kithooks\nfrom . import util\n\n"
        "@kithooks.hookimpl\ndef on_agent_end(event, ctx):\n    ctx.state.set('x', util.X)\n"
    )
    (d / "pkg" / "util.py").write_text("X = 'from-util'\n")
    (d / "__pycache__").mkdir()
    (d / "_helpers").mkdir()  # private, no main.py nor __init__.py: not a plugin
    (d / "_helpers" / "thing.py").write_text("raise SystemExit('must not load')")
    (d / "data").mkdir()  # no Python at all: not a plugin, and no error
    (d / "data" / "rules.json").write_text("{}")
    pm = PluginManager()
    assert pm.load_plugin_files([d], user_dir=None, project_dir=None) == ["gate", "pkg"]
    assert pm.plugin_source("gate").kind == "directory"
    assert pm.plugin_source("gate").location == str((d / "gate").resolve())
    assert pm.emit(kithooks.ToolCallEvent(input="rm -rf /")).reason == "v1 rm -rf"
    (d / "gate" / "main.py").write_text((d / "gate" / "main.py").read_text().replace("v1", "v2"))
    assert pm.reload() == ["gate", "pkg"]
    assert pm.emit(kithooks.ToolCallEvent(input="rm -rf /")).reason == "v2 rm -rf"
    assert pm.load_errors == []


def test_an_explicit_directory_plugin_path_is_one_plugin(tmp_path):
    gate = tmp_path / "my-gate"
    gate.mkdir()
    (gate / "main.py").write_text(GOOD)
    (gate / "other.py").write_text("raise SystemExit('a sibling, not a plugin')")
    pm = PluginManager()
    assert pm.load_plugin_files([gate], user_dir=None, project_dir=None) == ["my-gate"]
    assert pm.load_errors == []


def test_the_same_file_from_user_and_project_dir_loads_once(tmp_path):
    shared = tmp_path / "shared"
    write_plugin(shared, "gate")
    (shared / "dirgate").mkdir()
    (shared / "dirgate" / "main.py").write_text(GOOD)
    project = tmp_path / "project"
    project.symlink_to(shared, target_is_directory=True)
    pm = PluginManager()
    names = pm.load_plugin_files(
        [shared / "gate.py", project / "dirgate"], user_dir=shared, project_dir=project
    )
    assert names == ["dirgate", "gate"]
    assert pm.load_plugin_files([shared], user_dir=None, project_dir=None) == []
    assert pm.load_errors == []


EXITS = """
import sys
sys.exit("this plugin refuses to load")
"""
NO_HOOKS = "X = 1\n"
CLASSES = """
import kithooks

class Gate:
    @kithooks.hookimpl
    def on_tool_call(self, event):
        return kithooks.ToolCallResult(block=True, reason="class gate")

class Needy(Gate):
    def __init__(self, token):
        self.token = token
"""


def test_entrypoint_failures_name_the_distribution_and_entry_point(site):
    install(
        site,
        "kh-loud",
        "2.0",
        {"kh_test_exits": EXITS, "kh_test_nohooks": NO_HOOKS, "kh_test_classes": CLASSES},
        {
            "exits": "kh_test_exits",
            "nohooks": "kh_test_nohooks",
            "function": "kh_test_classes:Gate.on_tool_call",
            "needy": "kh_test_classes:Needy",
            "gate": "kh_test_classes:Gate",
        },
    )
    pm = PluginManager()
    assert pm.load_entrypoints() == ["gate"]
    assert isinstance(pm.get_plugin("gate"), object) and pm.plugin_source("gate").version == "2.0"
    assert pm.emit(kithooks.ToolCallEvent()).reason == "class gate"
    errors = {e.name: e for e in pm.load_errors}
    assert set(errors) == {"exits", "nohooks", "function", "needy"}
    for e in errors.values():
        assert e.kind == "entrypoint" and e.distribution == "kh-loud"
        assert "of distribution 'kh-loud'" in e.message and repr(e.name) in e.message
    assert isinstance(errors["exits"].error, SystemExit)
    assert "this plugin refuses to load" in errors["exits"].message
    assert "has no hooks" in errors["nohooks"].message
    assert "is a function" in errors["function"].message
    assert "class Needy" in errors["needy"].message and "token" in errors["needy"].message


def test_keyboard_interrupt_in_an_entrypoint_propagates(site):
    install(
        site,
        "kh-interrupt",
        "0.1",
        {"kh_test_interrupt": "raise KeyboardInterrupt\n"},
        {"interrupt": "kh_test_interrupt"},
    )
    with pytest.raises(KeyboardInterrupt):
        PluginManager().load_entrypoints()


def test_the_cli_exits_non_zero_naming_a_failed_entry_point(site, tmp_path):
    install(
        site,
        "kh-cli-loud",
        "0.3",
        {"kh_test_cli_exits": EXITS, "kh_test_cli_good": GOOD},
        {"exits": "kh_test_cli_exits", "good": "kh_test_cli_good"},
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "NO_COLOR": "1",
        "COLUMNS": "300",
    }
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "kithooks"), "plugins"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "good" in proc.stdout
    # Load errors go to stderr, after the listing, so a piped listing stays clean.
    assert "plugin 'exits' (entrypoint kh_test_cli_exits of distribution 'kh-cli-loud')" in (
        " ".join(proc.stderr.split())
    )
    assert "this plugin refuses to load" in proc.stderr


def test_base_private_and_abstract_classes_in_a_file_are_not_plugins(tmp_path):
    pm = load_dir(
        tmp_path,
        {
            "family.py": """
                import abc
                import kithooks

                class Base:
                    @kithooks.hookimpl
                    def on_tool_call(self, event):
                        return kithooks.ToolCallResult(block=True, reason=self.reason)

                class Strict(Base):
                    reason = "strict"

                class _Private:
                    @kithooks.hookimpl
                    def on_agent_end(self, event):
                        pass

                class Abstract(abc.ABC):
                    @abc.abstractmethod
                    def rule(self): ...

                    @kithooks.hookimpl
                    def on_input(self, event):
                        pass
            """
        },
    )
    assert pm.load_errors == []
    assert [n for n, _ in pm.list_name_plugin()][1:] == ["family:Strict"]
    assert pm.emit(kithooks.ToolCallEvent()).reason == "strict"


def test_class_plugins_reload_and_can_be_blocked_by_name(tmp_path, monkeypatch):
    d = tmp_path / "plugins"
    d.mkdir()
    gate = d / "gate.py"
    body = """
import kithooks

class {cls}:
    @kithooks.hookimpl
    def on_tool_call(self, event):
        return kithooks.ToolCallResult(block=True, reason="{reason}")
"""
    gate.write_text(body.format(cls="Strict", reason="v1") + body.format(cls="Loose", reason="x"))
    monkeypatch.setenv("KITHOOKS_BLOCK_PLUGINS", "gate:Loose")
    pm = PluginManager()
    assert pm.load_plugin_files([d], user_dir=None, project_dir=None) == ["gate:Strict"]
    assert pm.emit(kithooks.ToolCallEvent()).reason == "v1"
    gate.write_text(body.format(cls="Renamed", reason="v2"))
    assert pm.reload() == ["gate:Renamed"]
    assert pm.get_plugin("gate:Strict") is None
    assert pm.emit(kithooks.ToolCallEvent()).reason == "v2"
    gate.write_text("import kithooks\n")  # the file lost its hooks: an error, not silence
    assert pm.reload() == ["gate:Renamed"]  # (or is half-saved: the working version stays)
    [error] = pm.load_errors
    assert (error.name, error.kept) == ("gate", ("gate:Renamed",))
    assert pm.emit(kithooks.ToolCallEvent()).reason == "v2"
    gate.unlink()  # removed: its plugins go
    assert pm.reload() == [] and not any(e.name == "gate" for e in pm.load_errors)
    assert pm.handler_names("tool_call") == ["turn-aggregator"]


def test_hooks_in_both_init_and_main_of_a_directory_plugin_are_an_error(tmp_path):
    hooks = "import kithooks\n\n@kithooks.hookimpl\ndef on_agent_end(event):\n    pass\n"
    pm = load_dir(tmp_path, {"both/__init__.py": hooks, "both/main.py": hooks})
    (error,) = pm.load_errors
    assert error.name == "both" and error.kind == "directory"
    assert "both __init__.py and main.py" in error.message and "both" in error.location
    assert pm.get_plugin("both") is None


def test_keyboard_interrupt_in_a_plugin_file_propagates(tmp_path):
    d = tmp_path / "plugins"
    d.mkdir()
    (d / "interrupt.py").write_text("raise KeyboardInterrupt\n")
    pm = PluginManager()
    with pytest.raises(KeyboardInterrupt):
        pm.load_plugin_files([d], user_dir=None, project_dir=None)
    assert not [m for m in sys.modules if m.startswith("_kithooks_plugin_interrupt_")]


def test_a_class_with_only_custom_event_handlers_is_a_plugin(tmp_path):
    pm = load_dir(
        tmp_path,
        {
            "listener.py": """
                import kithooks

                SEEN = []

                class Listener:
                    @kithooks.custom_event("deploy")
                    def on_deploy(self, data):
                        SEEN.append(data)
            """
        },
    )
    assert pm.load_errors == []
    assert [n for n, _ in pm.list_name_plugin()][1:] == ["listener:Listener"]
    assert pm.has_custom_subscribers("deploy")


def test_an_interrupted_load_can_be_retried(tmp_path):
    d = tmp_path / "plugins"
    d.mkdir()
    flag = tmp_path / "interrupt"
    flag.write_text("")
    (d / "flaky.py").write_text(
        "import pathlib\nimport kithooks\n\n"
        f"if pathlib.Path({str(flag)!r}).exists():\n    raise KeyboardInterrupt\n\n"
        "@kithooks.hookimpl\ndef on_agent_end(event):\n    pass\n"
    )
    pm = PluginManager()
    with pytest.raises(KeyboardInterrupt):
        pm.load_plugin_files([d], user_dir=None, project_dir=None)
    flag.unlink()
    assert pm.load_plugin_files([d], user_dir=None, project_dir=None) == ["flaky"]


def test_a_plugin_whose_marked_functions_match_no_hook_is_a_load_error(tmp_path):
    """`@hookimpl def deploy_check(...)` names no hook kithooks or the host knows: it would
    never run, so loading it is an error (a near miss of a kithooks hook says which)."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "near.py").write_text(
        "import kithooks\n\n@kithooks.hookimpl\ndef tool_call(event):\n"
        "    return kithooks.ToolCallResult(block=True)\n"
    )
    (plugins / "far.py").write_text(
        "import kithooks\n\n@kithooks.hookimpl\ndef qqq(event):\n    return None\n"
    )
    pm = kithooks.PluginManager()
    assert pm.load_plugin_files([plugins], user_dir=None, project_dir=None) == []
    messages = sorted(e.message for e in pm.load_errors)
    assert "did you mean 'on_tool_call'" in messages[1]
    assert "'qqq' is marked @kithooks.hookimpl but matches no hook" in messages[0]
    assert pm.emit(kithooks.ToolCallEvent(tool_name="bash")) is None


def guard_module(reason: str) -> str:
    return f"""
import kithooks

@kithooks.hookimpl
def on_tool_call(event):
    return kithooks.ToolCallResult(block=True, reason={reason!r})
"""


def test_two_distributions_with_the_same_entry_point_name_are_a_load_error(site, caplog):
    """Which one would win depends on install order: the other is loud, naming both."""
    for dist, module in (("kh-alpha", "kh_test_alpha"), ("kh-beta", "kh_test_beta")):
        install(site, dist, "1.0", {module: guard_module(dist)}, {"security": module})
    errors: list = []
    pm = PluginManager(on_error=errors.append)
    with caplog.at_level(logging.ERROR, logger="kithooks"):
        assert pm.load_entrypoints() == ["security"]
    winner = pm.plugin_source("security")
    loser = {"kh-alpha": ("kh-beta", "kh_test_beta"), "kh-beta": ("kh-alpha", "kh_test_alpha")}
    loser_dist, loser_value = loser[winner.distribution]
    (error,) = pm.load_errors
    assert errors == [error] and error.message in caplog.text
    assert (error.name, error.kind, error.distribution, error.location) == (
        "security",
        "entrypoint",
        loser_dist,
        loser_value,
    )
    assert isinstance(error.error, ValueError)
    # both sides: the one refused (distribution, value) and the one holding the name
    assert f"of distribution {loser_dist!r}" in error.message and loser_value in error.message
    holder = f"entry point security = {winner.location} of distribution {winner.distribution!r}"
    assert holder in error.message
    # loading again is a no-op for the entry point already registered from the same place
    again: list = []
    pm.add_listener(on_error=again.append)
    assert pm.load_entrypoints() == []
    assert all(e.distribution == loser_dist for e in again)


def test_a_host_aggregator_subclass_holding_a_name_is_named_as_the_hosts(site):
    install(
        site,
        "kh-taken2",
        "0.1",
        {"kh_test_taken2": guard_module("ep")},
        {"counts": "kh_test_taken2"},
    )

    class Counts(kithooks.TurnAggregator):
        pass

    pm = PluginManager(aggregate_turns=False)
    pm.register(Counts(), name="counts")
    assert pm.load_entrypoints() == []
    (error,) = pm.load_errors
    assert "already taken by a plugin the host registered (Counts)" in error.message
    assert "built-in" not in error.message


def test_an_entry_point_named_like_a_plugin_already_there_is_a_load_error(site, tmp_path):
    install(
        site,
        "kh-taken",
        "0.1",
        {"kh_test_taken": guard_module("ep")},
        {"turn-aggregator": "kh_test_taken", "gate": "kh_test_taken", "host": "kh_test_taken"},
    )
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "gate.py").write_text(guard_module("file"))
    pm = PluginManager()

    class Host:
        @kithooks.hookimpl
        def on_agent_end(self, event):
            pass

    pm.register(Host(), name="host")
    assert pm.load_plugin_files([plugins], user_dir=None, project_dir=None) == ["gate"]
    assert pm.load_entrypoints() == []
    errors = {e.name: e.message for e in pm.load_errors}
    assert set(errors) == {"turn-aggregator", "gate", "host"}
    assert "already taken by kithooks' built-in turn aggregator" in errors["turn-aggregator"]
    assert f"already taken by the file plugin {plugins.resolve() / 'gate.py'}" in errors["gate"]
    assert "already taken by a plugin the host registered (Host)" in errors["host"]
    for message in errors.values():
        assert "of distribution 'kh-taken'" in message and "kh_test_taken" in message
    assert pm.emit(kithooks.ToolCallEvent()).reason == "file"


TYPO_GUARD = """
import kithooks

@kithooks.hookimpl
def on_session_start(event):
    pass

@kithooks.hookimpl
def onToolCall(event):
    return kithooks.ToolCallResult(block=True, reason="no tools")
"""
CLASS_TYPO = """
import kithooks

class Gate:
    @kithooks.hookimpl
    def pre_tool_use(self, event):
        return kithooks.ToolCallResult(block=True, reason="no tools")

    @kithooks.hookimpl
    def on_agent_end(self, event):
        pass
"""


def test_one_misspelt_hook_beside_valid_ones_is_a_load_error_naming_it(tmp_path):
    """A valid on_session_start beside a misspelt guard used to load cleanly, the guard never
    called: the plugin is refused, naming it and the function; the others still load."""
    pm = load_dir(
        tmp_path,
        {"typo_guard.py": TYPO_GUARD, "class_typo.py": CLASS_TYPO, "gate.py": guard_module("ok")},
    )
    assert [n for n, _ in pm.list_name_plugin()][1:] == ["gate"]
    errors = errors_by_name(pm)
    assert set(errors) == {"typo_guard", "class_typo:Gate"}
    assert "plugin 'typo_guard': 'onToolCall' is marked @kithooks.hookimpl" in errors["typo_guard"]
    assert "did you mean 'on_tool_call'" in errors["typo_guard"]
    assert "plugin 'class_typo:Gate': 'pre_tool_use'" in errors["class_typo:Gate"]
    assert "did you mean 'on_tool_call'" in errors["class_typo:Gate"]
    assert not pm.has_handlers("session_start")
    assert pm.handler_names("agent_end") == ["turn-aggregator"]


def test_a_misspelt_hook_in_an_entry_point_is_a_load_error_naming_the_distribution(site):
    install(
        site,
        "kh-typo",
        "0.2",
        {"kh_test_typo": TYPO_GUARD, "kh_test_ok": guard_module("ok")},
        {"typo": "kh_test_typo", "ok": "kh_test_ok"},
    )
    pm = PluginManager()
    assert pm.load_entrypoints() == ["ok"]
    (error,) = pm.load_errors
    assert (error.name, error.distribution) == ("typo", "kh-typo")
    assert "'onToolCall' is marked @kithooks.hookimpl but matches no hook" in error.message


def test_a_plugin_with_only_optional_hooks_no_spec_knows_is_a_load_error(tmp_path):
    """optionalhook=True lets such a function register; a plugin with nothing else does
    nothing, which is still a load error."""
    pm = load_dir(
        tmp_path,
        {
            "optional.py": (
                "import kithooks\n\n@kithooks.hookimpl(optionalhook=True)\n"
                "def on_deploy(target):\n    pass\n"
            ),
            "mixed.py": (
                "import kithooks\n\n@kithooks.hookimpl(optionalhook=True)\n"
                "def on_deploy(target):\n    pass\n\n"
                "@kithooks.hookimpl\ndef on_agent_end(event):\n    pass\n"
            ),
        },
    )
    assert [n for n, _ in pm.list_name_plugin()][1:] == ["mixed"]
    assert "are optional hooks that match no hook" in errors_by_name(pm)["optional"]


# --------------------------------------------------------------------------- atomic reload

#: Each import takes a few milliseconds, as a real plugin's imports do: the window in which
#: an emit used to find no guard.
SLOW_IMPORT = "import time\ntime.sleep(0.003)\n"
RELOADED_GUARDS = {
    "gate.py": """
        import kithooks

        @kithooks.hookimpl
        def on_tool_call(event):
            if event.tool_name == "bash":
                return kithooks.ToolCallResult(block=True, reason="bash {version}")
    """,
    "gates.py": """
        import kithooks

        class Gate:
            @kithooks.hookimpl(tools="curl")
            def on_tool_call(self, event):
                return kithooks.ToolCallResult(block=True, reason="curl {version}")

            @kithooks.custom_event("ping")
            def on_ping(self, data):
                data.append("{version}")
    """,
    "dirgate/main.py": """
        import kithooks

        @kithooks.hookimpl
        def on_tool_call(event):
            if event.tool_name == "sh":
                return kithooks.ToolCallResult(block=True, reason="sh {version}")
    """,
}


def write_guards(directory: Path, version: int, extra: bool) -> None:
    for rel, source in RELOADED_GUARDS.items():
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        text = SLOW_IMPORT + textwrap.dedent(source).format(version=version)
        (directory / rel).write_text(text)
    extra_file = directory / "extra.py"  # a file that comes and goes between reloads
    if extra:
        extra_file.write_text(guard_module("extra").replace("return", "if 0: return"))
    else:
        extra_file.unlink(missing_ok=True)


def test_no_dispatch_during_a_reload_misses_a_guard_present_before_and_after(tmp_path):
    """reload() used to unregister every file plugin, re-import, then register: a tool call
    emitted in between met no guard and was let through. Now the new plugins are swapped in
    at once: every dispatch sees the old set or the new set, never neither (guards of a
    module, a class and a directory plugin, by emit and aemit, and a custom event)."""
    plugins = tmp_path / "plugins"
    write_guards(plugins, 0, extra=True)
    pm = PluginManager()
    assert pm.load_plugin_files([plugins], user_dir=None, project_dir=None)
    stop = threading.Event()
    missed: list[object] = []
    reasons: set[str] = set()
    pings: list[int] = []

    def emitter() -> None:
        while not stop.is_set():
            for tool in ("bash", "curl"):
                r = pm.emit(kithooks.ToolCallEvent(tool_name=tool))
                if r is None or not r.block:
                    missed.append((tool, r))
                else:
                    reasons.add(r.reason)
            got: list[str] = []
            pm.emit_custom_event("ping", got)
            pings.append(len(got))

    async def aemits() -> None:
        while not stop.is_set():
            r = await pm.aemit(kithooks.ToolCallEvent(tool_name="sh"))
            if r is None or not r.block:
                missed.append(("sh", r))
            else:
                reasons.add(r.reason)
            await asyncio.sleep(0)

    threads = [
        threading.Thread(target=emitter, daemon=True),
        threading.Thread(target=lambda: asyncio.run(aemits()), daemon=True),
    ]
    for t in threads:
        t.start()
    try:
        for version in range(1, 41):
            write_guards(plugins, version, extra=version % 2 == 0)
            pm.reload()
            time.sleep(0.001)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a dispatch thread is stuck"
    assert missed == []
    assert set(pings) == {1}, "a custom event reached no subscriber (or two) during a reload"
    assert pm.load_errors == []
    versions = {r.rsplit(" ", 1)[1] for r in reasons}
    assert versions <= {str(v) for v in range(41)} and "40" in versions
    assert {r.split(" ")[0] for r in reasons} == {"bash", "curl", "sh"}


def test_a_file_broken_by_a_reload_keeps_its_previous_version_and_is_reported(tmp_path, caplog):
    """An editor saving in place: the reload meets a syntax error. The guard used to be
    dropped (its calls let through); the previous, working version now stays registered, and
    the error is still loud (on_error, load_errors, logged naming the file and saying so)."""
    plugins = tmp_path / "plugins"
    write_guards(plugins, 1, extra=False)
    errors: list = []
    pm = PluginManager(on_error=errors.append)
    pm.load_plugin_files([plugins], user_dir=None, project_dir=None)
    gate = plugins / "gate.py"
    before = pm.get_plugin("gate")
    gate.write_text("import kithooks\n\ndef oops(:\n")
    with caplog.at_level(logging.ERROR, logger="kithooks"):
        assert "gate" in pm.reload()
    assert pm.get_plugin("gate") is before
    assert [e.name for e in errors] == [e.name for e in pm.load_errors] == ["gate"]
    assert isinstance(errors[0].error, SyntaxError) and errors[0].kept == ("gate",)
    [record] = [r for r in caplog.records if "failed to load" in r.getMessage()]
    assert str(gate) in record.getMessage()
    assert "the previous version of" in record.getMessage() and "is kept" in record.getMessage()
    assert pm.emit(kithooks.ToolCallEvent(tool_name="bash")).reason == "bash 1"
    assert pm.emit(kithooks.ToolCallEvent(tool_name="curl")).reason == "curl 1"
    # still broken at the next reload: still kept, reported again
    errors.clear()
    assert "gate" in pm.reload()
    assert [e.kept for e in errors] == [("gate",)] and pm.get_plugin("gate") is before
    # saved whole: the new version replaces it, and the error goes
    write_guards(plugins, 2, extra=False)
    pm.reload()
    assert pm.load_errors == []
    assert pm.emit(kithooks.ToolCallEvent(tool_name="bash")).reason == "bash 2"
    # deleted: its plugin goes (a removal, not a failure)
    gate.unlink()
    pm.reload()
    assert pm.get_plugin("gate") is None and pm.load_errors == []
    assert pm.emit(kithooks.ToolCallEvent(tool_name="bash")) is None


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param("", id="emptied"),
        pytest.param("import kithooks\n", id="truncated-to-no-hooks"),
        pytest.param("raise RuntimeError('half saved')\n", id="import-raises"),
    ],
)
def test_a_class_and_a_directory_plugin_broken_by_a_reload_keep_their_previous_version(
    tmp_path, broken
):
    plugins = tmp_path / "plugins"
    write_guards(plugins, 1, extra=False)
    pm = PluginManager()
    first = pm.load_plugin_files([plugins], user_dir=None, project_dir=None)
    (plugins / "gates.py").write_text(broken)
    (plugins / "dirgate" / "main.py").write_text(broken)
    assert pm.reload() == first  # same names, same order
    assert sorted(e.name for e in pm.load_errors) == ["dirgate", "gates"]
    assert {e.kept for e in pm.load_errors} == {("dirgate",), ("gates:Gate",)}
    assert pm.emit(kithooks.ToolCallEvent(tool_name="curl")).reason == "curl 1"
    assert pm.emit(kithooks.ToolCallEvent(tool_name="sh")).reason == "sh 1"
    got: list[str] = []
    pm.emit_custom_event("ping", got)
    assert got == ["1"]


def test_a_kept_directory_plugin_keeps_its_modules_for_imports_at_call_time(tmp_path):
    """The kept version's package stays in sys.modules: ``from . import rules`` in a handler
    still works after a reload that met a broken main.py."""
    d = tmp_path / "plugins" / "pkg"
    d.mkdir(parents=True)
    (d / "rules.py").write_text("REASON = 'rules v1'\n")
    main = (
        "import kithooks\n\n@kithooks.hookimpl\ndef on_tool_call(event):\n"
        "    from . import rules\n"
        "    return kithooks.ToolCallResult(block=True, reason=rules.REASON)\n"
    )
    (d / "main.py").write_text(main)
    pm = PluginManager()
    pm.load_plugin_files([tmp_path / "plugins"], user_dir=None, project_dir=None)
    assert pm.emit(kithooks.ToolCallEvent()).reason == "rules v1"
    (d / "main.py").write_text(main[:40])
    pm.reload()
    [error] = pm.load_errors
    assert error.kept == ("pkg",)
    assert pm.emit(kithooks.ToolCallEvent()).reason == "rules v1"


def test_a_file_that_never_loaded_whole_takes_its_new_version(tmp_path):
    """Only a version that loaded without a load error is kept: a file whose previous load
    already had an error (a class that cannot be built) takes each new version, errors and
    all, so an edit to its working part is not ignored for ever."""
    d = tmp_path / "plugins"
    d.mkdir()
    source = """
import kithooks

class Broken:
    def __init__(self, needed):
        pass

    @kithooks.hookimpl
    def on_agent_end(self):
        pass

@kithooks.hookimpl
def on_tool_call(event):
    return kithooks.ToolCallResult(block=True, reason={reason!r})
"""
    (d / "mixed.py").write_text(source.format(reason="v1"))
    pm = PluginManager()
    assert pm.load_plugin_files([d], user_dir=None, project_dir=None) == ["mixed"]
    assert [e.name for e in pm.load_errors] == ["mixed:Broken"]
    (d / "mixed.py").write_text(source.format(reason="v2"))
    assert pm.reload() == ["mixed"]
    [error] = pm.load_errors
    assert error.kept == ()
    assert pm.emit(kithooks.ToolCallEvent()).reason == "v2"


def test_a_clean_file_whose_new_version_loads_only_in_part_is_kept_whole(tmp_path):
    d = tmp_path / "plugins"
    d.mkdir()
    source = """
import kithooks

class Gate:
    def __init__(self{extra}):
        pass

    @kithooks.hookimpl
    def on_tool_call(self, event):
        return kithooks.ToolCallResult(block=True, reason="gate {version}")

@kithooks.hookimpl
def on_agent_end(event):
    pass
"""
    (d / "two.py").write_text(source.format(extra="", version=1))
    pm = PluginManager()
    assert pm.load_plugin_files([d], user_dir=None, project_dir=None) == ["two", "two:Gate"]
    (d / "two.py").write_text(source.format(extra=", needed", version=2))
    assert pm.reload() == ["two", "two:Gate"]
    [error] = pm.load_errors
    assert (error.name, error.kept) == ("two:Gate", ("two", "two:Gate"))
    assert pm.emit(kithooks.ToolCallEvent()).reason == "gate 1"


def test_no_dispatch_misses_a_guard_while_its_file_is_saved_in_place(tmp_path):
    """Reloads meeting the file half written (emptied, truncated, a syntax error) while
    other threads dispatch: the guard is always there, old version or new."""
    plugins = tmp_path / "plugins"
    write_guards(plugins, 0, extra=False)
    pm = PluginManager(on_error=lambda _: None)
    assert pm.load_plugin_files([plugins], user_dir=None, project_dir=None)
    gate = plugins / "gate.py"
    whole = gate.read_text()
    stop = threading.Event()
    missed: list[object] = []

    def emitter() -> None:
        while not stop.is_set():
            r = pm.emit(kithooks.ToolCallEvent(tool_name="bash"))
            if r is None or not r.block:
                missed.append(r)

    thread = threading.Thread(target=emitter, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        for version in range(1, 21):
            assert time.monotonic() < deadline
            cut = whole[: whole.index("return")]  # ends in "if ...:": a syntax error
            for partial in ("", cut, "import kithooks\n\ndef oops(:\n"):
                gate.write_text(partial)
                pm.reload()
            gate.write_text(whole.replace("bash 0", f"bash {version}"))
            pm.reload()
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive(), "the dispatch thread is stuck"
    assert missed == []
    assert pm.load_errors == []
    assert pm.emit(kithooks.ToolCallEvent(tool_name="bash")).reason == "bash 20"


def test_a_named_directory_without_plugins_is_a_load_error_not_silence(tmp_path):
    """-p DIR that holds no plugin, or a project's .kithooks given where its plugins
    directory was meant, loads nothing: that is said, naming the directory (and the
    plugins directory that was meant). An empty default plugin directory is no mistake."""
    guard = "import kithooks\n\n@kithooks.hookimpl\ndef on_tool_call(event):\n    return None\n"
    plugins = tmp_path / "proj" / ".kithooks" / "plugins"
    plugins.mkdir(parents=True)
    (plugins / "guard.py").write_text(guard)
    empty = tmp_path / "empty"
    empty.mkdir()

    pm = PluginManager()
    assert pm.load_plugin_files([empty], user_dir=None, project_dir=None) == []
    (error,) = pm.load_errors
    assert str(empty) in error.message and "holds no plugin" in error.message

    pm = PluginManager()
    assert pm.load_plugin_files(user_dir=None, project_dir=plugins.parent) == []
    (error,) = pm.load_errors
    assert f"but {str(plugins)!r} does: name that one" in error.message

    pm = PluginManager()
    assert pm.load_plugin_files(user_dir=None, project_dir=empty) == []
    assert pm.load_errors == []
    assert pm.load_plugin_files(user_dir=None, project_dir=plugins) == ["guard"]


def test_a_kept_version_whose_name_another_file_took_is_kept_under_its_path(tmp_path):
    # A user adds an unrelated user/gate.py while project/gate.py, a guard, is half-saved:
    # the new file takes the name "gate" first, and putting the working guard back under
    # "gate" failed, so the guard was gone.
    user, project = tmp_path / "user", tmp_path / "project"
    user.mkdir()
    project.mkdir()
    guard = project / "gate.py"
    guard.write_text(
        "import kithooks\n\n@kithooks.hookimpl\ndef on_tool_call(event, ctx):\n"
        "    return kithooks.ToolCallResult(block=True, reason='project guard')\n"
    )
    pm = PluginManager()
    pm.load_plugin_files(user_dir=user, project_dir=project, command_hooks=False)
    assert pm.emit(kithooks.ToolCallEvent(tool_name="bash")).reason == "project guard"
    (user / "gate.py").write_text(
        "import kithooks\n\n@kithooks.hookimpl\ndef on_agent_start(event, ctx):\n    pass\n"
    )
    guard.write_text(guard.read_text()[:-20])  # half-saved
    pm.reload()
    result = pm.emit(kithooks.ToolCallEvent(tool_name="bash"))
    assert result is not None and result.reason == "project guard"
    [error] = pm.load_errors
    assert error.kept == (str(guard),) and "SyntaxError" in error.message
    assert pm.get_plugin(str(guard)) is not None and pm.get_plugin("gate") is not None
