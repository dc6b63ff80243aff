"""The core API this package needs from kithooks (CORE-API.md sections 1, 2 and 7).

Until those land on ``main`` the names are looked up at import time, with a fallback for the
tool matcher that follows the same rule. At merge this module reduces to the imports.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ..context import Context
from ..events import ToolCallResult

__all__ = ["ask", "rewrite_supported", "tool_call_result", "tool_matcher"]

_PLAIN = re.compile(r"[A-Za-z0-9_.-]+(\|[A-Za-z0-9_.-]+)*")


def _fallback_matcher(pattern: str | None) -> Callable[[str], bool]:
    """Claude Code's matcher rule: all / exact names joined by ``|`` / a full-match regex."""
    if pattern is None or pattern in ("", "*"):
        return lambda name: True
    if _PLAIN.fullmatch(pattern):
        names = frozenset(pattern.split("|"))
        return names.__contains__
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"bad tool pattern {pattern!r}: {exc}") from None
    return lambda name: compiled.fullmatch(name) is not None


def _find_matcher() -> Callable[[str | None], Callable[[str], bool]]:
    try:
        module = importlib.import_module("kithooks.matching")
    except ImportError:
        return _fallback_matcher
    found: Callable[[str | None], Callable[[str], bool]] = module.tool_matcher
    return found


#: ``tool_matcher(pattern) -> Callable[[str], bool]``; a bad regex raises ``ValueError``.
tool_matcher = _find_matcher()

#: True when ``ToolCallResult`` takes ``args`` (the tool-input rewrite of the core).
rewrite_supported = any(f.name == "args" for f in attrs.fields(ToolCallResult))


def tool_call_result(
    *, block: bool = False, reason: str = "", args: Mapping[str, Any] | None = None
) -> ToolCallResult:
    """A ``ToolCallResult``; ``args`` is dropped when this kithooks cannot rewrite input."""
    if args is not None and rewrite_supported:
        return ToolCallResult(block=block, reason=reason, args=args)  # type: ignore[call-arg,unused-ignore]
    return ToolCallResult(block=block, reason=reason)


def ask(ctx: Context, question: str) -> bool:
    """The host's answer to a yes/no question (``Context.confirm``); no callback: no."""
    confirm: Callable[[str], bool] | None = getattr(ctx, "confirm", None)
    return bool(confirm(question)) if confirm is not None else False
