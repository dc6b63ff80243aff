"""PluginManager: ordering, isolation, locking, async, custom events, context."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
import time

import pluggy
import pytest
from pluggy import PluginValidationError

import kithooks
from kithooks import Context, EventType, PluginManager, hookimpl


def recorder(name, log, hook="on_message_update", **opts):
    class P:
        pass

    def handler(self, event, ctx):
        log.append(name)

    setattr(P, hook, hookimpl(**opts)(handler) if opts else hookimpl(handler))
    return P()


def test_handlers_run_in_registration_order_not_lifo():
    log: list[str] = []
    pm = PluginManager()
    for name in "abcd":
        pm.register(recorder(name, log), name=name)
    pm.emit(kithooks.MessageUpdateEvent(chunk="x"))
    assert log == ["a", "b", "c", "d"]


def test_tryfirst_and_trylast_move_handlers_within_registration_order():
    log: list[str] = []
    pm = PluginManager()
    pm.register(recorder("last1", log, trylast=True), name="last1")
    pm.register(recorder("a", log), name="a")
    pm.register(recorder("first1", log, tryfirst=True), name="first1")
    pm.register(recorder("last2", log, trylast=True), name="last2")
    pm.register(recorder("b", log), name="b")
    pm.register(recorder("first2", log, tryfirst=True), name="first2")
    pm.emit(kithooks.MessageUpdateEvent())
    assert log == ["first1", "first2", "a", "b", "last1", "last2"]
    assert pm.handler_names("message_update") == log


def test_failing_handler_is_logged_with_plugin_and_hook_and_dispatch_goes_on(caplog):
    log: list[str] = []

    class Broken:
        @hookimpl
        def on_message_update(self, event):
            raise ValueError("bad chunk")

    errors: list = []
    pm = PluginManager(on_error=errors.append)
    pm.register(Broken(), name="broken")
    pm.register(recorder("after", log), name="after")
    with caplog.at_level(logging.ERROR, logger="kithooks"):
        pm.emit(kithooks.MessageUpdateEvent(chunk="x"))
    assert log == ["after"]
    record = caplog.records[-1]
    assert record.name == "kithooks"
    assert "'broken'" in record.getMessage() and "on_message_update" in record.getMessage()
    assert record.exc_info and isinstance(record.exc_info[1], ValueError)
    assert errors[0].plugin == "broken" and errors[0].hook == "on_message_update"
    assert "bad chunk" in errors[0].message


@pytest.mark.parametrize(
    "exc", [KeyboardInterrupt, SystemExit, asyncio.CancelledError, GeneratorExit]
)
def test_base_exceptions_propagate(exc):
    class Stop:
        @hookimpl
        def on_tool_call(self, event):
            raise exc()

    pm = PluginManager()
    pm.register(Stop())
    with pytest.raises(exc):
        pm.emit(kithooks.ToolCallEvent())
    with pytest.raises(exc):
        asyncio.run(asyncio.wait_for(pm.aemit(kithooks.ToolCallEvent()), 30))


def test_fail_closed_turns_a_failing_guard_into_a_block_naming_the_plugin():
    class Flaky:
        @hookimpl
        def on_tool_call(self, event):
            raise ConnectionError("policy server down")

        @hookimpl
        def on_message_update(self, event):
            raise ConnectionError("not a guard")

    pm = PluginManager(fail_closed=True)
    pm.register(Flaky(), name="policy")
    result = pm.emit(kithooks.ToolCallEvent(tool_name="bash"))
    assert result.block is True
    assert "'policy'" in result.reason and "policy server down" in result.reason
    assert pm.emit(kithooks.MessageUpdateEvent()) is None  # observe events are not affected

    class Compactor:
        @hookimpl
        def on_before_compact(self, event):
            raise RuntimeError("x")

    pm.register(Compactor(), name="compactor")
    assert pm.emit(kithooks.BeforeCompactEvent()).cancel is True
    open_pm = PluginManager()
    open_pm.register(Flaky(), name="policy")
    assert open_pm.emit(kithooks.ToolCallEvent()) is None


def test_a_result_of_the_wrong_type_is_logged_and_ignored(caplog):
    class Confused:
        @hookimpl
        def on_tool_result(self, event):
            return kithooks.ToolCallResult(block=True)

    errors: list = []
    pm = PluginManager(on_error=errors.append)
    pm.register(Confused(), name="confused")
    with caplog.at_level(logging.ERROR, logger="kithooks"):
        assert pm.emit(kithooks.ToolResultEvent(content="x")) is None
    assert "'confused'" in caplog.text and "ToolCallResult" in caplog.text
    assert "ToolResultResult" in errors[0].message


def test_emit_rejects_non_events_and_pluggy_path_checks_the_payload_class():
    pm = PluginManager()
    with pytest.raises(TypeError, match="kithooks event"):
        pm.emit({"type": "tool_call"})  # type: ignore[arg-type]
    pm.register(recorder("a", [], hook="on_tool_call"))
    with pytest.raises(TypeError, match="ToolCallEvent"):
        pm.hook.on_tool_call(event=kithooks.InputEvent(), ctx=Context())


def test_has_handlers_follows_register_and_unregister():
    pm = PluginManager()
    assert not pm.has_handlers(EventType.MESSAGE_UPDATE)
    plugin = recorder("a", [])
    pm.register(plugin, name="a")
    assert pm.has_handlers(EventType.MESSAGE_UPDATE) and pm.has_handlers("message_update")
    pm.unregister(plugin)
    assert not pm.has_handlers("message_update")
    pm.register(plugin, name="a")
    pm.unregister(name="a")
    assert not pm.has_handlers("message_update")
    pm.set_blocked("a")
    assert pm.register(plugin, name="a") is None
    assert not pm.has_handlers("message_update")


def test_the_aggregator_handles_the_turn_events_whether_or_not_anyone_listens():
    """It counts every turn, so that a plugin handling agent_end registered mid-turn gets
    the whole turn's counts; a manager made with aggregate_turns=False handles nothing."""
    pm = PluginManager()
    assert pm.get_plugin("turn-aggregator") is pm.turn_aggregator
    for et in ("agent_start", "tool_call", "llm_usage", "agent_end"):
        assert pm.handler_names(et) == ["turn-aggregator"], et
    assert not pm.has_handlers("message_update")
    pm.register(recorder("end", [], hook="on_agent_end"), name="end")
    assert pm.handler_names("agent_end") == ["turn-aggregator", "end"]
    bare = PluginManager(aggregate_turns=False)
    assert bare.turn_aggregator is None and not bare.has_handlers("tool_call")


def test_coroutine_handler_under_emit_is_a_type_error_saying_aemit():
    class Async:
        @hookimpl
        async def on_tool_call(self, event):
            return kithooks.ToolCallResult(block=True, reason="async")

    pm = PluginManager()
    pm.register(Async(), name="async-gate")
    with pytest.raises(TypeError, match="aemit") as info:
        pm.emit(kithooks.ToolCallEvent())
    assert "'async-gate'" in str(info.value)
    assert asyncio.run(asyncio.wait_for(pm.aemit(kithooks.ToolCallEvent()), 30)).reason == "async"


def test_aemit_is_a_coroutine_function_for_every_plan():
    """Frameworks decide whether to await a callback with inspect.iscoroutinefunction: a
    plain aemit handed to one would be called and never awaited, and no hook would run.
    Nobody, plain and coroutine handlers all give a coroutine; the first call (which
    compiles the plan's coroutine) and later ones behave alike."""
    import asyncio as aio

    class Plain:
        @hookimpl
        def on_tool_call(self, event):
            return kithooks.ToolCallResult(block=True, reason="plain")

    class Async:
        @hookimpl
        async def on_input(self, event):
            return kithooks.InputResult(action="transform", text=event.text + "!")

    pm = PluginManager(aggregate_turns=False)
    pm.register(Plain(), name="plain")
    pm.register(Async(), name="async")
    assert inspect.iscoroutinefunction(pm.aemit)
    assert aio.iscoroutinefunction(PluginManager.aemit)
    for _ in range(2):
        nobody = pm.aemit(kithooks.MessageUpdateEvent(chunk="x"))
        assert inspect.iscoroutine(nobody)
        assert asyncio.run(asyncio.wait_for(nobody, 30)) is None
        assert asyncio.run(asyncio.wait_for(pm.aemit(kithooks.ToolCallEvent()), 30)).reason == (
            "plain"
        )
        got = asyncio.run(asyncio.wait_for(pm.aemit(kithooks.InputEvent(text="hi")), 30))
        assert got.text == "hi!"
    with pytest.raises(TypeError, match="aemit\\(\\) takes a kithooks event, not dict"):
        asyncio.run(asyncio.wait_for(pm.aemit({"tool_name": "bash"}), 30))  # type: ignore[arg-type]


def test_twenty_threads_keep_one_plugins_handlers_serialized():
    class Counter:
        def __init__(self):
            self.count = 0
            self.inside = 0
            self.overlaps = 0

        def bump(self):
            self.inside += 1
            if self.inside > 1:
                self.overlaps += 1
            value = self.count
            time.sleep(0)  # invite a thread switch between read and write
            self.count = value + 1
            self.inside -= 1

        @hookimpl
        def on_tool_output(self, event):
            self.bump()

        @hookimpl
        def on_message_update(self, event):
            self.bump()

    counter = Counter()
    pm = PluginManager()
    pm.register(counter)
    per_thread = 200
    barrier = threading.Barrier(20)

    def work(i):
        barrier.wait()
        event = kithooks.ToolOutputEvent() if i % 2 else kithooks.MessageUpdateEvent()
        for _ in range(per_thread):
            pm.emit(event)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
        assert not t.is_alive(), "a thread still runs after 30 s: a deadlock"
    assert counter.count == 20 * per_thread
    assert counter.overlaps == 0


def test_reentrant_emit_does_not_deadlock():
    log: list[str] = []

    class Chatty:
        @hookimpl
        def on_tool_call(self, event, ctx):
            ctx.emit_custom_event("audit", event.tool_name)
            ctx.set_state("seen", event.tool_name)
            pm.emit(kithooks.ModelChangeEvent(new_model="a/b"), ctx)
            return

        @hookimpl
        def on_model_change(self, event):
            log.append(f"model {event.new_model}")

        @kithooks.custom_event("audit")
        def audited(self, data):
            log.append(f"audit {data}")

    pm = PluginManager()
    pm.register(Chatty())
    done = threading.Event()

    def run():
        pm.emit(kithooks.ToolCallEvent(tool_name="bash"))
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(5), "re-entrant emit deadlocked"
    assert log == ["audit bash", "model a/b"]
    assert pm.state.get("seen") == "bash"


def test_aemit_serializes_one_plugins_handlers_across_tasks_and_reenters():
    class Slow:
        def __init__(self):
            self.inside = 0
            self.overlaps = 0
            self.nested = 0

        @hookimpl
        async def on_message_update(self, event, ctx):
            self.inside += 1
            self.overlaps += self.inside > 1
            await asyncio.sleep(0.001)
            if event.chunk == "outer":
                await pm.aemit(kithooks.MessageUpdateEvent(chunk="inner"), ctx)
                self.nested += 1
            self.inside -= 1

    slow = Slow()
    pm = PluginManager()
    pm.register(slow)

    async def main():
        await asyncio.wait_for(
            asyncio.gather(
                *(pm.aemit(kithooks.MessageUpdateEvent(chunk="outer")) for _ in range(10))
            ),
            timeout=10,
        )

    asyncio.run(asyncio.wait_for(main(), 30))
    assert slow.nested == 10
    # nested (re-entrant) calls count as overlaps by design; between tasks there are none
    assert slow.overlaps == 10


def test_custom_events_in_registration_order_isolated(caplog):
    log: list[str] = []

    class A:
        @kithooks.custom_event("deploy")
        def first(self, data, ctx):
            log.append(f"A {data} {ctx.session_id}")

    class B:
        @kithooks.custom_event("deploy")
        def boom(self, data):
            raise RuntimeError("nope")

    class C:
        @kithooks.custom_event("deploy")
        def last(self, data):
            log.append(f"C {data}")

    pm = PluginManager(context=Context(session_id="s1"))
    for p in (A(), B(), C()):
        pm.register(p)
    assert pm.has_custom_subscribers("deploy") and not pm.has_custom_subscribers("other")
    with caplog.at_level(logging.ERROR, logger="kithooks"):
        pm.emit_custom_event("deploy", "v2")
    assert log == ["A v2 s1", "C v2"]
    assert "'B'" in caplog.text and "custom event 'deploy'" in caplog.text
    pm.emit_custom_event("unknown", "x")  # no subscribers: nothing happens


def test_context_callbacks_default_to_safe_noops_and_state_is_bound():
    ctx = Context()
    ctx.print("x")
    ctx.print_error("x")
    ctx.send_message("x")
    ctx.abort()
    assert ctx.is_idle() is True
    assert ctx.get_session_path() == ""
    assert ctx.get_state("k") is None and ctx.list_state() == []
    ctx.set_state("k", "v")  # unbound: a no-op
    ctx.emit_custom_event("x", "y")
    pm = PluginManager()
    seen: list = []

    class Stateful:
        @hookimpl
        def on_session_start(self, event, ctx):
            ctx.set_state("b", "2")
            ctx.set_state("a", "1")
            ctx.delete_state("b")
            seen.append(ctx.list_state())

    pm.register(Stateful())
    per_call = Context(session_id="per-call")
    pm.emit(kithooks.SessionStartEvent(), per_call)
    assert seen == [["a"]] and pm.state.get("a") == "1"
    assert per_call.get_state("a") == "1"


def test_handlers_may_take_any_subset_of_the_arguments():
    got: list = []

    class Subsets:
        @hookimpl
        def on_agent_start(self):
            got.append("none")

        @hookimpl
        def on_agent_end(self, ctx):
            got.append(ctx.session_id)

        @hookimpl
        def on_message_end(self, ctx, event):
            got.append((ctx.session_id, event.content))

    pm = PluginManager(context=Context(session_id="s"))
    pm.register(Subsets())
    pm.emit(kithooks.AgentStartEvent())
    pm.emit(kithooks.AgentEndEvent())
    pm.emit(kithooks.MessageEndEvent(content="c"))
    assert got == ["none", "s", ("s", "c")]


def test_wrappers_are_rejected():
    class Wrapper:
        @hookimpl(wrapper=True)
        def on_tool_call(self, event):
            return (yield)

    import pluggy

    with pytest.raises(pluggy.PluginValidationError, match="wrapper"):
        PluginManager().register(Wrapper())


def test_default_plugin_names_are_readable_and_unique():
    pm = PluginManager()
    a = pm.register(recorder("x", []))
    b = pm.register(recorder("y", []))
    assert (a, b) == ("P", "P-2")


_SOME_EVENTS = [EventType.MESSAGE_UPDATE, EventType.TOOL_CALL, EventType.AGENT_END, EventType.INPUT]


def _plugin_for(events):
    """A plugin object with a handler for each of ``events``."""
    namespace = {et.hook_name: hookimpl(lambda self, event, _n=et.hook_name: None) for et in events}
    return type("P", (), namespace)()


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 3), st.sets(st.sampled_from(_SOME_EVENTS))),
        max_size=8,
    )
)
def test_has_handlers_agrees_with_the_handlers_through_any_registrations(steps):
    """has_handlers answers from a set of the events nobody handles; through any sequence
    of registrations and unregistrations it says what handler_names says, for an EventType
    and for its name alike (the aggregator turning active or passive included), and so
    does the live view pm.handled."""
    pm = PluginManager()
    for add, slot, events in steps:
        name = f"p{slot}"
        if pm.get_plugin(name) is not None:
            pm.unregister(name=name)
        if add:
            pm.register(_plugin_for(events), name=name)
        for et in EventType:
            expected = bool(pm.handler_names(et))
            assert pm.has_handlers(et) is expected, et
            assert pm.has_handlers(et.value) is expected, et
            assert pm.handled[et] is expected and pm.handled[et.value] is expected, et
    assert set(pm.handled) == {et.value for et in EventType}
    with pytest.raises(TypeError):
        pm.handled["tool_call"] = True  # type: ignore[index]  (a read-only view)
    with pytest.raises(KeyError):
        pm.handled["message_updates"]
    with pytest.raises(ValueError, match="message_update"):
        pm.has_handlers("message_updates")
    with pytest.raises(ValueError, match="unknown event type"):
        pm.has_handlers(["tool_call"])  # type: ignore[arg-type]  (unhashable)


# ---------------------------------------------------------------- hooks no spec knows

_HOOK_NAMES = sorted(kithooks.hookspecs.KIT_HOOKS)


def _plugin_with(attr: str, **opts: object) -> object:
    def handler(self, event):
        return kithooks.ToolCallResult(block=True, reason="never absent")

    handler.__name__ = attr
    return type("Typo", (), {attr: hookimpl(**opts)(handler)})()


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(w.title() for w in rest)


@settings(max_examples=150, deadline=None)
@given(
    st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,30}", fullmatch=True).filter(
        lambda n: n not in kithooks.hookspecs.KIT_HOOKS
    )
)
def test_a_marked_function_no_spec_knows_is_refused_naming_plugin_and_function(attr):
    """pluggy keeps such a function pending until check_pending(), which few hosts call: a
    misspelt guard would look like a guard that allowed the call. Refused whatever its name,
    unless it is marked optionalhook=True (pluggy's own "this hook may not exist")."""
    pm = PluginManager()
    with pytest.raises(PluginValidationError) as refused:
        pm.register(_plugin_with(attr), name="gate")
    assert f"plugin 'gate': {attr!r} is marked @kithooks.hookimpl but matches no hook" in str(
        refused.value
    )
    assert pm.get_plugin("gate") is None
    assert pm.handler_names("tool_call") == ["turn-aggregator"]
    assert pm.register(_plugin_with(attr, optionalhook=True), name="optional") == "optional"
    pm.check_pending()  # an optional hook is pending, as in pluggy
    assert pm.emit(kithooks.ToolCallEvent(tool_name="bash")) is None


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([h for h in _HOOK_NAMES if h.startswith("on_")]),
    st.sampled_from(
        [
            _camel,  # onToolCall
            lambda h: _camel(h)[0].upper() + _camel(h)[1:],  # OnToolCall
            lambda h: h.removeprefix("on_"),  # tool_call
            lambda h: h.removeprefix("on_").replace("_", ""),  # toolcall
            lambda h: "before_" + h.removeprefix("on_"),  # before_tool_call
            lambda h: h + "s",  # on_tool_calls
        ]
    ),
)
def test_a_near_miss_of_a_hook_name_suggests_that_hook(hook, variant):
    attr = variant(hook)
    hooks = kithooks.hookspecs.KIT_HOOKS
    if attr in hooks or ("on_" + attr in hooks and "on_" + attr != hook):
        return  # before_ + agent_start names a hook of its own, the better suggestion
    with pytest.raises(PluginValidationError, match=f"did you mean {hook!r}"):
        PluginManager().register(_plugin_with(attr))


@pytest.mark.parametrize(
    ("attr", "hook"),
    [("pre_tool_use", "on_tool_call"), ("PreToolUse", "on_tool_call"), ("Stop", "on_agent_end")],
)
def test_claude_code_hook_names_suggest_their_kithooks_hook(attr, hook):
    with pytest.raises(PluginValidationError, match=f"did you mean {hook!r}"):
        PluginManager().register(_plugin_with(attr))


def test_a_specname_no_spec_knows_is_refused_and_a_host_hook_is_suggested():
    pm = PluginManager()

    class HostSpecs:
        @pluggy.HookspecMarker("kithooks")
        def on_deploy(self, target): ...

    pm.add_hookspecs(HostSpecs)

    class Deploy:
        @hookimpl(specname="on_deploi")
        def check(self, target):
            return None

    with pytest.raises(
        PluginValidationError, match=r"'check' \(specname 'on_deploi'\).*'on_deploy'"
    ):
        pm.register(Deploy())


@settings(max_examples=60, deadline=None)
@given(
    hook=st.sampled_from(sorted(kithooks.hookspecs.KIT_HOOKS)),
    names=st.lists(
        st.sampled_from(["event", "ctx", "result", "context", "evt", "payload"]),
        unique=True,
        max_size=3,
    ),
)
def test_a_handler_registers_exactly_when_it_takes_its_hooks_arguments_by_name(hook, names):
    pm = PluginManager()
    spec_args = getattr(pm.hook, hook).spec.argnames
    namespace: dict[str, object] = {}
    exec(f"def {hook}({', '.join(names)}):\n    return None", namespace)
    plugin = type("P", (), {hook: staticmethod(hookimpl(namespace[hook]))})()
    unknown = [n for n in names if n not in spec_args]
    if not unknown:
        pm.register(plugin, name="p")
        assert pm.get_plugin("p") is plugin
        return
    with pytest.raises(PluginValidationError) as raised:
        pm.register(plugin, name="p")
    message = str(raised.value)
    assert "\n" not in message
    assert f"plugin 'p': '{hook}' takes {unknown[0]!r}" in message
    assert f"({', '.join(spec_args)})" in message


def _block_all(event, ctx, why):
    return kithooks.ToolCallResult(block=True, reason=why)


class _CallableGuard:
    def __call__(self, event, ctx):
        return kithooks.ToolCallResult(block=True, reason="no")


@pytest.mark.parametrize(
    "handler",
    [functools.partial(_block_all, why="no"), _CallableGuard()],
    ids=["functools.partial", "callable object"],
)
def test_a_marked_hook_that_is_not_a_function_is_refused(handler):
    """pluggy skips such an attribute without a word: the guard would never run."""
    plugin = type("Gate", (), {"on_tool_call": hookimpl(handler)})()
    with pytest.raises(PluginValidationError, match=r"is marked @kithooks\.hookimpl but is a"):
        PluginManager().register(plugin, name="gate")


def test_a_handler_taking_only_varargs_is_refused():
    """A decorator without functools.wraps hides the arguments: pluggy would pass none."""

    def timed(fn):
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)

        return wrapper

    class Gate:
        @hookimpl
        @timed
        def on_tool_call(self, event, ctx):
            return kithooks.ToolCallResult(block=True, reason="no")

    with pytest.raises(PluginValidationError, match=r"takes only \*args / \*\*kwargs"):
        PluginManager().register(Gate(), name="gate")

    def timed_well(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)

        return wrapper

    class Wrapped:
        @hookimpl
        @timed_well
        def on_tool_call(self, event, ctx):
            return kithooks.ToolCallResult(block=True, reason="no")

    pm = PluginManager()
    pm.register(Wrapped(), name="wrapped")  # functools.wraps: the arguments are named
    assert pm.emit(kithooks.ToolCallEvent(tool_name="bash")).block


def test_an_attribute_that_answers_every_getattr_is_not_taken_for_a_marked_hook():
    """A Mock (or any proxy) has every attribute, the marker included: not a hook."""
    from unittest import mock

    class Plugin:
        helper = mock.MagicMock()

        @hookimpl
        def on_tool_call(self, event):
            return None

    pm = PluginManager(aggregate_turns=False)
    pm.register(Plugin(), name="p")
    assert pm.handler_names(EventType.TOOL_CALL) == ["p"]


def test_plugins_handle_during_a_reload_on_another_thread_sees_the_plugins_dispatch_sees(
    tmp_path, monkeypatch
):
    """A reload on another thread swaps the plugins at once: meanwhile plugins_handle (what
    the pydantic-ai adapter asks before hooking into a run) answers as dispatch does, with
    the plugins from before the reload, never a registry half swapped."""
    import builtins
    import textwrap
    import threading

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "gate.py").write_text(
        textwrap.dedent(
            """
            import kithooks

            @kithooks.hookimpl
            def on_tool_call(event):
                return kithooks.ToolCallResult(block=True, reason="gate")
            """
        )
    )
    importing, release = threading.Event(), threading.Event()
    monkeypatch.setattr(builtins, "kithooks_test_slow", (importing, release), raising=False)
    pm = PluginManager(aggregate_turns=False)
    assert pm.load_plugin_files([plugins], user_dir=None, project_dir=None) == ["gate"]
    assert pm.emit(kithooks.ToolCallEvent(tool_name="sh")).block  # its plan is built
    (plugins / "a_slow.py").write_text(
        textwrap.dedent(
            """
            import builtins

            import kithooks

            importing, release = builtins.kithooks_test_slow
            importing.set()
            assert release.wait(10)

            @kithooks.hookimpl
            def on_session_start(event):
                pass
            """
        )
    )
    (plugins / "gate.py").write_text((plugins / "gate.py").read_text() + "\n# changed\n")
    reload = threading.Thread(target=pm.reload)
    reload.start()
    try:
        assert importing.wait(10), "the reload never imported the slow plugin"
        assert pm.plugins_handle(["tool_call"])  # the gate, as dispatch still sees it
        assert pm.emit(kithooks.ToolCallEvent(tool_name="sh")).block
    finally:
        release.set()
        reload.join(timeout=10)
    assert not reload.is_alive(), "the reload never ended"
    assert pm.plugins_handle(["tool_call"])


def test_plugins_handle_inside_a_swap_on_its_thread_never_hides_a_guard():
    """On the swapping thread, with no plan built before the swap, the registry is half
    swapped: plugins_handle says a plugin listens (hooking in is safe), never that none
    does."""

    class Gate:
        @kithooks.hookimpl
        def on_tool_call(self, event):
            return kithooks.ToolCallResult(block=True, reason="no")

    pm = PluginManager(aggregate_turns=False)
    pm.register(Gate(), name="g")
    with pm._swap():
        pm.unregister(name="g")
        assert pm.plugins_handle(["tool_call"])
        pm.register(Gate(), name="g")
    assert pm.plugins_handle(["tool_call"])
