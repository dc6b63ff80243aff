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


def test_replay_counts_blocked_calls_through_the_api(tmp_path):
    path = tmp_path / "rec.jsonl"
    path.write_text(
        "".join(
            json.dumps({"session_id": "s", "turn_id": "t", "event": kithooks.event_to_dict(e)})
            + "\n"
            for e in GATED_TURN
        )
    )
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
    pm = PluginManager()
    errors: list[object] = []
    pm.add_listener(on_error=errors.append)
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
    pm = PluginManager()
    errors: list[object] = []
    pm.add_listener(on_error=errors.append)
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
