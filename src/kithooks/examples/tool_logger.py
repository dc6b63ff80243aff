"""Tool logger: records every tool event to a JSONL file with the recorder.

The file is ``$KITHOOKS_TOOL_LOG``, else ``~/.local/state/kithooks/tool-log.jsonl``; each
line is a recording line (``kithooks replay`` reads it). The file is opened at the first
tool event, not at import.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from kithooks import Context, Event, EventType, hookimpl
from kithooks.recording import Recorder

TOOL_EVENTS = frozenset(
    {
        EventType.TOOL_CALL,
        EventType.TOOL_EXECUTION_START,
        EventType.TOOL_OUTPUT,
        EventType.TOOL_EXECUTION_END,
        EventType.TOOL_RESULT,
    }
)


class _Log:
    """The recorder, opened at the first tool event (and again if the path changes)."""

    recorder: Recorder | None = None
    lock = threading.Lock()


def log_path() -> Path:
    """Where the log goes."""
    configured = os.environ.get("KITHOOKS_TOOL_LOG")
    if configured:
        return Path(configured)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(state) / "kithooks" / "tool-log.jsonl"


def _log(event: Event, ctx: Context) -> None:
    with _Log.lock:
        path = log_path()
        if _Log.recorder is None or _Log.recorder.path != path:
            if _Log.recorder is not None:
                _Log.recorder.close()
            _Log.recorder = Recorder(path, events=TOOL_EVENTS)
        recorder = _Log.recorder
    recorder.record(event, ctx)


@hookimpl(tryfirst=True)
def on_tool_call(event: Event, ctx: Context) -> None:
    """Log the call (blocked ones too: this runs before any guard)."""
    _log(event, ctx)


@hookimpl
def on_tool_execution_start(event: Event, ctx: Context) -> None:
    """Log the start of a run."""
    _log(event, ctx)


@hookimpl
def on_tool_output(event: Event, ctx: Context) -> None:
    """Log streamed output."""
    _log(event, ctx)


@hookimpl
def on_tool_execution_end(event: Event, ctx: Context) -> None:
    """Log the end of a run."""
    _log(event, ctx)


@hookimpl(tryfirst=True)
def on_tool_result(event: Event, ctx: Context) -> None:
    """Log the result as the tool gave it (before any rewrite)."""
    _log(event, ctx)
