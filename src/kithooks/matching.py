"""Tool matchers: which tool names a handler (or a command hook) cares about.

One reading of a matcher string, for two callers: ``@kithooks.hookimpl(tools=...)``
(:func:`tool_matcher`) and the ``matcher`` of Claude Code settings run as command hooks
(:func:`settings_matcher`), which must fire exactly the hooks Claude Code fires:

* ``""`` or ``"*"``: every tool;
* only letters, digits, ``_``, ``-``, spaces, ``,`` and ``|``: exact names, separated by ``|``
  or ``,``, spaces around a name ignored (``"Edit|Write"``, ``"Edit, Write"``),
  case-sensitive;
* anything else: a regular expression (``"mcp__.*"``, ``"^Bash"``, ``"Notebook.*"``).

A tool is tried under its own name and under its Claude Code name
(:data:`DEFAULT_TOOL_ALIASES`; a ``CommandHooks`` plugin adds its ``aliases=``), and matches
when either does: ``"Bash"`` matches a host's ``bash`` and ``shell`` (and the ``bash`` that
``kithooks claude-hook`` hands plugins for Claude Code's ``Bash``), ``"bash"`` matches
``bash`` only, ``"Bash|mcp__fs__.*"`` matches ``bash``. A pattern that excludes a tool must
therefore exclude both of its names: ``"(?!(bash|shell|Bash)$).*"``.

The two callers differ in two ways, on purpose:

* **A regular expression in ``tools=`` must match the whole name** (``re.fullmatch``:
  ``"Edit|Write.*"`` is ``Edit``, or a name that starts with ``Write``). **In settings it
  matches anywhere in the name**, as Claude Code's JavaScript ``RegExp.test`` does:
  ``"^Bash"`` matches ``BashOutput``, ``"mcp__.*__delete"`` matches
  ``mcp__fs__delete_file``, ``"Write"`` alone (a plain name) matches ``Write`` only.
* **``tools=`` refuses a filter that could never match** (a :class:`ValueError` that says
  what to write, raised where the filter is written): an empty name (``"bash|"``); a
  pattern with spaces around a ``|`` (``"Bash | mcp__.*"``) or with a comma
  (``"Bash,mcp__.*"``: separate alternatives with ``|``) or with a
  glob's ``*`` after a name (``"mcp__*"``: write ``"mcp__.*"``); a pattern that does not
  compile. A name may hold spaces and dots (LangChain's ``"Intermediate Answer"``, an MCP
  server's ``"github.create_issue"``): a string with a dot is a pattern, and a dot
  matches itself too. Settings are read as Claude Code reads them, and only a pattern that
  does not compile is refused.

``tools=`` also takes a list or tuple of exact names, each stripped of surrounding spaces;
any name a tool may have is accepted, spaces and dots included. An item that can only be
meant as something else is refused, saying what to write: ``["*"]`` (leave ``tools=`` out),
``["mcp__.*"]`` (a pattern: the string ``"mcp__.*"``), ``["bash|shell"]`` or
``["bash, shell"]`` (several names: ``["bash", "shell"]``), ``[""]``; so is an empty list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

__all__ = [
    "DEFAULT_TOOL_ALIASES",
    "ToolSpec",
    "describe_tools",
    "named_tools",
    "settings_matcher",
    "tool_matcher",
]

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

#: A matcher of these characters only is a list of exact names (Claude Code's rule).
_PLAIN = re.compile(r"[A-Za-z0-9_\-\s,|]*")
_SEPARATOR = re.compile(r"[|,]")
#: What a list item cannot hold: a separator of several names, or a pattern's syntax.
_NOT_A_NAME = re.compile(r"[|,*+?^$()\[\]{}\\]")
#: A glob's star: ``*`` right after a name character (``mcp__*``), not escaped (escapes are
#: blanked before this is searched).
_GLOB_STAR = re.compile(r"[A-Za-z0-9_-]\*")
_ESCAPE = re.compile(r"\\.", re.DOTALL)
_QUANTIFIER = re.compile(r"\{\d*,\d*\}")
_EVERY = ("", "*")

#: A predicate on one name.
_Test = Callable[[str], bool]


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(
            f"tool matcher {pattern!r} is not a valid regular expression: {exc}"
        ) from None


def _either_name(test: _Test) -> _Test:
    """``test`` tried on the tool's own name, then on its Claude Code name."""
    aliases = DEFAULT_TOOL_ALIASES

    def matches(name: str) -> bool:
        if test(name):
            return True
        claude = aliases.get(name)
        return claude is not None and test(claude)

    return matches


def _named(names: Sequence[str]) -> frozenset[str]:
    """Exactly ``names``, and the host names whose Claude Code name is one of them."""
    wanted = frozenset(names)
    return wanted | {host for host, claude in DEFAULT_TOOL_ALIASES.items() if claude in wanted}


def _names(names: Sequence[str]) -> _Test:
    return _named(names).__contains__


def _read(spec: str) -> list[str] | str | None:
    """How a ``tools=`` string reads: None for every tool, its names (a list, empty names
    kept for the caller to refuse), or its regular expression (a str)."""
    text = spec.strip()
    if text in _EVERY:
        return None
    if _PLAIN.fullmatch(text):
        return [name.strip() for name in _SEPARATOR.split(text)]
    return text


def _refuse_bad_names(spec: str, names: list[str]) -> None:
    """A name of a ``tools=`` string that no tool has: empty, or holding a tab or a line
    break (a name may hold spaces: ``"Intermediate Answer"``)."""
    if not all(names):
        raise ValueError(
            f"tools={spec!r} has an empty name, which matches no tool; write the names "
            "separated by | (or ,) with none left empty"
        )
    for name in names:
        if any(c.isspace() and c != " " for c in name):
            parts = name.split()
            raise ValueError(
                f"tools={spec!r}: {name!r} holds a tab or a line break, which no tool name "
                f"has; separate names with | or , ({'|'.join(parts)!r})"
            )


def _refuse_dead_pattern(spec: str, pattern: str) -> None:
    """The obvious ways a ``tools=`` pattern matches no tool: spaces around a ``|`` or a
    comma (meant as separators), a glob's star."""
    unescaped = _ESCAPE.sub("\0\0", pattern)  # same length: indices still agree
    verbose = re.match(r"\(\?[a-zA-Z]*x", pattern) is not None  # (?x): spaces are ignored
    if not verbose and re.search(r"\s\||\|\s", unescaped):
        tight = re.sub(r"\s*\|\s*", "|", pattern)
        raise ValueError(
            f"tools={spec!r} is a regular expression, where the spaces around | are part of "
            f"the names it matches; write {tight!r}"
        )
    if "," in _QUANTIFIER.sub("", unescaped):
        raise ValueError(
            f"tools={spec!r} is a regular expression with a comma, but tool names have none; "
            f"in a pattern, separate alternatives with | ({pattern.replace(',', '|')!r})"
        )
    star = _GLOB_STAR.search(unescaped)
    if star is not None:
        at = star.end() - 1
        meant = pattern[:at] + ".*" + pattern[at + 1 :]
        raise ValueError(
            f"tools={spec!r}: a pattern is a regular expression, not a glob: "
            f"{pattern[: at + 1]!r} repeats the {pattern[at - 1]!r} before the *; "
            f"for any name starting so, write {meant!r}"
        )


def _list_item_error(spec: Sequence[str], item: str) -> ValueError:
    name = item.strip()
    listed = f"tools={list(spec)!r}"
    if name in _EVERY:
        if name == "*":
            why = "'*' in a list is a name no tool has; for every tool leave tools= out"
        else:
            why = "an empty name matches no tool; remove it"
        return ValueError(f"{listed}: {why}")
    if _PLAIN.fullmatch(name):
        parts = [p.strip() for p in _SEPARATOR.split(name) if p.strip()]
        return ValueError(
            f"{listed}: {item!r} is several names in one item, which matches no tool; "
            f"list them one per item ({parts!r}) or write the string {'|'.join(parts)!r}"
        )
    pattern = re.sub(r"(?<![.\\])\*", ".*", name)  # a glob's star, as a pattern's
    return ValueError(
        f"{listed}: {item!r} is a pattern, but a list holds exact names, so it matches no "
        f"tool; for a regular expression write the string tools={pattern!r}"
    )


def tool_matcher(spec: ToolSpec | None) -> Callable[[str], bool] | None:
    """Compile a ``tools=`` filter into a predicate on tool names (each tried under its
    Claude Code name too); None means "every tool". See the module docs for the rule.

    Raises :class:`ValueError` saying what to write when ``spec`` could match no tool (see
    the module docs) or is a regular expression that does not compile, and
    :class:`TypeError` when ``spec`` is neither a string nor a sequence of strings.
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        read = _read(spec)
        if read is None:
            return None
        if isinstance(read, list):
            _refuse_bad_names(spec, read)
            return _names(read)
        pattern = _compile(read)
        _refuse_dead_pattern(spec, read)
        return _either_name(lambda name: pattern.fullmatch(name) is not None)
    if isinstance(spec, Sequence) and all(isinstance(n, str) for n in spec):
        if not spec:
            raise ValueError("tool matcher: an empty list matches no tool; leave tools= out")
        for item in spec:
            if not item.strip() or _NOT_A_NAME.search(item):
                raise _list_item_error(spec, item)
        return _names([item.strip() for item in spec])
    raise TypeError(
        f"tool matcher must be a string or a list of tool names, not {type(spec).__name__}"
    )


def named_tools(spec: ToolSpec | None) -> frozenset[str] | str | None:
    """What a ``tools=`` filter names, read as :func:`tool_matcher` reads it (not checked:
    see :func:`tool_matcher` for what it refuses): None for every tool, the exact tool names
    it matches (a frozenset, with the host names of the Claude Code names in it), or the
    regular expression a name must match in full (a str). For tools that draw tool names a
    handler takes (``kithooks.testing``)."""
    if spec is None:
        return None
    read = _read(spec) if isinstance(spec, str) else [name.strip() for name in spec]
    if read is None or isinstance(read, str):
        return read
    return _named([name for name in read if name])


def settings_matcher(matcher: str) -> Callable[[str], bool] | None:
    """Compile the ``matcher`` of a Claude Code settings group as Claude Code reads it; None
    means "every tool". A regular expression matches anywhere in the name (JavaScript's
    ``RegExp.test``); the predicate tries the one name it is given, and the caller tries
    each name of the tool (``CommandHooks`` passes the Claude Code name and the host's).

    Raises :class:`ValueError` naming the pattern when a regular expression does not
    compile.
    """
    if matcher in _EVERY:
        return None
    if _PLAIN.fullmatch(matcher):
        return frozenset(name.strip() for name in _SEPARATOR.split(matcher)).__contains__
    pattern = _compile(matcher)
    return lambda name: pattern.search(name) is not None


def describe_tools(spec: ToolSpec | None) -> str:
    """How ``spec`` reads in listings: ``"*"`` for every tool."""
    if spec is None or (isinstance(spec, str) and spec.strip() in _EVERY):
        return "*"
    return spec if isinstance(spec, str) else "|".join(name.strip() for name in spec)
