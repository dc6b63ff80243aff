"""Tool matchers: which tool names a handler (or a command hook) cares about.

One rule, shared by ``@kithooks.hookimpl(tools=...)`` and the command hooks' ``matcher``
(Claude Code's rule):

* ``None``, ``""`` or ``"*"``: every tool;
* a string of plain names separated by ``|`` (``"bash|shell"``): exactly those names,
  case-sensitive;
* any other string: a regular expression that must match the whole name
  (``"mcp__.*"``, ``"Edit|Write.*"``);
* a list or tuple of strings: exactly those names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

__all__ = ["ToolSpec", "describe_tools", "tool_matcher"]

#: What ``tools=`` accepts.
ToolSpec = str | Sequence[str]

_PLAIN_NAMES = re.compile(r"[A-Za-z0-9_.-]+(?:\|[A-Za-z0-9_.-]+)*")


def tool_matcher(spec: ToolSpec | None) -> Callable[[str], bool] | None:
    """Compile ``spec`` into a predicate on tool names; None means "every tool".

    Raises :class:`ValueError` naming the pattern when a regular expression does not
    compile, and :class:`TypeError` when ``spec`` is neither a string nor a sequence of
    strings.
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec in ("", "*"):
            return None
        if _PLAIN_NAMES.fullmatch(spec):
            return frozenset(spec.split("|")).__contains__
        try:
            pattern = re.compile(spec)
        except re.error as exc:
            raise ValueError(
                f"tool matcher {spec!r} is not a valid regular expression: {exc}"
            ) from None
        return lambda name: pattern.fullmatch(name) is not None
    if isinstance(spec, Sequence) and all(isinstance(n, str) for n in spec):
        if not spec:
            raise ValueError("tool matcher: an empty list matches no tool; leave tools= out")
        return frozenset(spec).__contains__
    raise TypeError(
        f"tool matcher must be a string or a list of tool names, not {type(spec).__name__}"
    )


def describe_tools(spec: ToolSpec | None) -> str:
    """How ``spec`` reads in listings: ``"*"`` for every tool."""
    if spec is None or spec in ("", "*"):
        return "*"
    return spec if isinstance(spec, str) else "|".join(spec)
