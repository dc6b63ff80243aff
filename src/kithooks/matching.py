"""Tool matchers: which tool names a handler (or a command hook) cares about.

One rule, shared by ``@kithooks.hookimpl(tools=...)`` and the command hooks' ``matcher``
(Claude Code's rule):

* ``None``, ``""`` or ``"*"``: every tool;
* a string of plain names separated by ``|`` (``"bash|shell"``; spaces around a name are
  ignored): exactly those names, case-sensitive;
* any other string: a regular expression that must match the whole name
  (``"mcp__.*"``, ``"Edit|Write.*"``);
* a list or tuple of strings: exactly those names.

Plain names (a ``|`` string or a list) also match the host names whose Claude Code name
(:data:`DEFAULT_TOOL_ALIASES`) they are: ``"Bash"`` matches a host's ``bash`` and ``shell``
(and the ``bash`` that ``kithooks claude-hook`` hands plugins for Claude Code's ``Bash``),
while ``"bash"`` matches ``bash`` only. A regular expression is tried on the name itself
only, so one written to exclude names (``"(?!bash|shell).*"``) excludes exactly them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

__all__ = ["DEFAULT_TOOL_ALIASES", "ToolSpec", "describe_tools", "tool_matcher"]

#: What ``tools=`` accepts.
ToolSpec = str | Sequence[str]

#: Host tool name -> Claude Code tool name: the one alias table, of the matchers above and
#: of the command hooks (``kithooks.command_hooks`` extends it per plugin with ``aliases=``).
DEFAULT_TOOL_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "bash": "Bash",
        "shell": "Bash",
        "sh": "Bash",
        "run_shell_command": "Bash",
        "read": "Read",
        "read_file": "Read",
        "write": "Write",
        "write_file": "Write",
        "edit": "Edit",
        "edit_file": "Edit",
        "multi_edit": "MultiEdit",
        "glob": "Glob",
        "grep": "Grep",
        "ls": "LS",
        "list_directory": "LS",
        "web_fetch": "WebFetch",
        "fetch": "WebFetch",
        "web_search": "WebSearch",
        "task": "Task",
        "subagent": "Task",
        "todo_write": "TodoWrite",
        "notebook_edit": "NotebookEdit",
    }
)

_PLAIN_NAMES = re.compile(r"\s*[A-Za-z0-9_.-]+(?:\s*\|\s*[A-Za-z0-9_.-]+)*\s*")


def _whole(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    """Names ``pattern`` matches whole (no aliases: see the module docs)."""
    return lambda name: pattern.fullmatch(name) is not None


def _names(names: Sequence[str]) -> Callable[[str], bool]:
    """Exactly ``names``, and the host names whose Claude Code name is one of them."""
    wanted = frozenset(names)
    aliases = {host for host, claude in DEFAULT_TOOL_ALIASES.items() if claude in wanted}
    return (wanted | aliases).__contains__


def tool_matcher(spec: ToolSpec | None) -> Callable[[str], bool] | None:
    """Compile ``spec`` into a predicate on tool names (aliases included, see above);
    None means "every tool".

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
            return _names([name.strip() for name in spec.split("|")])
        try:
            pattern = re.compile(spec)
        except re.error as exc:
            raise ValueError(
                f"tool matcher {spec!r} is not a valid regular expression: {exc}"
            ) from None
        return _whole(pattern)
    if isinstance(spec, Sequence) and all(isinstance(n, str) for n in spec):
        if not spec:
            raise ValueError("tool matcher: an empty list matches no tool; leave tools= out")
        return _names(spec)
    raise TypeError(
        f"tool matcher must be a string or a list of tool names, not {type(spec).__name__}"
    )


def describe_tools(spec: ToolSpec | None) -> str:
    """How ``spec`` reads in listings: ``"*"`` for every tool."""
    if spec is None or spec in ("", "*"):
        return "*"
    return spec if isinstance(spec, str) else "|".join(spec)
