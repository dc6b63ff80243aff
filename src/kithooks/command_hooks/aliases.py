"""Tool names as kithooks hosts spell them, and as Claude Code hook scripts expect them."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["DEFAULT_TOOL_ALIASES", "ToolAliases"]

#: Host tool name -> Claude Code tool name. Extend it per plugin with ``aliases=``.
DEFAULT_TOOL_ALIASES: Mapping[str, str] = {
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
