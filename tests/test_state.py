"""The session state store: format, atomic durable saves, crashes, threads, switching."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kithooks
from kithooks import PluginManager, StateError, StateStore, sidecar_path


def test_sidecar_path():
    assert sidecar_path("/tmp/sessions/abc.jsonl") == kithooks.sidecar_path(
        "/tmp/sessions/abc.jsonl"
    )
    assert str(sidecar_path("/tmp/sessions/abc.jsonl")) == "/tmp/sessions/abc.ext-state.json"
    assert str(sidecar_path("/a/b/c.jsonl")) == "/a/b/c.ext-state.json"
    assert str(sidecar_path("/tmp/session-blob")) == "/tmp/session-blob.ext-state.json"
    with pytest.raises(ValueError):
        sidecar_path("")


def test_file_format_is_the_originals(tmp_path):
    path = tmp_path / "s.ext-state.json"
    store = StateStore(path)
    store.set("b", "<tag> & more")
    store.set("a", "héllo")
    # What Go's json.MarshalIndent(map, "", "  ") writes: sorted keys, HTML escapes, UTF-8,
    # no trailing newline.
    assert path.read_bytes() == (
        b'{\n  "a": "h\xc3\xa9llo",\n  "b": "\\u003ctag\\u003e \\u0026 more"\n}'
    )
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert StateStore(path).snapshot() == {"a": "héllo", "b": "<tag> & more"}


def test_reads_a_file_the_original_wrote(tmp_path):
    path = tmp_path / "abc.ext-state.json"
    path.write_text('{\n  "budget:total": "1.25",\n  "x": "\\u003c"\n}')
    store = StateStore.for_session(tmp_path / "abc.jsonl")
    assert store.path == path
    assert store.get("budget:total") == "1.25" and store.get("x") == "<"
    assert store.keys() == ["budget:total", "x"]


@given(st.dictionaries(st.text(), st.text(), max_size=8))
def test_round_trip_of_any_strings(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("rt") / "s.json"
    store = StateStore(path)
    with store.batch():
        for k, v in data.items():
            store.set(k, v)
    assert StateStore(path).snapshot() == data
    assert path.exists() == bool(data)  # an empty batch changes nothing and saves nothing
    if data:
        assert json.loads(path.read_text(encoding="utf-8")) == data


@pytest.mark.parametrize("content", [b"", b"   \n", b"null"])
def test_missing_or_empty_file_is_an_empty_store(tmp_path, content):
    assert StateStore(tmp_path / "none.json").snapshot() == {}
    path = tmp_path / "empty.json"
    path.write_bytes(content)
    assert StateStore(path).snapshot() == {}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must hold a JSON object"),
        (b'{"a": 1}', "value of 'a' must be a string"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_file_raises_and_leaves_the_store_alone(tmp_path, content, match):
    path = tmp_path / "s.json"
    store = StateStore(path)
    store.set("keep", "me")
    path.write_bytes(content)
    with pytest.raises(StateError, match=match) as info:
        store.load()
    assert str(path) in str(info.value)
    assert store.snapshot() == {"keep": "me"}


def test_non_string_keys_or_values_are_type_errors(tmp_path):
    store = StateStore(tmp_path / "s.json")
    with pytest.raises(TypeError, match="state value must be str"):
        store.set("k", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="state key must be str"):
        store.set(1, "v")  # type: ignore[arg-type]
    assert not (tmp_path / "s.json").exists()


def test_deleting_a_missing_key_saves_nothing(tmp_path):
    path = tmp_path / "s.json"
    store = StateStore(path)
    store.delete("nothing")
    assert not path.exists()
    store.set("a", "1")
    mtime = path.stat().st_mtime_ns
    store.delete("nothing")
    assert path.stat().st_mtime_ns == mtime
    store.delete("a")
    assert path.read_text() == "{}"


def test_a_failing_save_undoes_the_mutation_releases_the_lock_and_raises(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = StateStore(tmp_path / "ok.json")
    store.set("a", "1")
    store._path = blocker / "cannot" / "s.json"  # parent is a file: every save fails
    with pytest.raises(StateError, match="saving state file"):
        store.set("a", "2")
    with pytest.raises(StateError):
        store.set("new", "x")
    assert store.snapshot() == {"a": "1"}
    done = threading.Event()

    def other_thread():
        with pytest.raises(StateError):
            store.delete("a")
        done.set()

    threading.Thread(target=other_thread).start()
    assert done.wait(5), "the lock was not released after a failed save"
    assert store.snapshot() == {"a": "1"}
    assert list(tmp_path.glob("**/*.tmp")) == []


def test_batch_saves_once_and_nests(tmp_path, monkeypatch):
    import kithooks.state as state_module

    store = StateStore(tmp_path / "s.json")
    saves = []
    real = state_module._atomic_write
    monkeypatch.setattr(
        state_module, "_atomic_write", lambda p, b: (saves.append(1), real(p, b))[1]
    )
    with store.batch():
        for i in range(100):
            store.set(f"k{i}", str(i))
        with store.batch():
            store.delete("k0")
        assert saves == []
    assert saves == [1]
    assert len(StateStore(tmp_path / "s.json")) == 99


def test_batch_that_raises_still_saves_what_it_changed(tmp_path):
    store = StateStore(tmp_path / "s.json")
    with pytest.raises(RuntimeError), store.batch():
        store.set("a", "1")
        raise RuntimeError("stop")
    assert StateStore(tmp_path / "s.json").get("a") == "1"


def test_switch_loads_the_other_session_and_leaks_nothing(tmp_path):
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    store = StateStore(one)
    store.set("from-one", "1")
    store.switch(two)
    assert store.snapshot() == {}
    store.set("from-two", "2")
    assert json.loads(one.read_text()) == {"from-one": "1"}
    assert json.loads(two.read_text()) == {"from-two": "2"}
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(StateError):
        store.switch(tmp_path / "bad.json")
    assert store.path == two and store.snapshot() == {"from-two": "2"}
    store.switch(one)
    assert store.snapshot() == {"from-one": "1"}


def test_threads_writing_at_once_leave_the_latest_state_on_disk(tmp_path):
    path = tmp_path / "s.json"
    store = StateStore(path)

    def writer(t):
        for i in range(30):
            store.set(f"t{t}", str(i))

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert json.loads(path.read_text()) == {f"t{t}": "29" for t in range(8)}


def test_state_survives_reload_and_is_shared_by_plugins(tmp_path):
    store = StateStore(tmp_path / "s.json")
    pm = PluginManager(state=store)
    pm.context.set_state("k", "v")
    pm.reload()
    assert pm.state is store and pm.context.get_state("k") == "v"


CHILD = textwrap.dedent(
    """
    import sys
    from kithooks import StateStore
    store = StateStore(sys.argv[1])
    i = int(store.get("n") or 0)
    print("ready", flush=True)
    while True:
        i += 1
        with store.batch():
            store.set("n", str(i))
            store.set("payload", "x" * (i % 5000))
            store.set("check", str(i * 7))
    """
)


def test_sigkill_at_random_points_never_leaves_a_torn_file(tmp_path):
    path = tmp_path / "crash.ext-state.json"
    rng = random.Random(1234)
    last_n = 0
    for _ in range(15):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        data = StateStore(path).snapshot()  # must load
        if data:
            n = int(data["n"])
            # one consistent state, written whole: never a mix of two
            assert data == {"n": str(n), "payload": "x" * (n % 5000), "check": str(n * 7)}
            assert n >= last_n
            last_n = n
    assert last_n > 0
