"""Claude Code's command-hook protocol, both ways.

* :class:`CommandHooks` runs the command hooks of a Claude-Code-shaped ``settings.json`` in any
  kithooks host (``CommandHooks.from_settings(path_or_mapping)``; :class:`AsyncCommandHooks`
  for ``aemit`` hosts).
* :data:`claude_hook` is the ``kithooks claude-hook`` command: kithooks plugins answering
  one Claude Code hook invocation.

See ``docs/command-hooks.md`` for the event table and what has no counterpart.
"""

from __future__ import annotations

from .aliases import DEFAULT_TOOL_ALIASES, ToolAliases
from .claude_hook import claude_hook, session_state_path
from .discovery import SETTINGS_FILE, discover_settings, plugins_for
from .plugin import AsyncCommandHooks, CommandHookError, CommandHooks
from .settings import (
    CLAUDE_EVENTS,
    DEFAULT_TIMEOUT,
    NO_COUNTERPART,
    HookSettings,
    SettingsError,
    load_settings,
)

__all__ = [
    "CLAUDE_EVENTS",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOOL_ALIASES",
    "NO_COUNTERPART",
    "SETTINGS_FILE",
    "AsyncCommandHooks",
    "CommandHookError",
    "CommandHooks",
    "HookSettings",
    "SettingsError",
    "ToolAliases",
    "claude_hook",
    "discover_settings",
    "load_settings",
    "plugins_for",
    "session_state_path",
]
