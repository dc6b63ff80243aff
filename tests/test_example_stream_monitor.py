"""The stream monitor keeps bounded memory over a long stream, and counts right from threads."""

from __future__ import annotations

import gc
import threading
import tracemalloc

import pytest

import kithooks
from kithooks.examples.stream_monitor import MAX_OPEN_TURNS, StreamMonitor


def _manager(monitor: StreamMonitor) -> kithooks.PluginManager:
    pm = kithooks.PluginManager(aggregate_turns=False)
    pm.register(monitor, name="stream-monitor")
    return pm


def _traced_bytes() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@pytest.mark.slow
def test_memory_stays_flat_over_a_long_stream():
    printed: list[str] = []
    monitor = StreamMonitor()
    pm = _manager(monitor)
    ctx = kithooks.Context(session_id="s", turn_id="t", print=printed.append)
    chunk = kithooks.MessageUpdateEvent(chunk="token ")
    line = kithooks.ToolOutputEvent(chunk="output line\n")
    pm.emit(kithooks.AgentStartEvent(), ctx)
    tracemalloc.start()
    try:
        for _ in range(5_000):
            pm.emit(chunk, ctx)
        early = _traced_bytes()
        for i in range(200_000):
            pm.emit(chunk, ctx)
            if i % 10 == 0:
                pm.emit(line, ctx)
        late = _traced_bytes()
    finally:
        tracemalloc.stop()
    # 40 times more chunks: the monitor keeps counters, so memory must not follow the stream
    # (a kept chunk list would be several MB here).
    assert late - early < 64 * 1024, f"grew {late - early} bytes over 200,000 chunks"
    pm.emit(kithooks.AgentEndEvent(), ctx)
    assert printed == [
        "[stream] 205000 chunks, 1230000 chars, 20000 tool output lines, first token after "
        + printed[0].rsplit(" ", 1)[1]
    ]


def test_turns_that_never_end_are_bounded():
    monitor = StreamMonitor()
    pm = _manager(monitor)
    for i in range(MAX_OPEN_TURNS * 20):  # aborted runs: started and streamed, never ended
        ctx = kithooks.Context(session_id="s", turn_id=f"t{i}")
        pm.emit(kithooks.AgentStartEvent(), ctx)
        pm.emit(kithooks.MessageUpdateEvent(chunk="x"), ctx)
    assert len(monitor._turns) == MAX_OPEN_TURNS
    # The newest turns are the ones kept, and still report.
    printed: list[str] = []
    last = kithooks.Context(session_id="s", turn_id=f"t{MAX_OPEN_TURNS * 20 - 1}")
    pm.emit(kithooks.AgentEndEvent(), _with_print(last, printed.append))
    assert printed and printed[0].startswith("[stream] 1 chunks, 1 chars")
    # A chunk of a turn that was never started opens one, within the same bound.
    pm.emit(kithooks.MessageUpdateEvent(chunk="y"), kithooks.Context(turn_id="late"))
    assert len(monitor._turns) == MAX_OPEN_TURNS


def _with_print(ctx: kithooks.Context, print_: object) -> kithooks.Context:
    return kithooks.Context(session_id=ctx.session_id, turn_id=ctx.turn_id, print=print_)


def test_a_bad_bound_is_refused():
    with pytest.raises(ValueError, match="max_open_turns must be >= 1, got 0"):
        StreamMonitor(max_open_turns=0)


def test_threads_streaming_their_own_turns_count_exactly():
    monitor = StreamMonitor(max_open_turns=8)
    pm = _manager(monitor)
    printed: list[str] = []
    lock = threading.Lock()

    def show(text: str) -> None:
        with lock:
            printed.append(text)

    def stream(n: int) -> None:
        ctx = kithooks.Context(session_id="s", turn_id=f"thread-{n}", print=show)
        pm.emit(kithooks.AgentStartEvent(), ctx)
        for _ in range(2_000):
            pm.emit(kithooks.MessageUpdateEvent(chunk="ab"), ctx)
        pm.emit(kithooks.AgentEndEvent(), ctx)

    threads = [threading.Thread(target=stream, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive(), "a streaming thread hung"
    assert len(printed) == 4
    assert all(p.startswith("[stream] 2000 chunks, 4000 chars") for p in printed)
    assert not monitor._turns
