"""Dispatch kinds and merge rules: the one place that says how results combine.

Every event is one of three kinds:

* ``observe``: every handler runs; return values are ignored; dispatch returns ``None``.
* ``guard``: the first result whose flag (``block`` / ``cancel``) is set stops dispatch and
  is returned; otherwise the results of the others are merged.
* ``transform``: each handler sees the event as changed by the handlers before it; the
  results are merged into one.

A :class:`Rule` describes one non-observe event; :meth:`Rule.begin` returns a fresh
accumulator (a :class:`Merge`) for one dispatch. The manager feeds it each handler's
result and hands each handler ``merge.event``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from .events import (
    BeforeAgentStartResult,
    BeforeCompactResult,
    BeforeForkResult,
    BeforeSessionSwitchResult,
    ContextPrepareEvent,
    ContextPrepareResult,
    Event,
    EventType,
    InputEvent,
    InputResult,
    PrepareStepEvent,
    PrepareStepResult,
    Result,
    ToolCallResult,
    ToolResultEvent,
    ToolResultResult,
    replace,
)

__all__ = ["KINDS", "RULES", "EventKind", "Merge", "Rule", "kind_of"]


class EventKind(enum.StrEnum):
    """How an event's handlers are run and their results combined."""

    OBSERVE = "observe"
    GUARD = "guard"
    TRANSFORM = "transform"


class Merge:
    """Accumulates the results of one dispatch. ``event`` is what the next handler sees."""

    __slots__ = ("event", "seen")

    def __init__(self, event: Event) -> None:
        self.event = event
        self.seen = False

    def add(self, result: Any) -> bool:
        """Take one handler's result; True means stop and return ``result`` itself."""
        raise NotImplementedError

    def result(self) -> Result | None:
        """The merged result once every handler has run (None when none returned one)."""
        raise NotImplementedError


class _LastWins(Merge):
    """Guard events without a stop flag set: the last non-None result."""

    __slots__ = ("flag", "last")

    def __init__(self, event: Event, flag: str) -> None:
        super().__init__(event)
        self.flag = flag
        self.last: Result | None = None

    def add(self, result: Any) -> bool:
        if getattr(result, self.flag):
            return True
        self.last = result
        return False

    def result(self) -> Result | None:
        return self.last


class _CompactMerge(_LastWins):
    """before_compact: cancel stops; otherwise the last non-empty summary."""

    __slots__ = ("summary",)

    def __init__(self, event: Event, flag: str) -> None:
        super().__init__(event, flag)
        self.summary = ""

    def add(self, result: Any) -> bool:
        if result.cancel:
            return True
        self.last = result
        if result.summary:
            self.summary = result.summary
        return False

    def result(self) -> Result | None:
        if self.last is None:
            return None
        return BeforeCompactResult(summary=self.summary)


class _ToolResultMerge(Merge):
    """tool_result: later non-None content / is_error replace earlier ones."""

    __slots__ = ("content", "is_error")

    def __init__(self, event: Event) -> None:
        super().__init__(event)
        self.content: str | None = None
        self.is_error: bool | None = None

    def add(self, result: Any) -> bool:
        self.seen = True
        changes: dict[str, Any] = {}
        if result.content is not None:
            self.content = changes["content"] = result.content
        if result.is_error is not None:
            self.is_error = changes["is_error"] = result.is_error
        if changes:
            assert isinstance(self.event, ToolResultEvent)
            self.event = replace(self.event, **changes)
        return False

    def result(self) -> Result | None:
        if not self.seen:
            return None
        return ToolResultResult(content=self.content, is_error=self.is_error)


class _InputMerge(Merge):
    """input: 'handled' stops; 'transform' rewrites the text later handlers see."""

    __slots__ = ("last", "transformed")

    def __init__(self, event: Event) -> None:
        super().__init__(event)
        self.last: InputResult | None = None
        self.transformed = False

    def add(self, result: Any) -> bool:
        if result.action == "handled":
            return True
        self.last = result
        if result.action == "transform":
            self.transformed = True
            assert isinstance(self.event, InputEvent)
            self.event = replace(self.event, text=result.text)
        return False

    def result(self) -> Result | None:
        if self.transformed:
            assert isinstance(self.event, InputEvent)
            return InputResult(action="transform", text=self.event.text)
        return self.last


class _InjectMerge(Merge):
    """before_agent_start: inject_text joined by a blank line; last system_prompt wins."""

    __slots__ = ("injects", "system_prompt")

    def __init__(self, event: Event) -> None:
        super().__init__(event)
        self.injects: list[str] = []
        self.system_prompt: str | None = None

    def add(self, result: Any) -> bool:
        self.seen = True
        if result.inject_text is not None:
            self.injects.append(result.inject_text)
        if result.system_prompt is not None:
            self.system_prompt = result.system_prompt
        return False

    def result(self) -> Result | None:
        if not self.seen:
            return None
        inject = "\n\n".join(self.injects) if self.injects else None
        return BeforeAgentStartResult(inject_text=inject, system_prompt=self.system_prompt)


class _MessagesMerge(Merge):
    """context_prepare / prepare_step: each handler sees the list the one before returned."""

    __slots__ = ("changed", "result_type")

    def __init__(self, event: Event, result_type: type[Result]) -> None:
        super().__init__(event)
        self.result_type = result_type
        self.changed = False

    def add(self, result: Any) -> bool:
        self.seen = True
        if result.messages is not None:
            self.changed = True
            assert isinstance(self.event, ContextPrepareEvent | PrepareStepEvent)
            self.event = replace(self.event, messages=result.messages)
        return False

    def result(self) -> Result | None:
        if not self.seen:
            return None
        messages = getattr(self.event, "messages", None) if self.changed else None
        result: Result = self.result_type(messages=messages)  # type: ignore[call-arg]
        return result


@attrs.frozen
class Rule:
    """How one guard or transform event is dispatched.

    ``flag`` names the result attribute that stops a guard (``block`` or ``cancel``);
    ``merge`` is the accumulator class; ``text`` describes the merge for the docs.
    """

    kind: EventKind
    result_type: type[Result]
    text: str
    flag: str = ""
    default_reason: str = ""

    def begin(self, event: Event) -> Merge:
        """A fresh accumulator for one dispatch of ``event``."""
        et = event.event_type
        if et is EventType.BEFORE_COMPACT:
            return _CompactMerge(event, self.flag)
        if self.kind is EventKind.GUARD:
            return _LastWins(event, self.flag)
        if et is EventType.TOOL_RESULT:
            return _ToolResultMerge(event)
        if et is EventType.INPUT:
            return _InputMerge(event)
        if et is EventType.BEFORE_AGENT_START:
            return _InjectMerge(event)
        return _MessagesMerge(event, self.result_type)

    def failure(self, plugin: str, hook: str, error: BaseException) -> Result:
        """The block / cancel a failing guard handler becomes under ``fail_closed``."""
        reason = f"plugin {plugin!r} failed in {hook}: {type(error).__name__}: {error}"
        result: Result = self.result_type(**{self.flag: True, "reason": reason})
        return result


_GUARD_TEXT = (
    "The first result with `{flag}=True` stops dispatch and is returned; otherwise the last "
    "non-None result is returned (None when no handler returned one)."
)

RULES: Mapping[EventType, Rule] = MappingProxyType(
    {
        EventType.TOOL_CALL: Rule(
            EventKind.GUARD,
            ToolCallResult,
            _GUARD_TEXT.format(flag="block"),
            flag="block",
            default_reason="blocked by extension",
        ),
        EventType.BEFORE_FORK: Rule(
            EventKind.GUARD,
            BeforeForkResult,
            _GUARD_TEXT.format(flag="cancel"),
            flag="cancel",
            default_reason="Fork cancelled by extension.",
        ),
        EventType.BEFORE_SESSION_SWITCH: Rule(
            EventKind.GUARD,
            BeforeSessionSwitchResult,
            _GUARD_TEXT.format(flag="cancel"),
            flag="cancel",
            default_reason="Session switch cancelled by extension.",
        ),
        EventType.BEFORE_COMPACT: Rule(
            EventKind.GUARD,
            BeforeCompactResult,
            "The first result with `cancel=True` stops dispatch and is returned; otherwise "
            "`BeforeCompactResult(summary=<the last non-empty summary>)` (None when no handler "
            "returned a result).",
            flag="cancel",
            default_reason="compaction cancelled by extension",
        ),
        EventType.TOOL_RESULT: Rule(
            EventKind.TRANSFORM,
            ToolResultResult,
            "A later non-None `content` / `is_error` replaces an earlier one, and the next "
            "handler's event carries it; the merged `ToolResultResult` is returned (None when "
            "no handler returned one).",
        ),
        EventType.INPUT: Rule(
            EventKind.TRANSFORM,
            InputResult,
            "`action='handled'` stops dispatch and is returned. `action='transform'` replaces "
            "the text later handlers see, and the result is `InputResult(action='transform', "
            "text=<final text>)`. Otherwise the last non-None result.",
        ),
        EventType.BEFORE_AGENT_START: Rule(
            EventKind.TRANSFORM,
            BeforeAgentStartResult,
            "Every handler's `inject_text` is kept, joined in order by a blank line; the last "
            "non-None `system_prompt` wins (None when no handler returned a result).",
        ),
        EventType.CONTEXT_PREPARE: Rule(
            EventKind.TRANSFORM,
            ContextPrepareResult,
            "Each handler sees the message list returned by the handler before it; the result "
            "carries the final list, or `messages=None` when nobody changed it (None when no "
            "handler returned a result). A kept message keeps its `index` into the original "
            "window; a new message has `index < 0`.",
        ),
        EventType.PREPARE_STEP: Rule(
            EventKind.TRANSFORM,
            PrepareStepResult,
            "Each handler sees the message list returned by the handler before it; the result "
            "carries the final list, or `messages=None` when nobody changed it (None when no "
            "handler returned a result). A kept message keeps its `index` into the step's "
            "messages; a new message has `index < 0`.",
        ),
    }
)

KINDS: Mapping[EventType, EventKind] = MappingProxyType(
    {et: (RULES[et].kind if et in RULES else EventKind.OBSERVE) for et in EventType}
)


def kind_of(event_type: EventType | str) -> EventKind:
    """The dispatch kind of an event type."""
    return KINDS[EventType(event_type)]
