"""Stream monitor: watches the streamed text and tool output of each turn and reports how
much streamed, how fast, at ``agent_end``: the kind of observer a UI or a logger is, on the
hottest events (``message_update`` per token, ``tool_output`` per line)."""

from __future__ import annotations

import threading
import time

from kithooks import (
    AgentEndEvent,
    AgentStartEvent,
    Context,
    MessageUpdateEvent,
    ToolOutputEvent,
    hookimpl,
)


class StreamMonitor:
    """Per turn: streamed chunks and characters, tool output lines, and time to first token."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turns: dict[tuple[str, str], list[float]] = {}

    def _turn(self, ctx: Context) -> list[float]:
        # [start, first token time (0 = none yet), chunks, chars, tool output lines]
        key = (ctx.session_id, ctx.turn_id)
        turn = self._turns.get(key)
        if turn is None:
            turn = self._turns[key] = [time.monotonic(), 0.0, 0, 0, 0]
        return turn

    @hookimpl
    def on_agent_start(self, event: AgentStartEvent, ctx: Context) -> None:
        """Start counting the turn."""
        with self._lock:
            self._turns[(ctx.session_id, ctx.turn_id)] = [time.monotonic(), 0.0, 0, 0, 0]

    @hookimpl
    def on_message_update(self, event: MessageUpdateEvent, ctx: Context) -> None:
        """Count one streamed chunk."""
        turn = self._turn(ctx)
        if not turn[1]:
            turn[1] = time.monotonic()
        turn[2] += 1
        turn[3] += len(event.chunk)

    @hookimpl
    def on_tool_output(self, event: ToolOutputEvent, ctx: Context) -> None:
        """Count one line of tool output."""
        self._turn(ctx)[4] += 1

    @hookimpl
    def on_agent_end(self, event: AgentEndEvent, ctx: Context) -> None:
        """Report the turn's streaming."""
        with self._lock:
            turn = self._turns.pop((ctx.session_id, ctx.turn_id), None)
        if turn is None:
            return
        start, first, chunks, chars, lines = turn
        ttft = f"{(first - start) * 1000:.0f}ms" if first else "-"
        counts = f"{int(chunks)} chunks, {int(chars)} chars, {int(lines)} tool output lines"
        ctx.print(f"[stream] {counts}, first token after {ttft}")


#: The plugin object to register (``pm.register(stream_monitor.plugin)``).
plugin = StreamMonitor()
