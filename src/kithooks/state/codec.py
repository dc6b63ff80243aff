"""The sidecar's format: Go's ``json.MarshalIndent`` of a map of strings, read defensively.

Writing: 2-space indent, sorted keys, UTF-8, ``<``, ``>``, ``&``, U+2028 and U+2029
escaped as Go escapes them, no trailing newline. Reading accepts any JSON object of strings
and never raises anything but :class:`StateError`: numbers are not converted (a
5,000-digit number is just a wrong type), nesting too deep for the parser is an error
naming the file, and lone surrogates (``"\\ud800"``) or invalid UTF-8 inside strings become
U+FFFD, as Go's decoder does, so such a file loads and can be saved again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import cast

from .errors import StateError

__all__ = [
    "check_key",
    "check_value",
    "decode_json",
    "decode_object",
    "decode_sidecar",
    "encode_sidecar",
    "repair_text",
]

_SURROGATE = re.compile("[\ud800-\udfff]")
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",\n  ", ": "), sort_keys=True)
_JSON_TYPES = {dict: "an object", list: "an array", bool: "a boolean", type(None): "null"}


class _Number:
    """Stands for any JSON number: never converted, so no size limit can be hit."""


_NUMBER = _Number()


def _number(_text: str) -> _Number:
    return _NUMBER


def encode_sidecar(data: Mapping[str, str]) -> bytes:
    """The sidecar bytes for ``data`` (what Go's ``json.MarshalIndent(m, "", "  ")`` writes)."""
    if not data:
        return b"{}"
    # One C-encoder pass over a flat object of strings: the item separator ",\n  " cannot
    # occur inside a string (a newline is always escaped), so only the braces need the
    # indented form.
    text = _ENCODER.encode(dict(data))
    text = "{\n  " + text[1:-1] + "\n}"
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
        .encode("utf-8")
    )


def repair_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (what Go's decoder reads)."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub("\ufffd", text)


def check_key(key: object) -> None:
    """Refuse a key that cannot be stored, with a :class:`StateError` naming it."""
    if not isinstance(key, str):
        raise StateError(f"state key must be a str, not {type(key).__name__} ({key!r:.60})")
    if repair_text(key) is not key:
        raise StateError(f"state key {key!r:.80} contains a lone surrogate; it cannot be stored")


def check_value(key: str, value: object) -> None:
    """Refuse a value that cannot be stored, with a :class:`StateError` naming its key."""
    if not isinstance(value, str):
        raise StateError(
            f"value of state key {key!r:.80} must be a str, not {type(value).__name__} "
            f"({value!r:.60})"
        )
    if repair_text(value) is not value:
        raise StateError(
            f"value of state key {key!r:.80} contains a lone surrogate; it cannot be stored"
        )


def decode_json(raw: bytes, where: str) -> object:
    """Parse ``raw`` as JSON; every failure is a :class:`StateError` naming ``where``."""
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text, parse_int=_number, parse_float=_number, parse_constant=_number)
    except RecursionError:
        raise StateError(f"{where} is nested too deeply to be a state file") from None
    except json.JSONDecodeError as exc:
        raise StateError(f"{where} is not valid JSON: {exc}") from None
    except ValueError as exc:  # pragma: no cover - json raises only the above for text input
        raise StateError(f"{where} is not valid JSON: {exc}") from None


def kind(value: object) -> str:
    """How a parsed JSON value is named in an error message."""
    if isinstance(value, _Number):
        return "a number"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def decode_object(raw: bytes, where: str, *, allow_null: bool = False) -> dict[str, str | None]:
    """A JSON object of strings (and ``null`` values when ``allow_null``), repaired.

    A file holding only ``null`` or whitespace is an empty object.
    """
    if not raw.strip():
        return {}
    data = decode_json(raw, where)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise StateError(f"{where} must hold a JSON object, not {kind(data)}")
    out: dict[str, str | None] = {}
    for key, value in data.items():
        if value is None and allow_null:
            out[repair_text(key)] = None
        elif isinstance(value, str):
            out[repair_text(key)] = repair_text(value)
        else:
            raise StateError(f"{where}: value of {key!r:.80} must be a string, not {kind(value)}")
    return out


def decode_sidecar(raw: bytes, where: str) -> dict[str, str]:
    """A sidecar's object of strings (see :func:`decode_object`)."""
    return cast("dict[str, str]", decode_object(raw, where))
