"""One plugin, one lock (issue 14): across threads, tasks and event loops, no overlap, no
stall, no deadlock. Every join and await has a deadline, so a deadlock fails the test
instead of hanging CI; each scenario runs many rounds so a race shows up."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from kithooks import (
    AgentEndEvent,
    AgentStartEvent,
    HandlerError,
    MessageUpdateEvent,
    PluginManager,
    StepStartEvent,
    hookimpl,
)
from kithooks.locks import LockCycleError

DEADLINE = 20.0
ROUNDS = 50


def join_all(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.join(DEADLINE)
        assert not t.is_alive(), f"{t.name} still running after {DEADLINE}s: a deadlock"


def arun(coro, timeout: float = DEADLINE):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Probe:
    """Counts its own handlers running at once; the contract says never more than one."""

    def __init__(self):
        self.active = 0
        self.most = 0
        self.calls = 0
        self.counter = 0  # a read-modify-write that loses updates when handlers overlap

    def _enter(self):
        self.active += 1
        self.most = max(self.most, self.active)
        self.calls += 1

    def _leave(self):
        self.active -= 1

    @hookimpl
    def on_message_update(self, event):
        self._enter()
        value = self.counter
        time.sleep(0)  # let another thread in, if the lock does not keep it out
        self.counter = value + 1
        self._leave()

    @hookimpl
    async def on_step_start(self, event):
        self._enter()
        value = self.counter
        await asyncio.sleep(0)  # suspended here: the plugin must stay held
        await asyncio.sleep(0.0005)
        self.counter = value + 1
        self._leave()


def test_emit_from_many_threads_never_overlaps():
    pm = PluginManager()
    probe = Probe()
    pm.register(probe)

    def work():
        for _ in range(ROUNDS * 10):
            pm.emit(MessageUpdateEvent(chunk="x"))

    threads = [threading.Thread(target=work, name=f"emit-{i}") for i in range(6)]
    for t in threads:
        t.start()
    join_all(threads)
    assert probe.most == 1 and probe.counter == probe.calls == 6 * ROUNDS * 10


def test_aemit_from_many_tasks_holds_the_plugin_across_awaits():
    pm = PluginManager()
    probe = Probe()
    pm.register(probe)

    async def main():
        await asyncio.gather(*(pm.aemit(StepStartEvent()) for _ in range(ROUNDS * 2)))

    arun(main())
    assert probe.most == 1 and probe.counter == probe.calls == ROUNDS * 2


def test_aemit_from_several_event_loops_in_several_threads():
    """Today's main hung or failed with 'bound to a different event loop' here."""
    pm = PluginManager()
    probe = Probe()
    pm.register(probe)
    failures: list[BaseException] = []

    def worker():
        async def main():
            for _ in range(ROUNDS):
                await pm.aemit(StepStartEvent())
                await pm.aemit(MessageUpdateEvent(chunk="x"))

        try:
            arun(main())
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, name=f"loop-{i}") for i in range(4)]
    for t in threads:
        t.start()
    join_all(threads)
    assert failures == []
    assert probe.most == 1 and probe.counter == probe.calls == 4 * ROUNDS * 2


def test_sync_and_async_handlers_of_one_plugin_never_overlap():
    """A coroutine handler suspended at an await still holds its plugin against a sync
    handler of the same plugin in another thread (today: 1,636 overlaps in 3 s)."""
    pm = PluginManager()
    probe = Probe()
    pm.register(probe)

    def sync_side():
        for _ in range(ROUNDS * 4):
            pm.emit(MessageUpdateEvent(chunk="x"))

    def async_side():
        async def main():
            await asyncio.gather(*(pm.aemit(StepStartEvent()) for _ in range(ROUNDS)))

        arun(main())

    threads = [
        threading.Thread(target=sync_side, name="sync-1"),
        threading.Thread(target=sync_side, name="sync-2"),
        threading.Thread(target=async_side, name="async-1"),
        threading.Thread(target=async_side, name="async-2"),
    ]
    for t in threads:
        t.start()
    join_all(threads)
    assert probe.most == 1
    assert probe.counter == probe.calls == 2 * ROUNDS * 4 + 2 * ROUNDS


def test_waiting_for_a_busy_plugin_does_not_stall_the_event_loop():
    pm = PluginManager()
    held = threading.Event()
    release = threading.Event()

    class Busy:
        @hookimpl
        def on_agent_start(self, event):
            held.set()
            release.wait(DEADLINE)

    pm.register(Busy())
    holder = threading.Thread(target=pm.emit, args=(AgentStartEvent(),), name="holder")
    holder.start()
    assert held.wait(DEADLINE)

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        tick_task = asyncio.create_task(ticker())
        waiter = asyncio.create_task(pm.aemit(AgentStartEvent()))
        await asyncio.sleep(0.3)  # aemit is waiting for the plugin held by `holder`
        assert not waiter.done()
        assert ticks >= 10, f"the loop ticked only {ticks} times in 0.3 s while aemit waited"
        release.set()
        await asyncio.wait_for(waiter, DEADLINE)
        tick_task.cancel()

    arun(main())
    join_all([holder])


def test_reentrant_emits_do_not_deadlock():
    pm = PluginManager()
    seen: list[str] = []

    class Reentrant:
        @hookimpl
        def on_agent_start(self, event, ctx):
            seen.append("sync outer")
            pm.emit(MessageUpdateEvent(chunk="inner"), ctx)  # own plugin, same thread

        @hookimpl
        def on_message_update(self, event):
            seen.append(f"sync {event.chunk}")

        @hookimpl
        async def on_step_start(self, event, ctx):
            seen.append("async outer")
            await pm.aemit(MessageUpdateEvent(chunk="awaited"))  # own plugin, same task
            pm.emit(MessageUpdateEvent(chunk="sync-in-task"))  # own plugin, sync, same task

    pm.register(Reentrant())
    for _ in range(ROUNDS):
        seen.clear()
        pm.emit(AgentStartEvent())
        arun(pm.aemit(StepStartEvent()))
        assert seen == [
            "sync outer",
            "sync inner",
            "async outer",
            "sync awaited",
            "sync sync-in-task",
        ]


def test_cross_plugin_cycles_never_hang_and_name_both_plugins():
    """A's handler emits what B handles while B's handler, in another thread, emits what A
    handles. One nested call fails with a cycle error naming both; the rest finishes."""
    errors: list[HandlerError] = []
    pm = PluginManager(on_error=errors.append)
    barrier = threading.Barrier(2, timeout=DEADLINE)
    done: list[str] = []

    class A:
        @hookimpl
        def on_agent_start(self, event):
            barrier.wait()
            pm.emit(StepStartEvent())  # B handles it
            done.append("A")

        @hookimpl
        def on_message_update(self, event):
            done.append("A-inner")

    class B:
        @hookimpl
        def on_step_start(self, event):
            pass

        @hookimpl
        def on_agent_end(self, event):
            barrier.wait()
            pm.emit(MessageUpdateEvent(chunk="x"))  # A handles it
            done.append("B")

    pm.register(A(), name="A")
    pm.register(B(), name="B")
    from kithooks import AgentEndEvent

    for _ in range(ROUNDS):
        errors.clear()
        done.clear()
        barrier.reset()
        t1 = threading.Thread(target=pm.emit, args=(AgentStartEvent(),), name="A-side")
        t2 = threading.Thread(target=pm.emit, args=(AgentEndEvent(),), name="B-side")
        t1.start()
        t2.start()
        join_all([t1, t2])
        assert "A" in done and "B" in done, done
        cycles = [e for e in errors if isinstance(e.error, LockCycleError)]
        # Whether the two nested calls met depends on timing; when they did, exactly one
        # failed and its error names both plugins.
        assert len(cycles) <= 1 and len(errors) == len(cycles)
        for e in cycles:
            text = str(e.error)
            assert "'A'" in text and "'B'" in text


def test_sync_emit_from_another_task_fails_loudly_instead_of_overlapping():
    errors: list[HandlerError] = []
    pm = PluginManager(on_error=errors.append)
    probe = Probe()
    pm.register(probe, name="probe")

    async def main():
        holder = asyncio.create_task(pm.aemit(StepStartEvent()))
        await asyncio.sleep(0)  # the probe's coroutine handler is now suspended, holding it
        pm.emit(MessageUpdateEvent(chunk="from another task"))
        await asyncio.wait_for(holder, DEADLINE)

    arun(main())
    assert probe.most == 1
    assert [e.plugin for e in errors] == ["probe"]
    assert "use aemit" in str(errors[0].error)


def test_unregister_and_register_again_keeps_one_lock():
    pm = PluginManager()
    inside = threading.Event()
    release = threading.Event()
    probe_active = []

    class Plugin:
        def __init__(self):
            self.active = 0

        @hookimpl
        def on_agent_start(self, event):
            self.active += 1
            probe_active.append(self.active)
            inside.set()
            release.wait(DEADLINE)
            self.active -= 1

    plugin = Plugin()
    pm.register(plugin, name="p")
    first = threading.Thread(target=pm.emit, args=(AgentStartEvent(),), name="first")
    first.start()
    assert inside.wait(DEADLINE)
    pm.unregister(plugin)
    pm.register(plugin, name="p")
    second = threading.Thread(target=pm.emit, args=(AgentStartEvent(),), name="second")
    second.start()
    time.sleep(0.1)
    release.set()
    join_all([first, second])
    assert probe_active == [1, 1], "the re-registered plugin ran while the old call held it"


@pytest.mark.parametrize("rounds", [ROUNDS])
def test_async_cycle_between_tasks_of_two_loops_is_detected(rounds):
    """The cycle test with coroutine handlers on two event loops in two threads."""
    errors: list[HandlerError] = []
    pm = PluginManager(on_error=errors.append)
    gate = threading.Barrier(2, timeout=DEADLINE)

    class A:
        @hookimpl
        async def on_agent_start(self, event):
            await asyncio.to_thread(gate.wait)
            await pm.aemit(StepStartEvent())

        @hookimpl
        async def on_message_update(self, event):
            await asyncio.sleep(0)

    class B:
        @hookimpl
        async def on_step_start(self, event):
            await asyncio.sleep(0)

        @hookimpl
        async def on_agent_end(self, event):
            await asyncio.to_thread(gate.wait)
            await pm.aemit(MessageUpdateEvent(chunk="x"))

    from kithooks import AgentEndEvent

    pm.register(A(), name="A")
    pm.register(B(), name="B")
    for _ in range(rounds // 5):
        errors.clear()
        gate.reset()
        t1 = threading.Thread(target=arun, args=(pm.aemit(AgentStartEvent()),), name="A-loop")
        t2 = threading.Thread(target=arun, args=(pm.aemit(AgentEndEvent()),), name="B-loop")
        t1.start()
        t2.start()
        join_all([t1, t2])
        assert all(isinstance(e.error, LockCycleError) for e in errors)
        assert len(errors) <= 1


def test_a_child_task_of_a_handler_may_emit_back_to_its_plugin():
    """`await asyncio.gather(pm.aemit(...))` inside a coroutine handler: the same task
    chain, so it re-enters instead of waiting for its own parent forever."""
    pm = PluginManager()
    seen: list[str] = []

    class Plugin:
        @hookimpl
        async def on_agent_start(self, event):
            await asyncio.gather(pm.aemit(MessageUpdateEvent(chunk="child")))

        @hookimpl
        def on_message_update(self, event):
            seen.append(event.chunk)

    pm.register(Plugin())
    for _ in range(ROUNDS):
        arun(pm.aemit(AgentStartEvent()), timeout=5)
    assert seen == ["child"] * ROUNDS


def test_a_thread_a_handler_waits_for_fails_at_once_instead_of_hanging():
    errors: list[HandlerError] = []
    pm = PluginManager(on_error=errors.append)

    class Plugin:
        @hookimpl
        async def on_agent_start(self, event):
            await asyncio.to_thread(pm.emit, MessageUpdateEvent(chunk="from a thread"))

        @hookimpl
        def on_message_update(self, event):
            raise AssertionError("must not run while its plugin's handler waits for it")

    pm.register(Plugin(), name="plugin")
    arun(pm.aemit(AgentStartEvent()), timeout=5)
    assert [e.plugin for e in errors] == ["plugin"]
    assert isinstance(errors[0].error, LockCycleError) and "to_thread" in str(errors[0].error)


# ---------------------------------------------------------------- found in review


@pytest.mark.parametrize("dispatch", ["emit", "aemit"])
def test_on_outcome_runs_after_the_failing_guard_gave_its_plugin_back(dispatch):
    """Fail closed: the block is told to on_outcome once the failing plugin is free, so an
    outcome handler whose worker thread emits to that plugin does not wait forever."""
    from kithooks import ToolCallEvent

    class Failing:
        seen = 0

        @hookimpl
        def on_tool_call(self, event):
            raise RuntimeError("guard broke")

        @hookimpl
        def on_message_update(self, event):
            self.seen += 1

    pm = PluginManager(fail_closed=True, on_error=lambda e: None)

    class Outcome:
        @hookimpl
        def on_outcome(self, event, result):
            worker = threading.Thread(target=pm.emit, args=(MessageUpdateEvent(chunk="x"),))
            worker.start()
            join_all([worker])

    class AsyncOutcome:
        @hookimpl
        async def on_outcome(self, event, result):
            update = MessageUpdateEvent(chunk="x")
            await asyncio.get_running_loop().run_in_executor(None, pm.emit, update)

    failing = Failing()
    pm.register(failing, name="p")
    pm.register(Outcome() if dispatch == "emit" else AsyncOutcome(), name="q")
    event = ToolCallEvent(tool_name="bash")
    result = pm.emit(event) if dispatch == "emit" else arun(pm.aemit(event), timeout=5)
    assert result.block and "'p'" in result.reason
    assert failing.seen == 1


def test_a_waiting_thread_is_not_overtaken_by_the_holder_emitting_again():
    """Sync waiters queue: the holder's next emit waits behind a thread already waiting."""
    order: list[str] = []
    release = threading.Event()
    pm = PluginManager()

    class Plugin:
        @hookimpl
        def on_message_update(self, event):
            order.append(event.chunk)
            if event.chunk == "a1":
                assert release.wait(DEADLINE)

    pm.register(Plugin(), name="p")
    lock = pm._lock_of_name["p"]

    def holder():
        pm.emit(MessageUpdateEvent(chunk="a1"))
        pm.emit(MessageUpdateEvent(chunk="a2"))  # the same thread, at once: behind b

    a = threading.Thread(target=holder)
    a.start()
    deadline = time.monotonic() + DEADLINE
    while order != ["a1"] and time.monotonic() < deadline:
        time.sleep(0.001)
    b = threading.Thread(target=pm.emit, args=(MessageUpdateEvent(chunk="b"),))
    b.start()
    while lock.waiters != 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    release.set()
    join_all([a, b])
    assert order == ["a1", "b", "a2"]


SIGNAL_SCRIPT = """
import os, signal, threading, time
from kithooks import MessageUpdateEvent, PluginManager, SessionShutdownEvent, hookimpl

class Plugin:
    updates = 0
    @hookimpl
    def on_message_update(self, event): self.updates += 1
    @hookimpl
    def on_session_shutdown(self, event): pass

pm = PluginManager(aggregate_turns=False)
plugin = Plugin()
pm.register(plugin, name="p")
busy = [False]

def on_alarm(signum, frame):  # a host's SIGALRM / SIGTERM handler, one at a time
    if not busy[0]:
        busy[0] = True
        try:
            pm.emit(SessionShutdownEvent())
        finally:
            busy[0] = False

def watchdog():
    last = -1
    while True:
        time.sleep(1)
        if plugin.updates == last:
            print("HANG", pm._lock_of_name["p"], flush=True)
            os._exit(3)
        last = plugin.updates

signal.signal(signal.SIGALRM, on_alarm)
threading.Thread(target=watchdog, daemon=True).start()
signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
event = MessageUpdateEvent(chunk="x")
end = time.monotonic() + 3
try:
    while time.monotonic() < end:
        pm.emit(event)
finally:
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
print("ok", flush=True)
"""


def test_a_signal_handler_emitting_to_the_plugin_being_dispatched_re_enters_it():
    """Taking a plugin records its thread in the same C call: a signal handler that runs
    right after it (and emits to the same plugin) re-enters instead of waiting forever."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", SIGNAL_SCRIPT],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr


# ------------------------------------------------ a child task outliving its handler


@pytest.mark.parametrize("path", ["compiled", "general"])
def test_a_child_task_left_running_by_a_handler_waits_like_any_other_task(path):
    """A coroutine handler starts a task and returns without awaiting it. The task copied
    the handler's hold on the plugin; once the handler returned, that hold is over: when the
    task emits to the plugin while another task holds it, it waits instead of running
    beside that task's handler. (``agent_end`` runs through the general observer loop.)"""
    pm = PluginManager()
    go, holding, release = asyncio.Event(), asyncio.Event(), asyncio.Event()
    children: list[asyncio.Task] = []
    seen: list[str] = []

    def event(word: str):
        if path == "compiled":
            return MessageUpdateEvent(chunk=word)
        return AgentEndEvent(response=word)

    class Spawner:
        active = 0
        overlaps = 0

        async def _handle(self, word):
            self.active += 1
            self.overlaps += self.active > 1
            seen.append(word)
            try:
                if word == "spawn":

                    async def child():
                        await asyncio.wait_for(go.wait(), DEADLINE)
                        await pm.aemit(event("child"))

                    children.append(asyncio.create_task(child()))
                elif word == "hold":
                    holding.set()
                    await asyncio.wait_for(release.wait(), DEADLINE)
            finally:
                self.active -= 1

        @hookimpl
        async def on_message_update(self, event):
            await self._handle(event.chunk)

        @hookimpl
        async def on_agent_end(self, event):
            await self._handle(event.response)

    spawner = Spawner()
    pm.register(spawner, name="spawner")

    async def main():
        await pm.aemit(event("spawn"))
        holder = asyncio.create_task(pm.aemit(event("hold")))
        await asyncio.wait_for(holding.wait(), DEADLINE)
        go.set()
        for _ in range(20):  # let the child run as far as it can
            await asyncio.sleep(0.005)
        assert seen == ["spawn", "hold"], "the child ran while another task held the plugin"
        release.set()
        await asyncio.wait_for(holder, DEADLINE)
        await asyncio.wait_for(children[0], DEADLINE)

    arun(main())
    assert seen == ["spawn", "hold", "child"]
    assert spawner.overlaps == 0


# ---------------------------------------- a hold and the tasks inside it (review findings)


def _word_event(path: str, word: str):
    return MessageUpdateEvent(chunk=word) if path == "compiled" else AgentEndEvent(response=word)


class _Words:
    """A plugin whose coroutine handler (both paths) runs ``script[word]``."""

    def __init__(self, script):
        self.script = script
        self.log: list[str] = []
        self.active: list[str] = []

    async def _run(self, word):
        self.log.append(f"+{word}" + (f" beside {self.active}" if self.active else ""))
        self.active.append(word)
        try:
            step = self.script.get(word)
            if step is not None:
                await step()
        finally:
            self.active.remove(word)
            self.log.append(f"-{word}")

    @hookimpl
    async def on_message_update(self, event):
        await self._run(event.chunk)

    @hookimpl
    async def on_agent_end(self, event):
        await self._run(event.response)


@pytest.mark.parametrize("path", ["compiled", "general"])
def test_a_child_still_inside_when_its_handler_returns_keeps_the_plugin(path):
    """A child task re-entered the plugin and still runs there when the handler that took
    the plugin returns: the plugin stays held until the child's handler ends, then another
    task takes it; afterwards the lock is idle and a plain re-entry works."""
    pm = PluginManager()
    child_in, child_go = asyncio.Event(), asyncio.Event()
    children: list[asyncio.Task] = []

    async def spawn():
        async def child():
            await pm.aemit(_word_event(path, "child"))

        children.append(asyncio.create_task(child()))
        await asyncio.wait_for(child_in.wait(), DEADLINE)

    async def child_step():
        child_in.set()
        await asyncio.wait_for(child_go.wait(), DEADLINE)

    words = _Words({"spawn": spawn, "child": child_step})
    pm.register(words, name="words")
    lock = pm._lock_of_name["words"]

    async def main():
        await pm.aemit(_word_event(path, "spawn"))  # returns with the child inside
        other = asyncio.create_task(pm.aemit(_word_event(path, "other")))
        for _ in range(10):
            await asyncio.sleep(0.005)
        assert "+other" not in words.log, words.log
        child_go.set()
        await asyncio.wait_for(children[0], DEADLINE)
        await asyncio.wait_for(other, DEADLINE)

    arun(main())
    assert words.log == [
        "+spawn",
        "+child beside ['spawn']",
        "-spawn",
        "-child",
        "+other",
        "-other",
    ]
    assert (lock.owner, lock.task, lock.mark, lock.inside, lock.orphan) == (0, None, None, 0, False)


def test_a_plain_handler_re_enters_its_plugin_after_an_orphaned_hold():
    """Found in review: the out-of-order restore of the holder's task left a stale task on
    the idle lock, and a plain handler emitting to its own plugin failed with
    LockCycleError (a skipped guard)."""
    errors: list[str] = []
    pm = PluginManager(on_error=lambda e: errors.append(e.message))
    child_in, child_go = asyncio.Event(), asyncio.Event()
    children: list[asyncio.Task] = []
    seen: list[str] = []

    class P:
        @hookimpl
        async def on_message_update(self, event):
            if event.chunk == "spawn":

                async def child():
                    await pm.aemit(MessageUpdateEvent(chunk="child"))

                children.append(asyncio.create_task(child()))
                await asyncio.wait_for(child_in.wait(), DEADLINE)
            elif event.chunk == "child":
                child_in.set()
                await asyncio.wait_for(child_go.wait(), DEADLINE)

        @hookimpl
        def on_agent_start(self, event):
            seen.append("agent_start")
            pm.emit(StepStartEvent())  # a nested emit to its own plugin

        @hookimpl
        def on_step_start(self, event):
            seen.append("step_start")

    pm.register(P(), name="p")

    async def main():
        await pm.aemit(MessageUpdateEvent(chunk="spawn"))
        child_go.set()
        await asyncio.wait_for(children[0], DEADLINE)
        pm.emit(AgentStartEvent())

    arun(main())
    assert (seen, errors) == (["agent_start", "step_start"], [])


@pytest.mark.parametrize("path", ["compiled", "general"])
def test_a_threads_own_event_loop_emitting_back_to_the_holder_fails_fast(path):
    """Found in review: a handler awaiting asyncio.to_thread(asyncio.run(pm.aemit(...)))
    to its own plugin waited forever; it fails at once, as the sync emit does."""
    errors: list[str] = []
    pm = PluginManager(on_error=lambda e: errors.append(type(e.error).__name__))

    async def top():
        def back():
            asyncio.run(asyncio.wait_for(pm.aemit(_word_event(path, "back")), DEADLINE))

        await asyncio.to_thread(back)

    pm.register(_Words({"top": top}), name="p")
    started = time.monotonic()
    arun(pm.aemit(_word_event(path, "top")))
    assert errors == ["LockCycleError"]
    assert time.monotonic() - started < DEADLINE / 2


@pytest.mark.parametrize("mode", ["children", "awaited-child"])
def test_a_cycle_through_a_task_inside_a_hold_is_detected(mode):
    """Found in review: thread X holds Q and waits for P; inside P's hold, a child task
    (not the one the lock names) waits for Q. The cycle fails fast instead of hanging."""
    errors: list[str] = []
    pm = PluginManager(on_error=lambda e: errors.append(f"{e.plugin}: {type(e.error).__name__}"))
    x_in_q, x_go = threading.Event(), threading.Event()

    class Q:
        @hookimpl
        def on_agent_start(self, event):  # thread X, holding Q
            x_in_q.set()
            x_go.wait(DEADLINE)
            pm.emit(AgentEndEvent(response="from x"))  # to P: waits

        @hookimpl
        async def on_step_start(self, event):
            pass

    async def to_q():
        await asyncio.sleep(0.1)
        await asyncio.to_thread(x_in_q.wait, DEADLINE)
        x_go.set()
        await asyncio.sleep(0.2)  # X now waits for P
        await pm.aemit(StepStartEvent())  # to Q, held by X

    class P:
        @hookimpl
        def on_agent_end(self, event):
            pass

        @hookimpl
        async def on_message_update(self, event):
            if event.chunk == "top":
                if mode == "children":  # two children re-enter; the first leaves early
                    await asyncio.gather(
                        pm.aemit(MessageUpdateEvent(chunk="quick")),
                        pm.aemit(MessageUpdateEvent(chunk="to_q")),
                    )
                else:  # a child task that does not re-enter P
                    await asyncio.create_task(to_q())
            elif event.chunk == "to_q":
                await to_q()

    pm.register(P(), name="P")
    pm.register(Q(), name="Q")
    x = threading.Thread(target=lambda: pm.emit(AgentStartEvent()), name="x")
    x.start()
    arun(pm.aemit(MessageUpdateEvent(chunk="top")))
    join_all([x])
    assert errors == ["Q: LockCycleError"]


def test_unrelated_holds_with_equal_marks_do_not_make_a_false_cycle():
    """A hold's mark is a one-tuple linking to the hold outside it, so two top-level holds
    have equal marks (``((),)``) that are different holds. Cycle detection must tell them
    apart by identity: here a child inside A's hold waits for C, and C's holder then waits
    for B, whose hold is unrelated to A's. Matching marks by equality finds a cycle back
    to C's holder and skips its call; by identity it waits, and everything finishes."""
    errors: list[str] = []
    pm = PluginManager(on_error=lambda e: errors.append(f"{e.plugin}: {e.error}"))
    calls: list[str] = []

    async def main():
        release_b, c_go, child_waits = asyncio.Event(), asyncio.Event(), asyncio.Event()

        class B:
            @hookimpl
            async def on_agent_end(self, event):
                calls.append(f"B {event.response}")
                await release_b.wait()

        class C:
            @hookimpl
            async def on_step_start(self, event):
                calls.append("C")
                await c_go.wait()
                await pm.aemit(AgentEndEvent(response="from C"))  # B is held: wait

        class A:
            @hookimpl
            async def on_message_update(self, event):
                child = asyncio.create_task(pm.aemit(StepStartEvent()))  # C is held: wait
                await asyncio.sleep(0.05)
                child_waits.set()
                await child

        pm.register(B(), name="B")
        pm.register(C(), name="C")
        pm.register(A(), name="A")
        tb = asyncio.create_task(pm.aemit(AgentEndEvent(response="first")))
        await asyncio.sleep(0.01)
        tc = asyncio.create_task(pm.aemit(StepStartEvent()))
        await asyncio.sleep(0.01)
        ta = asyncio.create_task(pm.aemit(MessageUpdateEvent(chunk="a")))
        await asyncio.wait_for(child_waits.wait(), DEADLINE)
        c_go.set()  # C's holder now waits for B, while A's child waits for C
        await asyncio.sleep(0.05)
        release_b.set()
        await asyncio.wait_for(asyncio.gather(tb, tc, ta), DEADLINE)

    arun(main())
    assert errors == []
    assert calls == ["B first", "C", "B from C", "C", "B from C"]


def test_a_wait_entry_left_behind_is_never_taken_for_a_later_hold():
    """Found in review: cycle detection records waits inside a hold by the id of the
    hold's mark. An entry a waiter never removed (its clean-up cut short) must not outlive
    its mark and be matched by a later hold whose fresh mark reuses the address (CPython
    reuses a freed one-tuple's address at once): that was a false LockCycleError."""
    from kithooks import locks

    p, b = locks.PluginLock("P"), locks.PluginLock("B")

    def interrupted_waiter():
        mark = (locks.held.get(),)  # a top-level hold's mark, built as hold() builds it
        locks._mark_waiting(p, "child", mark)  # a task inside it waits for P ...
        # ... and its clean-up never runs (cut short)

    interrupted_waiter()
    me = threading.get_ident()
    task_1, task_2 = object(), object()  # two unrelated tasks of one loop
    b.slot[0], b.task, b.mark = me, task_1, (locks.held.get(),)  # task_1 holds B
    p.slot[0], p.task, p.mark = me, task_2, (locks.held.get(),)  # task_2 holds P
    try:
        locks._mark_waiting(b, task_2, p.mark)  # task_2 waits for B: no cycle
    finally:
        with locks._graph_lock:
            locks._waiting.clear()
            locks._waiting_in.clear()
