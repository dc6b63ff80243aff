"""Permission gate: blocks dangerous shell commands before they run, with a reason.

Shell tools are matched by name as hosts spell them (``bash``, ``Bash``, ``shell``,
``run_shell_command`` ...), case-insensitively: KIT's protected-paths example compared
``"Bash"`` with the core tool ``bash`` and never matched anything.
"""

from __future__ import annotations

import re

from kithooks import Context, ToolCallEvent, ToolCallResult, hookimpl

SHELL_TOOLS = frozenset({"bash", "shell", "sh", "zsh", "terminal", "exec", "run_shell_command"})

#: (pattern, why) pairs; a command matching any of them is blocked.
DANGEROUS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), why)
    for p, why in (
        (
            r"\brm\s+(?=[^;&|]*-[a-zA-Z]*[rR])(?:-\S+\s+)*(?:/|~/?|\$HOME/?)\*?(?:\s|;|&|$)",
            "recursively deletes the root or home directory",
        ),
        (r"\bmkfs(\.\w+)?\b", "formats a file system"),
        (r"\bdd\b.*\bof=/dev/(sd|nvme|hd|disk)", "overwrites a disk"),
        (r":\(\)\s*\{\s*:\|:&\s*\};:", "is a fork bomb"),
        (r"\bchmod\s+(-R\s+)?777\s+/(\s|$)", "opens the whole file system to everyone"),
        (r"\b(curl|wget)\b[^|]*\|\s*(sudo\s+)?(ba|z)?sh\b", "pipes a download into a shell"),
        (r"\bgit\s+push\b.*(--force|-f)\b.*\b(main|master)\b", "force-pushes the main branch"),
    )
)


def command_of(event: ToolCallEvent) -> str:
    """The shell command of a tool call: its ``command`` / ``cmd`` argument, else the input."""
    args = event.parsed_args or {}
    for key in ("command", "cmd"):
        value = args.get(key)
        if isinstance(value, str):
            return value
    return event.input


def check(command: str) -> str | None:
    """Why ``command`` is dangerous, or None."""
    for pattern, why in DANGEROUS:
        if pattern.search(command):
            return why
    return None


@hookimpl
def on_tool_call(event: ToolCallEvent, ctx: Context) -> ToolCallResult | None:
    """Block a shell tool call whose command is dangerous."""
    if event.tool_name.lower() not in SHELL_TOOLS:
        return None
    command = command_of(event)
    why = check(command)
    if why is None:
        return None
    return ToolCallResult(block=True, reason=f"permission gate: `{command}` {why}")
