"""Hypothesis strategies drawing valid payloads, results and context messages.

The strategies are derived from the payload classes' field metadata (type, allowed values,
units), so they follow the contract as it changes::

    from hypothesis import given
    from kithooks.testing import strategies as ks

    @given(ks.events())                      # an event of any of the 34 types
    def test_never_raises(event): ...

    @given(ks.events("tool_call"))            # one type
    @given(ks.for_class(kithooks.ToolResultResult))
"""

from __future__ import annotations

from typing import Any, TypeVar

import attrs
from hypothesis import strategies as st

from ..dispatch import RULES
from ..events import EVENT_CLASSES, RESULT_CLASSES, ContextMessage, Event, EventType, Result

__all__ = ["context_messages", "event_types", "events", "for_class", "json_objects", "results"]

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


def _for_field(field: attrs.Attribute[Any]) -> st.SearchStrategy[Any]:
    meta = field.metadata
    kind, choices = meta["kind"], meta["choices"]
    if choices:
        return st.sampled_from(choices if meta["closed"] else ("", *choices))
    strategies: dict[str, st.SearchStrategy[Any]] = {
        "str": _text,
        "bool": st.booleans(),
        "count": st.integers(0, 10**7),
        "index": st.integers(-3, 60),
        "step": st.integers(0, 40),
        "usd": st.floats(0.0, 50.0, allow_nan=False),
        "fraction": st.floats(0.0, 1.0),
        "float": st.floats(allow_nan=False, allow_infinity=False),
        "tuple[str, ...]": st.lists(_text, max_size=6).map(tuple),
        "messages": st.lists(context_messages(), max_size=6).map(tuple),
        "opt_messages": st.none() | st.lists(context_messages(), max_size=6).map(tuple),
        "str | None": st.none() | _text,
        "bool | None": st.none() | st.booleans(),
        "json_object": st.none() | json_objects(),
    }
    return strategies[kind]


_CACHE: dict[type[Any], st.SearchStrategy[Any]] = {}


def for_class(cls: type[T]) -> st.SearchStrategy[T]:
    """Valid instances of a payload class, a result class or :class:`ContextMessage`."""
    if not attrs.has(cls):
        raise TypeError(f"{cls!r} is not a kithooks payload or result class")
    if cls not in _CACHE:
        _CACHE[cls] = st.builds(cls, **{f.name: _for_field(f) for f in attrs.fields(cls)})
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
