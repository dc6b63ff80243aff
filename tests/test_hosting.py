"""Host helpers: the original's tool-call sequence and results, and a turn's order."""

from __future__ import annotations

import asyncio
import enum
import json

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kithooks
import kithooks.events
import kithooks.hosting
from kithooks import Context, PluginManager, Usage, hookimpl
from kithooks.hosting import (
    ToolResponse,
    Turn,
    apply_messages,
    arun_tool,
    before_compact,
    before_fork,
    before_session_switch,
    parse_args,
    run_tool,
)


class Log:
    """Records the wire name (and key fields) of every event, in order."""

    def __init__(self):
        self.events: list = []

    def names(self):
        return [e.event_type.value for e in self.events]


def logger_plugin(log: Log):
    class All:
        pass

    for et in kithooks.EventType:
        setattr(
            All, et.hook_name, hookimpl(tryfirst=True)(lambda self, event: log.events.append(event))
        )
    return All()


@pytest.fixture
def host():
    log = Log()
    pm = PluginManager()
    pm.register(logger_plugin(log), name="log")
    return pm, log


def test_tool_call_sequence_and_results(host):
    pm, log = host

    class Upper:
        @hookimpl
        def on_tool_result(self, event):
            return kithooks.ToolResultResult(content=event.content.upper())

    pm.register(Upper())
    outcome = run_tool(
        pm,
        lambda args: f"ran {args}",
        tool_name="bash",
        tool_call_id="c1",
        input='{"command": "ls"}',
    )
    assert log.names() == ["tool_call", "tool_execution_start", "tool_execution_end", "tool_result"]
    call = log.events[0]
    assert (call.tool_name, call.tool_call_id, call.tool_kind, call.source) == (
        "bash",
        "c1",
        "execute",
        "llm",
    )
    assert call.parsed_args == {"command": "ls"}
    assert (
        outcome.content == 'RAN {"COMMAND": "LS"}'
        and outcome.is_error is False
        and not outcome.blocked
    )


def test_a_block_means_the_tool_never_runs_and_the_model_gets_the_error(host):
    pm, log = host
    ran = []

    class Gate:
        @hookimpl
        def on_tool_call(self, event):
            return kithooks.ToolCallResult(
                block=True, reason="not today" if event.tool_call_id == "c1" else ""
            )

    pm.register(Gate())
    outcome = run_tool(pm, ran.append, tool_name="edit", tool_call_id="c1", input="{}")
    assert ran == [] and log.names() == ["tool_call"]
    assert (outcome.content, outcome.is_error, outcome.blocked) == ("Error: not today", True, True)
    outcome = run_tool(pm, ran.append, tool_name="edit", tool_call_id="c2", input="{}")
    assert outcome.content == "Error: blocked by extension"


def test_a_tool_that_raises_becomes_an_error_result(host):
    pm, log = host

    def broken(_):
        raise FileNotFoundError("no such file: a.txt")

    outcome = run_tool(pm, broken, tool_name="read", tool_call_id="c", input="not json")
    assert outcome.is_error and outcome.content == "Error: FileNotFoundError: no such file: a.txt"
    assert log.names()[-1] == "tool_result" and log.events[-1].is_error is True
    assert log.events[0].parsed_args is None and log.events[0].tool_kind == "read"


def test_tool_result_rewrites_chain_and_flip_the_error_flag(host):
    pm, _ = host

    class A:
        @hookimpl
        def on_tool_result(self, event):
            return kithooks.ToolResultResult(content=event.content + " A")

    class B:
        @hookimpl
        def on_tool_result(self, event):
            return kithooks.ToolResultResult(is_error=True)

    class C:
        @hookimpl
        def on_tool_result(self, event):
            assert event.is_error is True  # C sees B's change
            return kithooks.ToolResultResult(content=event.content + " C")

    for p in (A(), B(), C()):
        pm.register(p)
    outcome = run_tool(
        pm,
        lambda _: ToolResponse(content="x", metadata='{"diff": 1}'),
        tool_name="t",
        tool_call_id="c",
        input="",
    )
    assert (outcome.content, outcome.is_error, outcome.metadata) == ("x A C", True, '{"diff": 1}')


def test_async_tool(host):
    pm, log = host

    async def tool(args):
        await asyncio.sleep(0)
        return "async result"

    outcome = asyncio.run(
        asyncio.wait_for(arun_tool(pm, tool, tool_name="grep", tool_call_id="c", input="{}"), 30)
    )
    assert outcome.content == "async result" and log.events[0].tool_kind == "search"
    outcome = asyncio.run(
        arun_tool(pm, lambda a: "sync too", tool_name="x", tool_call_id="d", input="")
    )
    assert outcome.content == "sync too"


def test_no_handlers_builds_no_payload():
    pm = PluginManager()
    outcome = run_tool(pm, lambda _: "fine", tool_name="bash", tool_call_id="c", input="{}")
    assert outcome.content == "fine"


def test_parse_args():
    assert parse_args('{"a": 1}') == {"a": 1}
    assert parse_args("[1]") is None and parse_args("nope") is None and parse_args("") is None


def test_apply_messages_index_semantics():
    originals = ["sys", "u1", "a1"]
    msgs = [
        kithooks.ContextMessage(index=2, role="ignored", content="ignored"),
        kithooks.ContextMessage(index=-1, role="system", content="new sys"),
        kithooks.ContextMessage(index=0),
        kithooks.ContextMessage(index=7, role="weird", content="out of range"),
        kithooks.ContextMessage(index=2),
    ]
    assert apply_messages(originals, msgs, lambda r, c: f"{r}:{c}") == [
        "a1",
        "system:new sys",
        "sys",
        "user:out of range",
        "a1",
    ]
    assert apply_messages(originals, [], str) == []


def test_turn_order_and_results(host):
    pm, log = host
    pm.set_context(Context(session_id="s"))

    class Rules:
        @hookimpl
        def on_input(self, event):
            return kithooks.InputResult(action="transform", text=event.text + "!")

        @hookimpl
        def on_before_agent_start(self, event):
            return kithooks.BeforeAgentStartResult(inject_text="rules", system_prompt="be careful")

        @hookimpl
        def on_context_prepare(self, event):
            kept = [m for m in event.messages if m.role != "assistant"]
            return kithooks.ContextPrepareResult(
                messages=(*kept, kithooks.ContextMessage(index=-1, role="user", content="extra"))
            )

    pm.register(Rules())
    turn = Turn(pm, turn_id="t1")
    prompt = turn.input("fix it")
    assert prompt.text == "fix it!" and prompt.transformed and not prompt.handled
    injection = turn.before_agent_start(prompt.text)  # emitted even after a transform
    assert (injection.inject_text, injection.system_prompt) == ("rules", "be careful")
    history = [("system", "S"), ("user", "U"), ("assistant", "A")]
    window = turn.context_prepare(history, describe=lambda m: m, make=lambda r, c: (r, c))
    assert window == [("system", "S"), ("user", "U"), ("user", "extra")]
    turn.agent_start("fix it")
    turn.prepare_step(0, window, describe=lambda m: m, make=lambda r, c: (r, c))
    turn.step_start(0)
    turn.text("Done")
    turn.text(".")
    turn.step_finish(
        0,
        provider="openai",
        model="gpt-4o",
        usage=Usage(input_tokens=1000, output_tokens=10),
        finish_reason="stop",
    )
    turn.end(response="Done.", stop_reason="stop")
    assert log.names() == [
        "input",
        "before_agent_start",
        "context_prepare",
        "agent_start",
        "message_start",
        "prepare_step",
        "step_start",
        "message_update",
        "message_update",
        "step_finish",
        "llm_usage",
        "message_end",
        "agent_end",
    ]
    assert log.events[-2].content == "Done."
    end = log.events[-1]
    assert end.llm_call_count == 1 and end.input_tokens_delta == 1000 and end.cost_delta > 0
    assert end.stop_reason == "stop"
    assert (
        {e.event_type for e in log.events}
        and turn.ctx.turn_id == "t1"
        and turn.ctx.session_id == "s"
    )


def test_handled_input_is_honoured(host):
    pm, _log = host

    class Slash:
        @hookimpl
        def on_input(self, event):
            if event.text.startswith("/"):
                return kithooks.InputResult(action="handled")
            return None

    pm.register(Slash())
    turn = Turn(pm)
    assert turn.input("/status").handled
    assert not turn.input("hello").handled


def test_failed_turn_emits_error_then_agent_end(host):
    pm, log = host
    turn = Turn(pm)
    turn.agent_start("x")
    turn.end(error="provider exploded")
    assert log.names()[-2:] == ["error", "agent_end"]
    assert log.events[-1].stop_reason == "error" and log.events[-1].response == ""
    Turn(pm).end()
    assert log.events[-1].stop_reason == "completed"


@pytest.mark.parametrize(
    ("helper", "hook", "result_cls", "default"),
    [
        (
            lambda pm: before_fork(pm, target_id="e1"),
            "on_before_fork",
            kithooks.BeforeForkResult,
            "Fork cancelled by extension.",
        ),
        (
            before_session_switch,
            "on_before_session_switch",
            kithooks.BeforeSessionSwitchResult,
            "Session switch cancelled by extension.",
        ),
        (
            lambda pm: before_compact(pm, estimated_tokens=90, context_limit=100, message_count=4),
            "on_before_compact",
            kithooks.BeforeCompactResult,
            "compaction cancelled by extension",
        ),
    ],
)
def test_cancels_with_the_originals_default_reasons(helper, hook, result_cls, default):
    pm = PluginManager()
    assert helper(pm).cancelled is False

    class Cancel:
        pass

    setattr(Cancel, hook, hookimpl(lambda self, event: result_cls(cancel=True)))
    pm.register(Cancel())
    decision = helper(pm)
    assert decision.cancelled and decision.reason == default


def test_before_compact_summary_and_usage_percent():
    pm = PluginManager()
    seen = []

    class Summarizer:
        @hookimpl
        def on_before_compact(self, event):
            seen.append(event)
            return kithooks.BeforeCompactResult(summary="short version")

    pm.register(Summarizer())
    decision = before_compact(
        pm, estimated_tokens=50, context_limit=200, message_count=3, is_automatic=True
    )
    assert decision.summary == "short version" and not decision.cancelled
    assert seen[0].usage_percent == 0.25 and seen[0].is_automatic
    assert attrs.asdict(before_fork(PluginManager(), target_id="x")) == {
        "cancelled": False,
        "reason": "",
    }


# -- ToolRun with arguments the host has already parsed --------------------------------------

# Any code point, surrogates included: a model's JSON can hold "\ud83d\ude00", and the
# JSON round trip joins such a pair into one character.
_any_text = st.text(st.characters(codec=None, exclude_categories=()))
_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | _any_text
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_json_objects = st.dictionaries(st.text(), _json_values, max_size=5)


def _seen_tool_call(**arguments):
    """The tool_call event a handler sees for one ToolRun with these arguments."""
    seen = []

    class Watch:
        @hookimpl
        def on_tool_call(self, event):
            seen.append(event)

    pm = PluginManager()
    pm.register(Watch())
    run = kithooks.hosting.ToolRun(pm, tool_name="edit", tool_call_id="c1", **arguments)
    assert run.start() is None
    return seen[0], run


@settings(max_examples=200)
@given(_json_objects)
def test_parsed_args_give_the_event_the_text_would(args):
    from_args, run = _seen_tool_call(args=args)
    from_text, _ = _seen_tool_call(input=json.dumps(args))
    assert from_args == from_text
    assert from_args.input == json.dumps(args) == run.input
    assert kithooks.events.thaw(from_args.parsed_args) == json.loads(from_args.input)


@pytest.mark.parametrize(
    "args",
    [
        {"n": enum.IntEnum("N", "ONE")(1)},  # int subclass: parsed, it is a plain int
        {"mode": enum.StrEnum("M", {"FAST": "fast"})("fast")},
        {"ratio": float("nan")},  # NaN is not equal to itself: parsed from the text
        {"xs": (1, 2)},  # a tuple: JSON text has a list
        {"s": "\ud83d\ude00"},  # a surrogate pair: the JSON text has one character
        {"s": "\ud83d"},  # a lone surrogate
        {"\ud83d\ude00": 1},  # the same in a key
        {"a": {"\ud83d": [1]}},
    ],
)
def test_args_that_are_not_plain_json_are_parsed_from_their_text(args):
    from_args, _ = _seen_tool_call(args=args)
    from_text, _ = _seen_tool_call(input=json.dumps(args))
    assert from_args.input == from_text.input
    assert repr(from_args.parsed_args) == repr(from_text.parsed_args)
    assert [type(v) for v in from_args.parsed_args.values()] == [
        type(v) for v in from_text.parsed_args.values()
    ]


def test_plain_args_are_not_parsed_again(monkeypatch):
    def refuse(text):
        raise AssertionError("parsed again")

    monkeypatch.setattr(kithooks.events, "parse_json_object", refuse)
    event, _ = _seen_tool_call(args={"command": "ls", "n": [1, 2.5, None, {"a": True}]})
    assert kithooks.events.thaw(event.parsed_args) == {
        "command": "ls",
        "n": [1, 2.5, None, {"a": True}],
    }


def test_read_only_args_are_accepted_and_a_rewrite_still_wins():
    class Rewrite:
        @hookimpl
        def on_tool_call(self, event):
            return kithooks.ToolCallResult(args={**event.parsed_args, "path": "b.txt"})

    pm = PluginManager()
    pm.register(Rewrite())
    frozen = kithooks.ToolCallEvent(input='{"path": "a.txt"}').parsed_args
    run = kithooks.hosting.ToolRun(pm, tool_name="edit", tool_call_id="c1", args=frozen)
    assert run.input == '{"path": "a.txt"}'
    assert run.start() is None
    assert (run.rewritten, json.loads(run.input)) == (True, {"path": "b.txt"})


def test_toolrun_takes_input_or_args_not_both_nor_neither():
    pm = PluginManager()
    with pytest.raises(TypeError, match="not both"):
        kithooks.hosting.ToolRun(pm, tool_name="t", tool_call_id="c", input="{}", args={})
    with pytest.raises(TypeError, match=r"input \(JSON text\) or args"):
        kithooks.hosting.ToolRun(pm, tool_name="t", tool_call_id="c")
    with pytest.raises(TypeError, match="JSON serializable"):
        kithooks.hosting.ToolRun(pm, tool_name="t", tool_call_id="c", args={"x": object()})


# -- tool input a guard cannot read ----------------------------------------------------------

DEEP = '{"command": "rm -rf /", "pad": ' + "[" * 3000 + "]" * 3000 + "}"
HUGE_INT = '{"command": "rm -rf /", "pad": 1' + "0" * 5000 + "}"


class _RmGate:
    @hookimpl
    def on_tool_call(self, event):
        if "rm -rf" in (event.parsed_args or {}).get("command", ""):
            return kithooks.ToolCallResult(block=True, reason="no rm")
        return None


@pytest.mark.parametrize("text", [DEEP, HUGE_INT], ids=["nested too deep", "huge integer"])
def test_a_json_object_python_cannot_read_is_refused_not_shown_as_no_arguments(text, caplog):
    # Other JSON readers (the tool's own) read it; a guard shown parsed_args=None allowed it.
    with pytest.raises(ValueError, match=r"ToolCallEvent\.input: .*refused rather than shown"):
        kithooks.ToolCallEvent(tool_name="bash", input=text)
    with pytest.raises(ValueError, match="refused rather than shown as no arguments"):
        parse_args(text)
    pm = PluginManager()
    pm.register(_RmGate())
    ran: list[str] = []
    outcome = run_tool(pm, ran.append, tool_name="bash", tool_call_id="c1", input=text)
    assert outcome.blocked and outcome.is_error and ran == []
    assert outcome.content.startswith("Error: kithooks could not check this call: ")
    assert any("'c1' (bash) not run" in r.getMessage() for r in caplog.records)
    assert asyncio.run(
        asyncio.wait_for(
            arun_tool(pm, ran.append, tool_name="bash", tool_call_id="c2", input=text), 10
        )
    ).blocked
    assert ran == []


@pytest.mark.parametrize("text", ["{not json", '"a string"', "[1, 2]", "[" * 3000, "{" * 5000, ""])
def test_text_that_is_not_a_json_object_still_has_no_parsed_args(text):
    assert kithooks.ToolCallEvent(tool_name="bash", input=text).parsed_args is None


def test_arguments_nested_past_the_limit_are_refused_and_their_call_not_run(caplog):
    # Every walker of parsed_args (recording, replay, OTel, the host's code) recurses; past
    # the limit the event refuses them (a ValueError) instead of a RecursionError somewhere.
    limit = kithooks.events.MAX_ARGS_DEPTH
    deep = '{"a": ' + "[" * (limit + 5) + "]" * (limit + 5) + "}"
    with pytest.raises(ValueError, match=f"nested deeper than {limit} levels"):
        kithooks.ToolCallEvent(tool_name="bash", input=deep)
    shallow = '{"a": ' + "[" * (limit - 2) + "]" * (limit - 2) + "}"
    assert kithooks.ToolCallEvent(tool_name="bash", input=shallow).parsed_args is not None
    pm = PluginManager()
    pm.register(_RmGate())
    ran: list[str] = []
    outcome = run_tool(pm, ran.append, tool_name="bash", tool_call_id="c1", input=deep)
    assert outcome.blocked and ran == []


_PLAIN_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_PLAIN_JSON)
def test_dumps_plain_writes_what_json_dumps_writes(value):
    """ToolRun writes plain arguments with one prebuilt C encoder: the same text as
    json.dumps, for every value _plain_json lets through (and they parse back equal)."""
    if not kithooks.hosting._plain_json(value):
        return
    text = kithooks.hosting.dumps_plain(value)
    assert text == json.dumps(value)
    assert json.loads(text) == value
