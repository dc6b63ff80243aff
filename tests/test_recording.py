"""Record and replay: JSONL recordings, round trips, bad lines, crash safety."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import types
from collections.abc import Mapping
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kithooks
from kithooks import Context, PluginManager, hookimpl
from kithooks.demo import EXAMPLE_PLUGINS, demo_project, demo_recording, record_session
from kithooks.events import EVENT_CLASSES
from kithooks.recording import Recorder, ReplayError, read_recording, replay
from kithooks.testing import strategies as ks
from test_cli_support import run_cli


def examples_manager(tmp_path, monkeypatch) -> PluginManager:
    monkeypatch.setenv("KITHOOKS_TOOL_LOG", str(tmp_path / "tools.jsonl"))
    pm = PluginManager(context=Context(cwd=str(demo_project())))
    for name, module in EXAMPLE_PLUGINS:
        pm.register(module, name=name)
    return pm


def _manager_and_errors() -> tuple[PluginManager, list[object]]:
    """A manager, and the list its handler failures go to."""
    pm = PluginManager()
    errors: list[object] = []
    pm.add_listener(on_error=errors.append)
    return pm, errors


def outcomes(report):
    """What the plugins did, per turn (prints carry a measured duration, so they are left out)."""
    return [
        (
            t.turn_id,
            [
                (a.kind, a.plugin, a.event_type, a.detail)
                for a in t.actions
                if a.kind not in ("print", "print_error")
            ],
            t.agent_end and attrs.evolve(t.agent_end, duration_ms=0),
        )
        for t in report.turns
    ]


def test_bundled_recording_is_what_the_scripted_session_records(tmp_path):
    fresh = tmp_path / "demo.jsonl"
    record_session(fresh)
    assert fresh.read_text(encoding="utf-8") == demo_recording().read_text(encoding="utf-8"), (
        "the bundled recording is stale: run 'python -m kithooks.demo src/kithooks/data/demo.jsonl'"
    )


def test_demo_replay_reports_what_each_plugin_did(tmp_path, monkeypatch):
    report = replay(demo_recording(), examples_manager(tmp_path, monkeypatch))
    assert report.events == 170 and not report.failures and not report.bad_lines
    turn1 = next(t for t in report.turns if t.turn_id == "turn-1")
    kinds = [(a.kind, a.plugin) for a in turn1.actions if a.plugin]
    assert ("block", "permission-gate") in kinds
    assert ("rewrite", "secret-redactor") in kinds
    assert ("inject", "context-injector") in kinds
    block = next(a for a in turn1.actions if a.kind == "block")
    assert "rm -rf /" in block.detail
    rewrite = next(a for a in turn1.actions if a.kind == "rewrite")
    assert "sk-proj" in rewrite.before and "[REDACTED:openai-key]" in rewrite.after["content"]
    end = turn1.agent_end
    assert end.tool_call_count == 5 and end.tool_names == ("bash", "read", "edit", "bash", "bash")
    assert end.llm_call_count == 3 and end.input_tokens_delta == 3412 + 1203 + 980
    assert end.cache_read_tokens_delta == 5460 + 6011 and end.cache_write_tokens_delta == 2048
    assert end.cost_delta > 0
    prints = [a.detail for a in turn1.actions if a.kind == "print"]
    assert any(p.startswith("[turn] stop=stop tools=5") for p in prints)
    turn2 = next(t for t in report.turns if t.turn_id == "turn-2")
    assert turn2.agent_end.tool_names == ("subagent",) and turn2.agent_end.llm_call_count == 2
    json.dumps(report.to_json())  # JSON-able


def test_record_then_replay_gives_the_same_plugin_outcomes(tmp_path, monkeypatch):
    first = replay(demo_recording(), examples_manager(tmp_path, monkeypatch))
    # Record the replay itself, then replay that recording: the same outcomes come out.
    again = tmp_path / "again.jsonl"
    pm = examples_manager(tmp_path, monkeypatch)
    with Recorder(again) as recorder:
        pm.register(recorder, name="recorder")
        for record in read_recording(demo_recording()):
            pm.emit(
                record.event,
                Context(
                    session_id=record.session_id, turn_id=record.turn_id, cwd=str(demo_project())
                ),
            )
        pm.unregister(recorder)
    second = replay(again, examples_manager(tmp_path, monkeypatch))
    assert outcomes(second) == outcomes(first)


def test_recorder_writes_one_tagged_object_per_line_with_ids(tmp_path):
    path = tmp_path / "rec" / "out.jsonl"
    pm = PluginManager(context=Context(session_id="s", turn_id="t"))
    with Recorder(path) as recorder:
        pm.register(recorder)

        class Gate:
            @hookimpl(tryfirst=True)
            def on_tool_call(self, event):
                return kithooks.ToolCallResult(block=True)

        pm.register(Gate())
        pm.emit(kithooks.ToolCallEvent(tool_name="bash", parsed_args={"a": [1]}))
        pm.emit(kithooks.MessageUpdateEvent(chunk="héllo\n"))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2  # the blocked call was recorded: the recorder runs first
    first = json.loads(lines[0])
    assert first["session_id"] == "s" and first["turn_id"] == "t"
    assert first["event"]["type"] == "tool_call" and first["event"]["parsed_args"] == {"a": [1]}
    assert [r.event for r in read_recording(path)][1] == kithooks.MessageUpdateEvent(
        chunk="héllo\n"
    )


def test_recorder_limited_to_some_events(tmp_path):
    pm = PluginManager()
    with Recorder(tmp_path / "r.jsonl", events=frozenset({kithooks.EventType.TOOL_CALL})) as rec:
        pm.register(rec)
        pm.emit(kithooks.MessageUpdateEvent())
        pm.emit(kithooks.ToolCallEvent())
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 1


BAD = [
    ("not json at all", "not JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"event": {"type": "nope"}}', "unknown event type 'nope' @ event.type"),
    (
        '{"event": {"type": "tool_call", "tool_name": 5}}',
        "expected str, got int 5 @ event.tool_name",
    ),
    ('{"session_id": 1, "event": {"type": "message_start"}}', "session_id must be a string"),
    ('{"turn_id": "t"}', "missing 'event'"),
    ('{"event": {"type": "message_start"}, "extra": 1}', "unknown key(s) extra"),
    ('{"event": {"type": "tool_call", "parsed_args": {"n": NaN}}}', "NaN is not a JSON number"),
    ('{"event": {"type": "tool_call", "parsed_args": {"n": 1e999}}}', "number out of range"),
    ('{"event": {"type": "message_start"}, "nonfinite": []}', "nonfinite must be an object"),
    (
        '{"event": {"type": "tool_call", "parsed_args": {"n": null}},'
        ' "nonfinite": {"/parsed_args/n": "nan"}}',
        "expected 'NaN', 'Infinity' or '-Infinity'",
    ),
    (
        '{"event": {"type": "tool_call", "parsed_args": {"n": 1}},'
        ' "nonfinite": {"/parsed_args/n": "NaN"}}',
        "no null there in the event",
    ),
    (
        '{"event": {"type": "tool_call", "parsed_args": {"n": [null]}},'
        ' "nonfinite": {"/parsed_args/n/01": "NaN"}}',
        "no null there in the event",
    ),
    (
        '{"event": {"type": "tool_call"}, "nonfinite": {"parsed_args": "NaN"}}',
        "not a JSON Pointer into the event",
    ),
    (
        '{"event": {"type": "llm_usage", "cost": null}, "nonfinite": {"/cost": "Infinity"}}',
        "bad event",
    ),
    (
        '{"event": {"type": "tool_call", "parsed_args": {"n": null}},'
        ' "nonfinite": {"/parsed_args/n": []}}',
        "expected 'NaN', 'Infinity' or '-Infinity', got []",
    ),
]


@pytest.mark.parametrize(("line", "why"), BAD)
def test_a_bad_line_is_reported_with_file_and_line(tmp_path, line, why):
    path = tmp_path / "bad.jsonl"
    good = '{"session_id": "s", "turn_id": "t", "event": {"type": "message_start"}}'
    path.write_text(f"{good}\n\n{line}\n{good}\n", encoding="utf-8")
    seen = []

    class Count:
        @hookimpl
        def on_message_start(self):
            seen.append(1)

    pm = PluginManager()
    pm.register(Count())
    with pytest.raises(ReplayError) as info:
        replay(path, pm)
    assert str(info.value).startswith(f"{path}:3: ") and why in str(info.value)
    assert seen == [1]  # replayed up to the bad line
    report = replay(path, pm, skip_bad=True)
    assert report.events == 2 and [b.line for b in report.bad_lines] == [3]


CRASHER = textwrap.dedent(
    """
    import sys, kithooks
    from kithooks.recording import Recorder
    pm = kithooks.PluginManager()
    pm.register(Recorder(sys.argv[1]))
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        pm.emit(kithooks.MessageUpdateEvent(chunk="x" * (i % 3000)))
    """
)


def test_a_crash_loses_at_most_the_line_being_written(tmp_path):
    path = tmp_path / "crash.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    report = replay(path, PluginManager(), skip_bad=True)
    assert report.events > 10
    # only the last line may be torn
    assert all(b.line == report.events + len(report.bad_lines) for b in report.bad_lines)
    assert len(report.bad_lines) <= 1


# ---------------------------------------------------------------- replay counts as live


class RmGate:
    """A tryfirst guard: it runs before every plain handler and blocks ``rm``."""

    @hookimpl(tryfirst=True)
    def on_tool_call(self, event):
        if event.tool_name == "rm":
            return kithooks.ToolCallResult(block=True, reason="no rm")
        return None


GATED_TURN = [
    kithooks.AgentStartEvent(prompt="p"),
    kithooks.ToolCallEvent(tool_name="ls", tool_call_id="c1"),
    kithooks.ToolCallEvent(tool_name="rm", tool_call_id="c2"),
    kithooks.AgentEndEvent(response="done", stop_reason="stop"),
]


def _gated_manager(aggregator_first: bool, recorder: Recorder | None = None) -> PluginManager:
    pm = PluginManager(aggregate_turns=aggregator_first)
    if recorder is not None:  # before the guard, so it records the call the guard blocks
        pm.register(recorder, name="recorder")
    pm.register(RmGate(), name="gate")
    if not aggregator_first:  # a host that registers its aggregator after its guard
        pm.register(kithooks.TurnAggregator(), name="turn-aggregator")
    return pm


@pytest.mark.parametrize("aggregator_first", [True, False])
def test_replay_counts_the_tool_calls_a_live_manager_counts(tmp_path, aggregator_first):
    path = tmp_path / "gated.jsonl"
    ends: list[kithooks.AgentEndEvent] = []

    class End:
        @hookimpl
        def on_agent_end(self, event):
            ends.append(event)

    with Recorder(path) as recorder:
        live_pm = _gated_manager(aggregator_first, recorder)
        live_pm.register(End())
        ctx = Context(session_id="s", turn_id="t")
        for event in GATED_TURN:
            live_pm.emit(event, ctx)
    (live,) = ends

    pm = _gated_manager(aggregator_first)
    aggregator = pm.turn_aggregator
    order = pm.handler_names("tool_call")
    report = replay(path, pm)
    (turn,) = report.turns
    assert turn.agent_end is not None
    assert turn.agent_end.tool_call_count == live.tool_call_count
    assert turn.agent_end.tool_names == live.tool_names
    if aggregator_first:  # the contract: blocked calls count
        assert turn.agent_end.tool_names == ("ls", "rm")
    # the manager is as it was: the same aggregator, in the same place
    assert pm.turn_aggregator is aggregator
    assert pm.handler_names("tool_call") == order


def _records(path: Path, events: list[kithooks.Event]) -> Path:
    """``events`` as a recording at ``path`` (session s, turn t)."""
    path.write_text(
        "".join(
            json.dumps({"session_id": "s", "turn_id": "t", "event": kithooks.event_to_dict(e)})
            + "\n"
            for e in events
        )
    )
    return path


def _gated_recording(tmp_path: Path) -> Path:
    """GATED_TURN as a recording (session s, turn t)."""
    return _records(tmp_path / "rec.jsonl", GATED_TURN)


def test_replay_keeps_the_hosts_aggregator_limits(tmp_path):
    """Replay's aggregator takes the host's max_tool_names (and max_open_turns): replayed
    agent_end lists what the live one listed."""
    path = _gated_recording(tmp_path)
    pm = PluginManager(aggregate_turns=False)
    pm.register(kithooks.TurnAggregator(max_tool_names=1), name="turn-aggregator")
    (turn,) = replay(path, pm).turns
    assert turn.agent_end is not None
    assert turn.agent_end.tool_names == ("ls",) and turn.agent_end.tool_call_count == 2


def test_replay_works_on_a_manager_that_keeps_events_unheard(tmp_path):
    """Replay's own probe is internal: a manager that promised (keep_unheard, as a
    LangChain agent built with no plugin makes it) still replays, and gets its aggregator
    back."""
    pm = PluginManager()
    aggregator = pm.turn_aggregator
    assert pm.keep_unheard(["agent_end", "tool_call"], "an agent with no hook")
    (turn,) = replay(_gated_recording(tmp_path), pm).turns
    assert turn.agent_end is not None and turn.agent_end.tool_call_count == 2
    assert pm.turn_aggregator is aggregator
    with pytest.raises(ValueError, match="an agent with no hook"):
        pm.register(RmGate(), name="gate")


def test_replay_keeps_a_guard_set_on_the_hosts_aggregator_object(tmp_path):
    """An aggregator object with a handler set on it is a plugin: replay leaves it in place,
    so its block is replayed."""
    aggregator = kithooks.TurnAggregator()
    aggregator.on_tool_call = hookimpl(
        lambda event: (
            kithooks.ToolCallResult(block=True, reason="no rm") if event.tool_name == "rm" else None
        )
    )
    pm = PluginManager(aggregate_turns=False)
    pm.register(aggregator, name="turn-aggregator")
    (turn,) = replay(_gated_recording(tmp_path), pm).turns
    assert [a.kind for a in turn.actions] == ["block"]
    assert pm.turn_aggregator is aggregator


def test_replay_counts_blocked_calls_through_the_api(tmp_path):
    path = _gated_recording(tmp_path)
    pm = PluginManager()
    pm.register(RmGate(), name="gate")
    report = replay(path, pm)
    (turn,) = report.turns
    assert turn.agent_end is not None
    assert (turn.agent_end.tool_call_count, turn.agent_end.tool_names) == (2, ("ls", "rm"))
    assert [a.kind for a in turn.actions] == ["block"]

    # and replay leaves the aggregator where it was: live dispatch still counts the block
    ends: list[kithooks.AgentEndEvent] = []

    class End:
        @hookimpl
        def on_agent_end(self, event):
            ends.append(event)

    pm.register(End())
    for event in GATED_TURN:
        pm.emit(event)
    assert [e.tool_names for e in ends] == [("ls", "rm")]


# ---------------------------------------------------------------- every event round-trips


def test_nan_and_infinities_in_tool_arguments_round_trip(tmp_path):
    path = tmp_path / "r.jsonl"
    pm, errors = _manager_and_errors()
    args = '{"n": 1e999, "m": [NaN, -1e999, -0.0], "a/b~c": {"": Infinity}}'
    with Recorder(path) as recorder:
        pm.register(recorder)
        pm.emit(kithooks.ToolCallEvent(tool_name="x", tool_call_id="c1", input=args))
        # given by the host, not derived from input
        pm.emit(kithooks.ToolCallEvent(tool_name="y", parsed_args={"n": float("nan")}))
    assert errors == []
    first, second = read_recording(path)  # strict JSON, read back by our own reader
    parsed = first.event.parsed_args
    assert parsed["n"] == math.inf and parsed["m"][1] == -math.inf
    assert math.isnan(parsed["m"][0]) and math.copysign(1, parsed["m"][2]) == -1
    assert parsed["a/b~c"] == {"": math.inf}
    assert first.event.input == args
    assert math.isnan(second.event.parsed_args["n"])
    for line in path.read_text().splitlines():  # strict JSON: no NaN or Infinity tokens
        json.loads(line, parse_constant=pytest.fail)
    report = replay(path, PluginManager())
    assert report.events == 2 and report.bad_lines == []


def test_replay_reads_back_infinite_tool_arguments_through_the_cli(tmp_path):
    path = tmp_path / "rec.jsonl"
    with Recorder(path) as recorder:
        recorder.record(kithooks.ToolCallEvent(tool_name="x", input='{"n": 1e999}'), Context())
    proc = run_cli(tmp_path, "replay", "--no-entrypoints", "--json", str(path))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["events"] == 1


def test_a_lone_surrogate_round_trips(tmp_path):
    path = tmp_path / "r.jsonl"
    pm, errors = _manager_and_errors()
    with Recorder(path) as recorder:
        pm.register(recorder)
        ctx = Context(session_id="s\udfff", turn_id="t")
        pm.emit(kithooks.MessageUpdateEvent(chunk="bad \ud800 caf\u00e9"), ctx)
        pm.emit(kithooks.MessageUpdateEvent(chunk="good caf\u00e9"), Context())
    assert errors == []
    bad, good = read_recording(path)
    assert bad.event == kithooks.MessageUpdateEvent(chunk="bad \ud800 caf\u00e9")
    assert bad.session_id == "s\udfff"
    assert good.event == kithooks.MessageUpdateEvent(chunk="good caf\u00e9")
    lines = path.read_bytes().splitlines()
    assert lines[0].isascii() and b"\\ud800" in lines[0]
    assert "caf\u00e9".encode() in lines[1]  # other lines stay UTF-8 as they were


def test_a_recorder_appending_after_a_torn_line_starts_a_new_line(tmp_path):
    path = tmp_path / "r.jsonl"
    with Recorder(path) as recorder:
        recorder.record(kithooks.MessageUpdateEvent(chunk="one"), Context())
    whole = path.read_bytes()
    path.write_bytes(whole + whole[: len(whole) // 2])  # a crash in the second line
    with Recorder(path) as recorder:
        recorder.record(kithooks.MessageUpdateEvent(chunk="three"), Context())
    bad: list = []
    records = list(read_recording(path, skip_bad=True, bad=bad))
    assert [r.event.chunk for r in records] == ["one", "three"]
    assert [b.line for b in bad] == [2]
    assert path.read_bytes().startswith(whole)


def test_a_recorder_writes_to_a_fifo(tmp_path):
    # A pipe has no last line to look at: it is written to as it is (the torn-line check is
    # for regular files).
    import threading

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    with Recorder(fifo) as recorder:
        recorder.record(kithooks.MessageUpdateEvent(chunk="piped"), Context())
    reader.join(timeout=30)
    assert not reader.is_alive()
    assert json.loads(got[0])["event"]["chunk"] == "piped"


TORN_WRITER = textwrap.dedent(
    """
    import os, signal, sys, kithooks
    from kithooks.recording import Recorder
    path, good = sys.argv[1], int(sys.argv[2])
    recorder = Recorder(path)
    pm = kithooks.PluginManager()
    pm.register(recorder)
    for i in range(good):
        pm.emit(kithooks.MessageUpdateEvent(chunk=f"before {i}"))

    class Torn:  # the file, killed half-way through writing the next line
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            self.fh.write(data[: len(data) // 2])
            self.fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    recorder._file = Torn(recorder._file)
    pm.emit(kithooks.MessageUpdateEvent(chunk="torn" * 100))
    """
)


def test_a_sigkill_mid_line_then_appending_loses_only_that_line(tmp_path):
    path = tmp_path / "crash.jsonl"
    proc = subprocess.run([sys.executable, "-c", TORN_WRITER, str(path), "5"], check=False)
    assert proc.returncode == -signal.SIGKILL
    assert not path.read_bytes().endswith(b"\n")
    appender = textwrap.dedent(
        """
        import sys, kithooks
        from kithooks.recording import Recorder
        with Recorder(sys.argv[1]) as recorder:
            pm = kithooks.PluginManager()
            pm.register(recorder)
            for i in range(3):
                pm.emit(kithooks.MessageUpdateEvent(chunk=f"after {i}"))
        """
    )
    subprocess.run([sys.executable, "-c", appender, str(path)], check=True)
    report = replay(path, PluginManager(), skip_bad=True)
    assert report.events == 8
    assert [b.line for b in report.bad_lines] == [6]
    chunks = [r.event.chunk for r in read_recording(path, skip_bad=True)]
    assert chunks == [f"before {i}" for i in range(5)] + [f"after {i}" for i in range(3)]


# Text with everything a str can hold: surrogates (lone, or two in a row), control
# characters, line and paragraph separators, a byte order mark.
_CHARS = (
    st.characters()
    | st.characters(categories=["Cs"])
    | st.sampled_from(["\x00", "\n", "\r", "\x1f", "\x7f", "\u2028", "\ufeff", "\ud83d", "\ude00"])
)
_TEXT = st.text(_CHARS, max_size=12)
_FLOATS = st.floats() | st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 5e-324])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _FLOATS | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
_MESSAGES = st.lists(
    st.builds(kithooks.ContextMessage, index=st.integers(-3, 9), role=_TEXT, content=_TEXT),
    max_size=3,
).map(tuple)
_OVERRIDES = {
    "str": _TEXT,
    "str | None": st.none() | _TEXT,
    "tuple[str, ...]": st.lists(_TEXT, max_size=3).map(tuple),
    "json_object": st.none() | st.dictionaries(_TEXT, _JSON, max_size=4),
    "messages": _MESSAGES,
    "opt_messages": st.none() | _MESSAGES,
}


def _field(field):
    meta = field.metadata
    if meta["choices"] or meta["kind"] not in _OVERRIDES:
        return ks._for_field(field)
    return _OVERRIDES[meta["kind"]]


_ANY_EVENT = st.one_of(
    [
        st.builds(cls, **{f.name: _field(f) for f in attrs.fields(cls)})
        for cls in EVENT_CLASSES.values()
    ]
    # arguments derived from the model's JSON text, which Python reads with NaN and 1e999
    + [
        st.builds(
            kithooks.ToolCallEvent,
            tool_name=_TEXT,
            input=st.dictionaries(_TEXT, _JSON, max_size=4).map(json.dumps),
        )
    ]
)


def _utf16(text: str) -> str:
    """``text`` as JSON's ``\\u`` escapes give it back: a surrogate pair is one character."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _exact(value):
    """Comparable data telling apart what == does not (NaN, -0.0, 1 / 1.0 / True)."""
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else repr(value))
    if isinstance(value, bool | int):
        return (type(value).__name__, value)
    if isinstance(value, str):
        return ("str", _utf16(value))
    if isinstance(value, dict):
        return {_utf16(k): _exact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_exact(v) for v in value]
    return value


@given(
    events=st.lists(_ANY_EVENT, min_size=1, max_size=4),
    session_id=_TEXT,
    turn_id=_TEXT,
)
def test_every_event_round_trips_through_recorder_and_reader(events, session_id, turn_id):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.jsonl"
        ctx = Context(session_id=session_id, turn_id=turn_id)
        with Recorder(path, clock=lambda: 7) as recorder:
            for event in events:
                recorder.record(event, ctx)
        records = list(read_recording(path))
    assert len(records) == len(events)
    for record, event in zip(records, events, strict=True):
        assert type(record.event) is type(event)
        assert _exact(kithooks.event_to_dict(record.event)) == _exact(kithooks.event_to_dict(event))
        assert (record.session_id, record.turn_id) == (_utf16(session_id), _utf16(turn_id))
        assert record.time_ms == 7


# ---------------------------------------------------------------- who did what


class _Gate:
    """One class, configured twice: its handlers' code is shared by both instances."""

    def __init__(self, word: str) -> None:
        self.word = word

    @hookimpl
    def on_tool_call(self, event, ctx):
        if self.word in event.input:
            ctx.print(f"{self.word} seen")
            ctx.emit_custom_event("gate-hit", self.word)
            self.note(ctx)
            return kithooks.ToolCallResult(block=True, reason=f"{self.word} is not allowed")
        return None

    def note(self, ctx):
        ctx.print(f"{self.word} noted")

    @kithooks.custom_event("gate-hit")
    def heard(self, data, ctx):
        ctx.print(f"{self.word} heard {data}")


def _one_call_recording(tmp_path, command: str) -> Path:
    line = {
        "session_id": "s",
        "turn_id": "t",
        "event": {"type": "tool_call", "tool_name": "bash", "input": json.dumps({"cmd": command})},
    }
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(line) + "\n")
    return path


@pytest.mark.parametrize("command", ["curl x", "rm x"])
def test_two_instances_of_one_class_are_each_credited_with_what_they_did(tmp_path, command):
    pm = PluginManager()
    pm.register(_Gate("rm"), name="gate-rm")
    pm.register(_Gate("curl"), name="gate-curl")
    word = command.split()[0]
    report = replay(_one_call_recording(tmp_path, command), pm)
    done = [(a.kind, a.plugin, a.detail) for a in report.turns[0].actions]
    assert (f"gate-{word}", f"{word} seen") in [(p, d) for k, p, d in done if k == "print"]
    assert ("custom_event", f"gate-{word}", f"gate-hit: {word}") in done
    assert ("print", f"gate-{word}", f"{word} noted") in done  # a helper method of its own
    # each subscriber's print is its own, though the other instance emitted the event
    assert ("print", "gate-rm", f"rm heard {word}") in done
    assert ("print", "gate-curl", f"curl heard {word}") in done
    assert ("block", f"gate-{word}", f"{word} is not allowed") in done


class _StaticGate:
    def __init__(self, word: str) -> None:
        self.word = word

    @hookimpl
    @staticmethod
    def on_tool_call(event, ctx):
        ctx.print("static handler ran")


def _closure_gate(word: str) -> object:
    @hookimpl
    def on_tool_call(event, ctx):
        if word in event.input:
            ctx.print(f"{word} blocked")
            return kithooks.ToolCallResult(block=True, reason=f"{word} not allowed")
        return None

    return types.SimpleNamespace(on_tool_call=on_tool_call)


def test_shared_handler_code_is_credited_to_the_plugin_that_ran_or_named_as_ambiguous(
    tmp_path,
):
    """Two plugins running one function's code: closures from one factory are told apart
    by their free variables; a staticmethod on two instances cannot be, so the print is
    credited to both names, never confidently to one of them."""
    path = _one_call_recording(tmp_path, "rm x")
    pm = PluginManager()
    pm.register(_closure_gate("curl"), name="gate-curl")
    pm.register(_closure_gate("rm"), name="gate-rm")
    done = [(a.kind, a.plugin, a.detail) for a in replay(path, pm).turns[0].actions]
    assert done == [("print", "gate-rm", "rm blocked"), ("block", "gate-rm", "rm not allowed")]

    pm = PluginManager()
    pm.register(_StaticGate("rm"), name="gate-rm")
    pm.register(_StaticGate("curl"), name="gate-curl")
    done = [(a.kind, a.plugin, a.detail) for a in replay(path, pm).turns[0].actions]
    assert done == [("print", "gate-curl or gate-rm", "static handler ran")] * 2


class _ToolCap(kithooks.TurnAggregator):
    """A guard built on the aggregator: a plugin, not the manager's own aggregator."""

    @hookimpl(tryfirst=True)
    def on_tool_call(self, event, ctx):
        super().on_tool_call(event, ctx)
        ctx.print("tool cap: blocking")
        return kithooks.ToolCallResult(block=True, reason="tool cap")


@pytest.mark.parametrize("aggregate_turns", [False, True])
def test_a_plugin_subclassing_the_turn_aggregator_is_replayed_as_itself(tmp_path, aggregate_turns):
    pm = PluginManager(aggregate_turns=aggregate_turns)
    cap = _ToolCap()
    pm.register(cap, name="tool-cap")
    report = replay(_one_call_recording(tmp_path, "ls"), pm)
    done = [(a.kind, a.plugin, a.detail) for a in report.turns[0].actions]
    assert ("print", "tool-cap", "tool cap: blocking") in done
    assert ("block", "tool-cap", "tool cap") in done
    assert pm.get_plugin("tool-cap") is cap


# ---------------------------------------------------------------- custom events' data


class _Unshowable:
    def __repr__(self) -> str:
        raise RuntimeError("repr fails")


class _ReprOnly:
    def __str__(self) -> str:
        raise RuntimeError("str fails")

    def __repr__(self) -> str:
        return "ReprOnly()"


def _loop() -> list:
    loop: list = []
    loop.append(loop)
    return loop


def _dict_loop() -> dict:
    me: dict = {}
    me["me"] = me
    return me


def _deep(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


class _BadMap(Mapping):
    def __getitem__(self, key):
        raise KeyError(key)

    def __iter__(self):
        raise RuntimeError("iteration fails")

    def __len__(self) -> int:
        return 1

    def __repr__(self) -> str:
        return "BadMap()"


def _bad_field() -> object:
    @attrs.define
    class _BadField:
        x: int = 1
        y: int = 2

    made = _BadField()
    _BadField.y = property(lambda self: 1 // 0)  # type: ignore[assignment]  # reading y raises
    return made


ODD_DATA = {
    "iteration raises": (
        _BadMap,
        "ev: BadMap()",
        "<_BadMap object: reading it raised RuntimeError>",
    ),
    "field raises": (
        _bad_field,
        "ev: ",
        {"x": 1, "y": "<field y: reading it raised ZeroDivisionError>"},
    ),
    "int and str keys": (
        lambda: {1: "int key", "1": "str key"},
        "ev: {1: 'int key', '1': 'str key'}",
        {"1 (int)": "int key", "1": "str key"},
    ),
    "cycle": (_loop, "ev: [[...]]", ["[...]"]),
    "repr raises": (_Unshowable, "ev: <_Unshowable object: str() and repr() raised", None),
    "str raises": (_ReprOnly, "ev: ReprOnly()", "ReprOnly()"),
    "huge int": (lambda: 10**5000, "ev: <int of 16610 bits, too long to print>", None),
    "deep": (lambda: _deep(5000), "ev: ", None),
    "dict cycle": (_dict_loop, "ev: {'me': {...}}", {"me": "{...}"}),
}


@pytest.mark.parametrize("kind", list(ODD_DATA))
def test_any_custom_event_data_is_kept_under_its_plugin_and_shown_safely(tmp_path, kind):
    make, detail, after = ODD_DATA[kind]

    class Emitter:
        @hookimpl
        def on_session_start(self, event, ctx):
            ctx.emit_custom_event("ev", make())

    pm = PluginManager()
    pm.register(Emitter(), name="emitter")
    errors: list[object] = []
    pm.add_listener(on_error=errors.append)
    path = tmp_path / "r.jsonl"
    path.write_text('{"session_id": "s", "turn_id": "t", "event": {"type": "session_start"}}\n')
    report = replay(path, pm)
    assert errors == []
    (action,) = report.turns[0].actions
    assert (action.kind, action.plugin) == ("custom_event", "emitter")
    assert action.detail.startswith(detail)
    if after is not None:
        assert action.after == after
    text = json.dumps(report.to_json(), allow_nan=False)  # the JSON report can always be made
    assert json.loads(text)["turns"][0]["actions"][0]["plugin"] == "emitter"


CUSTOM_EVENT_PLUGIN = """
import kithooks

class Bad:
    def __repr__(self):
        raise RuntimeError("repr fails")

@kithooks.hookimpl
def on_session_start(event, ctx):
    loop = []
    loop.append(loop)
    ctx.emit_custom_event("loop", loop)
    ctx.emit_custom_event("bad", Bad())
    ctx.emit_custom_event("big", {"n": 10 ** 5000})
    ctx.print("after emit")
"""


def test_the_cli_reports_custom_events_whatever_their_data(tmp_path):
    (tmp_path / "odd.py").write_text(CUSTOM_EVENT_PLUGIN)
    rec = tmp_path / "r.jsonl"
    rec.write_text('{"session_id": "s", "turn_id": "t", "event": {"type": "session_start"}}\n')
    args = ("replay", str(rec), "--no-entrypoints", "-p", str(tmp_path / "odd.py"))
    proc = run_cli(tmp_path, *args, "--json")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    actions = json.loads(proc.stdout)["turns"][0]["actions"]
    assert [(a["kind"], a["plugin"]) for a in actions] == [
        ("custom_event", "odd"),
        ("custom_event", "odd"),
        ("custom_event", "odd"),
        ("print", "odd"),
    ]
    assert actions[0]["after"] == ["[...]"]
    assert actions[1]["after"] == "<Bad object: repr() raised RuntimeError>"
    assert actions[2]["after"]["n"].startswith("<int of")
    text = run_cli(tmp_path, *args)
    assert text.returncode == 0 and text.stderr == "", text.stderr
    assert "odd sent custom event: bad: <Bad object: str() and repr() raised" in text.stdout


def test_a_failing_listener_is_logged_once_named_with_the_event(tmp_path, caplog):
    pm = PluginManager()

    def broken(name, data):
        raise RuntimeError("listener bug")

    pm.add_listener(on_custom_event=broken)
    with caplog.at_level("ERROR", logger="kithooks"):
        pm.emit_custom_event("ev", 1)
    (message,) = [r.getMessage() for r in caplog.records]
    assert not message.startswith("kithooks:")  # the CLI's log line adds the prefix
    assert "broken" in message and "'ev'" in message


# ---------------------------------------------------------------- what does not round-trip


def test_an_int_too_long_to_write_is_refused_by_name_and_nothing_is_written(tmp_path):
    path = tmp_path / "r.jsonl"
    pm, errors = _manager_and_errors()
    with Recorder(path) as recorder:
        pm.register(recorder, name="rec")
        pm.emit(kithooks.ToolCallEvent(tool_name="t", parsed_args={"a": [1, {"n": 10**5000}]}))
        pm.emit(kithooks.ToolCallEvent(tool_name="t", parsed_args={"n": 10**4000}))
    (error,) = errors
    assert error.plugin == "rec"
    assert isinstance(error.error, ValueError)
    assert "/parsed_args/a/1/n" in str(error.error) and "tool_call" in str(error.error)
    (record,) = read_recording(path)  # the other event, whole: nothing half written
    assert record.event.parsed_args == {"n": 10**4000}


_JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=25,
)
_ODD = st.recursive(
    _JSON_LEAVES
    | st.builds(_Unshowable)
    | st.builds(_ReprOnly)
    | st.builds(object)
    | st.builds(pow, st.just(10), st.integers(4300, 5000))
    | st.just(math.nan)
    | st.builds(_loop),
    lambda inner: (
        st.lists(inner, max_size=4).map(tuple)
        | st.lists(inner, max_size=4)
        | st.dictionaries(st.integers() | st.text() | st.builds(_Unshowable), inner, max_size=4)
    ),
    max_leaves=25,
)


@given(_JSON)
def test_json_data_of_a_custom_event_is_reported_as_it_is(value):
    from kithooks.recording import _summary

    assert _summary(value) == value


@given(
    st.dictionaries(
        st.integers(-2, 2)
        | st.sampled_from(["1", "-1", "1 (int)", "1 (int) #2", "(1,)", "1.5"])
        | st.text(max_size=3)
        | st.floats(allow_nan=False)
        | st.tuples(st.integers(-2, 2)),
        st.integers(),
        max_size=8,
    )
)
def test_no_value_of_a_custom_events_mapping_is_lost(value):
    from kithooks.recording import _summary

    summary = _summary(value)
    assert len(summary) == len(value)  # keys that print alike are told apart
    assert sorted(summary.values()) == sorted(value.values())


@given(_ODD)
def test_any_data_of_a_custom_event_is_reported_as_json(value):
    from kithooks.recording import _shown, _summary

    json.dumps(_summary(value))  # no exception, whatever the data holds
    assert isinstance(_shown(value, str, repr), str)


# ---------------------------------------------------------------- a replayed block


class _Seen:
    """Every tool event the plugins are given, as (type, tool_call_id, detail)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    @hookimpl
    def on_tool_call(self, event):
        self.seen.append(("tool_call", event.tool_call_id, ""))

    @hookimpl
    def on_tool_execution_start(self, event):
        self.seen.append(("tool_execution_start", event.tool_call_id, ""))

    @hookimpl
    def on_tool_execution_end(self, event):
        self.seen.append(("tool_execution_end", event.tool_call_id, ""))

    @hookimpl
    def on_tool_result(self, event):
        self.seen.append(("tool_result", event.tool_call_id, event.content))
        return kithooks.ToolResultResult(content=event.content.upper())

    @hookimpl
    def on_subagent_end(self, event):
        self.seen.append(("subagent_end", event.tool_call_id, event.response or event.error_msg))


class _BashGate:
    @hookimpl
    def on_tool_call(self, event):
        if "rm -rf" in (event.parsed_args or {}).get("command", ""):
            return kithooks.ToolCallResult(block=True, reason="no rm -rf")
        return None


COMMANDS = ["ls", "rm -rf /", "echo hi"]


def _run_turn(pm: PluginManager) -> None:
    """One turn of a host (kithooks.hosting.Turn): three bash calls, each run if allowed."""
    from kithooks.hosting import Turn

    pm.set_context(Context(session_id="s1"))
    turn = Turn(pm, turn_id="t1")
    turn.agent_start("do it")
    for i, command in enumerate(COMMANDS):
        turn.run_tool(
            lambda text: f"ran {text}",
            tool_name="bash",
            tool_call_id=f"c{i}",
            input=json.dumps({"command": command}),
        )
    turn.end(response="done", stop_reason="stop")


def _with(*plugins: object) -> PluginManager:
    pm = PluginManager()
    for n, plugin in enumerate(plugins):
        pm.register(plugin, name=f"p{n}" if not isinstance(plugin, _BashGate) else "gate")
    return pm


def test_replay_emits_no_run_events_of_a_call_a_replayed_plugin_blocks(tmp_path):
    """The recording was made with no guard: the tool ran, its events were recorded. A
    replayed guard that blocks the call gives the plugins what a live host would: none of
    that call's run events, and the report says how many were left out, and why."""
    path = tmp_path / "rec.jsonl"
    with Recorder(path) as recorder:
        _run_turn(_with(recorder))
    live = _Seen()
    _run_turn(_with(_BashGate(), live))  # what the plugins see live, the guard in place
    replayed = _Seen()
    report = replay(path, _with(_BashGate(), replayed))
    assert replayed.seen == live.seen
    assert ("tool_result", "c1", 'ran {"command": "rm -rf /"}') not in replayed.seen
    assert ("tool_result", "c2", 'ran {"command": "echo hi"}') in replayed.seen
    assert report.skipped == 3
    (turn,) = report.turns
    skips = [a for a in turn.actions if a.kind == "skipped"]
    assert [(a.plugin, a.after) for a in skips] == [
        (
            "gate",
            {
                "tool_call_id": "c1",
                "skipped": ["tool_execution_start", "tool_execution_end", "tool_result"],
            },
        )
    ]
    assert "3 recorded events of tool call 'c1'" in skips[0].detail
    assert "blocked" in skips[0].detail
    # No rewrite is credited for the blocked call's result.
    rewrites = [a.detail for a in turn.actions if a.kind == "rewrite"]
    assert rewrites and not any("rm -rf" in d for d in rewrites)
    assert report.to_json()["skipped"] == 3
    # Counted: what was emitted, and what was skipped, is every record.
    assert report.events + report.skipped == len(path.read_text().splitlines())


def test_a_blocked_subagent_call_ends_with_the_blocks_error_and_no_chunks(tmp_path):
    """As the original does: no chunk of a subagent that never ran, and its subagent_end
    carries ``Error: <reason>``, not the recorded response."""
    call = {"tool_name": "bash", "tool_call_id": "s1", "input": json.dumps({"command": "rm -rf x"})}
    path = _records(
        tmp_path / "r.jsonl",
        [
            kithooks.SubagentStartEvent(tool_call_id="s1"),
            kithooks.ToolCallEvent(**call),
            kithooks.ToolExecutionStartEvent(tool_call_id="s1", tool_name="bash"),
            kithooks.SubagentChunkEvent(tool_call_id="s1", chunk_type="text", content="x"),
            kithooks.ToolResultEvent(tool_call_id="s1", tool_name="bash", content="the result"),
            kithooks.SubagentEndEvent(tool_call_id="s1", response="the result"),
        ],
    )
    seen = _Seen()
    report = replay(path, _with(_BashGate(), seen))
    # (the guard's block stops the dispatch: the observer after it never sees the call)
    assert seen.seen == [("subagent_end", "s1", "Error: no rm -rf")]
    assert report.skipped == 3


def test_the_same_call_id_asked_again_is_decided_anew(tmp_path):
    """A later tool_call with the blocked call's id is another decision: allowed, its run
    events are emitted."""
    path = _records(
        tmp_path / "r.jsonl",
        [
            kithooks.ToolCallEvent(
                tool_name="bash", tool_call_id="c", input='{"command": "rm -rf x"}'
            ),
            kithooks.ToolResultEvent(tool_call_id="c", tool_name="bash", content="gone"),
            kithooks.ToolCallEvent(tool_name="bash", tool_call_id="c", input='{"command": "ls"}'),
            kithooks.ToolResultEvent(tool_call_id="c", tool_name="bash", content="listed"),
            # an event with no call id is never matched to a blocked call
            kithooks.ToolResultEvent(tool_call_id="", tool_name="bash", content="anon"),
        ],
    )
    seen = _Seen()
    report = replay(path, _with(_BashGate(), seen))
    assert [s for s in seen.seen if s[0] == "tool_result"] == [
        ("tool_result", "c", "listed"),
        ("tool_result", "", "anon"),
    ]
    assert report.skipped == 1


def test_a_fail_closed_block_skips_the_calls_run_events_naming_the_failing_plugin(tmp_path):
    class Broken:
        @hookimpl
        def on_tool_call(self, event):
            raise KeyError("command")

    path = _records(
        tmp_path / "r.jsonl",
        [
            kithooks.ToolCallEvent(tool_name="bash", tool_call_id="c", input="{}"),
            kithooks.ToolResultEvent(tool_call_id="c", tool_name="bash", content="ran"),
        ],
    )
    pm = PluginManager(fail_closed=True)
    pm.register(Broken(), name="broken")
    report = replay(path, pm)
    assert report.skipped == 1
    (skip,) = [a for a in report.turns[0].actions if a.kind == "skipped"]
    assert skip.plugin == "broken"
