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
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from .events import (
    EVENT_CLASSES,
    RESULT_CLASSES,
    BeforeAgentStartResult,
    BeforeCompactResult,
    ContextPrepareEvent,
    Event,
    EventType,
    InputEvent,
    InputResult,
    PrepareStepEvent,
    Result,
    RuleSpec,
    ToolCallEvent,
    ToolResultEvent,
    ToolResultResult,
    replace,
    thaw,
)
from .listeners import describe_error

__all__ = ["KINDS", "MERGES", "RULES", "EventKind", "Merge", "Rule", "kind_of"]


class EventKind(enum.StrEnum):
    """How an event's handlers are run and their results combined."""

    OBSERVE = "observe"
    GUARD = "guard"
    TRANSFORM = "transform"


class Merge:
    """Accumulates the results of one dispatch. ``event`` is what the next handler sees (a
    merge may make it only when asked: after the last handler nobody asks)."""

    __slots__ = ("event", "rule", "seen")

    def __init__(self, event: Event, rule: Rule) -> None:
        self.event = event
        self.rule = rule
        self.seen = False

    def add(self, result: Any) -> bool:
        """Take one handler's result; True means stop and return ``result`` itself.

        Whatever can fail comes before any change: a result that raises here (the caller
        reports it as its plugin's failure) leaves the merge as it was.
        """
        raise NotImplementedError

    def result(self) -> Result | None:
        """The merged result once every handler has run (None when none returned one)."""
        raise NotImplementedError


class _LastWins(Merge):
    """Guard events without a stop flag set: the last non-None result."""

    __slots__ = ("last",)

    def __init__(self, event: Event, rule: Rule) -> None:
        super().__init__(event, rule)
        self.last: Result | None = None

    def add(self, result: Any) -> bool:
        if getattr(result, self.rule.flag):
            return True
        self.last = result
        return False

    def result(self) -> Result | None:
        return self.last


class _CompactMerge(_LastWins):
    """before_compact: cancel stops; otherwise the last non-empty summary."""

    __slots__ = ("summary",)

    def __init__(self, event: Event, rule: Rule) -> None:
        super().__init__(event, rule)
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


class _ToolCallMerge(_LastWins):
    """tool_call: block stops; an ``args`` rewrite is what later handlers (and the tool) get."""

    __slots__ = ("args",)

    def __init__(self, event: Event, rule: Rule) -> None:
        super().__init__(event, rule)
        self.args: Mapping[str, Any] | None = None

    def add(self, result: Any) -> bool:
        if result.block:
            return True
        if result.args is not None:
            # Everything that can fail first: a result the merge cannot take changes nothing.
            assert isinstance(self.event, ToolCallEvent)
            text = json.dumps(thaw(result.args), ensure_ascii=False)
            self.event = replace(self.event, parsed_args=result.args, input=text)
            self.args = result.args
        self.last = result
        return False

    def result(self) -> Result | None:
        if self.last is None or self.args is None:
            return self.last
        return replace(self.last, args=self.args)


class _Combining(Merge):
    """A merge that combines every result into a new one; while a single result came, that
    result (frozen, of the rule's own class) is the merge and is returned as it is."""

    __slots__ = ("only",)

    def __init__(self, event: Event, rule: Rule) -> None:
        super().__init__(event, rule)
        #: The one result taken, while there is only one.
        self.only: Result | None = None

    def _took(self, result: Result) -> None:
        """Note one more result taken (subclasses call it from ``add``)."""
        self.only = None if self.seen else result
        self.seen = True

    def _single(self) -> Result | None:
        """The one result taken, when it stands for the merge; else None."""
        only = self.only
        return only if only is not None and only.__class__ is self.rule.result_type else None


class _ToolResultMerge(_Combining):
    """tool_result: later non-None content / is_error replace earlier ones."""

    __slots__ = ("content", "emitted", "is_error")

    def __init__(self, event: Event, rule: Rule) -> None:
        super().__init__(event, rule)
        self.content: str | None = None
        self.is_error: bool | None = None

    # Shadows Merge's slot: the event as emitted is kept in ``emitted``.
    @property
    def event(self) -> Event:
        """The event with the rewrites so far (made when the next handler needs it)."""
        event = self.emitted
        if self.content is None and self.is_error is None:
            return event
        assert isinstance(event, ToolResultEvent)
        return replace(
            event,
            content=event.content if self.content is None else self.content,
            is_error=event.is_error if self.is_error is None else self.is_error,
        )

    @event.setter
    def event(self, event: Event) -> None:
        self.emitted = event

    def add(self, result: Any) -> bool:
        if result.content is not None:
            self.content = result.content
        if result.is_error is not None:
            self.is_error = result.is_error
        self._took(result)
        return False

    def result(self) -> Result | None:
        if not self.seen:
            return None
        if (single := self._single()) is not None:
            return single
        return ToolResultResult(content=self.content, is_error=self.is_error)


class _InputMerge(Merge):
    """input: 'handled' stops; 'transform' rewrites the text later handlers see."""

    __slots__ = ("last", "transformed")

    def __init__(self, event: Event, rule: Rule) -> None:
        super().__init__(event, rule)
        self.last: InputResult | None = None
        self.transformed = False

    def add(self, result: Any) -> bool:
        if result.action == "handled":
            return True
        if result.action == "transform":
            assert isinstance(self.event, InputEvent)
            self.event = replace(self.event, text=result.text)
            self.transformed = True
        self.last = result
        return False

    def result(self) -> Result | None:
        if self.transformed:
            assert isinstance(self.event, InputEvent)
            return InputResult(action="transform", text=self.event.text)
        return self.last


class _InjectMerge(_Combining):
    """before_agent_start: inject_text joined by a blank line; last system_prompt wins."""

    __slots__ = ("injects", "system_prompt")

    def __init__(self, event: Event, rule: Rule) -> None:
        super().__init__(event, rule)
        self.injects: list[str] = []
        self.system_prompt: str | None = None

    def add(self, result: Any) -> bool:
        self._took(result)
        if result.inject_text is not None:
            self.injects.append(result.inject_text)
        if result.system_prompt is not None:
            self.system_prompt = result.system_prompt
        return False

    def result(self) -> Result | None:
        if not self.seen:
            return None
        if (single := self._single()) is not None:
            return single
        inject = "\n\n".join(self.injects) if self.injects else None
        return BeforeAgentStartResult(inject_text=inject, system_prompt=self.system_prompt)


class _MessagesMerge(Merge):
    """context_prepare / prepare_step: each handler sees the list the one before returned."""

    __slots__ = ("changed",)

    def __init__(self, event: Event, rule: Rule) -> None:
        super().__init__(event, rule)
        self.changed = False

    def add(self, result: Any) -> bool:
        if result.messages is not None:
            assert isinstance(self.event, ContextPrepareEvent | PrepareStepEvent)
            self.event = replace(self.event, messages=result.messages)
            self.changed = True
        self.seen = True
        return False

    def result(self) -> Result | None:
        if not self.seen:
            return None
        messages = getattr(self.event, "messages", None) if self.changed else None
        result: Result = self.rule.result_type(messages=messages)  # type: ignore[call-arg]
        return result


@attrs.frozen
class Rule:
    """How one guard or transform event is dispatched.

    ``merge`` is the accumulator class (its docstring says the rule in one line); ``flag``
    names the result attribute that stops a guard (``block`` or ``cancel``); ``text``
    describes the merge for the docs; ``default_reason`` is what a host shows for a block
    or cancel that gave no reason.
    """

    kind: EventKind
    result_type: type[Result]
    text: str
    merge: type[Merge]
    flag: str = ""
    default_reason: str = ""

    def begin(self, event: Event) -> Merge:
        """A fresh accumulator for one dispatch of ``event``."""
        return self.merge(event, self)

    def failure(self, plugin: str, hook: str, error: BaseException) -> Result:
        """The block / cancel a failing guard handler becomes under ``fail_closed``."""
        reason = f"plugin {plugin!r} failed in {hook}: {describe_error(error)}"
        result: Result = self.result_type(**{self.flag: True, "reason": reason})
        return result


#: The merge rules, by the name an event's ``rule`` (``RuleSpec.merge``) gives.
MERGES: Mapping[str, type[Merge]] = MappingProxyType(
    {
        "tool_call": _ToolCallMerge,
        "last_wins": _LastWins,
        "compact": _CompactMerge,
        "tool_result": _ToolResultMerge,
        "input": _InputMerge,
        "inject": _InjectMerge,
        "messages": _MessagesMerge,
    }
)

_RESULT_NAMED: Mapping[str, type[Result]] = {cls.__name__: cls for cls in RESULT_CLASSES}


def _rule(spec: RuleSpec) -> Rule:
    return Rule(
        EventKind(spec.kind),
        _RESULT_NAMED[spec.result],
        spec.text,
        MERGES[spec.merge],
        flag=spec.flag,
        default_reason=spec.default_reason,
    )


#: How each guard and transform event is dispatched, built from the ``rule`` each payload
#: class declares (see :class:`kithooks.events.RuleSpec`).
RULES: Mapping[EventType, Rule] = MappingProxyType(
    {et: _rule(cls.rule) for et, cls in EVENT_CLASSES.items() if cls.rule is not None}
)

KINDS: Mapping[EventType, EventKind] = MappingProxyType(
    {et: (RULES[et].kind if et in RULES else EventKind.OBSERVE) for et in EventType}
)


def kind_of(event_type: EventType | str) -> EventKind:
    """The dispatch kind of an event type."""
    return KINDS[EventType(event_type)]
