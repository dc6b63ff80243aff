"""Claude Code's hook protocol: what a command reads on stdin, and what its answer means.

Input: :func:`hook_input` turns a kithooks event into the JSON object a command reads.
Output: :func:`read_answer` turns one finished command (exit code, stdout, stderr) into a
:class:`Verdict`; :func:`combine` merges the verdicts of the commands that ran for one event,
the most restrictive decision winning (deny > ask > allow).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..context import Context
from ..events import (
    AgentEndEvent,
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
from .aliases import ToolAliases
from .runner import CommandRun

__all__ = [
    "BLOCKING_EXIT",
    "Combined",
    "ToolInputError",
    "Verdict",
    "claude_event_of",
    "combine",
    "hook_input",
    "hook_subjects",
    "plain",
    "read_answer",
    "text_input_error",
]

#: The exit code that blocks (stderr is the reason).
BLOCKING_EXIT = 2

#: Events whose plain (non-JSON) stdout on exit 0 is context for the model.
_STDOUT_IS_CONTEXT = frozenset({"UserPromptSubmit", "SessionStart"})

_RANK = {"": 0, "allow": 1, "ask": 2, "deny": 3}
_DECISIONS = {"block": "deny", "approve": "allow"}  # top-level "decision" values
_PERMISSIONS = {"allow": "allow", "deny": "deny", "ask": "ask", "defer": ""}


def plain(value: Any) -> Any:
    """``value`` with every mapping a dict and every tuple a list (JSON-ready)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def claude_event_of(event: Event) -> str:
    """The Claude Code event a kithooks event is: ``tool_result`` splits on ``is_error``."""
    if isinstance(event, ToolResultEvent):
        return "PostToolUseFailure" if event.is_error else "PostToolUse"
    return _CLAUDE_NAME[type(event)]


_CLAUDE_NAME: Mapping[type[Event], str] = {
    ToolCallEvent: "PreToolUse",
    InputEvent: "UserPromptSubmit",
    SessionStartEvent: "SessionStart",
    SessionShutdownEvent: "SessionEnd",
    BeforeCompactEvent: "PreCompact",
    SubagentStartEvent: "SubagentStart",
    SubagentEndEvent: "SubagentStop",
    AgentEndEvent: "Stop",
}


class ToolInputError(ValueError):
    """A tool call's arguments that a hook command cannot be given as Claude Code gives
    them: ``input`` is not a JSON object (raw text, a JSON string or array) and no
    ``parsed_args`` come with it. Claude Code's ``tool_input`` is an object, and an emptied
    one would let a script that looks for ``rm -rf`` allow the call, so the commands get
    ``{"input": <the text>}`` instead (:func:`hook_input` with ``wrap_text=True``; without it
    :func:`hook_input` raises this). A script reading ``tool_input.command`` still cannot see
    the arguments: a :class:`~kithooks.command_hooks.CommandHooks` handler whose
    ``PreToolUse`` commands did not block such a call fails for it with this error."""


def _preview(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def text_input_error(event: ToolCallEvent | ToolResultEvent) -> ToolInputError | None:
    """The :class:`ToolInputError` of a tool event whose arguments are no JSON object and
    come with no ``parsed_args`` (``None``: ``tool_input`` is the call's own object)."""
    if getattr(event, "parsed_args", None) is not None or event.input.strip() in ("", "null"):
        return None
    if _json_object(event.input) is not None:
        return None
    return ToolInputError(
        f"the arguments of this {event.tool_name!r} call are not a JSON object "
        f"({_preview(event.input)}) and come with no parsed_args: the hook commands got "
        'tool_input {"input": <the text>} and none blocked the call, but a command reading '
        "tool_input's fields (tool_input.command) could not see the arguments"
    )


def _tool_input(event: ToolCallEvent | ToolResultEvent, *, wrap_text: bool) -> dict[str, Any]:
    """``tool_input``: the JSON object in ``input``, else ``parsed_args``; ``{}`` when there
    are no arguments at all (``input`` empty, white space or ``null``). Anything else is a
    :class:`ToolInputError`, or with ``wrap_text`` ``{"input": <the text>}``: the hook never
    sees an input emptied of what the call holds."""
    parsed = _json_object(event.input)
    if parsed is not None:
        return parsed
    args = getattr(event, "parsed_args", None)
    if args is not None:
        return dict(plain(args))
    if event.input.strip() in ("", "null"):
        return {}
    if wrap_text:
        return {"input": event.input}
    error = text_input_error(event)
    assert error is not None
    raise error


def hook_subjects(event: Event, aliases: ToolAliases) -> tuple[str, ...]:
    """The names a matcher is tried on for ``event`` (``()``: every matcher matches).

    Tool events are matched on the Claude Code name and the host's name (``Bash`` and
    ``bash``); ``SessionStart`` on its source (``startup``), ``PreCompact`` on its trigger
    (``auto`` / ``manual``), ``SessionEnd`` on its reason (``other``), subagent events on the
    agent type (``""``); the others match every matcher.
    """
    if isinstance(event, ToolCallEvent | ToolResultEvent):
        name = aliases.claude_name(event.tool_name)
        return (name, event.tool_name) if name != event.tool_name else (name,)
    if isinstance(event, SessionStartEvent):
        return ("startup",)
    if isinstance(event, SessionShutdownEvent):
        return ("other",)
    if isinstance(event, BeforeCompactEvent):
        return ("auto" if event.is_automatic else "manual",)
    if isinstance(event, SubagentStartEvent | SubagentEndEvent):
        return ("",)
    return ()


def hook_input(
    claude_event: str,
    event: Event,
    ctx: Context,
    *,
    project_dir: str,
    aliases: ToolAliases,
    stop_hook_active: bool = False,
    wrap_text: bool = False,
) -> dict[str, Any]:
    """The JSON object the commands read on stdin (the names a matcher is tried on are
    :func:`hook_subjects`).

    A tool event whose arguments are not a JSON object and come with no ``parsed_args`` is a
    :class:`ToolInputError`; with ``wrap_text`` its ``tool_input`` is ``{"input": <the
    text>}`` instead (:func:`text_input_error` tells such a call).
    """
    data: dict[str, Any] = {"session_id": ctx.session_id}
    transcript = ctx.get_session_path()
    if transcript:
        data["transcript_path"] = transcript
    data["cwd"] = ctx.cwd or project_dir
    data["permission_mode"] = "default"
    data["hook_event_name"] = claude_event
    if isinstance(event, ToolCallEvent | ToolResultEvent):
        data["tool_name"] = aliases.claude_name(event.tool_name)
        data["tool_input"] = _tool_input(event, wrap_text=wrap_text)
        if isinstance(event, ToolResultEvent):
            if event.is_error:
                data["error"] = event.content
                data["is_interrupt"] = False
            else:
                response = _json_object(event.content)
                data["tool_response"] = event.content if response is None else response
        data["tool_use_id"] = event.tool_call_id
    elif isinstance(event, InputEvent):
        data["prompt"] = event.text
    elif isinstance(event, SessionStartEvent):
        data["source"] = "startup"
        if ctx.model:
            data["model"] = ctx.model
    elif isinstance(event, SessionShutdownEvent):
        data["reason"] = "other"
    elif isinstance(event, BeforeCompactEvent):
        data["trigger"] = "auto" if event.is_automatic else "manual"
        data["custom_instructions"] = ""
    elif isinstance(event, SubagentStartEvent):
        data["agent_id"] = event.tool_call_id
        data["agent_type"] = ""
    elif isinstance(event, SubagentEndEvent):
        data["agent_id"] = event.tool_call_id
        data["agent_type"] = ""
        data["stop_hook_active"] = False
        data["last_assistant_message"] = event.response or event.error_msg
    elif isinstance(event, AgentEndEvent):
        data["stop_hook_active"] = stop_hook_active
        data["last_assistant_message"] = event.response
    return data


@attrs.frozen(kw_only=True)
class Verdict:
    """What one command answered, in protocol terms."""

    command: str
    decision: str = ""  #: "deny" (exit 2, "block", permissionDecision deny), "ask", "allow" or ""
    reason: str = ""
    updated_input: Mapping[str, Any] | None = None
    context: str = ""  #: additionalContext, or plain stdout for UserPromptSubmit / SessionStart
    stop: bool = False  #: ``"continue": false``
    stop_reason: str = ""
    system_message: str = ""
    replaced_output: str | None = None  #: PostToolUse ``updatedMCPToolOutput``
    error: str = ""  #: a failure: other exit codes, timeouts, malformed answers
    warning: str = ""  #: a part of the answer that was ignored, and why (logged by the plugin)


def _failure(run: CommandRun) -> str:
    if run.start_error:
        return f"hook command {run.command!r} could not start: {run.start_error}"
    if run.timed_out:
        return (
            f"hook command {run.command!r} timed out after {run.timeout:g}s; "
            "its process group was killed"
        )
    detail = run.stderr.strip() or "no stderr output"
    return f"hook command {run.command!r} failed with exit code {run.returncode}: {detail}"


def _str_field(obj: Mapping[str, Any], key: str, errors: list[str]) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.append(f'"{key}" must be a string, got {value!r}')
        return ""
    return value


def _answer(event_name: str, run: CommandRun, obj: Mapping[str, Any]) -> Verdict:
    errors: list[str] = []
    proceed = obj.get("continue", True)
    if not isinstance(proceed, bool):
        errors.append(f'"continue" must be true or false, got {proceed!r}')
        proceed = True
    raw_decision = obj.get("decision")
    decision = ""
    if raw_decision is not None:
        if raw_decision not in _DECISIONS:
            errors.append(f'"decision" must be "block" or "approve", got {raw_decision!r}')
        else:
            decision = _DECISIONS[raw_decision]
    reason = _str_field(obj, "reason", errors)
    specific = obj.get("hookSpecificOutput") or {}
    updated: Mapping[str, Any] | None = None
    context = ""
    replaced: str | None = None
    if not isinstance(specific, Mapping):
        errors.append(f'"hookSpecificOutput" must be an object, got {specific!r}')
        specific = {}
    permission = specific.get("permissionDecision")
    if permission is not None:
        if permission not in _PERMISSIONS:
            errors.append(
                f'"permissionDecision" must be "allow", "deny", "ask" or "defer", '
                f"got {permission!r}"
            )
        else:  # hookSpecificOutput wins over the older top-level decision
            decision = _PERMISSIONS[permission]
            reason = _str_field(specific, "permissionDecisionReason", errors) or reason
    raw_updated = specific.get("updatedInput")
    if raw_updated is not None:
        if isinstance(raw_updated, Mapping):
            updated = raw_updated
        else:
            errors.append(f'"updatedInput" must be an object, got {raw_updated!r}')
    context = _str_field(specific, "additionalContext", errors)
    if "updatedMCPToolOutput" in specific:
        value = specific["updatedMCPToolOutput"]
        replaced = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if event_name != "PreToolUse" and decision in ("allow", "ask"):
        decision = ""  # only tool calls are approved or asked about
    warning = ""
    if event_name == "PreToolUse" and updated is not None and decision not in ("allow", "ask"):
        updated, warning = None, _ignored_input(run.command, permission, decision)
    stop_reason = _str_field(obj, "stopReason", errors)
    system_message = _str_field(obj, "systemMessage", errors)
    error = ""
    if errors:
        error = f"hook command {run.command!r} gave invalid output: " + "; ".join(errors)
    return Verdict(
        command=run.command,
        decision=decision,
        reason=reason,
        updated_input=updated,
        context=context,
        stop=not proceed,
        stop_reason=stop_reason,
        system_message=system_message,
        replaced_output=replaced,
        error=error,
        warning=warning,
    )


def _ignored_input(command: str, permission: object, decision: str) -> str:
    """Why a PreToolUse ``updatedInput`` is not applied (``""``: a deny, which blocks anyway).

    As in Claude Code, the rewrite counts only with ``permissionDecision`` ``allow`` (or the
    older top-level ``decision: "approve"``) or ``ask``: alone, Claude Code runs the original
    call (anthropics/claude-code#32060), and with ``defer`` its docs say it is ignored.
    """
    if decision == "deny":
        return ""
    if permission == "defer":
        return (
            f"hook command {command!r}: updatedInput with permissionDecision defer is "
            "ignored, as in Claude Code"
        )
    return (
        f"hook command {command!r}: updatedInput without permissionDecision is ignored, as "
        'in Claude Code; add permissionDecision "allow" or "ask"'
    )


def _trim(text: str) -> str:
    """``text`` trimmed as JavaScript's ``trim()`` does (Claude Code is Node): Python's
    ``strip()`` keeps U+FEFF, so an answer a BOM starts would not start with ``{``."""
    previous = None
    while previous != text:
        previous, text = text, text.strip().strip("\ufeff")
    return text


def read_answer(event_name: str, run: CommandRun) -> Verdict:
    """Interpret one finished command as Claude Code does for ``event_name``.

    Exit 2 blocks with stderr as the reason (stdout is not read); exit 0 reads stdout as
    the JSON answer when, trimmed of white space and byte order marks, it starts with ``{``
    (as Claude Code does), else as plain text
    (context for UserPromptSubmit and SessionStart, ignored elsewhere). A failure (the
    verdict's ``error``, its answer nothing more) is: any other exit, a timeout, a command
    that could not start, and stdout that starts with ``{`` but is not one JSON object (a
    trailing comma, a second JSON line, truncated output).
    """
    if run.returncode == BLOCKING_EXIT:
        reason = run.stderr.strip() or f"blocked by hook command {run.command!r}"
        return Verdict(command=run.command, decision="deny", reason=reason)
    if run.returncode != 0:
        return Verdict(command=run.command, error=_failure(run))
    text = _trim(run.stdout)
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:
            error = f"hook command {run.command!r} gave a malformed JSON answer: {exc}"
            return Verdict(command=run.command, error=error)
        return _answer(event_name, run, obj)
    if text and event_name in _STDOUT_IS_CONTEXT:
        return Verdict(command=run.command, context=text)
    return Verdict(command=run.command)


@attrs.frozen(kw_only=True)
class Combined:
    """The verdicts of one event's commands, merged."""

    decision: str = ""
    reason: str = ""  #: the reasons given with the winning decision, one per line
    updated_input: Mapping[str, Any] | None = None
    context: str = ""
    stop: bool = False
    stop_reason: str = ""
    system_messages: tuple[str, ...] = ()
    replaced_output: str | None = None
    #: What the merge dropped ("": nothing): a rewrite that a later command's replaced.
    warning: str = ""


def _lines(values: Sequence[str]) -> str:
    return "\n".join(v for v in values if v)


def combine(verdicts: Sequence[Verdict]) -> Combined:
    """Merge verdicts (in settings order): the most restrictive decision wins (deny > ask >
    allow) with its reasons joined; the last ``updatedInput`` and ``updatedMCPToolOutput``
    win (the ``warning`` names the commands whose different rewrite was dropped); contexts,
    stop reasons and system messages are all kept; any ``continue: false`` stops."""
    decision = max((v.decision for v in verdicts), key=_RANK.__getitem__, default="")
    rewrites = [v for v in verdicts if v.updated_input is not None]
    updated = [v.updated_input for v in rewrites]
    replaced = [v.replaced_output for v in verdicts if v.replaced_output is not None]
    dropped = [v.command for v in rewrites[:-1] if v.updated_input != updated[-1]]
    warning = ""
    if dropped:
        warning = (
            f"hook commands {', '.join(map(repr, dropped))} and {rewrites[-1].command!r} each "
            f"rewrote the tool input differently; the last in settings order "
            f"({rewrites[-1].command!r}) is used, the other rewrites are dropped"
        )
    return Combined(
        decision=decision,
        reason=_lines([v.reason for v in verdicts if v.decision == decision]) if decision else "",
        updated_input=updated[-1] if updated else None,
        context=_lines([v.context for v in verdicts]),
        stop=any(v.stop for v in verdicts),
        stop_reason=_lines([v.stop_reason for v in verdicts if v.stop]),
        system_messages=tuple(v.system_message for v in verdicts if v.system_message),
        replaced_output=replaced[-1] if replaced else None,
        warning=warning,
    )
