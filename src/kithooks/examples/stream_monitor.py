"""Stream monitor: watches the streamed text and tool output of each turn and reports how
much streamed, how fast, at ``agent_end``: the kind of observer a UI or a logger is, on the
hottest events (``message_update`` per token, ``tool_output`` per line).

Its memory stays bounded however long the stream runs: a turn is a handful of counters (no
chunk is kept), and at most ``max_open_turns`` turns are tracked at once; a turn that never
reaches ``agent_end`` (an aborted run) is forgotten once newer turns push it out.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from kithooks import (
    AgentEndEvent,
    AgentStartEvent,
    Context,
    MessageUpdateEvent,
    ToolOutputEvent,
    hookimpl,
)

#: How many turns (session, turn id) are tracked at once by default.
MAX_OPEN_TURNS = 64


class StreamMonitor:
    """Per turn: streamed chunks and characters, tool output lines, and time to first token."""

    def __init__(self, max_open_turns: int = MAX_OPEN_TURNS) -> None:
        if max_open_turns < 1:
            raise ValueError(f"max_open_turns must be >= 1, got {max_open_turns}")
        self.max_open_turns = max_open_turns
        self._lock = threading.Lock()
        self._turns: OrderedDict[tuple[str, str], list[float]] = OrderedDict()

    def _open(self, key: tuple[str, str]) -> list[float]:
        # [start, first token time (0 = none yet), chunks, chars, tool output lines]
        with self._lock:
            turn = self._turns[key] = [time.monotonic(), 0.0, 0, 0, 0]
            self._turns.move_to_end(key)
            while len(self._turns) > self.max_open_turns:
                self._turns.popitem(last=False)
        return turn

    def _turn(self, ctx: Context) -> list[float]:
        key = (ctx.session_id, ctx.turn_id)
        turn = self._turns.get(key)
        if turn is None:
            with self._lock:
                turn = self._turns.get(key)
            if turn is None:
                turn = self._open(key)
        return turn

    @hookimpl
    def on_agent_start(self, event: AgentStartEvent, ctx: Context) -> None:
        """Start counting the turn."""
        self._open((ctx.session_id, ctx.turn_id))

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
