"""Start-up: what ``import kithooks`` leaves for later, and that what it defers still works.

A Claude Code command hook is a process per event, so every millisecond of import is paid
per tool call. Each test runs a fresh interpreter: the modules imported, and the code
compiled, are only observable in a process that has not imported kithooks yet.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import kithooks

#: Prefix of a child's code: ``compiled`` lists the payload ``__init__`` s compiled.
_COUNT_COMPILES = """
import builtins
compiled = []
real_compile = builtins.compile

def counting(source, filename, *args, **kwargs):
    if str(filename).startswith("<kithooks __init__"):
        compiled.append(filename)
    return real_compile(source, filename, *args, **kwargs)

builtins.compile = counting
"""


def _run(code: str, prefix: str = "") -> str:
    proc = subprocess.run(
        [sys.executable, "-c", prefix + textwrap.dedent(code)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_kithooks_leaves_logging_hashlib_and_difflib_for_first_use() -> None:
    out = _run(
        """
        import sys
        import kithooks
        deferred = ("logging", "hashlib", "difflib", "genai_prices", "rich", "click")
        print(sorted(m for m in deferred if m in sys.modules))
        pm = kithooks.PluginManager()

        class Broken:
            @kithooks.hookimpl
            def on_agent_start(self, event):
                raise RuntimeError("boom")

        pm.register(Broken(), name="broken")
        pm.emit(kithooks.AgentStartEvent())
        print("logging" in sys.modules)
        """
    )
    first, after_failure = out.strip().splitlines()
    assert first == "[]", f"imported by `import kithooks`: {first}"
    assert after_failure == "True"


def test_deferred_logger_records_name_the_real_caller(caplog: pytest.LogCaptureFixture) -> None:
    pm = kithooks.PluginManager()

    class Broken:
        @kithooks.hookimpl
        def on_agent_start(self, event: kithooks.AgentStartEvent) -> None:
            raise RuntimeError("boom")

    pm.register(Broken(), name="broken")
    with caplog.at_level(logging.ERROR, logger="kithooks"):
        pm.emit(kithooks.AgentStartEvent())
    (record,) = [r for r in caplog.records if "broken" in r.getMessage()]
    assert record.name == "kithooks"
    assert record.module == "callers", "the record names the stand-in, not the caller"
    assert isinstance(logging.getLogger("kithooks"), logging.Logger)


def test_payload_classes_compile_their_init_when_first_built() -> None:
    out = _run(
        prefix=_COUNT_COMPILES,
        code="""
        import inspect
        import attrs
        from kithooks import events
        print(len(compiled))
        P = inspect.Parameter
        for cls in events._DOCUMENTED:
            expected = inspect.Signature(
                [P(f.name, P.KEYWORD_ONLY, default=f.default) for f in attrs.fields(cls)]
            )
            assert inspect.signature(cls) == expected, (cls, inspect.signature(cls))
            first = cls()
            assert inspect.signature(cls) == expected, (cls, "after the first build")
            assert cls() == first and cls.__init__.__doc__.startswith("Build a")
        print(len(compiled), len(events._DOCUMENTED))
        """,
    )
    at_import, after, classes = map(int, out.split())
    assert at_import == 0
    assert after == classes == 44


def test_replace_and_errors_work_on_a_class_never_built_in_this_process() -> None:
    # An unpickled payload skips __init__: replace() must compile its class's function too.
    import pickle

    blob = pickle.dumps(kithooks.ToolCallEvent(tool_name="bash", input='{"command": "ls"}'))
    _run(
        f"""
        import pickle
        from kithooks import events
        event = pickle.loads({blob!r})
        assert events.ToolCallEvent not in events._REPLACE
        changed = events.replace(event, tool_name="sh")
        assert changed.tool_name == "sh" and changed.parsed_args == {{"command": "ls"}}
        try:
            events.ToolResultEvent(tool_name=3)
        except TypeError as e:
            assert "tool_name" in str(e), e
        else:
            raise AssertionError("no TypeError")
        try:
            events.ToolResultEvent("positional")
        except TypeError:
            pass
        else:
            raise AssertionError("a positional argument was accepted")
        try:
            events.replace(object())
        except KeyError:
            pass
        else:
            raise AssertionError("replace() took a non-payload")
        """
    )


def _modules_at_exit(argv: list[str], stdin: str, tmp_path: Path) -> tuple[set[str], str]:
    """The heavy modules a ``kithooks`` process had imported by its exit, and its stdout."""
    code = (
        "import atexit, sys\n"
        "heavy = ('asyncio', 'rich', 'filelock', 'genai_prices', 'concurrent.futures')\n"
        "atexit.register(lambda: print('MODULES', *[m for m in heavy if m in sys.modules],"
        " file=sys.stderr))\n"
        f"sys.argv = {['kithooks', *argv]!r}\n"
        "from kithooks.cli import main\n"
        "main()\n"
    )
    env = {**os.environ, "KITHOOKS_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stderr.splitlines() if x.startswith("MODULES"))
    return set(line.split()[1:]), proc.stdout


def test_a_claude_hook_call_imports_no_event_loop_and_no_terminal_library(tmp_path: Path) -> None:
    """`kithooks claude-hook` runs once per Claude Code hook event: with plain handlers it
    needs neither asyncio (emit, not aemit) nor rich (it prints JSON), and it writes state."""
    gate = tmp_path / "gate.py"
    gate.write_text(
        "import kithooks\n\n@kithooks.hookimpl\ndef on_tool_call(event, ctx):\n"
        "    ctx.set_state('seen', event.tool_name)\n"
        "    if 'rm' in event.input:\n"
        "        return kithooks.ToolCallResult(block=True, reason='no rm')\n"
    )
    call = {
        "session_id": "s1",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "rm -rf /"},
    }
    argv = ["claude-hook", "-p", str(gate), "--no-entrypoints"]
    modules, out = _modules_at_exit(argv, json.dumps(call), tmp_path)
    assert json.loads(out)["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert modules == set(), f"imported by a claude-hook call: {modules}"
    assert list((tmp_path / "state").iterdir()), "the call wrote no session state"


def test_kithooks_help_imports_no_terminal_library(tmp_path: Path) -> None:
    modules, out = _modules_at_exit(["--help"], "", tmp_path)
    assert "claude-hook" in out and "replay" in out
    assert modules == set(), f"imported by kithooks --help: {modules}"


def test_an_init_taken_before_the_first_build_compiles_once() -> None:
    out = _run(
        prefix=_COUNT_COMPILES,
        code="""
        from kithooks.events import ToolResultEvent
        init = ToolResultEvent.__init__  # the stand-in, kept by the caller
        for _ in range(3):
            event = object.__new__(ToolResultEvent)
            init(event, tool_name="bash", content="ok")
            assert event.content == "ok"
        print(len(compiled))
        """,
    )
    assert out.split() == ["1"]


def test_attributes_set_on_a_module_logger_reach_the_real_one() -> None:
    from kithooks import manager

    real = logging.getLogger("kithooks")
    before = real.propagate
    try:
        manager.logger.propagate = not before
        assert real.propagate is (not before)
        assert manager.logger.propagate is (not before)
    finally:
        real.propagate = before


#: The submodules ``import kithooks`` leaves for first access (the docs spell them
#: ``kithooks.otel.OtelExporter()``, ``kithooks.recording.Recorder(path)``, ...).
LAZY = ("adapters", "command_hooks", "hosting", "otel", "recording", "streams", "testing")


def test_import_kithooks_imports_none_of_the_lazy_submodules() -> None:
    out = _run(
        f"""
        import sys
        import kithooks
        lazy = {LAZY!r}
        print(sorted(m for m in lazy if "kithooks." + m in sys.modules))
        print(sorted(m for m in ("asyncio", "importlib.metadata") if m in sys.modules))
        print(sorted(set(lazy) - set(dir(kithooks))))
        """
    )
    imported, heavy, undirred = out.strip().splitlines()
    assert imported == "[]", f"imported by `import kithooks`: {imported}"
    assert heavy == "[]", f"imported by `import kithooks`: {heavy}"
    assert undirred == "[]", f"missing from dir(kithooks): {undirred}"


@pytest.mark.parametrize(
    ("submodule", "attribute"),
    [
        ("adapters", "TOOL_EVENTS"),
        ("command_hooks", "CommandHooks"),
        ("hosting", "ToolRun"),
        ("otel", "OtelExporter"),
        ("recording", "Recorder"),
        ("streams", "owned_stdout"),
        ("testing", "Harness"),
    ],
)
def test_each_lazy_submodule_is_an_attribute_after_a_bare_import(
    submodule: str, attribute: str
) -> None:
    if submodule == "otel":
        pytest.importorskip("opentelemetry.trace")
    out = _run(
        f"""
        import sys
        import kithooks
        print("kithooks.{submodule}" in sys.modules)
        module = kithooks.{submodule}
        print(module is sys.modules["kithooks.{submodule}"], hasattr(module, {attribute!r}))
        """
    )
    assert out.split() == ["False", "True", "True"]


def test_an_unknown_attribute_of_kithooks_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="module 'kithooks' has no attribute 'nope'"):
        kithooks.nope  # type: ignore[attr-defined]
    assert not hasattr(kithooks, "recordings")
