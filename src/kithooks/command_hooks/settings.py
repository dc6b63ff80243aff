"""Reading and checking a Claude-Code-shaped hook settings mapping or file.

The accepted shape is Claude Code's ``settings.json``::

    {"hooks": {"PreToolUse": [{"matcher": "Bash",
                               "hooks": [{"type": "command", "command": "...", "timeout": 30}]}]}}

Everything else in a settings file (``permissions``, ``env``, ...) is ignored. A wrong entry
is a :class:`SettingsError` naming the file and the entry's path, and so is a source that
gives no command hook kithooks can run: no ``"hooks"`` object, an empty one, or only events
and hook types that are not run here. A plugin loaded from it would do nothing, and a guard
that is not there must not look like a guard that allowed the call. ``"disableAllHooks":
true`` turns the source's hooks off, as in Claude Code, with a warning saying so.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ..events import EventType
from ..matching import settings_matcher

__all__ = [
    "CLAUDE_EVENTS",
    "CLAUDE_HOOK_TYPES",
    "DEFAULT_TIMEOUT",
    "NO_COUNTERPART",
    "CommandHook",
    "HookSettings",
    "MatcherGroup",
    "SettingsError",
    "load_settings",
]

logger = logging.getLogger("kithooks")

#: Seconds a command may run when its entry gives no ``timeout`` (Claude Code's default).
DEFAULT_TIMEOUT = 60.0

#: Claude Code's hook events that have a kithooks counterpart, and that counterpart.
#: ``PostToolUse`` and ``PostToolUseFailure`` are both ``tool_result`` (with ``is_error``
#: False and True); ``Stop`` is ``agent_end``.
CLAUDE_EVENTS: Mapping[str, EventType] = {
    "PreToolUse": EventType.TOOL_CALL,
    "PostToolUse": EventType.TOOL_RESULT,
    "PostToolUseFailure": EventType.TOOL_RESULT,
    "UserPromptSubmit": EventType.INPUT,
    "SessionStart": EventType.SESSION_START,
    "SessionEnd": EventType.SESSION_SHUTDOWN,
    "PreCompact": EventType.BEFORE_COMPACT,
    "SubagentStart": EventType.SUBAGENT_START,
    "SubagentStop": EventType.SUBAGENT_END,
    "Stop": EventType.AGENT_END,
}

#: Claude Code events kithooks has no counterpart for: accepted in a settings file, never run.
NO_COUNTERPART: frozenset[str] = frozenset(
    {
        "PermissionRequest",
        "PermissionDenied",
        "Notification",
        "PostCompact",
        "StopFailure",
        "Setup",
        "ConfigChange",
        "InstructionsLoaded",
        "TeammateIdle",
        "TaskCompleted",
        "TaskCreated",
        "WorktreeCreate",
        "WorktreeRemove",
        "Elicitation",
        "ElicitationResult",
        "CwdChanged",
        "FileChanged",
        "PostToolBatch",
        "UserPromptExpansion",
        "PreModelSwitch",
        "PostModelSwitch",
        "MessageDisplay",
        "DirectoryAdded",
    }
)


#: Claude Code's hook types. Only ``command`` runs here; the others are accepted and skipped.
CLAUDE_HOOK_TYPES: frozenset[str] = frozenset({"command", "prompt", "agent", "http", "mcp_tool"})


class SettingsError(ValueError):
    """A hook settings file or mapping that cannot be used; the message names the entry."""


@attrs.frozen(kw_only=True)
class CommandHook:
    """One ``{"type": "command", ...}`` entry."""

    command: str
    timeout: float  #: seconds
    where: str  #: ``settings.json: hooks.PreToolUse[0].hooks[0]``


@attrs.frozen(kw_only=True)
class MatcherGroup:
    """One entry of an event's list: a matcher and its commands."""

    matcher: str  #: as written; ``""`` when absent
    matches: Callable[[str], bool] = attrs.field(eq=False, repr=False)
    hooks: tuple[CommandHook, ...]


@attrs.frozen(kw_only=True)
class HookSettings:
    """The command hooks of one settings source, by Claude Code event name."""

    source: str  #: the file's path, or ``<settings>`` for a mapping
    events: Mapping[str, tuple[MatcherGroup, ...]]
    #: Entries that are valid for Claude Code but are not run here, each with why.
    skipped: tuple[str, ...] = ()
    #: ``"disableAllHooks": true``: the source's hooks are off (``events`` is empty).
    disabled: bool = False

    def kit_events(self) -> frozenset[EventType]:
        """The kithooks events some command listens to."""
        return frozenset(
            CLAUDE_EVENTS[name]
            for name, groups in self.events.items()
            if any(group.hooks for group in groups)
        )


def _every_name(name: str) -> bool:
    return True


def _fail(source: str, where: str, message: str) -> SettingsError:
    return SettingsError(f"{source}: {where}: {message}" if where else f"{source}: {message}")


def _read_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: not UTF-8 text: {exc}") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"{path}: line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}"
        ) from None
    except _DuplicateKey as exc:
        raise SettingsError(
            f"{path}: the key {exc.key!r} appears twice in one object: JSON keeps only the "
            "last, so the hooks under the first would never run; merge the two"
        ) from None


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _edits(a: str, b: str) -> int:
    """How many one-letter edits (insert, delete, replace, swap two neighbours) turn ``a``
    into ``b`` (the optimal string alignment distance)."""
    rows = [list(range(len(b) + 1))]
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            cost = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, rows[-2][j - 2] + 1)
            row.append(cost)
        rows.append(row)
    return rows[-1][-1]


def _misspelt(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'X'?)`` when ``name`` is a misspelling of the known event name
    ``X``: the same once case, spaces, ``_`` and ``-`` are set aside, or one edit off (two
    for names of eight letters and more); else ``""``. Claude Code names its events in
    families (``PostToolBatch`` beside ``PostToolUse``), so a looser match would take its
    newer events for misspellings."""
    folded = re.sub(r"[\s_-]", "", name).lower()
    for option in sorted(known):
        allowed = 1 if len(option) < 8 else 2
        if folded == option.lower() or _edits(name.strip(), option) <= allowed:
            return f" (did you mean {option!r}?)"
    return ""


def _closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice nearest ``name`` (the same in another case first), or None."""
    options = sorted(choices)
    folded = [c for c in options if c.lower() == name.lower()]
    close = folded or difflib.get_close_matches(name, options, n=1)
    return close[0] if close else None


def _nearest(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'X'?)`` for the choice nearest ``name`` (case first), or ``""``."""
    close = _closest(name, choices)
    return "" if close is None else f" (did you mean {close!r}?)"


def _timeout(source: str, where: str, raw: Any) -> float:
    if raw is None:
        return DEFAULT_TIMEOUT
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not raw > 0:
        raise _fail(source, where, f'"timeout" must be a positive number of seconds, got {raw!r}')
    return float(raw)


def _hook(source: str, where: str, raw: Any, skipped: list[str]) -> CommandHook | None:
    if not isinstance(raw, Mapping):
        raise _fail(source, where, f"must be an object, got {type(raw).__name__}")
    kind = raw.get("type")
    if kind is None:
        raise _fail(source, where, '"type" is missing')
    if not isinstance(kind, str):
        raise _fail(source, where, f'"type" must be a string, got {kind!r}')
    if kind not in CLAUDE_HOOK_TYPES:
        known = ", ".join(sorted(CLAUDE_HOOK_TYPES))
        hint = _nearest(kind.strip(), CLAUDE_HOOK_TYPES)
        if hint:  # a misspelt "command": its hook would silently never run
            raise _fail(
                source, where, f"unknown hook type {kind!r}{hint}; Claude Code's are {known}"
            )
        skipped.append(  # a type newer than this kithooks: like the types it does not run
            f"{where}: unknown hook type {kind!r} (newer than this kithooks?) is not run "
            f"(only 'command'; Claude Code's known types are {known})"
        )
        return None
    if kind != "command":
        skipped.append(f"{where}: hooks of type {kind!r} are not run (only 'command')")
        return None
    if "command" not in raw:
        raise _fail(source, where, '"command" is missing')
    command = raw["command"]
    if not isinstance(command, str) or not command.strip():
        raise _fail(source, where, f'"command" must be a non-empty string, got {command!r}')
    timeout = _timeout(source, where, raw.get("timeout"))
    return CommandHook(command=command, timeout=timeout, where=f"{source}: {where}")


def _group(source: str, where: str, raw: Any, skipped: list[str]) -> MatcherGroup:
    if not isinstance(raw, Mapping):
        raise _fail(source, where, f"must be an object, got {type(raw).__name__}")
    matcher = raw.get("matcher", "")
    if matcher is None:
        matcher = ""
    if not isinstance(matcher, str):
        raise _fail(source, where, f'"matcher" must be a string, got {matcher!r}')
    try:
        matches = settings_matcher(matcher) or _every_name
    except ValueError as exc:
        raise _fail(source, where, f'"matcher": {exc}') from None
    if "hooks" not in raw:
        near = _near_hooks(raw)
        raise _fail(source, where, '"hooks" is missing' + (f"; {near}" if near else ""))
    hooks_raw = raw["hooks"]
    if not isinstance(hooks_raw, list):
        raise _fail(source, f"{where}.hooks", f"must be a list, got {type(hooks_raw).__name__}")
    hooks = []
    for i, item in enumerate(hooks_raw):
        hook = _hook(source, f"{where}.hooks[{i}]", item, skipped)
        if hook is not None:
            hooks.append(hook)
    return MatcherGroup(matcher=matcher, matches=matches, hooks=tuple(hooks))


def _near_hooks(keys: Iterable[Any]) -> str:
    """``did you mean "hooks" instead of "hook"?`` for a key close to ``hooks``, or ``""``."""
    for key in keys:
        if isinstance(key, str) and key != "hooks" and _nearest(key.strip(), ["hooks"]):
            return f'did you mean "hooks" instead of {json.dumps(key)}?'
    return ""


def _missing_hooks(data: Mapping[Any, Any]) -> str:
    """Why a settings object without a ``"hooks"`` key gives no hook, with the likely fix."""
    keys = [str(k) for k in data]
    shown = ", ".join(json.dumps(k) for k in keys)
    events = [k for k in keys if k in CLAUDE_EVENTS or k in NO_COUNTERPART]
    if events:
        return (
            f'no "hooks" object: the top-level keys {shown} look like hook events; '
            f'did you mean {{"hooks": {{{json.dumps(events[0])}: [...]}}}}?'
        )
    near = _near_hooks(keys)
    if near:
        return f'no "hooks" object (top-level keys: {shown}); {near}'
    if keys:
        return f'no "hooks" object (top-level keys: {shown}), so no command hook to run'
    return 'no "hooks" object (the settings are an empty object), so no command hook to run'


def _nothing_runs(
    hooks: Mapping[str, Any], events: Mapping[str, tuple[MatcherGroup, ...]], skipped: list[str]
) -> str:
    """Why a ``"hooks"`` object gives no command hook that kithooks can run."""
    if not hooks:
        return (
            '"hooks" is empty, so no command hook to run (to run none, delete the file or set '
            '"disableAllHooks": true)'
        )
    reasons = list(skipped)
    for name, groups in events.items():
        if not groups:
            reasons.append(f"hooks.{name}: the list is empty")
        else:
            reasons.extend(
                f"hooks.{name}[{i}].hooks: the list is empty"
                for i, group in enumerate(groups)
                if not group.hooks and not any(r.startswith(f"hooks.{name}[{i}].") for r in skipped)
            )
    return "no command hook that kithooks can run: " + "; ".join(reasons)


def _parse(source: str, data: Any) -> HookSettings:
    if not isinstance(data, Mapping):
        raise _fail(source, "", f"settings must be a JSON object, got {type(data).__name__}")
    disabled = data.get("disableAllHooks", False)
    if not isinstance(disabled, bool):
        raise _fail(source, "disableAllHooks", f"must be true or false, got {disabled!r}")
    if disabled:
        # Claude Code runs no hook while a settings file says so; neither does kithooks.
        logger.warning(
            'kithooks command hooks: %s: "disableAllHooks" is true, so its hooks are off', source
        )
        return HookSettings(source=source, events={}, disabled=True)
    if "hooks" not in data:
        raise _fail(source, "", _missing_hooks(data))
    hooks = data["hooks"]
    if not isinstance(hooks, Mapping):
        raise _fail(source, "hooks", f"must be an object, got {type(hooks).__name__}")
    events: dict[str, tuple[MatcherGroup, ...]] = {}
    skipped: list[str] = []
    for name, entries in hooks.items():
        where = f"hooks.{name}"
        if name not in CLAUDE_EVENTS and name not in NO_COUNTERPART:
            known = [*CLAUDE_EVENTS, *NO_COUNTERPART]
            hint = _misspelt(str(name), known)
            if hint:  # a misspelt event: its hooks would silently never run
                raise _fail(source, where, f"unknown hook event {name!r}{hint}")
            # Like no known event: one newer than this kithooks, which has no counterpart.
            close = _closest(str(name), known)
            maybe = "" if close is None else f" or did you mean {close!r}?"
            skipped.append(
                f"{where}: unknown hook event {name!r} (newer than this kithooks?{maybe}): "
                "kithooks has no counterpart of it"
            )
            continue
        if not isinstance(entries, list):
            raise _fail(source, where, f"must be a list, got {type(entries).__name__}")
        groups = tuple(
            _group(source, f"{where}[{i}]", entry, skipped) for i, entry in enumerate(entries)
        )
        if name in CLAUDE_EVENTS:
            events[name] = groups
        else:
            skipped.append(f"{where}: kithooks has no counterpart of {name}")
    loaded = HookSettings(
        source=source, events=events, skipped=tuple(f"{source}: {line}" for line in skipped)
    )
    if not loaded.kit_events():
        raise _fail(source, "", _nothing_runs(hooks, events, skipped))
    for line in loaded.skipped:
        logger.warning("kithooks command hooks: %s; skipped", line)
    return loaded


def load_settings(settings: Mapping[str, Any] | str | os.PathLike[str]) -> HookSettings:
    """Check a settings mapping, or read and check a settings file.

    Raises :class:`SettingsError` naming the file and the entry, e.g.
    ``settings.json: hooks.PreToolUse[0].hooks[0]: "command" is missing``; a misspelt event
    name or hook type (with the nearest valid one; one close to none is skipped, as newer
    than this kithooks), a key given twice in one object of a file,
    and settings that give no command hook kithooks can run (no ``"hooks"`` object, an empty
    one, only events or hook types not run here) are errors too. Events and hook types that
    are valid for Claude Code but not run here are listed in ``skipped`` and logged as
    warnings on logger ``kithooks`` (when something else runs). ``"disableAllHooks": true``
    gives ``disabled`` settings with no events, and a warning saying the hooks are off.
    """
    if isinstance(settings, str | os.PathLike):
        path = Path(settings)
        return _parse(str(path), _read_file(path))
    return _parse("<settings>", settings)
