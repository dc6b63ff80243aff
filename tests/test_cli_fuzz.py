"""Fuzzing `replay` with arbitrary bytes (hypothesis): the reader in process, many examples;
the real command in a subprocess (slow). Either way every line is an event or a
``FILE:LINE: reason``, and nothing else escapes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kithooks.recording import BadLine, read_recording
from kithooks.testing.strategies import events
from test_cli_support import run_cli


def _valid_line(event) -> bytes:
    from kithooks.structuring import event_to_dict

    record = {"session_id": "s", "turn_id": "t", "event": event_to_dict(event)}
    return json.dumps(record).encode()


@st.composite
def mutated(draw, line: st.SearchStrategy[bytes]) -> bytes:
    """A line with a few bytes replaced, inserted or deleted."""
    data = bytearray(draw(line))
    for _ in range(draw(st.integers(0, 3))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = draw(st.integers(0, 255))
        if op == "replace":
            data[i] = byte
        elif op == "insert":
            data.insert(i, byte)
        else:
            del data[i]
    return bytes(data)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)
valid_lines = events().map(_valid_line)
LINE = st.one_of(
    st.binary(max_size=200).map(lambda b: b.replace(b"\n", b" ")),
    valid_lines,
    mutated(valid_lines),
    json_values.map(lambda v: json.dumps({"event": v}).encode()),
    st.sampled_from(
        [b"NaN", b"[" * 5000, b"\xef\xbb\xbf{}", b"1" * 5000, b'{"event": {"type": "agent_end"}}']
    ),
).map(lambda b: b.replace(b"\n", b" "))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(LINE, max_size=8))
def test_every_line_is_a_record_or_a_bad_line(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("fuzz") / "r.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    bad: list[BadLine] = []
    records = list(read_recording(path, skip_bad=True, bad=bad))
    first = lines[0].removeprefix(b"\xef\xbb\xbf") if lines else b""
    content = [i for i, line in enumerate([first, *lines[1:]], 1) if line.strip()]
    assert sorted([r.line for r in records] + [b.line for b in bad]) == content
    for b in bad:
        assert b.message.startswith(f"{path}:{b.line}: ") and b.error


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(LINE, min_size=1, max_size=6))
def test_replay_command_survives_any_bytes(tmp_path_factory, lines):
    tmp = tmp_path_factory.mktemp("fuzz")
    path = tmp / "r.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    for extra in ((), ("--skip-bad",)):
        proc = run_cli(tmp, "replay", str(path), "--no-entrypoints", *extra)
        stderr = proc.stderr
        assert proc.returncode in (0, 1, 2), stderr
        assert "Traceback" not in stderr, stderr
        reported = re.findall(
            rf"^kithooks: (?:skipped )?{re.escape(str(path))}:(\d+): ", stderr, re.M
        )
        if proc.returncode == 2:
            assert len(reported) == 1, stderr
        else:
            # every line that is neither blank nor a replayed event is reported with its number
            bad = [b.line for b in _bad_lines(path)]
            assert [int(n) for n in reported] == bad, stderr


def _bad_lines(path: Path) -> list[BadLine]:
    bad: list[BadLine] = []
    for _ in read_recording(path, skip_bad=True, bad=bad):
        pass
    return bad
