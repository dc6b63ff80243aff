"""Turning payloads and results into plain JSON data and back, with cattrs.

:func:`unstructure` gives dicts, lists, strings, numbers, booleans and None, ready for
``json.dumps``; :func:`structure` rebuilds the exact object. :func:`event_to_dict` and
:func:`event_from_dict` use the tagged form ``{"type": "tool_call", ...fields}`` that can
hold an event of any type (record and replay use it). Structuring is strict: unknown keys,
wrong types (no ``"1"`` for an int) and unknown event types raise :class:`StructureError`,
whose message names each bad field by its path.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

import attrs

from .events import (
    EVENT_CLASSES,
    RESULT_CLASSES,
    ContextMessage,
    Event,
    EventType,
    ReadOnlyMapping,
    thaw,
)

__all__ = ["StructureError", "event_from_dict", "event_to_dict", "structure", "unstructure"]

T = TypeVar("T")


class StructureError(ValueError):
    """Data that does not make a valid payload or result. ``errors`` lists each problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _strict(kind: type) -> Any:
    def hook(value: Any, _: Any) -> Any:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__} {value!r:.40}")
        return value

    return hook


def _json_object(value: Any, _: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a JSON object or null, got {type(value).__name__}")
    return value


if TYPE_CHECKING:
    import cattrs


@functools.cache
def _converter() -> cattrs.Converter:
    """The converter, made on first use: cattrs is imported only by code that structures."""
    import cattrs

    for cls in (ContextMessage, *EVENT_CLASSES.values(), *RESULT_CLASSES):
        attrs.resolve_types(cast("type[Any]", cls))
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    for kind in (str, int, float, bool):
        conv.register_structure_hook(kind, _strict(kind))
    conv.register_structure_hook_func(lambda t: t == (Mapping[str, Any] | None), _json_object)
    base_tuple = conv.get_structure_hook(tuple[str, ...])

    def array(value: Any, kind: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a JSON array, got {type(value).__name__}")
        if kind == tuple[str, ...]:
            return base_tuple(value, kind)
        return conv.structure(value, list[kind.__args__[0]])

    conv.register_structure_hook_func(lambda t: getattr(t, "__origin__", None) is tuple, array)
    conv.register_unstructure_hook(ReadOnlyMapping, thaw)
    conv.register_unstructure_hook_func(
        lambda t: t is tuple or getattr(t, "__origin__", None) is tuple,
        lambda v: [conv.unstructure(x) for x in v],
    )
    return conv


def _describe(exc: BaseException) -> str:
    from cattrs.errors import ForbiddenExtraKeysError

    if isinstance(exc, ForbiddenExtraKeysError):
        return f"unknown field(s) {', '.join(sorted(exc.extra_fields))}"
    if isinstance(exc, KeyError):
        return f"missing required field {exc.args[0]!r}"
    return str(exc)


def _messages(exc: BaseException) -> list[str]:
    """One ``<why> @ <path>`` line per problem (``expected int, got str '1' @ $.step_number``)."""
    import cattrs
    from cattrs.errors import (
        ClassValidationError,
        ForbiddenExtraKeysError,
        IterableValidationError,
    )

    if isinstance(exc, ClassValidationError | IterableValidationError | ForbiddenExtraKeysError):
        return cattrs.transform_error(exc, path="$", format_exception=lambda e, _t: _describe(e))
    return [f"{_describe(exc)} @ $"]


def unstructure(obj: Any) -> Any:
    """A payload, result or :class:`ContextMessage` as plain JSON-able data."""
    return _converter().unstructure(obj)


def structure(data: Any, cls: type[T]) -> T:
    """Rebuild a ``cls`` from plain data; raises :class:`StructureError` naming bad fields."""
    if not isinstance(data, Mapping):
        raise StructureError(
            [f"expected a JSON object for {cls.__name__}, got {type(data).__name__} @ $"]
        )
    from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError

    try:
        return _converter().structure(data, cls)
    except (ClassValidationError, ForbiddenExtraKeysError, TypeError, ValueError) as exc:
        raise StructureError(_messages(exc)) from exc


def event_to_dict(event: Event) -> dict[str, Any]:
    """The tagged form of an event: ``{"type": <wire name>, ...its fields}``."""
    data: dict[str, Any] = {"type": event.event_type.value}
    data.update(unstructure(event))
    return data


def event_from_dict(data: Any) -> Event:
    """Rebuild an event from its tagged form; raises :class:`StructureError` when it is bad."""
    if not isinstance(data, Mapping):
        raise StructureError([f"expected a JSON object, got {type(data).__name__} @ $"])
    if "type" not in data:
        raise StructureError(["missing required field 'type' (the event type) @ $.type"])
    kind = data["type"]
    try:
        cls = EVENT_CLASSES[EventType(kind)]
    except (ValueError, TypeError):
        raise StructureError([f"unknown event type {kind!r} @ $.type"]) from None
    fields = {k: v for k, v in data.items() if k != "type"}
    return structure(fields, cls)
