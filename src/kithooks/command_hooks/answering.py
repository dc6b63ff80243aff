"""The other direction: one Claude Code hook invocation answered by kithooks plugins.

:func:`answer` maps the invocation's JSON to the kithooks event, dispatches it with
``aemit`` (plain and coroutine handlers alike) and turns the merged result into the
protocol's answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from ..context import Context
from ..events import (
    AgentEndEvent,
    BeforeAgentStartEvent,
    BeforeCompactEvent,
    InputEvent,
    SessionShutdownEvent,
    SessionStartEvent,
    SubagentEndEvent,
    SubagentStartEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from ..manager import PluginManager
from .aliases import ToolAliases
from .protocol import plain

__all__ = ["Answer", "answer"]


@attrs.frozen(kw_only=True)
class Answer:
    """What the hook process prints and how it exits."""

    output: Mapping[str, Any] | None = None  #: JSON for stdout; None: print nothing
    exit_code: int = 0
    stderr: str = ""


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _specific(event_name: str, **fields: Any) -> dict[str, Any]:
    return {"hookSpecificOutput": {"hookEventName": event_name, **fields}}


def _block(reason: str, exit_code: bool, **extra: Any) -> Answer:
    if exit_code:
        return Answer(exit_code=2, stderr=reason)
    return Answer(output={"decision": "block", "reason": reason, **extra})


async def _pre_tool_use(
    pm: PluginManager, data: Mapping[str, Any], ctx: Context, aliases: ToolAliases, exit2: bool
) -> Answer:
    tool_input = data.get("tool_input")
    args = tool_input if isinstance(tool_input, Mapping) else {}
    event = ToolCallEvent(
        tool_name=aliases.host_name(str(data.get("tool_name") or "")),
        tool_call_id=str(data.get("tool_use_id") or ""),
        input=json.dumps(args, ensure_ascii=False),
        parsed_args=args,
        source="llm",
    )
    result = await pm.aemit(event, ctx)
    if result is None:
        return Answer()
    if result.block:
        reason = result.reason or "blocked by a kithooks plugin"
        if exit2:
            return Answer(exit_code=2, stderr=reason)
        return Answer(
            output=_specific(
                "PreToolUse", permissionDecision="deny", permissionDecisionReason=reason
            )
        )
    rewritten = getattr(result, "args", None)
    if rewritten is not None:
        return Answer(output=_specific("PreToolUse", updatedInput=plain(rewritten)))
    return Answer()


async def _post_tool_use(
    pm: PluginManager, data: Mapping[str, Any], ctx: Context, aliases: ToolAliases, exit2: bool
) -> Answer:
    failed = data.get("hook_event_name") == "PostToolUseFailure"
    tool_name = str(data.get("tool_name") or "")
    content = _text(data.get("error") if failed else data.get("tool_response"))
    event = ToolResultEvent(
        tool_call_id=str(data.get("tool_use_id") or ""),
        tool_name=aliases.host_name(tool_name),
        input=json.dumps(data.get("tool_input") or {}, ensure_ascii=False),
        content=content,
        is_error=failed,
    )
    result = await pm.aemit(event, ctx)
    if result is None or result.content is None or result.content == content:
        return Answer()
    name = str(data.get("hook_event_name") or "PostToolUse")
    if tool_name.startswith("mcp__") and not failed:
        return Answer(output=_specific(name, updatedMCPToolOutput=result.content))
    # Claude Code cannot replace a built-in tool's output: the model gets the plugins'
    # version as context next to it.
    note = f"kithooks plugins rewrote this tool result as:\n{result.content}"
    return Answer(output=_specific(name, additionalContext=note))


async def _user_prompt_submit(
    pm: PluginManager, data: Mapping[str, Any], ctx: Context, aliases: ToolAliases, exit2: bool
) -> Answer:
    prompt = str(data.get("prompt") or "")
    result = await pm.aemit(InputEvent(text=prompt, source="interactive"), ctx)
    context: list[str] = []
    if result is not None and result.action == "handled":
        return _block("The prompt was handled by a kithooks plugin.", exit2)
    if result is not None and result.action == "transform" and result.text != prompt:
        context.append(f"kithooks plugins rewrote the prompt as:\n{result.text}")
        prompt = result.text
    injection = await pm.aemit(BeforeAgentStartEvent(prompt=prompt), ctx)
    if injection is not None:
        context += [t for t in (injection.system_prompt, injection.inject_text) if t]
    if not context:
        return Answer()
    return Answer(output=_specific("UserPromptSubmit", additionalContext="\n\n".join(context)))


async def _pre_compact(
    pm: PluginManager, data: Mapping[str, Any], ctx: Context, aliases: ToolAliases, exit2: bool
) -> Answer:
    event = BeforeCompactEvent(is_automatic=data.get("trigger") == "auto")
    result = await pm.aemit(event, ctx)
    if result is not None and result.cancel:
        return _block(result.reason or "compaction cancelled by a kithooks plugin", exit2)
    return Answer()


async def _observed(
    pm: PluginManager, data: Mapping[str, Any], ctx: Context, aliases: ToolAliases, exit2: bool
) -> Answer:
    name = data.get("hook_event_name")
    agent = str(data.get("agent_id") or "")
    last = str(data.get("last_assistant_message") or "")
    if name == "SessionStart":
        await pm.aemit(SessionStartEvent(session_id=ctx.session_id), ctx)
    elif name == "SessionEnd":
        await pm.aemit(SessionShutdownEvent(), ctx)
    elif name == "SubagentStart":
        await pm.aemit(SubagentStartEvent(tool_call_id=agent), ctx)
    elif name == "SubagentStop":
        await pm.aemit(SubagentEndEvent(tool_call_id=agent, response=last), ctx)
    elif name == "Stop":
        await pm.aemit(AgentEndEvent(response=last, stop_reason="stop"), ctx)
    return Answer()


_ANSWERS = {
    "PreToolUse": _pre_tool_use,
    "PostToolUse": _post_tool_use,
    "PostToolUseFailure": _post_tool_use,
    "UserPromptSubmit": _user_prompt_submit,
    "PreCompact": _pre_compact,
    "SessionStart": _observed,
    "SessionEnd": _observed,
    "SubagentStart": _observed,
    "SubagentStop": _observed,
    "Stop": _observed,
}


async def answer(
    pm: PluginManager,
    data: Mapping[str, Any],
    ctx: Context,
    *,
    aliases: ToolAliases | None = None,
    block_with_exit_code: bool = False,
) -> Answer:
    """The protocol answer of ``pm``'s plugins to one hook invocation ``data``.

    A block is ``permissionDecision: deny`` (PreToolUse) or ``decision: block`` with the
    plugin's reason, or exit 2 with the reason on stderr when ``block_with_exit_code``; a
    rewrite is ``updatedInput``; nothing to say is exit 0 with no output. Events kithooks
    has no counterpart for get exit 0 and no output.
    """
    respond = _ANSWERS.get(str(data.get("hook_event_name") or ""))
    if respond is None:
        return Answer()
    return await respond(pm, data, ctx, aliases or ToolAliases(), block_with_exit_code)
