"""Tool names as kithooks hosts spell them, and as Claude Code hook scripts expect them.

The host -> Claude Code table, :data:`DEFAULT_TOOL_ALIASES`, lives in :mod:`kithooks.matching`,
whose tool matchers use it; this module adds the other direction and per-plugin additions.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..matching import DEFAULT_TOOL_ALIASES

__all__ = ["DEFAULT_TOOL_ALIASES", "ToolAliases"]

#: Claude Code tool name -> the host name ``kithooks claude-hook`` gives plugins.
_CLAUDE_TO_HOST: Mapping[str, str] = {
    "Bash": "bash",
    "Read": "read",
    "Write": "write",
    "Edit": "edit",
    "MultiEdit": "multi_edit",
    "Glob": "glob",
    "Grep": "grep",
    "LS": "ls",
    "WebFetch": "web_fetch",
    "WebSearch": "web_search",
    "Task": "task",
    "TodoWrite": "todo_write",
    "NotebookEdit": "notebook_edit",
}


class ToolAliases:
    """Both directions of the alias table, with a caller's additions on top of the default."""

    __slots__ = ("to_claude", "to_host")

    def __init__(self, extra: Mapping[str, str] | None = None) -> None:
        self.to_claude: dict[str, str] = {**DEFAULT_TOOL_ALIASES, **(extra or {})}
        self.to_host: dict[str, str] = dict(_CLAUDE_TO_HOST)
        for host, claude in (extra or {}).items():
            self.to_host[claude] = host

    def claude_name(self, host_name: str) -> str:
        """The name a Claude Code script expects for the host's tool (unknown: unchanged)."""
        return self.to_claude.get(host_name, host_name)

    def host_name(self, claude_name: str) -> str:
        """The host name of a Claude Code tool (unknown, e.g. ``mcp__x__y``: unchanged)."""
        return self.to_host.get(claude_name, claude_name)
