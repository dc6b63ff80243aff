"""The plugins that run command hooks in a kithooks host: :class:`CommandHooks` (plain
handlers: works under ``emit`` and ``aemit``) and :class:`AsyncCommandHooks` (coroutine
handlers on asyncio subprocesses: ``aemit`` only, never blocks the event loop)."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import attrs

from ..context import Context
from ..dispatch import EventKind, kind_of
from ..events import (
    BeforeAgentStartEvent,
    BeforeAgentStartResult,
    BeforeCompactResult,
    Event,
    EventType,
    InputResult,
    Result,
    ToolCallEvent,
    ToolCallResult,
    ToolResultEvent,
    ToolResultResult,
)
from ..hookspecs import hookimpl
from ..listeners import HandlerError
from .aliases import ToolAliases
from .protocol import (
    Combined,
    ToolInputError,
    Verdict,
    claude_event_of,
    combine,
    hook_input,
    hook_subjects,
    plain,
    read_answer,
    text_input_error,
)
from .runner import CommandRun, arun_commands, run_commands
from .settings import HookSettings, load_settings

__all__ = ["AsyncCommandHooks", "CommandHookError", "CommandHooks"]

logger = logging.getLogger("kithooks")


class CommandHookError(RuntimeError):
    """A hook command failed: an exit code other than 0 and 2, a timeout, a command that
    could not start, or a malformed answer. The error of the :class:`~kithooks.HandlerError`
    that ``on_error`` listeners get, one per failed command."""


@attrs.frozen(kw_only=True)
class _Call:
    """One event's commands, ready to run."""

    claude_event: str
    commands: tuple[tuple[str, float], ...]
    stdin: bytes
    cwd: str
    env: Mapping[str, str]
    #: the call's arguments are no JSON object: the commands got ``{"input": <the text>}``
    input_error: ToolInputError | None = None


#: How many tools the plain-text ``PostToolUse`` warning names, once each, before it stops
#: (a host with thousands of MCP tools must not grow the set for ever).
_WARNED_TOOLS = 100


class CommandHooks:
    """A plugin running Claude-Code-style command hooks on kithooks events.

    Build it with :meth:`from_settings`. It implements only the hooks its settings use, so
    ``pm.has_handlers`` stays false for the others. Handlers are plain functions: the
    commands of one event run in parallel threads and the handler returns when they are
    done, under ``emit`` and ``aemit`` alike (under ``aemit`` that blocks the event loop for
    the commands' duration; :class:`AsyncCommandHooks` does not).

    ``project_dir`` is the commands' working directory and ``$CLAUDE_PROJECT_DIR``; by
    default the context's ``cwd``, else the process's. ``aliases`` (host name -> Claude Code
    name) extends :data:`~kithooks.command_hooks.DEFAULT_TOOL_ALIASES`.
    """

    _specialized: ClassVar[bool] = False

    def __new__(cls, settings: HookSettings, **_: Any) -> CommandHooks:
        kind = cls if cls.__dict__.get("_specialized") else _specialize(cls, settings.kit_events())
        return super().__new__(kind)

    def __init__(
        self,
        settings: HookSettings,
        *,
        project_dir: str | os.PathLike[str] | None = None,
        aliases: Mapping[str, str] | None = None,
        name: str = "command-hooks",
    ) -> None:
        self.settings = settings
        self.project_dir = os.fspath(project_dir) if project_dir is not None else None
        self.aliases = ToolAliases(aliases)
        self.__name__ = name
        self._lock = threading.Lock()
        self._pending: dict[str, list[str]] = {}  # session id -> context for its next turn
        self._stop_active: set[str] = set()  # sessions whose running turn a Stop hook started
        self._text_input_warned: set[str] = set()  # tools a tool_result warning named

    @classmethod
    def from_settings(
        cls,
        settings: Mapping[str, Any] | str | os.PathLike[str] | HookSettings,
        *,
        project_dir: str | os.PathLike[str] | None = None,
        aliases: Mapping[str, str] | None = None,
        name: str = "command-hooks",
    ) -> CommandHooks:
        """The plugin for a Claude-Code-shaped settings mapping or ``settings.json`` path.

        Raises :class:`~kithooks.command_hooks.SettingsError` naming the file and entry.
        """
        loaded = settings if isinstance(settings, HookSettings) else load_settings(settings)
        return cls(loaded, project_dir=project_dir, aliases=aliases, name=name)

    def __repr__(self) -> str:
        events = ", ".join(sorted(self.settings.events))
        return f"{type(self).__name__}({self.settings.source!r}: {events})"

    # -- one event: prepare, run, apply -----------------------------------------------------

    def prepare(self, event: Event, ctx: Context) -> _Call | None:
        """The commands that match ``event`` (identical commands once) and their stdin.

        A tool event whose arguments are no JSON object and come with no ``parsed_args``
        gives the commands ``tool_input`` ``{"input": <the text>}``, and the call remembers
        it (:meth:`apply` decides what that means)."""
        claude_event = claude_event_of(event)
        groups = self.settings.events.get(claude_event)
        if not groups:
            return None
        project_dir = os.path.abspath(self.project_dir or ctx.cwd or os.getcwd())
        subjects = hook_subjects(event, self.aliases)
        commands: dict[str, float] = {}
        for group in groups:
            if subjects and not any(group.matches(s) for s in subjects):
                continue
            for hook in group.hooks:
                commands[hook.command] = max(commands.get(hook.command, 0.0), hook.timeout)
        if not commands:
            return None
        with self._lock:
            active = ctx.session_id in self._stop_active
        input_error = None
        if isinstance(event, ToolCallEvent | ToolResultEvent):
            input_error = text_input_error(event)
        data = hook_input(
            claude_event,
            event,
            ctx,
            project_dir=project_dir,
            aliases=self.aliases,
            stop_hook_active=active,
            wrap_text=True,
        )
        env = {**os.environ, "CLAUDE_PROJECT_DIR": project_dir}
        stdin = json.dumps(data, ensure_ascii=False).encode()
        return _Call(
            claude_event=claude_event,
            commands=tuple(commands.items()),
            stdin=stdin,
            cwd=project_dir,
            env=env,
            input_error=input_error,
        )

    def apply(self, call: _Call, runs: list[CommandRun], event: Event, ctx: Context) -> Any:
        """What the commands' answers mean for the host: a result, and the callbacks.

        Each failed command is reported (:meth:`failed`); on a guard event under
        ``fail_closed`` it is a deny, so the call is blocked whatever the other commands
        answered. A part of an answer that Claude Code ignores (a ``PreToolUse``
        ``updatedInput`` without ``permissionDecision`` ``allow`` or ``ask``) is ignored here
        too, with a warning on logger ``kithooks`` naming the command; so is a rewrite that a
        later command's different rewrite replaced.

        A tool call whose arguments are no JSON object (the commands got ``tool_input``
        ``{"input": <the text>}``): when its ``PreToolUse`` commands blocked it (a deny, exit
        2, an ``ask`` not confirmed, ``continue: false``) the block stands; otherwise raises
        :class:`~kithooks.command_hooks.protocol.ToolInputError`, the plugin's failure for
        that call (a command reading ``tool_input.command`` could not see the arguments).
        For ``PostToolUse`` and ``PostToolUseFailure`` the answer applies, with one warning
        per tool on logger ``kithooks``.
        """
        verdicts = [read_answer(call.claude_event, run) for run in runs]
        for verdict in verdicts:
            if verdict.warning:
                logger.warning("plugin %r: %s", self._registered_name(ctx), verdict.warning)
        if any(v.error for v in verdicts):
            verdicts = self.failed(verdicts, event, ctx)
        combined = combine(verdicts)
        if combined.warning:
            logger.warning("plugin %r: %s", self._registered_name(ctx), combined.warning)
        for message in combined.system_messages:
            ctx.print_info(message)
        if call.input_error is not None and call.claude_event == "PreToolUse":
            return self._pre_tool_use_on_text(combined, event, ctx, call.input_error)
        result = _APPLY[call.claude_event](self, combined, event, ctx)
        if call.input_error is not None:
            assert isinstance(event, ToolResultEvent)
            self._warn_text_input(event, ctx)
        return result

    def _pre_tool_use_on_text(
        self, c: Combined, event: Any, ctx: Context, error: ToolInputError
    ) -> Result | None:
        """A ``PreToolUse`` answer on arguments that are plain text: a block stands; an
        allow or a rewrite cannot be taken on the word of commands that could not read the
        arguments, so it is the plugin's failure (``error``). An ``ask`` is put to the person
        first, unless the failure blocks anyway (``fail_closed``), never showing a rewrite
        (it cannot be applied to text): a no blocks."""
        if c.stop or c.decision == "deny":
            return self._pre_tool_use(c, event, ctx)
        manager = ctx._manager
        if c.decision == "ask" and not (manager is not None and manager.fail_closed):
            note = (
                "A hook rewrote the input, but the arguments are plain text: the call would "
                "run as it is"
            )
            refused = self._ask(c, event, ctx, note if c.updated_input is not None else "")
            if refused is not None:
                return refused
        raise error

    def _ask(self, c: Combined, event: Any, ctx: Context, note: str) -> ToolCallResult | None:
        """Put an ``ask`` answer to the person (``note`` on a line of its own after the
        question); a block when they say no, else None."""
        name = self.aliases.claude_name(event.tool_name)
        question = f"{name}: {c.reason}" if c.reason else f"Allow this {name} call?"
        if note:
            question += f"\n{note}"
        if ctx.confirm(question):
            return None
        return ToolCallResult(block=True, reason=c.reason or "not confirmed")

    def _warn_text_input(self, event: ToolResultEvent, ctx: Context) -> None:
        """Say once per tool that its results' hooks got ``tool_input`` ``{"input": ...}``."""
        with self._lock:
            warned = self._text_input_warned
            if event.tool_name in warned or len(warned) > _WARNED_TOOLS:
                return
            warned.add(event.tool_name)
            last = len(warned) > _WARNED_TOOLS
        logger.warning(
            "plugin %r: the arguments of %r calls are not a JSON object: the %s hook commands "
            'get tool_input {"input": <the text>} (a tool result carries no parsed '
            "arguments), so one reading tool_input's fields (tool_input.command) does not see "
            "them (warned once per tool%s)",
            self._registered_name(ctx),
            event.tool_name,
            claude_event_of(event),
            f"; the first {_WARNED_TOOLS} tools only: no more such warnings" if last else "",
        )

    def failed(self, verdicts: list[Verdict], event: Event, ctx: Context) -> list[Verdict]:
        """Report each failed command and return the verdicts to combine.

        Every failed command is logged on logger ``kithooks`` and handed to the manager's
        ``on_error`` listeners as a :class:`~kithooks.HandlerError` naming the plugin as
        registered and the command. Under a ``fail_closed`` manager, on a guard event
        (``PreToolUse``, ``PreCompact``), a failed command becomes a deny with that message
        as its reason: deny outranks every other answer. Otherwise (fail open) the other
        commands' answers stand (a deny still blocks, a rewrite still rewrites) and the
        failed one adds only the valid part of its answer: nothing, unless it was a JSON
        answer with a field of the wrong type. Called outside a manager's dispatch there is
        nobody to tell: raises :class:`CommandHookError` naming every failed command.
        """
        manager = ctx._manager
        if manager is None:
            raise CommandHookError("; ".join(v.error for v in verdicts if v.error))
        plugin = self._registered_name(ctx)
        closed = manager.fail_closed and kind_of(event.event_type) is EventKind.GUARD
        then = "blocked (fail_closed)" if closed else "the other hooks' answers stand (fail open)"
        kept = []
        for verdict in verdicts:
            if not verdict.error:
                kept.append(verdict)
                continue
            failure = CommandHookError(verdict.error)
            error = HandlerError(plugin=plugin, hook=event.event_type.hook_name, error=failure)
            logger.error("%s; %s", error.message, then)
            manager.listeners.error(error)
            denied = attrs.evolve(verdict, decision="deny", reason=error.message)
            kept.append(denied if closed else verdict)
        return kept

    def _registered_name(self, ctx: Context) -> str:
        """The name the dispatching manager knows this plugin by (else ``name=``)."""
        manager = ctx._manager
        registered = manager.get_name(self) if manager is not None else None
        return registered or self.__name__

    # -- what each event's answer does ---------------------------------------------------

    def _stop(self, c: Combined, ctx: Context) -> None:
        ctx.abort()
        if c.stop_reason:
            ctx.print_info(c.stop_reason)

    def _queue_context(self, ctx: Context, text: str) -> None:
        with self._lock:
            self._pending.setdefault(ctx.session_id, []).append(text)

    def _pre_tool_use(self, c: Combined, event: Any, ctx: Context) -> Result | None:
        if c.stop:
            self._stop(c, ctx)
            return ToolCallResult(block=True, reason=c.stop_reason or "stopped by a hook")
        if c.decision == "deny":
            return ToolCallResult(block=True, reason=c.reason)
        if c.decision == "ask":
            note = ""
            if c.updated_input is not None:  # the person approves what will run
                shown = json.dumps(plain(c.updated_input), ensure_ascii=False, default=str)
                note = f"A hook rewrote the input; the call runs with: {shown}"
            refused = self._ask(c, event, ctx, note)
            if refused is not None:
                return refused
        if c.context:
            logger.debug("PreToolUse additionalContext has no kithooks counterpart: dropped")
        if c.updated_input is not None:
            return ToolCallResult(args=plain(c.updated_input))
        return None

    def _post_tool_use(self, c: Combined, event: Any, ctx: Context) -> Result | None:
        assert isinstance(event, ToolResultEvent)
        if c.stop:
            self._stop(c, ctx)
        content = event.content if c.replaced_output is None else c.replaced_output
        feedback = "\n".join(t for t in (c.reason, c.context) if t)
        if feedback:
            content = f"{content}\n\n{feedback}" if content else feedback
        if content == event.content:
            return None
        return ToolResultResult(content=content)

    def _user_prompt_submit(self, c: Combined, event: Any, ctx: Context) -> Result | None:
        if c.stop:
            if c.stop_reason:
                ctx.print_info(c.stop_reason)
            return InputResult(action="handled")
        if c.decision == "deny":
            ctx.print_error(c.reason)
            return InputResult(action="handled")
        if c.context:
            self._queue_context(ctx, c.context)
        return None

    def _session_start(self, c: Combined, event: Any, ctx: Context) -> Result | None:
        if c.stop:
            self._stop(c, ctx)
        if c.context:
            self._queue_context(ctx, c.context)
        return None

    def _pre_compact(self, c: Combined, event: Any, ctx: Context) -> Result | None:
        if c.stop or c.decision == "deny":
            reason = c.reason or c.stop_reason or "compaction blocked by a hook"
            return BeforeCompactResult(cancel=True, reason=reason)
        return None

    def _observed(self, c: Combined, event: Any, ctx: Context) -> Result | None:
        """SessionEnd, SubagentStart, SubagentStop: nothing in kithooks to block or extend."""
        if c.stop:
            self._stop(c, ctx)
        if c.decision == "deny" or c.context:
            logger.warning(
                "plugin %r: a %s hook answered with a block or context, which kithooks "
                "has no counterpart for; ignored",
                self._registered_name(ctx),
                claude_event_of(event),
            )
        return None

    def _stop_hook(self, c: Combined, event: Any, ctx: Context) -> Result | None:
        session = ctx.session_id
        if c.stop:
            with self._lock:
                self._stop_active.discard(session)
            if c.stop_reason:
                ctx.print_info(c.stop_reason)
        elif c.decision == "deny":  # "keep going": the reason becomes the next user message
            with self._lock:
                self._stop_active.add(session)
            ctx.send_message(c.reason)
        else:
            with self._lock:
                self._stop_active.discard(session)
        return None

    # -- the context that UserPromptSubmit / SessionStart hooks add -----------------------

    def inject(self, event: BeforeAgentStartEvent, ctx: Context) -> BeforeAgentStartResult | None:
        """The context queued for this session's turn, as ``inject_text``."""
        with self._lock:
            pending = self._pending.pop(ctx.session_id, None)
        if not pending:
            return None
        return BeforeAgentStartResult(inject_text="\n\n".join(pending))


_APPLY: dict[str, Callable[[CommandHooks, Combined, Any, Context], Result | None]] = {
    "PreToolUse": CommandHooks._pre_tool_use,
    "PostToolUse": CommandHooks._post_tool_use,
    "PostToolUseFailure": CommandHooks._post_tool_use,
    "UserPromptSubmit": CommandHooks._user_prompt_submit,
    "SessionStart": CommandHooks._session_start,
    "SessionEnd": CommandHooks._observed,
    "PreCompact": CommandHooks._pre_compact,
    "SubagentStart": CommandHooks._observed,
    "SubagentStop": CommandHooks._observed,
    "Stop": CommandHooks._stop_hook,
}


class AsyncCommandHooks(CommandHooks):
    """:class:`CommandHooks` with coroutine handlers: the commands run as asyncio
    subprocesses, so other tasks keep running meanwhile. Only for hosts that dispatch with
    ``aemit`` (``emit`` refuses coroutine handlers)."""


def _run_sync(self: CommandHooks, event: Any, ctx: Context) -> Any:
    call = self.prepare(event, ctx)
    if call is None:
        return None
    runs = run_commands(call.commands, call.stdin, cwd=call.cwd, env=call.env)
    return self.apply(call, runs, event, ctx)


async def _run_async(self: CommandHooks, event: Any, ctx: Context) -> Any:
    call = self.prepare(event, ctx)
    if call is None:
        return None
    runs = await arun_commands(call.commands, call.stdin, cwd=call.cwd, env=call.env)
    return self.apply(call, runs, event, ctx)


def _inject(self: CommandHooks, event: Any, ctx: Context) -> Any:
    return self.inject(event, ctx)


_HANDLERS: dict[type[CommandHooks], Callable[..., Any]] = {
    CommandHooks: hookimpl(_run_sync),
    AsyncCommandHooks: hookimpl(_run_async),
}
_INJECT = hookimpl(_inject)


_SPECIALIZED: dict[tuple[type[CommandHooks], frozenset[EventType]], type[CommandHooks]] = {}
_SPECIALIZE_LOCK = threading.Lock()


def _specialize(cls: type[CommandHooks], events: frozenset[EventType]) -> type[CommandHooks]:
    """A subclass of ``cls`` implementing exactly the hooks of ``events`` (one per set)."""
    with _SPECIALIZE_LOCK:
        found = _SPECIALIZED.get((cls, events))
        if found is None:
            found = _SPECIALIZED[(cls, events)] = _make_subclass(cls, events)
        return found


def _make_subclass(cls: type[CommandHooks], events: frozenset[EventType]) -> type[CommandHooks]:
    handler = next(_HANDLERS[k] for k in cls.__mro__ if k in _HANDLERS)
    namespace: dict[str, Any] = {"_specialized": True, "__doc__": cls.__doc__}
    for event_type in events:
        namespace[event_type.hook_name] = handler
    if events & {EventType.INPUT, EventType.SESSION_START}:
        namespace[EventType.BEFORE_AGENT_START.hook_name] = _INJECT
    namespace["__module__"] = cls.__module__
    return type(cls.__name__, (cls,), namespace)
