"""The session state store: format, durability, refusals, threads, switching, the backend
interface. Processes and crashes: test_state_processes.py; hostile files:
test_state_files.py; the model-based test: test_state_machine.py."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Mapping
from types import FrameType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kithooks
from kithooks import PluginManager, StateError, StateStore, sidecar_path
from kithooks.state import MemoryBackend, SidecarBackend, StateBackend, sidecar
from kithooks.state.codec import encode_sidecar
from kithooks.state.files import lock_descriptor, unlock_descriptor


def _go_json_reference(data: dict[str, str]) -> bytes:
    """The encoder kithooks 0.1 used (json.dumps with indent): the sidecar format."""
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text.encode("utf-8")


def test_sidecar_path():
    assert sidecar_path("/tmp/sessions/abc.jsonl") == kithooks.sidecar_path(
        "/tmp/sessions/abc.jsonl"
    )
    assert str(sidecar_path("/tmp/sessions/abc.jsonl")) == "/tmp/sessions/abc.ext-state.json"
    assert str(sidecar_path("/a/b/c.jsonl")) == "/a/b/c.ext-state.json"
    assert str(sidecar_path("/tmp/session-blob")) == "/tmp/session-blob.ext-state.json"
    with pytest.raises(ValueError):
        sidecar_path("")


def test_compacted_file_format_is_the_originals(tmp_path):
    path = tmp_path / "s.ext-state.json"
    store = StateStore(path)
    store.set("b", "<tag> & more")
    store.set("a", "héllo")
    store.compact()
    # What Go's json.MarshalIndent(map, "", "  ") writes: sorted keys, HTML escapes, UTF-8,
    # no trailing newline.
    assert path.read_bytes() == (
        b'{\n  "a": "h\xc3\xa9llo",\n  "b": "\\u003ctag\\u003e \\u0026 more"\n}'
    )
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert StateStore(path).snapshot() == {"a": "héllo", "b": "<tag> & more"}
    store.delete("a")
    store.delete("b")
    store.close()
    assert path.read_bytes() == b"{}"


@given(st.dictionaries(st.text(), st.text(), max_size=12))
def test_sidecar_encoding_is_byte_for_byte_the_old_one(data):
    assert encode_sidecar(data) == _go_json_reference(data)


def test_reads_a_file_the_original_wrote(tmp_path):
    path = tmp_path / "abc.ext-state.json"
    path.write_text('{\n  "budget:total": "1.25",\n  "x": "\\u003c"\n}')
    store = StateStore.for_session(tmp_path / "abc.jsonl")
    assert store.path == path
    assert store.get("budget:total") == "1.25" and store.get("x") == "<"
    assert store.keys() == ["budget:total", "x"]


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(st.text(), st.text(), max_size=8))
def test_round_trip_of_any_strings(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("rt") / "s.json"
    store = StateStore(path)
    with store.batch():
        for k, v in data.items():
            store.set(k, v)
    assert StateStore(path).snapshot() == data  # from the journal
    store.close()
    assert not path.exists() if not data else json.loads(path.read_text("utf-8")) == data
    assert StateStore(path).snapshot() == data  # from the sidecar


@pytest.mark.parametrize("content", [b"", b"   \n", b"null"])
def test_missing_or_empty_file_is_an_empty_store(tmp_path, content):
    assert StateStore(tmp_path / "none.json").snapshot() == {}
    path = tmp_path / "empty.json"
    path.write_bytes(content)
    assert StateStore(path).snapshot() == {}


def test_reading_a_missing_sidecar_creates_nothing(tmp_path):
    store = StateStore(tmp_path / "missing" / "s.json")
    assert store.snapshot() == {} and store.get("k") is None
    store.close()
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"{not json", "not valid JSON: .*line 1 column 2"),
        (b'{\n  "a": "1",\n  oops\n}', "not valid JSON: .*line 3 column 3"),
        (b"[1, 2]", "must hold a JSON object, not an array"),
        (b'{"a": 1}', "value of 'a' must be a string, not a number"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_file_raises_and_leaves_the_store_alone(tmp_path, content, match):
    path = tmp_path / "s.json"
    store = StateStore(path)
    store.set("keep", "me")
    store.compact()
    good = path.read_bytes()
    path.write_bytes(content)
    with pytest.raises(StateError, match=match) as info:
        store.load()
    assert str(path) in str(info.value)
    with pytest.raises(StateError, match=match):  # every read says so while the file is bad
        store.get("keep")
    with pytest.raises(StateError, match=match):
        StateStore(path)
    path.write_bytes(good)
    assert store.snapshot() == {"keep": "me"}


# -- refusals ------------------------------------------------------------------------------


BAD_ENTRIES = [
    ("k", 1, "value of state key 'k' must be a str, not int"),
    ("k", None, "value of state key 'k' must be a str, not NoneType"),
    ("k", b"bytes", "value of state key 'k' must be a str, not bytes"),
    ("k", "lone \ud800 surrogate", r"value of state key 'k' contains a lone surrogate"),
    (1, "v", "state key must be a str, not int"),
    ("bad \udfff key", "v", r"state key 'bad \\udfff key' contains a lone surrogate"),
]


@pytest.mark.parametrize(("key", "value", "match"), BAD_ENTRIES)
def test_a_value_that_cannot_be_stored_is_refused_naming_the_key(tmp_path, key, value, match):
    path = tmp_path / "s.json"
    store = StateStore(path)
    store.set("ok", "1")
    with pytest.raises(StateError, match=match):
        store.set(key, value)
    assert store.snapshot() == {"ok": "1"} == StateStore(path).snapshot()
    store.set("after", "2")  # the store keeps working
    store.close()
    assert json.loads(path.read_text()) == {"ok": "1", "after": "2"}


@pytest.mark.parametrize(("key", "value", "match"), BAD_ENTRIES)
def test_a_refusal_inside_batch_keeps_memory_equal_to_disk(tmp_path, key, value, match):
    path = tmp_path / "s.json"
    store = StateStore(path)
    with store.batch():
        store.set("before", "1")
        with pytest.raises(StateError, match=match):
            store.set(key, value)
        store.set("after", "2")
    assert store.snapshot() == {"before": "1", "after": "2"} == StateStore(path).snapshot()
    with pytest.raises(StateError, match=match), store.batch():
        store.set("third", "3")
        store.set(key, value)  # the error leaves the block: what it changed is written
    assert store.snapshot() == StateStore(path).snapshot()
    assert store.get("third") == "3"
    store.close()
    assert json.loads(path.read_text()) == store.snapshot()


def test_delete_refuses_a_non_str_key(tmp_path):
    store = StateStore(tmp_path / "s.json")
    with pytest.raises(StateError, match="state key must be a str, not tuple"):
        store.delete(("a",))  # type: ignore[arg-type]


# -- durability and failures -----------------------------------------------------------------


def test_deleting_a_missing_key_writes_nothing(tmp_path):
    path = tmp_path / "s.json"
    store = StateStore(path)
    journal = SidecarBackend(path).journal_path
    store.delete("nothing")
    assert not journal.exists()
    store.set("a", "1")
    size = journal.stat().st_size
    store.delete("nothing")
    assert journal.stat().st_size == size
    store.delete("a")
    assert journal.stat().st_size > size
    assert StateStore(path).snapshot() == {}


FAILING_WRITES = textwrap.dedent(
    """
    import resource, signal, sys, threading
    from kithooks import StateError, StateStore
    from kithooks.state import SidecarBackend

    path = sys.argv[1]
    store = StateStore(path)
    store.set("a", "1")
    size = SidecarBackend(path).journal_path.stat().st_size
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, limits[1]))  # the disk is "full"
    for attempt in (lambda: store.set("a", "2"), lambda: store.delete("a")):
        try:
            attempt()
        except StateError as exc:
            assert "File too large" in str(exc), exc
        else:
            raise AssertionError("the write did not fail")
    try:
        with store.batch():
            store.set("new", "x")
            store.delete("a")
    except StateError:
        pass
    else:
        raise AssertionError("the batch did not fail")
    assert store.snapshot() == {"a": "1"} == StateStore(path).snapshot()
    errors = []
    def other():
        try:
            store.set("b", "2")
        except StateError as exc:
            errors.append(exc)
    thread = threading.Thread(target=other)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the lock was not released after a failed write"
    assert len(errors) == 1
    resource.setrlimit(resource.RLIMIT_FSIZE, limits)
    store.set("b", "2")  # the torn bytes of the failed writes are cut off first
    assert StateStore(path).snapshot() == {"a": "1", "b": "2"} == store.snapshot()
    print("ok")
    """
)


def test_a_failing_write_changes_nothing_releases_the_lock_and_raises(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", FAILING_WRITES, str(tmp_path / "s.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr


def _datasync_failing(monkeypatch, times: int) -> list[int]:
    """Make the next ``times`` fdatasyncs of the sidecar backend fail with EIO."""
    real, calls = sidecar._datasync, []

    def datasync(fd: int) -> None:
        calls.append(fd)
        if len(calls) <= times:
            raise OSError(errno.EIO, "Input/output error")
        real(fd)

    monkeypatch.setattr(sidecar, "_datasync", datasync)
    return calls


@pytest.mark.parametrize("first", [False, True], ids=["appending", "starting-the-journal"])
def test_a_write_whose_datasync_fails_is_cut_from_the_journal(tmp_path, monkeypatch, first):
    path = tmp_path / "s.json"
    store = StateStore(path)
    if not first:
        store.set("count", "1")
    before = store.snapshot()
    journal = store.backend.journal_path
    size = journal.stat().st_size if journal.exists() else 0
    _datasync_failing(monkeypatch, 1)
    with pytest.raises(StateError, match="Input/output error"):
        store.set("count", "2")
    assert journal.stat().st_size == size  # the record was appended, then cut off
    assert store.snapshot() == before == StateStore(path).snapshot()
    _datasync_failing(monkeypatch, 1)
    with pytest.raises(StateError, match="Input/output error"), store.batch():
        store.set("count", "3")
    assert journal.stat().st_size == size
    assert store.snapshot() == before == StateStore(path).snapshot()
    _datasync_failing(monkeypatch, 1)
    with pytest.raises(StateError, match="Input/output error"):
        store.set("count", "2")
    store.set("count", "2")  # the retry is the only one that counts
    assert store.snapshot() == {"count": "2"} == StateStore(path).snapshot()
    assert journal.read_bytes().count(b"\n") == (2 if first else 3)


def test_a_failed_write_that_cannot_be_undone_refuses_writes_until_load(tmp_path, monkeypatch):
    path = tmp_path / "s.json"
    store = StateStore(path)
    store.set("count", "1")
    calls = _datasync_failing(monkeypatch, 2)  # the write's, then the undo's
    with pytest.raises(StateError, match="could not be undone"):
        store.set("count", "2")
    assert len(calls) == 2
    for write in (lambda: store.set("other", "x"), lambda: store.delete("count")):
        with pytest.raises(StateError, match=r"refusing writes .* load\(\)"):
            write()
    with pytest.raises(StateError, match="refusing writes"), store.batch():
        store.set("other", "x")
    assert StateStore(path).snapshot() == {"count": "1"}  # the refused writes wrote nothing
    store.load()  # what is on disk now, whatever the failed write left
    store.set("count", "2")
    assert StateStore(path).snapshot() == {"count": "2"} == store.snapshot()


def test_batch_writes_one_record_and_nests(tmp_path):
    path = tmp_path / "s.json"
    store = StateStore(path)
    journal = SidecarBackend(path).journal_path
    with store.batch():
        for i in range(100):
            store.set(f"k{i}", str(i))
        with store.batch():
            store.delete("k0")
        assert not journal.exists()
    lines = journal.read_bytes().splitlines()
    assert len(lines) == 2  # the header and one record
    assert len(StateStore(path)) == 99


def test_batch_that_raises_still_writes_what_it_changed(tmp_path):
    store = StateStore(tmp_path / "s.json")
    with pytest.raises(RuntimeError), store.batch():
        store.set("a", "1")
        raise RuntimeError("stop")
    assert StateStore(tmp_path / "s.json").get("a") == "1"


def test_the_journal_is_compacted_as_it_grows(tmp_path):
    path = tmp_path / "s.json"
    store = StateStore(path)
    journal = SidecarBackend(path).journal_path
    sizes = []
    for i in range(150):
        store.set(f"k{i % 5}", f"{i} " + "v" * 1000)
        sizes.append(journal.stat().st_size)
    assert max(sizes) < 34 * 1024  # 32 KiB of records, then a compaction
    assert path.exists() and min(sizes[40:]) < 2000
    expected = {f"k{i}": f"{145 + i} " + "v" * 1000 for i in range(5)}
    assert StateStore(path).snapshot() == expected
    store.close()
    assert json.loads(path.read_text()) == expected
    assert journal.read_bytes().count(b"\n") == 1  # the header alone


def test_operations_that_need_a_whole_state_refuse_inside_batch(tmp_path):
    store = StateStore(tmp_path / "s.json")
    with store.batch():
        store.set("a", "1")
        for call in (store.load, store.compact, store.close, lambda: store.switch(None)):
            with pytest.raises(StateError, match=r"cannot run inside batch\(\)"):
                call()
    assert StateStore(tmp_path / "s.json").get("a") == "1"


# -- switching, threads, the manager ---------------------------------------------------------


def test_switch_loads_the_other_session_and_leaks_nothing(tmp_path):
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    store = StateStore(one)
    store.set("from-one", "1")
    store.switch(two)
    assert store.snapshot() == {}
    store.set("from-two", "2")
    assert StateStore(one).snapshot() == {"from-one": "1"}
    assert StateStore(two).snapshot() == {"from-two": "2"}
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(StateError):
        store.switch(tmp_path / "bad.json")
    assert store.path == two and store.snapshot() == {"from-two": "2"}
    store.switch(one)
    assert store.snapshot() == {"from-one": "1"}
    store.switch(None)
    assert store.path is None and store.snapshot() == {}


def test_threads_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "s.json"
    store = StateStore(path)
    other = StateStore(path)  # a second store on the same sidecar, in this process

    def writer(t):
        target = store if t % 2 else other
        for i in range(30):
            target.set(f"t{t}", str(i))
            with target.batch():
                target.set("count", str(int(target.get("count") or 0) + 1))

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()
    expected = {f"t{t}": "29" for t in range(8)} | {"count": str(8 * 30)}
    assert StateStore(path).snapshot() == expected
    assert store.snapshot() == other.snapshot() == expected


@pytest.mark.parametrize("read", ["get", "keys", "snapshot", "len"])
@pytest.mark.parametrize("on_disk", [True, False], ids=["sidecar", "memory"])
def test_reads_from_other_threads_wait_for_an_open_batch(tmp_path, read, on_disk):
    store = StateStore(tmp_path / "s.json") if on_disk else StateStore()
    store.set("x", "before")
    readers = {
        "get": lambda: store.get("x"),
        "keys": store.keys,
        "snapshot": store.snapshot,
        "len": lambda: len(store),
    }
    opened, release, seen = threading.Event(), threading.Event(), []

    def batch() -> None:
        with store.batch():
            store.set("x", "half done")
            store.set("y", "half done")
            opened.set()
            assert release.wait(timeout=10)
            store.set("x", "done")
            store.delete("y")

    def reader() -> None:
        seen.append(readers[read]())

    writer = threading.Thread(target=batch)
    writer.start()
    assert opened.wait(timeout=10)
    other = threading.Thread(target=reader)
    other.start()
    other.join(timeout=0.3)
    waited = other.is_alive()  # still waiting for the batch
    release.set()
    for thread in (writer, other):
        thread.join(timeout=10)
        assert not thread.is_alive()
    assert waited
    assert seen == [
        {"get": "done", "keys": ["x"], "snapshot": {"x": "done"}, "len": 1}[read],
    ]


def _with_deadline(awaitable, seconds: float = 10):
    return asyncio.wait_for(awaitable, seconds)


def test_a_batch_held_across_an_await_is_refused_to_other_tasks(tmp_path):
    store = StateStore(tmp_path / "s.json")
    store.set("count", "0")

    async def increment() -> None:
        with store.batch():
            value = int(store.get("count") or 0)
            await _with_deadline(asyncio.sleep(0))  # the mistake: an await inside batch()
            store.set("count", str(value + 1))

    async def main() -> list[BaseException | None]:
        tasks = [increment() for _ in range(5)]
        return await _with_deadline(asyncio.gather(*tasks, return_exceptions=True))

    results = asyncio.run(_with_deadline(main()))
    errors = [r for r in results if r is not None]
    assert len(errors) == 4 and all(isinstance(e, RuntimeError) for e in errors), results
    assert "held across an await" in str(errors[0]) and "to_thread" in str(errors[0])
    assert StateStore(tmp_path / "s.json").get("count") == "1"  # the one batch that ran

    async def meddle(opened: asyncio.Event, done: asyncio.Event) -> None:
        await _with_deadline(opened.wait())
        for call in (
            lambda: store.get("count"),
            store.snapshot,
            lambda: store.set("count", "99"),
            lambda: store.delete("count"),
            store.load,
        ):
            with pytest.raises(RuntimeError, match="held across an await"):
                call()
        done.set()

    async def holder(opened: asyncio.Event, done: asyncio.Event) -> None:
        with store.batch():
            store.set("count", "2")
            opened.set()
            await _with_deadline(done.wait())

    async def both() -> None:
        opened, done = asyncio.Event(), asyncio.Event()
        await _with_deadline(asyncio.gather(holder(opened, done), meddle(opened, done)))

    asyncio.run(_with_deadline(both()))
    assert StateStore(tmp_path / "s.json").get("count") == "2"


def test_batches_in_tasks_that_do_not_await_inside_them_count_every_increment(tmp_path):
    store = StateStore(tmp_path / "s.json")

    async def increment() -> None:
        await _with_deadline(asyncio.sleep(0))
        with store.batch():  # no await inside: the block runs whole
            value = int(store.get("count") or 0)
            with store.batch():  # genuine nesting in one task still works
                store.set("count", str(value + 1))

    def increment_in_thread() -> None:
        with store.batch():  # the way to await inside: a thread, which other batches wait for
            store.set("count", str(int(store.get("count") or 0) + 1))

    async def main() -> None:
        await _with_deadline(asyncio.gather(*(increment() for _ in range(5))))
        await _with_deadline(
            asyncio.gather(*(asyncio.to_thread(increment_in_thread) for _ in range(5)))
        )

        async def nested_with_await() -> None:
            with store.batch():
                store.set("nested", "1")
                await _with_deadline(asyncio.sleep(0))  # no other task touches the store
                with store.batch():
                    store.set("nested", str(int(store.get("nested") or 0) + 1))

        await _with_deadline(nested_with_await())

    asyncio.run(_with_deadline(main()))
    assert StateStore(tmp_path / "s.json").snapshot() == {"count": "10", "nested": "2"}


# -- several stores on one sidecar in one process -----------------------------------------------


def _run_with_deadline(fn, seconds: float = 10):
    """``fn()`` in a daemon thread; what it returned. A hang (a thread waiting for itself, an
    event loop frozen in a blocking call, which asyncio.wait_for cannot interrupt) fails."""
    result: list[object] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=seconds)
    assert not thread.is_alive(), f"{fn.__name__} hung"
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def test_a_second_store_in_the_thread_holding_a_batch_reads_and_its_writes_are_refused(tmp_path):
    session = tmp_path / "abc.jsonl"
    path = sidecar_path(session)

    def handler_inside_the_hosts_batch() -> dict[str, object]:
        host = StateStore.for_session(session)
        host.set("k", "1")
        seen: dict[str, object] = {}
        with host.batch():
            host.set("k", "2")
            other = StateStore.for_session(session)  # opening reads, without waiting
            seen["opened"] = other.snapshot()  # what is written: not the batch's half
            other.load()
            seen["loaded"] = other.get("k")
            for name, write in [
                ("set", lambda: other.set("k", "3")),
                ("delete", lambda: other.delete("k")),
                ("batch", lambda: other.batch().__enter__()),
                ("compact", other.compact),
            ]:
                with pytest.raises(RuntimeError) as caught:
                    write()
                seen[name] = str(caught.value)
            other.close()  # nothing to fold without the lock; releases its files
        host.set("after", "x")
        other.set("k", "4")  # the batch is over: the second store writes again
        seen["after"] = (host.snapshot(), other.snapshot())
        return seen

    seen = _run_with_deadline(handler_inside_the_hosts_batch)
    assert seen["opened"] == {"k": "1"} and seen["loaded"] == "1"
    for name in ("set", "delete", "batch", "compact"):
        assert str(path) in seen[name], seen[name]
        assert "one store per session" in seen[name] and "pm.state" in seen[name]
    assert seen["after"] == ({"k": "4", "after": "x"},) * 2
    assert StateStore(path).snapshot() == {"k": "4", "after": "x"}


def _bind_mount(source, target) -> bool:
    """Bind-mount ``source`` on ``target`` (False where this process may not mount)."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return False
    done = subprocess.run(
        ["mount", "--bind", str(source), str(target)], capture_output=True, timeout=10, check=False
    )
    return done.returncode == 0


@pytest.mark.parametrize("how", ["hard link", "bind mount"])
def test_a_second_store_through_another_path_to_the_same_lock_file_is_refused_too(tmp_path, how):
    # flock locks the file, not the path: a second store reaching the sidecar's lock file
    # through another path (a container's bind mount, a hard link) waited for its own
    # thread forever, because the same-thread check compared paths.
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    mounted = False
    if how == "bind mount":
        if not _bind_mount(first, second):
            pytest.skip("needs root on Linux to bind-mount")
        mounted = True
    try:
        host = StateStore(first / "s.json")
        host.set("k", "1")
        if how == "hard link":
            os.link(first / "s.json.lock", second / "s.json.lock")
        other = StateStore(second / "s.json")

        def write_inside_the_batch() -> str:
            with host.batch():
                host.set("k", "2")
                with pytest.raises(RuntimeError) as caught:
                    other.set("k", "3")
            return str(caught.value)

        message = _run_with_deadline(write_inside_the_batch)
        assert "locked by another StateStore on it in this thread" in message
        host.close()
        other.close()
    finally:
        if mounted:
            subprocess.run(
                ["umount", "-l", str(second)], capture_output=True, timeout=10, check=False
            )


def test_a_batch_held_across_an_await_is_refused_to_another_store_of_its_sidecar(tmp_path):
    path = tmp_path / "s.json"
    a, b = StateStore(path), StateStore(path)
    a.set("count", "0")

    async def holder(opened: asyncio.Event, done: asyncio.Event) -> None:
        with a.batch():
            a.set("count", "1")
            opened.set()
            await _with_deadline(done.wait())  # the mistake: an await inside batch()

    async def other_task(opened: asyncio.Event, done: asyncio.Event) -> list[str]:
        await _with_deadline(opened.wait())
        try:
            messages = []
            for write in (lambda: b.set("count", "99"), lambda: b.batch().__enter__()):
                with pytest.raises(RuntimeError) as caught:
                    write()
                messages.append(str(caught.value))
            assert b.get("count") == "0"  # reads what is written, without waiting
            assert StateStore(path).get("count") == "0"
            return messages
        finally:
            done.set()

    async def both() -> list[str]:
        opened, done = asyncio.Event(), asyncio.Event()
        got = await _with_deadline(asyncio.gather(holder(opened, done), other_task(opened, done)))
        return got[1]

    messages = _run_with_deadline(lambda: asyncio.run(_with_deadline(both())))
    for message in messages:
        assert str(path) in message
        assert "held across an await" in message and "to_thread" in message
    b.set("count", str(int(b.get("count") or 0) + 1))
    assert StateStore(path).get("count") == "2"


def test_a_store_that_another_thread_holds_while_it_waits_for_this_threads_batch(
    tmp_path, monkeypatch
):
    """Thread 2 writes through store b and waits for the file lock, holding b; thread 1,
    inside store a's batch, then uses b: it cannot wait for b (thread 2 waits for it)."""
    path = tmp_path / "s.json"
    a, b = StateStore(path), StateStore(path)
    opened, waiting, errors = threading.Event(), threading.Event(), []
    lock_descriptor = sidecar.lock_descriptor

    def noting_the_wait(fd: int, *, blocking: bool = True) -> bool:
        if threading.current_thread() is thread2:
            waiting.set()
        return lock_descriptor(fd, blocking=blocking)

    monkeypatch.setattr(sidecar, "lock_descriptor", noting_the_wait)

    def writer() -> None:
        assert opened.wait(timeout=10)
        b.set("from-thread-2", "1")  # waits for thread 1's batch: correct, it ends

    thread2 = threading.Thread(target=writer, daemon=True)

    def in_the_batch() -> None:
        thread2.start()
        with a.batch():
            a.set("from-batch", "1")
            opened.set()
            assert waiting.wait(timeout=10)  # thread 2 holds b, waiting for the file lock
            with pytest.raises(RuntimeError, match="one store per session") as caught:
                b.get("from-batch")
            errors.append(str(caught.value))
        thread2.join(timeout=10)
        assert not thread2.is_alive()

    _run_with_deadline(in_the_batch)
    assert str(path) in errors[0]
    assert StateStore(path).snapshot() == {"from-batch": "1", "from-thread-2": "1"}


def test_stores_of_one_sidecar_in_other_threads_wait_for_a_batch(tmp_path):
    path = tmp_path / "s.json"
    a, b = StateStore(path), StateStore(path)
    opened, release, done = threading.Event(), threading.Event(), []

    def batch() -> None:
        with a.batch():
            a.set("count", str(int(a.get("count") or 0) + 1))
            opened.set()
            assert release.wait(timeout=10)

    def other() -> None:
        with b.batch():  # waits for the other thread's batch, then sees its write
            b.set("count", str(int(b.get("count") or 0) + 1))
        done.append(StateStore(path).get("count"))

    first = threading.Thread(target=batch)
    first.start()
    assert opened.wait(timeout=10)
    second = threading.Thread(target=other)
    second.start()
    second.join(timeout=0.3)
    waited = second.is_alive()
    release.set()
    for thread in (first, second):
        thread.join(timeout=10)
        assert not thread.is_alive()
    assert waited and done == ["2"]


def test_state_survives_reload_and_is_shared_by_plugins(tmp_path):
    store = StateStore(tmp_path / "s.json")
    pm = PluginManager(state=store)
    pm.context.set_state("k", "v")
    pm.reload()
    assert pm.state is store and pm.context.get_state("k") == "v"


def test_the_harness_recording_store_still_records_and_stores(tmp_path):
    from kithooks.testing.harness import HostCall, _RecordingStore

    calls: list[HostCall] = []
    store = _RecordingStore(tmp_path / "s.json", calls)
    store.set("a", "1")
    store.delete("a")
    store.set("b", "2")
    assert [c.name for c in calls] == ["set_state", "delete_state", "set_state"]
    assert StateStore(tmp_path / "s.json").snapshot() == {"b": "2"}


# -- the backend interface ---------------------------------------------------------------------


class DictBackend:
    """A backend a host could write: a shared dict standing for a database."""

    def __init__(self, shared: dict[str, str]) -> None:
        self.shared = shared
        self.writes: list[dict[str, str | None]] = []
        self.version = self.seen = 0

    def lock(self, write):
        import contextlib

        return contextlib.nullcontext(self)

    def stale(self):
        return self.version != self.seen

    def load(self):
        self.seen = self.version
        return dict(self.shared)

    def sync(self, data):
        return self.load()

    def write(self, changes: Mapping[str, str | None], data):
        for key, value in changes.items():
            if value is None:
                self.shared.pop(key, None)
            else:
                self.shared[key] = value
        self.writes.append(dict(changes))

    def compact(self, data):
        pass

    def close(self):
        pass


def test_a_host_backend_is_used_without_plugins_noticing():
    shared: dict[str, str] = {"seeded": "1"}
    backend = DictBackend(shared)
    assert isinstance(backend, StateBackend) and isinstance(MemoryBackend(), StateBackend)
    store = StateStore(backend=backend)
    pm = PluginManager(state=store)
    assert pm.context.get_state("seeded") == "1"
    pm.context.set_state("k", "v")
    with store.batch():
        store.set("a", "1")
        store.delete("seeded")
    assert shared == {"k": "v", "a": "1"}
    assert backend.writes == [{"k": "v"}, {"a": "1", "seeded": None}]
    shared["from-elsewhere"] = "x"
    backend.version += 1
    assert store.get("from-elsewhere") == "x"
    with pytest.raises(TypeError, match="a path or a backend"):
        StateStore("p.json", backend=backend)


def _in_finalizer(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_name in ("__del__", "_remove"):
            return True
        frame = frame.f_back
    return False


def _interrupt_at(number: int, action: Callable[[], object]) -> bool:
    """Run ``action`` with a KeyboardInterrupt (what a Ctrl-C's handler raises) raised at
    the ``number``-th point where CPython runs signal handlers; whether it was raised.

    Those points (3.11 and later) are a Python function's start (not a generator's
    resumption) and the return of a call to a C function; a profile function sees both.
    Only points in the state package and in contextlib (its context managers) count.
    """
    seen, fired = [0], [False]
    where = (os.path.dirname(sidecar.__file__), contextlib.__file__)

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if fired[0] or event not in ("call", "c_return"):
            return
        if not frame.f_code.co_filename.startswith(where) or _in_finalizer(frame):
            return  # the test's own code, or a finalizer (its exception would be lost)
        if event == "call" and frame.f_code.co_flags & inspect.CO_GENERATOR and frame.f_lasti > 0:
            return  # a generator resumed: no check there
        seen[0] += 1
        if seen[0] == number:
            fired[0] = True
            raise KeyboardInterrupt(f"{event} in {frame.f_code.co_name} line {frame.f_lineno}")

    sys.setprofile(profile)
    try:
        action()
    except KeyboardInterrupt:
        assert fired[0]
    finally:
        sys.setprofile(None)
    return fired[0]


def _lock_is_free(path: os.PathLike[str]) -> bool:
    """Whether another open of the lock file (another process's) can take its flock now."""
    fd = os.open(f"{os.fspath(path)}.lock", os.O_RDWR)
    try:
        if not lock_descriptor(fd, blocking=False):
            return False
        unlock_descriptor(fd)
        return True
    finally:
        os.close(fd)


@pytest.mark.parametrize("compacting", [False, True], ids=["append", "compact"])
@pytest.mark.parametrize("how", ["set", "delete", "batch", "first"])
def test_a_ctrl_c_at_any_line_of_a_write_leaves_memory_as_the_disk_and_the_lock_free(
    tmp_path, monkeypatch, how, compacting
):
    """A KeyboardInterrupt raised at any point a signal handler can run in a write (its
    lock, its journal append, after the record is durable, its compaction): the
    store's reads equal a fresh store's (a durable write is never lost from memory, an
    undone one never kept), no lock stays held, and a later write and compaction keep it."""
    if compacting:
        monkeypatch.setattr(sidecar, "COMPACT_AT_LEAST", 0)
    number = 0
    while True:
        number += 1
        path = tmp_path / f"{number}.ext-state.json"
        store = StateStore(path)
        if how != "first":
            store.set("n", "0")
            store.set("gone", "x")

        def action(store: StateStore = store) -> None:
            if how == "set" or how == "first":
                store.set("n", "1")
            elif how == "delete":
                store.delete("gone")
            else:
                with store.batch():
                    store.set("n", str(int(store.get("n") or 0) + 1))
                    store.set("k", "1")
                    store.delete("gone")

        fired = _interrupt_at(number, action)
        sys.last_traceback = sys.last_value = None  # nothing keeps the frames
        where = f"interrupted at point {number}: {fired}"
        disk = SidecarBackend(path).load()  # without the lock: a lock left held fails below
        assert store.snapshot() == disk, where
        assert sidecar._holders == {}, where
        assert _lock_is_free(path), where
        assert disk in ({"n": "0", "gone": "x"}, {}, store.snapshot()) or not fired, where
        store.set("after", "1")
        store.compact()
        assert StateStore(path).snapshot() == {**disk, "after": "1"}, where
        store.close()
        if not fired:
            break
    assert number > 20  # every line of the write was tried
