"""Secret redactor: rewrites tool results so secrets never reach the model."""

from __future__ import annotations

import re

from kithooks import Context, ToolResultEvent, ToolResultResult, hookimpl

#: (kind, pattern): each match is replaced by ``[REDACTED:<kind>]``.
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(p))
    for kind, p in (
        (
            "private-key",
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
        ),
        ("anthropic-key", r"\bsk-ant-[A-Za-z0-9_\-]{20,}"),
        ("openai-key", r"\bsk-(?:proj-)?[A-Za-z0-9_\-]{20,}"),
        ("github-token", r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
        ("aws-access-key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
        ("slack-token", r"\bxox[baprs]-[A-Za-z0-9-]{10,}"),
    )
)
_ASSIGNMENT = re.compile(
    r"(?im)^(\s*(?:export\s+)?[A-Z0-9_]*(?:SECRET|PASSWORD|PASSWD|TOKEN|API_KEY)[A-Z0-9_]*\s*[=:]\s*)(\S+)"
)


def redact(text: str) -> str:
    """``text`` with every secret it recognizes replaced."""
    for kind, pattern in PATTERNS:
        text = pattern.sub(f"[REDACTED:{kind}]", text)
    return _ASSIGNMENT.sub(
        lambda m: (
            m.group(0)
            if m.group(2).startswith("[REDACTED")
            else m.group(1) + "[REDACTED:assignment]"
        ),
        text,
    )


@hookimpl
def on_tool_result(event: ToolResultEvent, ctx: Context) -> ToolResultResult | None:
    """Rewrite the result when it holds a secret."""
    cleaned = redact(event.content)
    if cleaned == event.content:
        return None
    return ToolResultResult(content=cleaned)
