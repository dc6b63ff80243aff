"""Loading plugins: entry points from real (tmp) distributions, plain files, reload."""

from __future__ import annotations

import logging
import sys
import textwrap
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
    info = site / f"{dist}-{version}.dist-info"
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
    assert not pm.has_handlers("message_update") and not pm.has_handlers("agent_end")
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
