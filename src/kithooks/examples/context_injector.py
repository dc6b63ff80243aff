"""Context injector: adds the project's rules to every turn via ``before_agent_start``.

The rules are the first of ``AGENTS.md``, ``KITHOOKS.md`` or ``.kithooks/rules.md`` found in
the session's working directory (``ctx.cwd``, else the process's).
"""

from __future__ import annotations

import os
from pathlib import Path

from kithooks import BeforeAgentStartEvent, BeforeAgentStartResult, Context, hookimpl

RULE_FILES = ("AGENTS.md", "KITHOOKS.md", ".kithooks/rules.md")
MAX_BYTES = 16_000


def find_rules(cwd: str) -> tuple[Path, str] | None:
    """The project's rules file and its text (cut at ``MAX_BYTES``), or None."""
    root = Path(cwd or os.getcwd())
    for name in RULE_FILES:
        path = root / name
        if path.is_file():
            text = path.read_bytes()[:MAX_BYTES].decode("utf-8", errors="replace").strip()
            if text:
                return path, text
    return None


@hookimpl
def on_before_agent_start(
    event: BeforeAgentStartEvent, ctx: Context
) -> BeforeAgentStartResult | None:
    """Inject the project rules ahead of the prompt."""
    found = find_rules(ctx.cwd)
    if found is None:
        return None
    path, text = found
    return BeforeAgentStartResult(inject_text=f"Project rules ({path.name}):\n\n{text}")
