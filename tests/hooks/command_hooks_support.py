"""Shared by the command-hook tests (not a hook): hook script paths, settings builders."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from kithooks import Context

HOOKS = Path(__file__).resolve().parent


def script(name: str, *args: object) -> str:
    """The shell command running tests/hooks/NAME (python scripts with this interpreter)."""
    path = HOOKS / name
    parts = [sys.executable, str(path)] if path.suffix == ".py" else [str(path)]
    return shlex.join([*parts, *(str(a) for a in args)])


def settings(event: str, *commands: str, matcher: str | None = None, timeout: float = 10):
    """``{"hooks": {event: [{"matcher": ..., "hooks": [...]}]}}`` with one group."""
    group: dict[str, Any] = {
        "hooks": [{"type": "command", "command": c, "timeout": timeout} for c in commands]
    }
    if matcher is not None:
        group["matcher"] = matcher
    return {"hooks": {event: [group]}}


def context_with_confirm(answer: bool, asked: list[str], **fields: Any) -> Context:
    """A Context whose ``confirm`` records the question and answers ``answer``."""

    def confirm(question: str) -> bool:
        asked.append(question)
        return answer

    return Context(confirm=confirm, **fields)
