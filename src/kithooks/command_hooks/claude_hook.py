"""``kithooks claude-hook``: kithooks plugins as one Claude Code command hook."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from ..context import Context
from ..loading import LoadError, default_project_dir
from ..manager import HandlerError, PluginManager
from ..state import StateError, StateStore, sidecar_path
from .aliases import ToolAliases
from .answering import REWRITE_DECISIONS, answer_sync

#: The events whose call exit code 2 blocks in Claude Code: where a plugin that did not
#: load must block rather than let the call through.
BLOCKING_EVENTS = frozenset({"PreToolUse", "UserPromptSubmit", "PreCompact"})

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
    """The project whose ``.kithooks/plugins`` guard this invocation.

    ``$CLAUDE_PROJECT_DIR``, which Claude Code sets for every hook command, when it is set.
    Otherwise the nearest directory holding ``.kithooks``, from the invocation's ``cwd``
    (the process's working directory when the input has none) upwards, else that ``cwd``:
    Claude Code runs a hook in the session's current directory, which moves when the model
    runs ``cd``, and the project's guards must not stop applying then.
    """
    given = environ.get("CLAUDE_PROJECT_DIR")
    if given:
        return Path(given)
    cwd = data.get("cwd")
    start = Path(cwd if isinstance(cwd, str) and cwd else os.getcwd())
    for directory in (start, *start.parents):
        if (directory / ".kithooks").is_dir():
            return directory
    return start


def _say(message: str) -> None:
    click.echo(f"kithooks claude-hook: {message}", err=True)


@click.command(name="claude-hook")
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

    Wire it into Claude Code's settings.json for any hook event, e.g.:

    \b
      {"hooks": {"PreToolUse": [{"hooks": [
        {"type": "command", "command": "kithooks claude-hook"}]}]}}

    A block becomes a deny with the plugin's reason, a tool-input rewrite becomes
    updatedInput with the --rewrite-decision (ask: the user approves the rewritten call),
    a handled prompt is blocked, and nothing to say is exit 0 with no
    output. A handler that fails is reported on stderr and in a systemMessage (Claude Code
    shows stderr only in verbose mode) and fails open, unless --fail-closed (or
    $KITHOOKS_FAIL_CLOSED=1)
    is given: then a failing guard handler blocks with a reason naming its plugin, as a
    deny (exit 2 with --block-with-exit-code). A plugin that fails to load blocks (exit 2,
    the reason on stderr) for PreToolUse, UserPromptSubmit and PreCompact, so a missing
    guard never looks like one that allowed the call; for other events it is exit 1.
    Exit 1 also means the input was not a hook invocation.
    """
    raw = sys.stdin.buffer.read()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        _say(f"stdin is not JSON: {exc}")
        sys.exit(1)
    if not isinstance(data, dict):
        _say(f"stdin must be a JSON object, got {type(data).__name__}")
        sys.exit(1)
    try:
        store = _store(session_state_path(data, state_dir))
    except (OSError, StateError) as exc:
        _say(f"session state unavailable ({exc}); using memory for this call")
        store = StateStore()
    transcript = str(data.get("transcript_path") or "")
    ctx = Context(
        session_id=str(data.get("session_id") or ""),
        cwd=str(data.get("cwd") or ""),
        model=str(data.get("model") or ""),
        get_session_path=lambda: transcript,
    )

    failures: list[str] = []

    def report(error: HandlerError | LoadError) -> None:
        if isinstance(error, HandlerError):  # load errors are said once, below
            _say(error.message)
            failures.append(error.message)

    closed = fail_closed or fail_closed_by_env()
    pm = PluginManager(state=store, context=ctx, fail_closed=closed, on_error=report)
    if not no_entrypoints:
        pm.load_entrypoints()
    # No hooks.json here: a command hook calling `kithooks claude-hook` would call itself.
    pm.load_plugin_files(
        plugin_files, project_dir=default_project_dir(project_root(data)), command_hooks=False
    )
    if pm.load_errors:
        # A guard that did not load must not look like a guard that allowed the call:
        # where Claude Code lets exit 2 block, block with the reason; elsewhere exit 1.
        reason = "; ".join(e.message for e in pm.load_errors)
        event = str(data.get("hook_event_name") or "")
        _say(f"plugins failed to load: {reason}")
        sys.exit(2 if event in BLOCKING_EVENTS else 1)
    result = answer_sync(
        pm,
        data,
        ctx,
        aliases=ToolAliases(),
        block_with_exit_code=block_with_exit_code,
        rewrite_decision=rewrite_decision,
    )
    output = result.output
    if failures and result.exit_code == 0:
        # Claude Code shows a hook's stderr only in verbose mode: say it to the user too.
        note = "kithooks: " + "; ".join(failures)
        if not closed:
            note += " (skipped: --fail-closed makes a failing guard block)"
        output = {**(output or {}), "systemMessage": note}
    if output is not None:
        click.echo(json.dumps(output, ensure_ascii=False))
    if result.stderr:
        click.echo(result.stderr, err=True)
    sys.exit(result.exit_code)
