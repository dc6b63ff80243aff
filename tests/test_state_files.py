"""The sidecar's files: mode, owner, symlinks, stray temporaries, hostile contents.

A hostile sidecar or journal is either a StateError naming the file, or loads and can be
saved again; never another exception, never a hang (every read that could block runs in a
thread joined with a deadline).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kithooks import StateError, StateStore
from kithooks.state import SidecarBackend, sidecar

KITHOOKS = Path(sys.executable).parent / "kithooks"


def _open_with_deadline(path: Path, seconds: float = 10) -> StateStore | BaseException:
    """StateStore(path) in a thread; what it returned or raised. A hang fails the test."""
    result: list[StateStore | BaseException] = []

    def run() -> None:
        try:
            result.append(StateStore(path))
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=seconds)
    assert not thread.is_alive(), f"opening {path} hung"
    return result[0]


def _journal(path: Path) -> Path:
    return SidecarBackend(path).journal_path


# -- mode, owner, symlinks, temporaries --------------------------------------------------------


def test_mode_is_kept_and_the_journal_is_no_more_readable(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{}")
    path.chmod(0o600)
    store = StateStore(path)
    store.set("secret", "x")
    assert _journal(path).stat().st_mode & 0o777 == 0o600
    store.compact()
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o640)
    store.set("more", "y")
    store.compact()
    assert path.stat().st_mode & 0o777 == 0o640
    assert _journal(path).stat().st_mode & 0o777 == 0o640


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another owner needs root")
def test_owner_is_kept(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{}")
    os.chown(path, 4321, 4322)
    store = StateStore(path)
    store.set("k", "v")
    store.compact()
    assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4322)
    journal = _journal(path).stat()
    assert (journal.st_uid, journal.st_gid) == (4321, 4322)


def test_writes_go_through_a_symlink(tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "target.json"
    target.write_text('{\n  "a": "1"\n}')
    link = tmp_path / "s.ext-state.json"
    link.symlink_to(target)
    store = StateStore(link)
    store.set("b", "2")
    store.close()
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text()) == {"a": "1", "b": "2"}
    # the journal and the lock belong to the file, so every link to it shares them
    assert sorted(p.name for p in real_dir.iterdir()) == [
        "target.json",
        "target.json.journal",
        "target.json.lock",
    ]
    other_link = tmp_path / "other.json"
    other_link.symlink_to(target)
    assert StateStore(other_link).snapshot() == {"a": "1", "b": "2"}


def test_a_dangling_symlink_is_written_through(tmp_path):
    link = tmp_path / "s.json"
    link.symlink_to(tmp_path / "later.json")
    store = StateStore(link)
    store.set("k", "v")
    store.close()
    assert link.is_symlink() and json.loads((tmp_path / "later.json").read_text()) == {"k": "v"}


def test_stray_temporaries_are_removed_on_open(tmp_path):
    path = tmp_path / "s.json"
    ours = tmp_path / ".s.json.tmp"  # a crashed compaction's
    older = tmp_path / ".s.json.k2j3h4.tmp"  # kithooks 0.1 named them at random
    unrelated = tmp_path / ".other.json.tmp"
    for stray in (ours, older, unrelated):
        stray.write_bytes(b"x" * 1000)
    StateStore(path)
    assert not ours.exists() and not older.exists() and unrelated.exists()


# -- hostile sidecars ------------------------------------------------------------------------------


HOSTILE_ERRORS = {
    "huge number": (b'{"a": ' + b"9" * 5000 + b"}", "value of 'a' must be a string, not a number"),
    "huge float": (b'{"a": 1e999999}', "must be a string, not a number"),
    "NaN": (b'{"a": NaN}', "must be a string, not a number"),
    "deep nesting": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "deep value": (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    "deep unclosed": (b"{" * 100_000, "nested too deeply|not valid JSON"),
    "array": (b"[]", "must hold a JSON object, not an array"),
    "string": (b'"text"', "must hold a JSON object, not str"),
    "number": (b"12", "must hold a JSON object, not a number"),
    "object value": (b'{"a": {"b": "c"}}', "value of 'a' must be a string, not an object"),
    "boolean value": (b'{"a": true}', "value of 'a' must be a string, not a boolean"),
    "null value": (b'{"a": null}', "value of 'a' must be a string, not null"),
    "truncated": (b'{\n  "a": "1",\n  "b": "', "not valid JSON: .* line 3 column 8"),
    "binary": (bytes(range(256)), "not valid JSON"),
}


@pytest.mark.parametrize("content", HOSTILE_ERRORS.values(), ids=HOSTILE_ERRORS.keys())
def test_hostile_sidecar_is_an_error_naming_the_file(tmp_path, content):
    raw, match = content
    path = tmp_path / "s.json"
    path.write_bytes(raw)
    got = _open_with_deadline(path)
    assert isinstance(got, StateError), got
    assert str(path) in str(got)
    assert re.search(match, str(got)), str(got)


HOSTILE_LOADS = {
    "lone surrogates": (
        b'{"a": "x\\ud800y", "\\udfff": "b", "pair": "\\ud83d\\ude00"}',
        {"a": "x\ufffdy", "\ufffd": "b", "pair": "\U0001f600"},
    ),
    "invalid UTF-8 in a string": (b'{"a": "\xff\xfe"}', {"a": "\ufffd\ufffd"}),
    "duplicate keys": (b'{"a": "1", "a": "2"}', {"a": "2"}),
    "control escapes": (b'{"a": "\\u0000\\n"}', {"a": "\x00\n"}),
    "null": (b"null", {}),
    "whitespace": (b" \n\t ", {}),
}


@pytest.mark.parametrize("content", HOSTILE_LOADS.values(), ids=HOSTILE_LOADS.keys())
def test_hostile_sidecar_that_loads_can_be_saved_again(tmp_path, content):
    raw, expected = content
    path = tmp_path / "s.json"
    path.write_bytes(raw)
    store = _open_with_deadline(path)
    assert isinstance(store, StateStore), store
    assert store.snapshot() == expected
    store.set("new", "value")
    store.close()
    assert StateStore(path).snapshot() == expected | {"new": "value"}
    assert json.loads(path.read_bytes()) == expected | {"new": "value"}


def test_a_directory_as_sidecar_is_an_error(tmp_path):
    path = tmp_path / "s.json"
    path.mkdir()
    got = _open_with_deadline(path)
    assert isinstance(got, StateError) and f"state file {path} is a directory" in str(got)


def test_a_fifo_as_sidecar_is_an_error_not_a_hang(tmp_path):
    path = tmp_path / "s.json"
    os.mkfifo(path)
    got = _open_with_deadline(path)
    assert isinstance(got, StateError) and f"state file {path} is a FIFO" in str(got)


def test_a_fifo_as_journal_is_an_error_not_a_hang(tmp_path):
    path = tmp_path / "s.json"
    os.mkfifo(_journal(path))
    got = _open_with_deadline(path)
    assert isinstance(got, StateError) and "is a FIFO" in str(got)
    assert str(_journal(path)) in str(got)


# -- hostile journals ------------------------------------------------------------------------


def _store_with_journal(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "s.json"
    store = StateStore(path)
    for i in range(3):
        store.set(f"k{i}", str(i))
    store.backend.close()
    sidecar._written.discard(store.backend.real)  # the test damages it: no exit compaction
    return path, _journal(path).read_bytes()


def test_a_torn_last_record_is_an_unacknowledged_write(tmp_path):
    path, raw = _store_with_journal(tmp_path)
    _journal(path).write_bytes(raw + b'1234abcd {"k3": "3')  # a writer died mid-line
    store = StateStore(path)
    assert store.snapshot() == {"k0": "0", "k1": "1", "k2": "2"}
    store.set("k4", "4")  # cuts the torn bytes off before appending
    assert StateStore(path).snapshot() == {"k0": "0", "k1": "1", "k2": "2", "k4": "4"}


def test_a_damaged_record_before_good_ones_is_an_error_naming_journal_and_line(tmp_path):
    path, raw = _store_with_journal(tmp_path)
    lines = raw.split(b"\n")
    lines[2] = lines[2].replace(b'"1"', b'"7"')  # checksum no longer matches
    _journal(path).write_bytes(b"\n".join(lines))
    got = _open_with_deadline(path)
    assert isinstance(got, StateError)
    assert f"state journal {_journal(path)} line 3: damaged record" in str(got)


def test_a_journal_that_is_not_ours_is_an_error(tmp_path):
    path = tmp_path / "s.json"
    _journal(path).write_text("hello\n")
    got = _open_with_deadline(path)
    assert isinstance(got, StateError)
    assert f"state journal {_journal(path)} line 1: not a kithooks state journal" in str(got)


def test_a_hostile_record_with_a_valid_checksum_is_an_error(tmp_path):
    import zlib

    path, raw = _store_with_journal(tmp_path)
    body = b'{"k": 5}'
    _journal(path).write_bytes(raw + b"%08x %s\n" % (zlib.crc32(body), body))
    got = _open_with_deadline(path)
    assert isinstance(got, StateError)
    assert "line 5: value of 'k' must be a string, not a number" in str(got)


def test_a_sidecar_rewritten_by_another_program_wins_over_an_old_journal(tmp_path):
    path, _ = _store_with_journal(tmp_path)
    path.write_text('{\n  "from": "the original"\n}')  # KIT wrote the whole file
    store = StateStore(path)
    assert store.snapshot() == {"from": "the original"}
    store.set("k", "v")
    assert StateStore(path).snapshot() == {"from": "the original", "k": "v"}


# -- the command line ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fifo", "deep", "huge number"])
def test_kithooks_state_commands_give_the_same_errors(tmp_path, kind):
    path = tmp_path / "s.ext-state.json"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_bytes(HOSTILE_ERRORS["deep nesting" if kind == "deep" else "huge number"][0])
    for args in (["show"], ["get", "k"], ["set", "k", "v"], ["delete", "k"]):
        proc = subprocess.run(
            [str(KITHOOKS), "state", *args[:1], str(path), *args[1:]],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode != 0
        assert "Traceback" not in proc.stderr
        said = "".join((proc.stdout + proc.stderr).split())  # rich may wrap the path
        assert "".join(str(path).split()) in said, proc.stdout + proc.stderr


def test_a_journal_removed_by_someone_else_is_started_afresh(tmp_path):
    path = tmp_path / "s.json"
    store = StateStore(path)
    store.set("a", "1")
    store.compact()  # the sidecar holds a
    store.set("lost", "x")  # only in the journal...
    _journal(path).unlink()  # ...which someone removes
    store.set("b", "2")  # the open descriptor is let go, a new journal made
    assert StateStore(path).snapshot() == {"a": "1", "b": "2"}
    assert store.snapshot() == {"a": "1", "b": "2"}


def test_a_process_that_writes_a_sidecar_folds_its_journal_at_exit(tmp_path):
    path = tmp_path / "state.json"
    code = f"import kithooks; kithooks.StateStore({str(path)!r}).set('k', 'v')"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert json.loads(path.read_text()) == {"k": "v"}


def test_the_lock_is_a_real_flock_that_another_open_of_the_file_sees(tmp_path):
    from kithooks.state import files

    path = tmp_path / "x.lock"
    first = os.open(path, os.O_RDWR | os.O_CREAT)
    second = os.open(path, os.O_RDWR)
    try:
        assert files.lock_descriptor(first) is True
        assert files.lock_descriptor(second, blocking=False) is False  # held
        files.unlock_descriptor(first)
        assert files.lock_descriptor(second, blocking=False) is True
        files.unlock_descriptor(second)
    finally:
        os.close(first)
        os.close(second)


def test_a_file_system_that_answers_eacces_for_a_held_lock_is_read_as_held(monkeypatch):
    """Some file systems fail a non-blocking flock of a held lock with EACCES, not EAGAIN
    (not reproducible on this machine's file systems, hence the stand-in)."""
    import errno
    import fcntl

    from kithooks.state import files

    def flock(fd, op):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(fcntl, "flock", flock)
    assert files.lock_descriptor(0, blocking=False) is False

    def broken(fd, op):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(fcntl, "flock", broken)
    with pytest.raises(OSError, match="Input/output"):
        files.lock_descriptor(0, blocking=False)


# -- a failed load must not cost the journal ---------------------------------------------------

DAMAGE_THEN_WRITE = """
import os, signal, sys
from kithooks import StateError, StateStore

path = sys.argv[1]
store = StateStore(path)
for key in "abcde":
    store.set(key, key * 3)
journal = store.backend.journal_path
raw = journal.read_bytes()
journal.write_bytes(raw.replace(b'"bbb"', b'"bxb"'))  # one byte, same length: damage
assert store.get("a") == "aaa"  # this store applied that record before it was damaged
try:
    store.load()
except StateError as exc:
    print("load:", exc, flush=True)
else:
    raise AssertionError("a damaged record loaded")
store.set("f", "fff")
print("set f", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.slow
def test_a_write_after_a_failed_load_keeps_every_journal_record(tmp_path):
    path = tmp_path / "s.ext-state.json"
    proc = subprocess.run(
        [sys.executable, "-c", DAMAGE_THEN_WRITE, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "line 3: damaged record" in proc.stdout and "set f" in proc.stdout, proc.stdout
    # The damage is still an error naming the line, not a silent loss of a..e ...
    got = _open_with_deadline(path)
    assert isinstance(got, StateError) and "line 3: damaged record" in str(got)
    # ... and every other acknowledged record is still there: undo the damage and see.
    raw = _journal(path).read_bytes()
    _journal(path).write_bytes(raw.replace(b'"bxb"', b'"bbb"'))
    expected = {key: key * 3 for key in "abcdef"}
    assert StateStore(path).snapshot() == expected


def test_a_journal_read_error_in_load_truncates_nothing(tmp_path, monkeypatch):
    path = tmp_path / "s.ext-state.json"
    store = StateStore(path)
    for key in "abc":
        store.set(key, key)
    real_read = sidecar.read_regular

    def failing(file: Path, what: str) -> bytes | None:
        if what == "state journal":
            raise StateError(f"reading {what} {file}: Input/output error")
        return real_read(file, what)

    monkeypatch.setattr(sidecar, "read_regular", failing)
    with pytest.raises(StateError, match="Input/output error"):
        store.load()
    assert store.snapshot() == {"a": "a", "b": "b", "c": "c"}  # left as it was
    monkeypatch.setattr(sidecar, "read_regular", real_read)
    store.set("d", "d")
    assert StateStore(path).snapshot() == {"a": "a", "b": "b", "c": "c", "d": "d"}
