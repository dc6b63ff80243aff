"""Interim copy of ``kithooks.hosting.ToolRun`` (CORE-API.md section 5) until it lands on main.

The adapters import ``ToolRun`` from :mod:`kithooks.hosting` when it is there and fall back to
this module otherwise; the module goes away once main has the real one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..context import Context
from ..dispatch import RULES
from ..events import (
    EventType,
    ToolCallEvent,
    ToolExecutionEndEvent,
    ToolExecutionStartEvent,
    ToolResultEvent,
    tool_kind_for,
)
from ..hosting import ToolOutcome, ToolResponse, parse_args
from ..manager import PluginManager

__all__ = ["ToolRun"]


class ToolRun:
    """The events around one tool call: :meth:`start` before the tool, :meth:`finish` after."""

    def __init__(
        self,
        pm: PluginManager,
        *,
        tool_name: str,
        tool_call_id: str,
        input: str,
        ctx: Context | None = None,
        tool_kind: str | None = None,
    ) -> None:
        self.pm, self.ctx = pm, ctx
        self.tool_name, self.tool_call_id = tool_name, tool_call_id
        self.tool_kind = tool_kind or tool_kind_for(tool_name)
        self.input = input
        self.args: Mapping[str, Any] | None = None

    def _call_event(self) -> ToolCallEvent:
        return ToolCallEvent(
            tool_name=self.tool_name,
            tool_call_id=self.tool_call_id,
            tool_kind=self.tool_kind,
            input=self.input,
            parsed_args=parse_args(self.input),
            source="llm",
        )

    def _decide(self, result: Any) -> ToolOutcome | None:
        if result is None:
            return None
        if result.block:
            reason = result.reason or RULES[EventType.TOOL_CALL].default_reason
            return ToolOutcome(
                content=f"Error: {reason}", is_error=True, blocked=True, reason=reason
            )
        args = getattr(result, "args", None)
        if args is not None:
            import json

            self.args = args
            self.input = json.dumps(dict(args))
        return None

    def _start_event(self) -> ToolExecutionStartEvent:
        return ToolExecutionStartEvent(
            tool_call_id=self.tool_call_id, tool_name=self.tool_name, tool_kind=self.tool_kind
        )

    def _end_event(self) -> ToolExecutionEndEvent:
        return ToolExecutionEndEvent(
            tool_call_id=self.tool_call_id, tool_name=self.tool_name, tool_kind=self.tool_kind
        )

    def _result_event(self, response: ToolResponse) -> ToolResultEvent:
        return ToolResultEvent(
            tool_call_id=self.tool_call_id,
            tool_name=self.tool_name,
            tool_kind=self.tool_kind,
            input=self.input,
            content=response.content,
            is_error=response.is_error,
            metadata=response.metadata,
        )

    @staticmethod
    def _outcome(response: ToolResponse, result: Any) -> ToolOutcome:
        content, is_error = response.content, response.is_error
        if result is not None:
            if result.content is not None:
                content = result.content
            if result.is_error is not None:
                is_error = result.is_error
        return ToolOutcome(content=content, is_error=is_error, metadata=response.metadata)

    def start(self) -> ToolOutcome | None:
        """Emit ``tool_call`` then ``tool_execution_start``; an outcome means blocked."""
        pm = self.pm
        if pm.has_handlers(EventType.TOOL_CALL):
            blocked = self._decide(pm.emit(self._call_event(), self.ctx))
            if blocked is not None:
                return blocked
        if pm.has_handlers(EventType.TOOL_EXECUTION_START):
            pm.emit(self._start_event(), self.ctx)
        return None

    async def astart(self) -> ToolOutcome | None:
        """:meth:`start` with ``aemit``."""
        pm = self.pm
        if pm.has_handlers(EventType.TOOL_CALL):
            blocked = self._decide(await pm.aemit(self._call_event(), self.ctx))
            if blocked is not None:
                return blocked
        if pm.has_handlers(EventType.TOOL_EXECUTION_START):
            await pm.aemit(self._start_event(), self.ctx)
        return None

    def finish(self, response: ToolResponse) -> ToolOutcome:
        """Emit ``tool_execution_end`` then ``tool_result``; the merged rewrite applied."""
        pm = self.pm
        if pm.has_handlers(EventType.TOOL_EXECUTION_END):
            pm.emit(self._end_event(), self.ctx)
        result = None
        if pm.has_handlers(EventType.TOOL_RESULT):
            result = pm.emit(self._result_event(response), self.ctx)
        return self._outcome(response, result)

    async def afinish(self, response: ToolResponse) -> ToolOutcome:
        """:meth:`finish` with ``aemit``."""
        pm = self.pm
        if pm.has_handlers(EventType.TOOL_EXECUTION_END):
            await pm.aemit(self._end_event(), self.ctx)
        result = None
        if pm.has_handlers(EventType.TOOL_RESULT):
            result = await pm.aemit(self._result_event(response), self.ctx)
        return self._outcome(response, result)
