"""`kithooks` on bad input: any bytes in a recording, standard input, repeated plugin
failures, missing and unencodable state. Every test runs the real command."""

from __future__ import annotations

import json
import re

import pytest

from test_cli_support import run_cli

GOOD = b'{"session_id": "s", "turn_id": "t", "event": {"type": "message_start"}}'


@pytest.fixture
def run(tmp_path):
    return lambda *args, **kw: run_cli(tmp_path, *args, **kw)


def event_line(event: bytes) -> bytes:
    return b'{"session_id": "s", "turn_id": "t", "event": ' + event + b"}"


BAD_LINES = [
    (b'{"event": {"type": "message_update", "chunk": "\xff\xfe"}}', "not UTF-8: byte 0xff"),
    (b"\x00\x00\x00", "not JSON"),
    (b'{"event": {"type": "message_update", "chunk": "a\x00b"}}', "not JSON: Invalid control"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"event": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001, "nested too deeply"),
    (event_line(b'{"type": "llm_usage", "input_tokens": ' + b"9" * 5000 + b"}"), "too long"),
    (event_line(b'{"type": "llm_usage", "cost": NaN}'), "NaN is not a JSON number"),
    (event_line(b'{"type": "llm_usage", "cost": Infinity}'), "Infinity is not a JSON number"),
    (event_line(b'{"type": "llm_usage", "cost": -Infinity}'), "-Infinity is not a JSON number"),
    (event_line(b'{"type": "llm_usage", "cost": 1e999}'), "number out of range: 1e999"),
    (event_line(b'{"type": "llm_usage", "cost": "1"}'), "@ event.cost"),
    (b'{"time_ms": -5, "event": {"type": "message_start"}}', "time_ms must be a non-negative"),
    (b"\xef\xbb\xbf" + GOOD, "not JSON"),  # a byte order mark is only skipped on line 1
]


@pytest.mark.parametrize(("line", "why"), BAD_LINES, ids=[w for _, w in BAD_LINES])
def test_a_bad_line_is_file_line_reason_and_exit_2(run, tmp_path, line, why):
    rec = tmp_path / "bad.jsonl"
    rec.write_bytes(GOOD + b"\n" + line + b"\n" + GOOD + b"\n")
    proc = run("replay", str(rec), "--no-entrypoints")
    assert proc.returncode == 2, proc.stderr
    (message,) = proc.stderr.splitlines()
    assert message.startswith(f"kithooks: {rec}:2: ")
    assert why in message
    assert message.endswith("(use --skip-bad to skip bad lines)")
    skipped = run("replay", str(rec), "--no-entrypoints", "--skip-bad", "--json")
    assert skipped.returncode == 0, skipped.stderr
    data = json.loads(skipped.stdout)
    assert data["events"] == 2 and [b["line"] for b in data["bad_lines"]] == [2]
    assert skipped.stderr.splitlines() == [
        message.removesuffix(" (use --skip-bad to skip bad lines)").replace(
            "kithooks: ", "kithooks: skipped ", 1
        ),
        "kithooks: 1 bad line(s) skipped",
    ]


def test_a_byte_order_mark_at_the_start_is_accepted(run, tmp_path):
    rec = tmp_path / "bom.jsonl"
    rec.write_bytes(b"\xef\xbb\xbf" + GOOD + b"\r\n" + GOOD + b"\r\n")
    proc = run("replay", str(rec), "--no-entrypoints", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["events"] == 2


def test_replay_dash_reads_standard_input(run):
    proc = run("replay", "-", "--no-entrypoints", "--json", stdin=GOOD + b"\n" + GOOD + b"\n")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["path"] == "<stdin>" and data["events"] == 2
    bad = run("replay", "-", "--no-entrypoints", stdin=GOOD + b"\nnope\n")
    assert bad.returncode == 2
    assert bad.stderr.startswith("kithooks: <stdin>:2: not JSON")


RAISING = """
import kithooks

@kithooks.hookimpl
def on_message_update(event):
    if event.chunk.startswith("odd"):
        raise ValueError("odd chunk " + event.chunk[3])
    raise RuntimeError("plugin bug")
"""


def test_repeated_failures_are_grouped_with_counts_lines_and_one_traceback(run, tmp_path):
    (tmp_path / "raising.py").write_text(RAISING)
    chunks = ["x"] * 3000 + ["odd1", "odd1", "odd2"]
    rec = tmp_path / "long.jsonl"
    rec.write_text(
        "".join(
            json.dumps({"event": {"type": "message_update", "chunk": c}}) + "\n" for c in chunks
        )
    )
    args = ("replay", str(rec), "-p", str(tmp_path / "raising.py"), "--no-entrypoints")
    proc = run(*args)
    assert proc.returncode == 1
    assert proc.stdout.count("FAILED") == 3  # one line per kind of failure, not 3,003
    err = proc.stderr.splitlines()
    assert (
        "kithooks: plugin 'raising' failed in on_message_update 3000 times: "
        "RuntimeError: plugin bug (line 1, 2, 3, 4, 5, ...)"
    ) in err
    assert (
        "kithooks: plugin 'raising' failed in on_message_update 2 times: "
        "ValueError: odd chunk 1 (line 3001, 3002)"
    ) in err
    assert (
        "kithooks: plugin 'raising' failed in on_message_update once: "
        "ValueError: odd chunk 2 (line 3003)"
    ) in err
    assert proc.stderr.count("Traceback (most recent call last)") == 3
    assert len(proc.stderr) < 10_000
    assert err[-1] == "kithooks: 3003 plugin failure(s) of 3 kind(s); -v shows every traceback"
    verbose = run(*args, "-v")
    assert verbose.returncode == 1
    assert verbose.stderr.count("Traceback (most recent call last)") == 3003
    data = json.loads(run(*args, "--json").stdout)
    assert [(e["count"], e["lines"][:2]) for e in data["errors"]] == [
        (3000, [1, 2]),
        (2, [3001, 3002]),
        (1, [3003]),
    ]
    assert data["failure_count"] == 3003
    assert 'raise RuntimeError("plugin bug")' in data["errors"][0]["tracebacks"][0]


def test_load_errors_are_reported_after_the_work_with_exit_1(run, tmp_path):
    (tmp_path / "broken.py").write_text("raise ImportError('needs a missing thing')\n")
    rec = tmp_path / "r.jsonl"
    rec.write_bytes(GOOD + b"\n")
    proc = run("replay", str(rec), "-p", str(tmp_path / "broken.py"), "--no-entrypoints")
    assert proc.returncode == 1
    assert "1 events, 0 plugin failures" in proc.stdout  # the replay ran
    assert proc.stderr.splitlines() == [
        f"kithooks: load error: plugin 'broken' (file {tmp_path / 'broken.py'}) failed to load: "
        "ImportError: needs a missing thing"
    ]
    demo = run("demo", "-p", str(tmp_path / "broken.py"))
    assert demo.returncode == 1 and "agent_end: stop=stop" in demo.stdout
    assert "load error: plugin 'broken'" in demo.stderr


def test_state_show_of_a_missing_file_is_an_error(run, tmp_path):
    for command, *key in (("show",), ("get", "k"), ("delete", "k")):
        proc = run("state", command, str(tmp_path / "nothing.jsonl"), *key)
        assert proc.returncode == 2
        assert proc.stderr == f"kithooks: no state file {tmp_path / 'nothing.ext-state.json'}\n"
    assert not (tmp_path / "nothing.ext-state.json").exists()


def test_state_set_of_an_unencodable_value_is_a_clear_error(run, tmp_path):
    session = str(tmp_path / "s.jsonl")
    proc = run("state", "set", session, "k", b"caf\xe9")  # latin-1 bytes from a shell
    assert proc.returncode == 2
    assert proc.stderr == "kithooks: the value is not UTF-8 text: byte 0xe9 at position 4\n"
    proc = run("state", "set", session, b"\xff", "v")
    assert proc.returncode == 2 and "the key is not UTF-8 text: byte 0xff" in proc.stderr
    assert not (tmp_path / "s.ext-state.json").exists()
    assert run("state", "set", session, "k", "café ✓").returncode == 0
    assert run("state", "get", session, "k").stdout == "café ✓\n"


def test_state_show_piped_is_one_key_a_line(run, tmp_path):
    session = str(tmp_path / "s.jsonl")
    run("state", "set", session, "b", "two\nlines\tand a tab")
    run("state", "set", session, "a", "1")
    proc = run("state", "show", session)
    assert proc.stdout == "a\t1\nb\ttwo\\nlines\\tand a tab\n"


NO_TRACEBACK = re.compile(r"Traceback \(most recent call last\)")


@pytest.mark.slow
def test_no_input_prints_a_traceback(run, tmp_path):
    """A corpus of hostile recordings: every one ends with 0, 1 or 2 and no traceback."""
    corpus = [line for line, _ in BAD_LINES] + [
        b"",
        b"\n\n\n",
        b"\xef\xbb\xbf",
        b"{}",
        b'{"event": null}',
        b'{"event": {"type": "agent_end", "tool_names": [1]}}',
        b'{"event": {"type": "tool_call", "parsed_args": {"a": ' + b"[" * 900 + b"]" * 900 + b"}}}",
        b'{"event": {"type": "context_prepare", "messages": [{"role": 5}]}}',
        b'{"event": {"type": "llm_usage", "input_tokens": -1, "cost": -0.5}}',
        b'{"event": {"type": "\\ud800"}}',
        bytes(range(256)),
    ]
    for i, data in enumerate(corpus):
        rec = tmp_path / f"c{i}.jsonl"
        rec.write_bytes(data + b"\n")
        for extra in ((), ("--skip-bad",), ("--skip-bad", "--json")):
            proc = run("replay", str(rec), "--no-entrypoints", *extra)
            assert proc.returncode in (0, 1, 2), (data[:80], proc.stderr[-2000:])
            assert not NO_TRACEBACK.search(proc.stderr), (data[:80], proc.stderr[-2000:])
