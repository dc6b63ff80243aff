"""Hypothesis strategies drawing valid payloads, results and context messages.

The strategies are derived from the payload classes' fields: their validators (which numbers
are valid), their metadata (allowed values, units) and their defaults, so they follow the
contract as it changes and draw every value the payloads accept, with the usual ones (small
counts, fractions up to 1.0, the listed choices, a tool call's ``parsed_args`` equal to its
parsed ``input``) drawn often::

    from hypothesis import given
    from kithooks.testing import strategies as ks

    @given(ks.events())                      # an event of any of the 34 types
    def test_never_raises(event): ...

    @given(ks.events("tool_call"))            # one type
    @given(ks.for_class(kithooks.ToolResultResult))
"""

from __future__ import annotations

import itertools
import json
from typing import Any, TypeVar

import attrs
from hypothesis import strategies as st

from ..dispatch import RULES
from ..events import (
    EVENT_CLASSES,
    RESULT_CLASSES,
    ContextMessage,
    Event,
    EventType,
    Result,
    _v_amount,
    _v_count,
    _v_int,
)

__all__ = [
    "context_messages",
    "event_types",
    "events",
    "for_class",
    "json_objects",
    "results",
    "turns",
]

T = TypeVar("T")

_text = st.text(max_size=40)

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)


def json_objects() -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects (as ``parsed_args`` holds): nested dicts, lists and scalars."""
    values = st.recursive(
        _json_scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
        max_leaves=10,
    )
    return st.dictionaries(_text, values, max_size=5)


def _choices(field: attrs.Attribute[Any]) -> st.SearchStrategy[str]:
    """A str field: a closed one takes its choices (and '' when that is its default, as
    the validator allows); an open one takes its usual values most often, any text too."""
    meta = field.metadata
    choices: tuple[str, ...] = meta["choices"]
    if meta["closed"]:
        return st.sampled_from(choices + (("",) if field.default == "" else ()))
    if choices:
        return st.sampled_from(("", *choices)) | _text
    return _text


#: The common real values of each kind of number, drawn as often as the full range.
_USUAL: dict[str, st.SearchStrategy[Any]] = {
    "count": st.integers(0, 50_000),
    "step": st.integers(0, 40),
    "index": st.integers(-3, 60),
    "usd": st.floats(0.0, 50.0),
    "fraction": st.floats(0.0, 1.0),
}


def _numbers(field: attrs.Attribute[Any]) -> st.SearchStrategy[Any] | None:
    """Every number the field's validator accepts (the rule is the validator's, read off
    it here), with the field kind's usual values drawn often; None: not a number field."""
    validator = field.validator
    full: st.SearchStrategy[Any]
    if validator is _v_count:  # 0 or more, no upper bound (token counts past 2**31 too)
        full = st.integers(min_value=0)
    elif validator is _v_int:  # any int (an index below 0 is a new message)
        full = st.integers()
    elif validator is _v_amount:  # finite, 0 or more (usage_percent past 1.0 too)
        full = st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)
    else:
        return None
    usual = _USUAL.get(field.metadata["kind"])
    return full if usual is None else usual | full


def _for_field(field: attrs.Attribute[Any]) -> st.SearchStrategy[Any]:
    number = _numbers(field)
    if number is not None:
        return number
    kind = field.metadata["kind"]
    if kind == "str":
        return _choices(field)
    strategies: dict[str, st.SearchStrategy[Any]] = {
        "bool": st.booleans(),
        "tuple[str, ...]": st.lists(_text, max_size=6).map(tuple),
        "messages": st.lists(context_messages(), max_size=6).map(tuple),
        "opt_messages": st.none() | st.lists(context_messages(), max_size=6).map(tuple),
        "str | None": st.none() | _text,
        "bool | None": st.none() | st.booleans(),
        "json_object": st.none() | json_objects(),
    }
    return strategies[kind]


def _builds(cls: type[Any]) -> st.SearchStrategy[Any]:
    fields = {f.name: _for_field(f) for f in attrs.fields(cls)}
    drawn = st.builds(cls, **fields)
    if "input" not in fields or "parsed_args" not in fields:
        return drawn
    # A tool call as hosts emit it: its arguments' JSON as input, and parsed_args equal to
    # them (given, or derived from input when None), drawn as often as independent fields.
    consistent = json_objects().flatmap(
        lambda args: st.builds(
            cls,
            **{
                **fields,
                "input": st.just(json.dumps(args)),
                "parsed_args": st.sampled_from((args, None)),
            },
        )
    )
    return drawn | consistent  # independent first: what a failing example shrinks to


_CACHE: dict[type[Any], st.SearchStrategy[Any]] = {}


def for_class(cls: type[T]) -> st.SearchStrategy[T]:
    """Valid instances of a payload class, a result class or :class:`ContextMessage`."""
    if not attrs.has(cls):
        raise TypeError(f"{cls!r} is not a kithooks payload or result class")
    if cls not in _CACHE:
        _CACHE[cls] = _builds(cls)
    return _CACHE[cls]


def context_messages() -> st.SearchStrategy[ContextMessage]:
    """Context-window messages (kept ones with index >= 0, new ones below 0)."""
    return st.deferred(lambda: for_class(ContextMessage))


def event_types() -> st.SearchStrategy[EventType]:
    """Any of the 34 event types."""
    return st.sampled_from(tuple(EventType))


def events(event_type: EventType | str | None = None) -> st.SearchStrategy[Event]:
    """Valid events of ``event_type``, or of any type when it is None."""
    if event_type is None:
        return st.one_of([for_class(cls) for cls in EVENT_CLASSES.values()])
    return for_class(EVENT_CLASSES[EventType(event_type)])


def results(of: EventType | str | type[Result] | None = None) -> st.SearchStrategy[Result]:
    """Valid results: of the result class ``of``, of the event type ``of``, or any."""
    if of is None:
        return st.one_of([for_class(cls) for cls in RESULT_CLASSES])
    if isinstance(of, type):
        return for_class(of)
    rule = RULES.get(EventType(of))
    if rule is None:
        raise ValueError(f"{of!r} is an observe event; it has no result")
    return for_class(rule.result_type)


# --------------------------------------------------------------------------- whole turns

_names = st.sampled_from(("bash", "read", "edit", "write", "grep", "ls", "find", "my_tool", ""))
_finish = ("stop", "length", "content-filter")


@st.composite
def _tool_call(draw: st.DrawFn, call_id: str, step: int) -> tuple[list[Event], list[Event]]:
    """(events during the stream, events after it) of one tool call; maybe a subagent."""
    from ..events import (
        SubagentChunkEvent,
        SubagentEndEvent,
        SubagentStartEvent,
        ToolCallEvent,
        ToolCallInputDeltaEvent,
        ToolCallInputEndEvent,
        ToolCallInputStartEvent,
        ToolExecutionEndEvent,
        ToolExecutionStartEvent,
        ToolOutputEvent,
        ToolResultEvent,
        tool_kind_for,
    )

    subagent = draw(st.booleans()) and draw(st.booleans())
    name = "subagent" if subagent else draw(_names)
    kind = tool_kind_for(name)
    args = draw(json_objects())
    text = json.dumps(args)
    cut = draw(st.lists(st.integers(0, len(text)), max_size=3, unique=True))
    bounds = [0, *sorted(cut), len(text)]
    stream: list[Event] = [
        ToolCallInputStartEvent(tool_call_id=call_id, tool_name=name, tool_kind=kind)
    ]
    stream += [
        ToolCallInputDeltaEvent(tool_call_id=call_id, delta=text[a:b])
        for a, b in itertools.pairwise(bounds)
        if b > a
    ]
    stream.append(ToolCallInputEndEvent(tool_call_id=call_id))
    task = draw(_text) if subagent else ""
    if subagent:
        stream.append(SubagentStartEvent(tool_call_id=call_id, task=task))
    after: list[Event] = [
        ToolCallEvent(
            tool_name=name,
            tool_call_id=call_id,
            tool_kind=kind,
            input=text,
            parsed_args=args,
            source="llm",
        ),
        ToolExecutionStartEvent(tool_call_id=call_id, tool_name=name, tool_kind=kind),
    ]
    if subagent:
        chunks = [
            "turn_start",
            *draw(st.lists(st.sampled_from(("text", "tool_call", "tool_result")), max_size=4)),
            "turn_end",
        ]
        after += [
            SubagentChunkEvent(
                tool_call_id=call_id,
                task=task,
                chunk_type=c,
                content=draw(_text) if c == "text" else "",
            )
            for c in chunks
        ]
    else:
        after += [
            ToolOutputEvent(
                tool_call_id=call_id, tool_name=name, tool_kind=kind, chunk=line, is_stderr=err
            )
            for line, err in draw(st.lists(st.tuples(_text, st.booleans()), max_size=3))
        ]
    content, is_error = draw(_text), draw(st.booleans())
    after += [
        ToolExecutionEndEvent(tool_call_id=call_id, tool_name=name, tool_kind=kind),
        ToolResultEvent(
            tool_call_id=call_id,
            tool_name=name,
            tool_kind=kind,
            input=text,
            content=content,
            is_error=is_error,
        ),
    ]
    if subagent:
        after.append(
            SubagentEndEvent(
                tool_call_id=call_id,
                task=task,
                response="" if is_error else content,
                error_msg=content if is_error else "",
            )
        )
    return stream, after


@st.composite
def turns(draw: st.DrawFn, *, max_steps: int = 4, max_tools: int = 3) -> list[Event]:
    """A whole turn's events in the original's order.

    input, before_agent_start, context_prepare, agent_start, message_start; then per step:
    prepare_step, step_start, maybe retries / warnings / reasoning, text deltas and tool
    calls streamed (their ``tool_call_input_*``; ``subagent_start`` for subagents), then each
    call's ``tool_call``, execution, output (or subagent chunks), ``tool_result`` (and
    ``subagent_end``), and ``step_finish`` + ``llm_usage`` for the step; last ``message_end``
    and ``agent_end`` (or ``error`` and ``agent_end`` with ``stop_reason='error'``, the failed
    step having no ``step_finish`` / ``llm_usage``). Tool call ids are unique and shared by a
    call's events; step numbers count up from 0; every step but the last calls tools.

    A turn is tens of events (about 50 with the defaults), slow for hypothesis to draw: on
    a busy machine its ``too_slow`` health check may stop a test, which
    ``@settings(suppress_health_check=[HealthCheck.too_slow])`` (or smaller ``max_steps``
    and ``max_tools``) avoids.
    """
    from ..events import (
        AgentEndEvent,
        AgentStartEvent,
        BeforeAgentStartEvent,
        ContextPrepareEvent,
        ErrorEvent,
        InputEvent,
        LLMUsageEvent,
        MessageEndEvent,
        MessageStartEvent,
        MessageUpdateEvent,
        PrepareStepEvent,
        ReasoningStartEvent,
        RetryEvent,
        StepFinishEvent,
        StepStartEvent,
        WarningsEvent,
    )

    prompt = draw(_text)
    window = draw(st.lists(context_messages(), max_size=4).map(tuple))
    events: list[Event] = [
        InputEvent(text=prompt, source=draw(st.sampled_from(("interactive", "cli", "")))),
        BeforeAgentStartEvent(prompt=prompt),
        ContextPrepareEvent(messages=window),
        AgentStartEvent(prompt=prompt),
        MessageStartEvent(),
    ]
    steps = draw(st.integers(1, max_steps))
    fails = draw(st.booleans()) and draw(st.booleans())
    model = draw(
        st.sampled_from(
            (("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-4o"), ("acme", "unknown-1"))
        )
    )
    calls = 0
    text = ""
    for step in range(steps):
        last = step == steps - 1
        events += [
            PrepareStepEvent(step_number=step, messages=window),
            StepStartEvent(step_number=step),
        ]
        for attempt in range(draw(st.integers(0, 1))):
            events.append(RetryEvent(attempt=attempt + 1, error="overloaded"))
        if draw(st.booleans()):
            events.append(WarningsEvent(warnings=tuple(draw(st.lists(_text, max_size=2)))))
        if draw(st.booleans()):
            events.append(ReasoningStartEvent(id=f"r{step}"))
        chunks = draw(st.lists(_text, max_size=5))
        events += [MessageUpdateEvent(chunk=c) for c in chunks]
        text = "".join(chunks)
        if last and fails:
            events += [
                ErrorEvent(error="provider failed"),
                AgentEndEvent(response="", stop_reason="error"),
            ]
            return events
        n_tools = 0 if last else draw(st.integers(1, max_tools))
        after: list[Event] = []
        for _ in range(n_tools):
            calls += 1
            stream, rest = draw(_tool_call(f"call_{calls}", step))
            events += stream
            after += rest
        events += after
        usage = [draw(st.integers(0, 50_000)) for _ in range(4)]
        reason = "tool-calls" if n_tools else draw(st.sampled_from(_finish))
        events.append(
            StepFinishEvent(
                step_number=step,
                has_tool_calls=bool(n_tools),
                finish_reason=reason,
                input_tokens=usage[0],
                output_tokens=usage[1],
                cache_read_tokens=usage[2],
                cache_write_tokens=usage[3],
            )
        )
        events.append(
            LLMUsageEvent(
                input_tokens=usage[0],
                output_tokens=usage[1],
                cache_read_tokens=usage[2],
                cache_write_tokens=usage[3],
                cost=draw(st.floats(0, 1)),
                provider=model[0],
                model=model[1],
                step_number=step,
                finish_reason=reason,
            )
        )
    events += [MessageEndEvent(content=text), AgentEndEvent(response=text, stop_reason=reason)]
    return events
