"""Start-up: what ``import kithooks`` leaves for later, and that what it defers still works.

A Claude Code command hook is a process per event, so every millisecond of import is paid
per tool call. Each test runs a fresh interpreter: the modules imported, and the code
compiled, are only observable in a process that has not imported kithooks yet.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

import kithooks


def _run(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
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
        """
        import builtins, inspect, pickle
        compiled = []
        real_compile = builtins.compile

        def counting(source, filename, *args, **kwargs):
            if str(filename).startswith("<kithooks __init__"):
                compiled.append(filename)
            return real_compile(source, filename, *args, **kwargs)

        builtins.compile = counting
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
        """
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
