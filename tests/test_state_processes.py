"""Several processes on one sidecar, and SIGKILL during writes and compactions.

Every child prints a line after each write returns (the write is acknowledged); the parent
checks that every acknowledged write is on disk afterwards. Every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kithooks import StateStore
from kithooks.state import SidecarBackend

pytestmark = pytest.mark.slow

WRITER = textwrap.dedent(
    """
    import sys
    from kithooks import StateStore

    path, me, count, overlapping = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    store = StateStore(path)
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    for i in range(count):
        key = f"k{i % 5}" if overlapping else f"{me}:k{i}"
        store.set(key, f"{me}:{i}")
        print("set", key, f"{me}:{i}", flush=True)
        with store.batch():  # a read-modify-write: no increment may be lost
            store.set("count", str(int(store.get("count") or 0) + 1))
        if i % 7 == 0:
            store.delete(f"{me}:gone")
            store.set(f"{me}:gone", "x")
            store.delete(f"{me}:gone")
    seen = store.snapshot()
    print("count-seen", seen["count"], flush=True)
    """
)


def _wait(proc: subprocess.Popen[str], seconds: float) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
        raise AssertionError(f"a child did not finish within {seconds} s") from None


@pytest.mark.parametrize("overlapping", [False, True], ids=["disjoint", "overlapping"])
@pytest.mark.parametrize("processes", [2, 4])
def test_processes_lose_no_acknowledged_write(tmp_path, processes, overlapping):
    path = tmp_path / "shared.ext-state.json"
    count = 25
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), f"p{n}", str(count), str(int(overlapping))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
    outputs = [_wait(proc, 120) for proc in procs]  # communicate() writes "\n": go
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    final = StateStore(path).snapshot()
    assert final["count"] == str(processes * count)  # every increment, none lost
    last_by_writer: dict[str, set[str]] = {}
    for out, _ in outputs:
        acked = [line.split()[1:] for line in out.splitlines() if line.startswith("set ")]
        assert len(acked) == count
        latest = dict(acked)
        for key, value in latest.items():
            last_by_writer.setdefault(key, set()).add(value)
        # each writer saw the others' increments: its final read is at least its own count
        assert int(out.splitlines()[-1].split()[1]) >= count
    for key, values in last_by_writer.items():
        # the key holds some writer's last acknowledged value (last write wins)
        assert final[key] in values, (key, final[key], values)
    expected_keys = set(last_by_writer) | {"count"}
    assert set(final) == expected_keys  # the deleted keys stay deleted
    assert _temporaries(path) == []


def _temporaries(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}*.tmp"))


CRASHER = textwrap.dedent(
    """
    import sys
    from kithooks import StateStore

    path, start, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    store = StateStore(path)
    print("ready", flush=True)
    i = start
    while True:
        # values of `size` bytes over 4 keys: a compaction every few writes when large
        store.set(f"k{i % 4}", f"{i}:" + "x" * size)
        print(i, flush=True)
        with store.batch():  # a batch is written whole or not at all
            store.set("n", str(i))
            store.set("check", str(i * 7))
        i += 1
    """
)


@pytest.mark.parametrize("size", [10, 6000], ids=["writes", "compactions"])
def test_sigkill_during_writes_loses_nothing_acknowledged(tmp_path, size):
    path = tmp_path / "crash.ext-state.json"
    rng = random.Random(size)
    acked: dict[str, int] = {}
    start = 0
    for _ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", CRASHER, str(path), str(start), str(size)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n", _wait(proc, 30)[1]
        deadline = time.monotonic() + rng.uniform(0.05, 0.4)
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, _wait(proc, 30)[1]
            i = int(line)
            acked[f"k{i % 4}"] = i
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = _wait(proc, 30)
        for line in rest.split():  # acknowledged before the kill, read after
            i = int(line)
            acked[f"k{i % 4}"] = i
        assert len(_temporaries(path)) <= 1  # at most one temporary file, ever
        data = StateStore(path).snapshot()  # loads, and cleans up after the crash
        assert _temporaries(path) == []
        for key, i in acked.items():
            got = int(data[key].split(":")[0])
            assert got >= i, f"acknowledged write {key}={i} lost (found {got})"
            assert data[key] == f"{got}:" + "x" * size
        if "n" in data:
            assert data["check"] == str(int(data["n"]) * 7)  # the batch is whole
        start = max(acked.values(), default=0) + 1
    assert acked, "no write was ever acknowledged"
    journal = SidecarBackend(path).journal_path
    if size > 1000:
        assert path.exists()  # compactions happened
        assert journal.stat().st_size < 100_000


KILLED_IN_COMPACTION = textwrap.dedent(
    """
    import os, signal, sys
    import kithooks.state.journal
    from kithooks import StateStore

    path, point = sys.argv[1], sys.argv[2]
    store = StateStore(path)
    for i in range(30):
        store.set(f"k{i % 6}", f"{i}:" + "y" * 50)
    store.delete("k5")
    print("acked", flush=True)

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "before-rename":
        os.replace = die
    elif point == "after-rename":  # the sidecar is new, the journal not yet reset
        kithooks.state.journal.make_header = die
    elif point == "journal-reset":
        os.ftruncate = die
    store.compact()
    print("not killed", flush=True)
    """
)


@pytest.mark.parametrize("point", ["before-rename", "after-rename", "journal-reset"])
def test_sigkill_at_each_step_of_a_compaction(tmp_path, point):
    path = tmp_path / "c.ext-state.json"
    path.write_text('{\n  "old": "kept"\n}')
    path.chmod(0o600)
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_IN_COMPACTION, str(path), point],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = _wait(proc, 60)
    assert out == "acked\n" and proc.returncode == -signal.SIGKILL, err
    assert len(_temporaries(path)) == (1 if point == "before-rename" else 0)
    expected = {f"k{i}": f"{24 + i}:" + "y" * 50 for i in range(5)} | {"old": "kept"}
    store = StateStore(path)
    assert store.snapshot() == expected
    assert _temporaries(path) == []
    store.set("after", "1")  # and the store goes on
    store.close()
    assert StateStore(path).snapshot() == expected | {"after": "1"}
    assert path.stat().st_mode & 0o777 == 0o600


EXITS = textwrap.dedent(
    """
    import sys, threading, time
    from kithooks import StateStore

    path, hold = sys.argv[1], sys.argv[2] == "hold"
    store = StateStore(path)
    store.set("a", "1")
    store.set("b", "<2>")
    if hold:  # a daemon thread sits in a batch while the interpreter exits
        entered = threading.Event()
        def sit():
            with store.batch():
                entered.set()
                time.sleep(60)
        threading.Thread(target=sit, daemon=True).start()
        assert entered.wait(10)
    """
)


@pytest.mark.parametrize("hold", [False, True], ids=["normal", "batch-left-open"])
def test_a_normal_exit_folds_the_journal_into_the_sidecar(tmp_path, hold):
    path = tmp_path / "exit.ext-state.json"
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", EXITS, str(path), "hold" if hold else "go"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - start < 30
    if hold:  # the lock stayed held: the journal is left complete, and says so
        assert "not compacting" in proc.stderr and not path.exists()
    else:
        assert path.read_bytes() == b'{\n  "a": "1",\n  "b": "\\u003c2\\u003e"\n}'
    assert StateStore(path).snapshot() == {"a": "1", "b": "<2>"}


def test_a_child_forked_inside_a_batch_cannot_write_it_and_the_parent_loses_nothing(tmp_path):
    """The child of an os.fork() inside a batch holds no lock: writing the batch there would
    land in the journal under the parent's lock and cut the parent's next writes off. The
    child's batch is refused (RuntimeError), and every write the parent made is kept."""
    import os
    import time

    from kithooks import StateStore

    path = tmp_path / "s.ext-state.json"
    store = StateStore(path)
    store.set("base", "0")
    pid = -1
    try:
        with store.batch():
            pid = os.fork()
            if pid == 0:
                store.set("child", "1")
            else:
                time.sleep(0.3)
                store.set("parent", "1")
    except RuntimeError as exc:
        if pid == 0:
            os._exit(7 if "os.fork()" in str(exc) else 6)  # refused, as it must be
        raise
    except BaseException:
        if pid == 0:
            os._exit(6)
        raise
    if pid == 0:
        os._exit(5)  # the child's batch ended without a word: it was written
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        assert time.monotonic() < deadline, "the forked child hung"
        time.sleep(0.05)
    store.set("after", "1")
    assert os.WEXITSTATUS(status) == 7
    assert StateStore(path).snapshot() == {"base": "0", "parent": "1", "after": "1"}


CTRL_C_IN_COMPACTION = textwrap.dedent(
    """
    import json, signal, sys, time
    from kithooks import StateStore
    from kithooks.state import SidecarBackend

    path, wanted = sys.argv[1], int(sys.argv[2])
    COMPACT = SidecarBackend.compact.__code__
    armed, hits = [True], []

    def ctrl_c_in_compaction(signum, frame):
        # A real SIGALRM, handled in the real process: like a person's Ctrl-C (SIGINT's
        # KeyboardInterrupt), raised only when it lands in a compaction (its fsyncs, its
        # rename, its journal reset) so that every increment below is durable.
        names = []
        while frame is not None:
            names.append(frame.f_code.co_name)
            if frame.f_code is COMPACT and armed[0]:
                armed[0] = False
                hits.append(names[0])
                raise KeyboardInterrupt
            frame = frame.f_back

    store = StateStore(path)
    store.set("counter", "0")
    signal.signal(signal.SIGALRM, ctrl_c_in_compaction)
    signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
    done, mismatches = 0, []
    deadline = time.monotonic() + 40
    try:
        while len(hits) < wanted and time.monotonic() < deadline:
            armed[0] = True
            try:
                with store.batch():  # an increment, and a big value: compactions happen
                    store.set("counter", str(int(store.get("counter")) + 1))
                    store.set("pad", str(done) * 40_000)
            except KeyboardInterrupt:
                pass  # the host catches Ctrl-C and cancels the turn
            done += 1
            view, disk = store.get("counter"), StateStore(path).get("counter")
            if view != disk:
                mismatches.append((done, view, disk))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
    store.close()
    print(json.dumps({"done": done, "hits": hits, "mismatches": mismatches[:5],
                      "final": StateStore(path).get("counter")}))
    """
)


def _run_json(script: str, *args: object) -> dict:
    """Run ``script`` in a child (a deadline of 90 s) and parse the JSON it prints."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = _wait(proc, 90)
    assert proc.returncode == 0, err
    return json.loads(out)


def test_ctrl_c_during_a_compaction_loses_no_durable_write(tmp_path):
    """A KeyboardInterrupt (a real signal's handler raising) in the compaction that follows a
    write propagates, but the write was durable: the store keeps it in memory, so its view
    equals the disk and the next read-modify-write builds on it (no lost increment)."""
    path = tmp_path / "c.ext-state.json"
    got = _run_json(CTRL_C_IN_COMPACTION, path, "5")
    assert len(got["hits"]) == 5, got  # five increments were interrupted in a compaction
    assert got["mismatches"] == [], got  # after each, this store's view is the disk's
    assert got["final"] == str(got["done"])  # every increment counted, none lost
    assert _temporaries(path) == []


CTRL_C_ANYWHERE = textwrap.dedent(
    """
    import json, random, signal, sys, time
    from kithooks import StateStore
    from kithooks.state import sidecar

    path, seconds, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    sidecar.COMPACT_AT_LEAST = 300  # compactions happen too
    rng = random.Random(seed)

    def ctrl_c(signum, frame):
        raise KeyboardInterrupt  # a real signal's handler, wherever it lands, like Ctrl-C

    def arm():
        signal.setitimer(signal.ITIMER_REAL, rng.uniform(0.00005, 0.002))

    store = StateStore(path)
    signal.signal(signal.SIGALRM, ctrl_c)
    attempt, interrupts, mismatches = 0, 0, []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        attempt += 1
        arm()
        try:
            with store.batch():  # a counter and one key per increment: they must agree
                # Not between the two sets (the batch would write one: documented), so the
                # interrupts land in the batch's lock, sync, write and compaction.
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
                store.set("n", str(int(store.get("n") or 0) + 1))
                store.set(f"k-{attempt}", "x" * 20)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
            if attempt % 3 == 0:
                store.set("plain", str(attempt))
            signal.setitimer(signal.ITIMER_REAL, 0)
        except KeyboardInterrupt:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
            interrupts += 1
        else:
            continue
        # Checked after the except block: a Ctrl-C at the very start of contextlib's
        # __exit__ leaves the batch to be written when its exception is dropped.
        try:
            view, disk = store.snapshot(), StateStore(path).snapshot()
        except KeyboardInterrupt:  # the timer fired as it was being stopped
            view, disk = store.snapshot(), StateStore(path).snapshot()
        if view != disk:
            mismatches.append(attempt)
    view = store.snapshot()
    keys = sum(key.startswith("k-") for key in view)
    print(json.dumps({"attempts": attempt, "interrupts": interrupts, "keys": keys,
                      "n": int(view.get("n") or 0), "mismatches": mismatches[:5]}))
    """
)


@pytest.mark.parametrize("seed", [1, 2])
def test_ctrl_c_anywhere_keeps_memory_and_disk_equal_and_no_lock_held(tmp_path, seed):
    """Real SIGALRMs whose handler raises KeyboardInterrupt at random points of writes and
    batches (the lock, the append, after the fsync, the compaction): after each, the
    store's view equals a fresh store's, the counter equals the keys written with it (no
    increment lost or doubled), and no lock is left held (another process then writes)."""
    path = tmp_path / "i.ext-state.json"
    got = _run_json(CTRL_C_ANYWHERE, path, "3", str(seed))
    assert got["interrupts"] > 50, got
    assert got["mismatches"] == [], got
    assert got["n"] == got["keys"], got
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from kithooks import StateStore; StateStore({str(path)!r}).set('o', '1')",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert other.returncode == 0, other.stderr
    data = StateStore(path).snapshot()
    assert data["o"] == "1" and int(data["n"]) == got["n"]
