"""The other direction: one Claude Code hook invocation answered by kithooks plugins.

:func:`steps` maps the invocation's JSON to kithooks events as a host sequence
(:mod:`kithooks.hosting`: it yields each event and is sent the merged result) and turns
the results into the protocol's answer. :func:`answer` runs it with ``aemit`` (plain and
coroutine handlers alike); :func:`answer_sync` uses ``emit`` until an event has a
coroutine handler, so that a ``claude-hook`` process whose plugins have none never
imports asyncio.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Generator, Mapping
from typing import Any, cast

import attrs

from ..context import Context
from ..events import (
    AgentEndEvent,
    BeforeAgentStartEvent,
    BeforeCompactEvent,
    Event,
    InputEvent,
    SessionShutdownEvent,
    SessionStartEvent,
    SubagentEndEvent,
    SubagentStartEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from ..hosting import adrive
from ..manager import PluginManager
from .aliases import ToolAliases
from .protocol import plain

__all__ = ["ANSWERED_EVENTS", "Answer", "answer", "answer_sync", "refusal", "steps"]

#: A host sequence answering one invocation (see :func:`steps`).
Steps = Generator[Event, Any, "Answer"]


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


#: The permission decisions a rewrite of a tool's arguments may come with (see :func:`steps`).
REWRITE_DECISIONS = ("ask", "allow")


@attrs.frozen
class _How:
    """How one invocation is answered: the alias table, blocks as exit 2, the decision
    that carries a rewrite."""

    aliases: ToolAliases
    exit2: bool
    rewrite_decision: str


def _specific(event_name: str, **fields: Any) -> dict[str, Any]:
    return {"hookSpecificOutput": {"hookEventName": event_name, **fields}}


def _block(reason: str, exit_code: bool, **extra: Any) -> Answer:
    if exit_code:
        return Answer(exit_code=2, stderr=reason)
    return Answer(output={"decision": "block", "reason": reason, **extra})


def refusal(event_name: str, reason: str, *, block_with_exit_code: bool = False) -> Answer:
    """The answer that blocks invocation ``event_name`` with ``reason``, as a plugin's block
    would: a deny for ``PreToolUse``, ``decision: "block"`` elsewhere; exit 2 with the reason
    on stderr when ``block_with_exit_code``."""
    if event_name == "PreToolUse" and not block_with_exit_code:
        return Answer(
            output=_specific(
                "PreToolUse", permissionDecision="deny", permissionDecisionReason=reason
            )
        )
    return _block(reason, block_with_exit_code)


def _pre_tool_use(data: Mapping[str, Any], ctx: Context, how: _How) -> Steps:
    tool_input = data.get("tool_input")
    # Claude Code sends an object; anything else is shown as its JSON text (no parsed_args),
    # never as "no arguments".
    args = tool_input if isinstance(tool_input, Mapping) else {} if tool_input is None else None
    event = ToolCallEvent(
        tool_name=how.aliases.host_name(str(data.get("tool_name") or "")),
        tool_call_id=str(data.get("tool_use_id") or ""),
        input=json.dumps(tool_input if args is None else args, ensure_ascii=False),
        parsed_args=args,
        source="llm",
    )
    result = yield event
    if result is None:
        return Answer()
    if result.block:
        reason = result.reason or "blocked by a kithooks plugin"
        return refusal("PreToolUse", reason, block_with_exit_code=how.exit2)
    rewritten = getattr(result, "args", None)
    if rewritten is not None:
        # Claude Code drops an updatedInput that comes with no permission decision, and
        # the call would run with its original arguments.
        return Answer(
            output=_specific(
                "PreToolUse",
                permissionDecision=how.rewrite_decision,
                permissionDecisionReason="kithooks plugins rewrote the tool's arguments",
                updatedInput=plain(rewritten),
            )
        )
    return Answer()


def _post_tool_use(data: Mapping[str, Any], ctx: Context, how: _How) -> Steps:
    failed = data.get("hook_event_name") == "PostToolUseFailure"
    tool_name = str(data.get("tool_name") or "")
    content = _text(data.get("error") if failed else data.get("tool_response"))
    event = ToolResultEvent(
        tool_call_id=str(data.get("tool_use_id") or ""),
        tool_name=how.aliases.host_name(tool_name),
        input=json.dumps(data.get("tool_input") or {}, ensure_ascii=False),
        content=content,
        is_error=failed,
    )
    result = yield event
    if result is None or result.content is None or result.content == content:
        return Answer()
    name = str(data.get("hook_event_name") or "PostToolUse")
    if tool_name.startswith("mcp__") and not failed:
        return Answer(output=_specific(name, updatedMCPToolOutput=result.content))
    # Claude Code cannot replace a built-in tool's output: the model gets the plugins'
    # version as context next to it.
    note = f"kithooks plugins rewrote this tool result as:\n{result.content}"
    return Answer(output=_specific(name, additionalContext=note))


def _user_prompt_submit(data: Mapping[str, Any], ctx: Context, how: _How) -> Steps:
    prompt = str(data.get("prompt") or "")
    result = yield InputEvent(text=prompt, source="interactive")
    context: list[str] = []
    if result is not None and result.action == "handled":
        return _block("The prompt was handled by a kithooks plugin.", how.exit2)
    if result is not None and result.action == "transform" and result.text != prompt:
        context.append(f"kithooks plugins rewrote the prompt as:\n{result.text}")
        prompt = result.text
    injection = yield BeforeAgentStartEvent(prompt=prompt)
    if injection is not None:
        context += [t for t in (injection.system_prompt, injection.inject_text) if t]
    if not context:
        return Answer()
    return Answer(output=_specific("UserPromptSubmit", additionalContext="\n\n".join(context)))


def _pre_compact(data: Mapping[str, Any], ctx: Context, how: _How) -> Steps:
    event = BeforeCompactEvent(is_automatic=data.get("trigger") == "auto")
    result = yield event
    if result is not None and result.cancel:
        return _block(result.reason or "compaction cancelled by a kithooks plugin", how.exit2)
    return Answer()


def _observed(data: Mapping[str, Any], ctx: Context, how: _How) -> Steps:
    name = data.get("hook_event_name")
    agent = str(data.get("agent_id") or "")
    last = str(data.get("last_assistant_message") or "")
    if name == "SessionStart":
        yield SessionStartEvent(session_id=ctx.session_id)
    elif name == "SessionEnd":
        yield SessionShutdownEvent()
    elif name == "SubagentStart":
        yield SubagentStartEvent(tool_call_id=agent)
    elif name == "SubagentStop":
        yield SubagentEndEvent(tool_call_id=agent, response=last)
    elif name == "Stop":
        yield AgentEndEvent(response=last, stop_reason="stop")
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

#: The invocations (``hook_event_name``) that emit kithooks events; any other is answered
#: with exit 0 and no output, whatever the plugins.
ANSWERED_EVENTS = frozenset(_ANSWERS)


def steps(
    data: Mapping[str, Any],
    ctx: Context,
    *,
    aliases: ToolAliases | None = None,
    block_with_exit_code: bool = False,
    rewrite_decision: str = "ask",
) -> Steps:
    """The events one hook invocation ``data`` emits, and the protocol answer their results
    make, as a host sequence: run it with :func:`kithooks.hosting.drive` or ``adrive``.

    A block is ``permissionDecision: deny`` (PreToolUse) or ``decision: block`` with the
    plugin's reason, or exit 2 with the reason on stderr when ``block_with_exit_code``; a
    rewrite of a tool's arguments is ``updatedInput`` with ``permissionDecision``
    ``rewrite_decision``: ``"ask"`` (the user is shown the rewritten call and asked) or
    ``"allow"`` (it runs without the permission prompt; Claude Code's deny and ask rules
    still apply). Nothing to say is exit 0 with no output. Events kithooks has no
    counterpart for emit nothing and get exit 0 and no output. A ``rewrite_decision`` not
    in :data:`REWRITE_DECISIONS` is a ValueError.
    """
    if rewrite_decision not in REWRITE_DECISIONS:
        raise ValueError(
            f"rewrite_decision must be one of {', '.join(REWRITE_DECISIONS)}, "
            f"not {rewrite_decision!r}"
        )
    respond = _ANSWERS.get(str(data.get("hook_event_name") or ""))
    if respond is None:
        return Answer()
    how = _How(aliases or ToolAliases(), block_with_exit_code, rewrite_decision)
    return (yield from respond(data, ctx, how))


async def answer(
    pm: PluginManager,
    data: Mapping[str, Any],
    ctx: Context,
    *,
    aliases: ToolAliases | None = None,
    block_with_exit_code: bool = False,
    rewrite_decision: str = "ask",
) -> Answer:
    """The protocol answer of ``pm``'s plugins to one hook invocation ``data`` (see
    :func:`steps`), dispatched with ``aemit``: coroutine handlers are awaited."""
    sequence = steps(
        data,
        ctx,
        aliases=aliases,
        block_with_exit_code=block_with_exit_code,
        rewrite_decision=rewrite_decision,
    )
    return await adrive(pm, sequence, ctx)


def answer_sync(
    pm: PluginManager,
    data: Mapping[str, Any],
    ctx: Context,
    *,
    aliases: ToolAliases | None = None,
    block_with_exit_code: bool = False,
    rewrite_decision: str = "ask",
) -> Answer:
    """:func:`answer` for a program with no event loop running (else a RuntimeError, before
    any event): each event is emitted with ``emit`` until one has a coroutine handler; from
    that one on, with ``aemit`` on a new event loop (``asyncio.run``). asyncio is imported
    only then: most hook calls need none. So plain handlers run as in any sync host, with
    no event loop running, unless an earlier event of the invocation started one.
    """
    if _loop_running():
        raise RuntimeError("answer_sync() cannot run inside an event loop: await answer()")
    sequence = steps(
        data,
        ctx,
        aliases=aliases,
        block_with_exit_code=block_with_exit_code,
        rewrite_decision=rewrite_decision,
    )
    try:
        event = next(sequence)
        while not pm.has_async_handlers(event.event_type):
            event = sequence.send(pm.emit(event, ctx))
    except StopIteration as done:
        return cast("Answer", done.value)
    import asyncio

    return asyncio.run(_finish(pm, sequence, event, ctx))


def _loop_running() -> bool:
    """True when this thread runs an event loop (asyncio is imported by whoever runs one)."""
    aio = sys.modules.get("asyncio")
    if aio is None:
        return False
    try:
        aio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _finish(pm: PluginManager, sequence: Steps, event: Event, ctx: Context) -> Answer:
    """The rest of ``sequence`` with ``aemit``, from ``event`` (not dispatched yet) on."""
    try:
        while True:
            event = sequence.send(await pm.aemit(event, ctx))
    except StopIteration as done:
        return cast("Answer", done.value)
