"""``kithooks claude-hook``: kithooks plugins as one Claude Code command hook."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import click

from ..aggregator import TurnAggregator
from ..context import Context
from ..hookspecs import PROJECT
from ..listeners import describe_error
from ..loading import (
    BLOCK_ENV,
    DISABLE_ENTRYPOINTS_ENV,
    LoadError,
    blocked_names,
    default_project_dir,
    default_user_dir,
    entrypoints_disabled,
    find_project_root,
)
from ..manager import HandlerError, PluginManager
from ..state import StateError, StateStore, sidecar_path
from ..streams import owned_stdout
from .aliases import ToolAliases
from .answering import ANSWERED_EVENTS, REWRITE_DECISIONS, Answer, answer_sync, refusal

#: The events whose call exit code 2 blocks in Claude Code: where a plugin that did not
#: load must block rather than let the call through.
BLOCKING_EVENTS = frozenset({"PreToolUse", "UserPromptSubmit", "PreCompact"})

#: The events whose kithooks event is a guard (``tool_call``, ``before_compact``): where
#: ``--fail-closed`` denies a call that no plugin was found to guard.
GUARD_EVENTS = frozenset({"PreToolUse", "PreCompact"})

__all__ = [
    "FAIL_CLOSED_ENV",
    "STATE_DIR_ENV",
    "claude_hook",
    "default_state_dir",
    "fail_closed_by_env",
    "session_state_path",
]

#: Where ``claude-hook`` keeps the state of sessions that have no transcript path.
STATE_DIR_ENV = "KITHOOKS_STATE_DIR"

#: Set (and not ``0``): ``claude-hook`` runs as with ``--fail-closed``.
FAIL_CLOSED_ENV = "KITHOOKS_FAIL_CLOSED"

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def default_state_dir() -> Path:
    """``$KITHOOKS_STATE_DIR``, else ``$XDG_STATE_HOME/kithooks/claude-hook``
    (``~/.local/state/kithooks/claude-hook``)."""
    explicit = os.environ.get(STATE_DIR_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "kithooks" / "claude-hook"


def fail_closed_by_env() -> bool:
    """True when ``$KITHOOKS_FAIL_CLOSED`` is set and not ``0``."""
    return os.environ.get(FAIL_CLOSED_ENV, "") not in ("", "0")


def session_state_path(data: Mapping[str, Any], state_dir: Path | None = None) -> Path | None:
    """The sidecar file holding plugin state for the invocation's session, or None.

    With a ``transcript_path``: the transcript's sidecar (``<id>.jsonl`` ->
    ``<id>.ext-state.json``, as every kithooks host does). Otherwise, with a ``session_id``:
    ``<state dir>/<session_id>.ext-state.json`` (an id that is not a plain file name is
    hashed). Neither: None (state lives for this invocation only).
    """
    transcript = data.get("transcript_path")
    if isinstance(transcript, str) and transcript:
        return sidecar_path(transcript)
    session = data.get("session_id")
    if not isinstance(session, str) or not session:
        return None
    key = session if _SAFE_ID.fullmatch(session) else hashlib.sha256(session.encode()).hexdigest()
    return (state_dir or default_state_dir()) / f"{key}.ext-state.json"


def _store(path: Path | None) -> StateStore:
    if path is None:
        return StateStore()
    path.parent.mkdir(parents=True, exist_ok=True)
    return StateStore(path)


def project_root(data: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> Path:
    """The project whose ``.kithooks/plugins`` guard this invocation: the nearest directory
    holding ``.kithooks`` (:func:`~kithooks.loading.find_project_root`), from
    ``$CLAUDE_PROJECT_DIR`` (which Claude Code sets for every hook command: where it was
    started, maybe a subdirectory of the project) upwards when it is set, else from the
    invocation's ``cwd`` (the process's working directory when the input has none): Claude
    Code runs a hook in the session's current directory, which moves when the model runs
    ``cd``, and the project's guards must not stop applying then.
    """
    given = environ.get("CLAUDE_PROJECT_DIR")
    if given:  # Claude Code started in a subdirectory of the project: upwards from there
        return find_project_root(given)
    cwd = data.get("cwd")
    return find_project_root(cwd if isinstance(cwd, str) and cwd else None)


def _say(message: str) -> None:
    click.echo(f"kithooks claude-hook: {message}", err=True)


def _exit_code_for_bad_input(event: str) -> int:
    """How a call whose plugins are not all there (a load failure, a usage error) exits:
    2 (Claude Code blocks) where exit 2 blocks, 1 (a non-blocking error) elsewhere."""
    return 2 if event in BLOCKING_EVENTS else 1


class _HookCommand(click.Command):
    """``claude-hook`` answers a usage error (a mistyped option, a ``-p`` path that does not
    exist) by the invocation's event, as a plugin that fails to load: exit 2 would make
    ``Stop`` never stop."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            stdin = sys.stdin
            if stdin is None or stdin.isatty():  # a person at a terminal: click's own answer
                raise
            _usage_failure(exc, stdin.buffer.read())


def _usage_failure(exc: click.UsageError, raw: bytes) -> NoReturn:
    exc.show()  # the usage and click's message, on stderr
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        _say("bad usage; and stdin is not JSON")
        sys.exit(1)
    event = str(data.get("hook_event_name") or "") if isinstance(data, dict) else ""
    _say(f"bad usage, so no plugin answered this {event or 'call'}: {exc.format_message()}")
    sys.exit(_exit_code_for_bad_input(event))


@contextlib.contextmanager
def _stdout_is_the_answers() -> Iterator[Callable[[str], None]]:
    """Stdout for the answer alone (:func:`~kithooks.streams.owned_stdout`); the function it
    gives writes the answer, in UTF-8.

    Claude Code reads stdout as the JSON answer only when it starts with ``{``: one
    ``print`` in a plugin (at import, in a handler, a library's banner, a subprocess the
    plugin starts) would turn a deny into ignored text.
    """
    with owned_stdout(encoding="utf-8") as out:

        def write(text: str) -> None:
            with contextlib.suppress(BrokenPipeError):  # Claude Code stopped reading
                out.write(text + "\n")
                out.flush()

        yield write


def _culprit(pm: PluginManager, tb: TracebackType | None) -> tuple[str, str] | None:
    """The plugin and hook of the innermost handler in traceback ``tb``, if any."""
    handlers: dict[Any, tuple[str, str]] = {}
    for name, plugin in pm.list_name_plugin():
        for caller in pm.get_hookcallers(plugin) or ():
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin:
                    code = getattr(impl.function, "__code__", None)
                    handlers.setdefault(code, (name, caller.name))
    found = None
    while tb is not None:
        found = handlers.get(tb.tb_frame.f_code, found)
        tb = tb.tb_next
    return found


def _lost(exc: BaseException, pm: PluginManager, event: str) -> str:
    """What to say when dispatch itself ended in an exception (a handler's ``sys.exit``, a
    ``BaseException`` that dispatch does not isolate): no plugin's answer is known. Names the
    handler's plugin and hook when the traceback passes through one."""
    culprit = _culprit(pm, exc.__traceback__)
    if culprit is None:
        message = f"answering {event or 'the call'} failed: {describe_error(exc)}"
    else:
        message = HandlerError(plugin=culprit[0], hook=culprit[1], error=exc).message
    if isinstance(exc, SystemExit):
        message += " (a handler must return its answer, not exit: no plugin's answer counts)"
    return message


def _nothing_found(
    pm: PluginManager, *, project_dir: Path, plugin_files: tuple[Path, ...], no_entrypoints: bool
) -> str | None:
    """None when a plugin (anything but kithooks' built-in turn aggregator) is registered;
    otherwise what says that none was found, and where ``claude-hook`` looked."""
    if any(type(plugin) is not TurnAggregator for _, plugin in pm.list_name_plugin()):
        return None
    if no_entrypoints:
        entrypoints = "no entry points (--no-entrypoints)"
    elif entrypoints_disabled():
        entrypoints = f"no entry points (${DISABLE_ENTRYPOINTS_ENV} is set)"
    else:
        entrypoints = f"the entry points of group {PROJECT!r} installed in {sys.prefix}"
    places = [entrypoints]
    for directory in (default_user_dir(), project_dir):
        missing = "" if directory.is_dir() else " (no such directory)"
        places.append(f"{directory}{missing}")
    places += [str(path) for path in plugin_files]
    message = "no kithooks plugin was found; looked in " + ", ".join(places)
    blocked = blocked_names()
    if blocked:
        message += f" (${BLOCK_ENV} skips {', '.join(sorted(blocked))})"
    return message


def _unguarded(
    nothing: str, event: str, closed: bool, block_with_exit_code: bool, shown: list[str]
) -> Answer | None:
    """The answer when no plugin was found (``nothing`` says where ``claude-hook`` looked).

    The user is told in the answer's ``systemMessage`` (added to ``shown``), and stderr
    says it once. Under ``--fail-closed`` a guard event is denied (a guard that is not there
    must not look like one that allowed the call): that refusal is returned. Otherwise
    None: the plugins (none) answer as usual, which lets the call go on.
    """
    if closed and event in GUARD_EVENTS:
        reason = f"{nothing} (--fail-closed: a call with no guard to ask is denied)"
        shown.append(f"kithooks: {reason}")
        if not block_with_exit_code:  # else the refusal's stderr says it
            _say(nothing)
        return refusal(event, reason, block_with_exit_code=block_with_exit_code)
    _say(nothing)
    if event in GUARD_EVENTS:
        shown.append(
            f"kithooks: {nothing}, so the call goes on unguarded (--fail-closed would deny it)"
        )
    else:
        shown.append(f"kithooks: {nothing}, so no plugin saw this {event}")
    return None


def _note(failures: list[str], closed: bool) -> str:
    note = "kithooks: " + "; ".join(failures)
    if not closed:
        note += " (skipped: --fail-closed makes a failing guard block)"
    return note


@click.command(name="claude-hook", cls=_HookCommand)
@click.option(
    "--plugin",
    "-p",
    "plugin_files",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="A plugin file or directory to load (repeatable).",
)
@click.option("--no-entrypoints", is_flag=True, help="Do not load installed plugins.")
@click.option(
    "--block-with-exit-code",
    is_flag=True,
    help="Answer a block with exit code 2 and the reason on stderr instead of JSON.",
)
@click.option(
    "--fail-closed",
    is_flag=True,
    help=f"A guard handler (on_tool_call, on_before_compact) that raises or times out "
    f"blocks, naming its plugin, instead of being skipped (also ${FAIL_CLOSED_ENV}=1).",
)
@click.option(
    "--rewrite-decision",
    type=click.Choice(REWRITE_DECISIONS),
    default="ask",
    show_default=True,
    help="The permission decision a rewrite of a tool's arguments comes with (Claude Code "
    "drops an updatedInput with none): ask shows the user the rewritten call; allow runs it "
    "without the permission prompt (Claude Code's deny and ask rules still apply).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Where session state lives when Claude Code gives no transcript path "
    f"(default ${STATE_DIR_ENV} or $XDG_STATE_HOME/kithooks/claude-hook).",
)
def claude_hook(
    *,
    plugin_files: tuple[Path, ...],
    no_entrypoints: bool,
    block_with_exit_code: bool,
    fail_closed: bool,
    rewrite_decision: str,
    state_dir: Path | None,
) -> None:
    """Answer one Claude Code hook invocation (JSON on stdin) with kithooks plugins.

    Wire it into Claude Code's settings.json for any hook event, by the absolute path of
    the kithooks that has your plugins (Claude Code's PATH may find none, or another
    environment's), with --fail-closed for guards, e.g.:

    \b
      {"hooks": {"PreToolUse": [{"hooks": [{"type": "command", "command":
        "/path/to/project/.venv/bin/kithooks claude-hook --fail-closed"}]}]}}

    A block becomes a deny with the plugin's reason, a tool-input rewrite becomes
    updatedInput with the --rewrite-decision (ask: the user approves the rewritten call),
    a handled prompt is blocked, and nothing to say is exit 0 with no
    output. A handler that fails is reported on stderr and in a systemMessage (Claude Code
    shows stderr only in verbose mode) and fails open, unless --fail-closed (or
    $KITHOOKS_FAIL_CLOSED=1)
    is given: then a failing guard handler blocks with a reason naming its plugin, as a
    deny (exit 2 with --block-with-exit-code). A plugin that fails to load blocks (exit 2,
    the reason on stderr) for PreToolUse, UserPromptSubmit and PreCompact, so a missing
    guard never looks like one that allowed the call; for other events it is exit 1. A bad
    option or -p path is answered the same way, and so is a handler that exits
    (sys.exit): the guards after it never ran. Exit 1 also means the input was not a hook
    invocation. When no plugin is found at all, that is said, with where it looked, on
    stderr and in a systemMessage; with --fail-closed a PreToolUse or PreCompact call is
    then denied with that reason. Only the answer goes to stdout:
    anything the plugins print goes to stderr.
    """
    raw = sys.stdin.buffer.read()
    with _stdout_is_the_answers() as write_answer:
        code = _answer_call(
            raw,
            write_answer,
            plugin_files=plugin_files,
            no_entrypoints=no_entrypoints,
            block_with_exit_code=block_with_exit_code,
            closed=fail_closed or fail_closed_by_env(),
            rewrite_decision=rewrite_decision,
            state_dir=state_dir,
        )
    sys.exit(code)


def _answer_call(
    raw: bytes,
    write_answer: Callable[[str], None],
    *,
    plugin_files: tuple[Path, ...],
    no_entrypoints: bool,
    block_with_exit_code: bool,
    closed: bool,
    rewrite_decision: str,
    state_dir: Path | None,
) -> int:
    """Answer the invocation ``raw`` (stdin); the exit code."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        _say(f"stdin is not JSON: {exc}")
        return 1
    if not isinstance(data, dict):
        _say(f"stdin must be a JSON object, got {type(data).__name__}")
        return 1
    try:
        store = _store(session_state_path(data, state_dir))
    except (OSError, StateError) as exc:
        _say(f"session state unavailable ({exc}); using memory for this call")
        store = StateStore()
    transcript = str(data.get("transcript_path") or "")
    shown: list[str] = []  # what the plugins show the user: the answer's systemMessage
    stops: list[str] = []  # ctx.abort() / ctx.exit(): the answer's continue: false

    def show(text: object) -> None:  # str(): a plugin may pass an exception or a Path
        shown.append(str(text))

    def dropped(what: str) -> Callable[[str], None]:
        def say(text: str) -> None:
            _say(f"{what} has no counterpart in Claude Code's hook protocol; dropped: {text!r}")

        return say

    ctx = Context(
        session_id=str(data.get("session_id") or ""),
        cwd=str(data.get("cwd") or ""),
        model=str(data.get("model") or ""),
        get_session_path=lambda: transcript,
        print=show,
        print_info=show,
        print_error=show,
        abort=lambda: stops.append("a kithooks plugin stopped the turn (ctx.abort)"),
        exit=lambda: stops.append("a kithooks plugin asked to exit (ctx.exit)"),
        send_message=dropped("ctx.send_message"),
        cancel_and_send=dropped("ctx.cancel_and_send"),
    )
    event = str(data.get("hook_event_name") or "")

    failures: list[str] = []

    def report(error: HandlerError | LoadError) -> None:
        if isinstance(error, HandlerError):  # load errors are said once, below
            _say(error.message)
            failures.append(error.message)

    pm = PluginManager(state=store, context=ctx, fail_closed=closed, on_error=report)
    project_dir = default_project_dir(project_root(data))
    try:
        if not no_entrypoints:
            pm.load_entrypoints()
        # No hooks.json here: a command hook calling `kithooks claude-hook` would call itself.
        pm.load_plugin_files(plugin_files, project_dir=project_dir, command_hooks=False)
    except KeyboardInterrupt:  # as a load failure: exit by the event's rule
        _say(f"interrupted while loading the plugins for {event or 'the call'}")
        return _exit_code_for_bad_input(event)
    if pm.load_errors:
        # A guard that did not load must not look like a guard that allowed the call:
        # where Claude Code lets exit 2 block, block with the reason; elsewhere exit 1.
        reason = "; ".join(e.message for e in pm.load_errors)
        _say(f"plugins failed to load: {reason}")
        return _exit_code_for_bad_input(event)
    nothing = _nothing_found(
        pm, project_dir=project_dir, plugin_files=plugin_files, no_entrypoints=no_entrypoints
    )
    result = None
    if nothing is not None and event in ANSWERED_EVENTS:
        result = _unguarded(nothing, event, closed, block_with_exit_code, shown)
    if result is None:
        try:
            result = answer_sync(
                pm,
                data,
                ctx,
                aliases=ToolAliases(),
                block_with_exit_code=block_with_exit_code,
                rewrite_decision=rewrite_decision,
            )
        except KeyboardInterrupt:  # no answer: exit as for a load failure (never 2 on Stop)
            _say(f"interrupted while answering {event or 'the call'}")
            return _exit_code_for_bad_input(event)
        except BaseException as exc:  # a sys.exit in a handler: not the answer
            message = _lost(exc, pm, event)
            _say(message)
            failures.append(message)
            result = Answer()
            if event in BLOCKING_EVENTS:
                # As for a load failure, whatever --fail-closed says: the dispatch ended
                # there, so the guards after it never ran; a deny of theirs must not look
                # like an allow.
                result = refusal(event, message, block_with_exit_code=block_with_exit_code)
                closed = True  # the note must not say the failure was skipped
    output = result.output
    if failures:  # Claude Code shows a hook's stderr only in verbose mode: tell the user too
        shown.append(_note(failures, closed))
    if result.exit_code == 0:
        if shown:
            output = {**(output or {}), "systemMessage": "\n".join(shown)}
        if stops:
            output = {**(output or {}), "continue": False, "stopReason": "; ".join(stops)}
    else:  # an exit-code answer: stderr alone, Claude Code reads no JSON with it
        if result.exit_code != 2:  # exit 2's stderr goes to the model: not the user's text
            for line in shown:
                _say(line)
        if stops:
            _say("; ".join(stops) + ", which an exit-code answer cannot carry: not stopped")
    text = None
    try:
        if output is not None:
            text = json.dumps(output, ensure_ascii=False, allow_nan=False)
    except ValueError:  # NaN / Infinity in a rewrite: Claude Code would read no answer
        message = (
            "the plugins' answer holds a number JSON cannot carry (NaN or Infinity), "
            "so it cannot be given"
        )
        _say(message)
        if event not in BLOCKING_EVENTS:
            return 1
        result = refusal(event, message, block_with_exit_code=block_with_exit_code)
        text = None if result.output is None else json.dumps(result.output, ensure_ascii=False)
    if text is not None:
        write_answer(text)
    if result.stderr:
        click.echo(result.stderr, err=True)
    return result.exit_code
