"""The ``kithooks`` command line (also ``python -m kithooks``).

Exit codes: 0 success, 1 when plugins failed (a load error or a handler error), 2 for bad
usage or bad input; each failure prints a one-line reason on stderr. In a terminal output is
rich text (tables, colour); otherwise it is plain text, one record a line, never wrapped;
with ``--json`` it is strict JSON (no ``NaN`` or ``Infinity``). Text the output encoding
cannot hold is escaped, and a closed pipe (``kithooks demo | head -1``) ends quietly.

Other modules add commands to the :data:`cli` group with ``cli.add_command``.
"""

from __future__ import annotations

import codecs
import functools
import io
import json
import logging
import math
import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, cast

import attrs
import click

from .context import Context
from .dispatch import KINDS, RULES
from .events import EVENT_CLASSES, AgentEndEvent, all_event_types
from .loading import LoadError, skipped
from .manager import PluginManager
from .state import SidecarBackend, StateError, StateStore, sidecar_path
from .streams import owned_stdout

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from .recording import ReplayReport

__all__ = ["cli", "main", "replay_manager"]

EXIT_OK, EXIT_PLUGINS_FAILED, EXIT_BAD_INPUT = 0, 1, 2
PROGRESS_AT = 1_000  # lines: replays longer than this show a progress bar in a terminal


class PipeClosed(Exception):
    """The reader of standard output went away (``kithooks demo | head -1``)."""


#: The command's own stdout while a command that runs plugins runs (:func:`_plugin_output`).
_outputs: list[TextIO] = []


def _stdout() -> TextIO:
    """Where the command's output goes: stdout, kept from the plugins while they run."""
    return _outputs[-1] if _outputs else sys.stdout


@contextmanager
def _plugin_output() -> Iterator[None]:
    """Stdout is the command's output alone while plugins load and run in this process:
    what they print (a banner, a debug line, a subprocess) goes to stderr, so pipes and
    ``--json`` readers get only the output (:func:`kithooks.streams.owned_stdout`)."""
    with owned_stdout() as out:
        _outputs.append(out)
        try:
            yield
        finally:
            _outputs.pop()


def _console(stderr: bool) -> Console:
    """rich's console on stderr, or on the command's stdout (:func:`_stdout`)."""
    return _console_on(sys.stderr if stderr else _stdout())


@functools.cache
def _console_on(file: TextIO) -> Console:
    """rich's console writing to ``file``, but a closed pipe is :class:`PipeClosed` (rich
    would exit with 1). Made, and rich imported, at the first output that needs it: most
    commands (``claude-hook``, ``--help``) never do, and rich is a fifth of their start-up.
    """
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            raise PipeClosed

    # No emoji codes: a plugin's ":x:" is text, not a picture.
    return _Console(file=file, highlight=False, soft_wrap=True, emoji=False)


def _escape(text: str) -> str:
    """``text`` with rich markup escaped."""
    from rich.markup import escape

    return escape(text)


def echo(text: str) -> None:
    """One line on stdout (click would exit with 1 on a closed pipe: PipeClosed instead)."""
    try:
        click.echo(text, file=_stdout())
    except BrokenPipeError:
        raise PipeClosed from None


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print ``kithooks: <message>`` on stderr and exit with ``code``."""
    say(message, style="red")
    sys.exit(code)


def say(message: str, style: str | None = None) -> None:
    """Print ``kithooks: <message>`` on stderr (one line)."""
    err = _console(stderr=True)
    err.print(f"kithooks: {_escape(one_line(message))}", style=style if err.is_terminal else None)


def one_line(text: str) -> str:
    """``text`` with line breaks and tabs escaped, so a record stays on its line."""
    if not any(c in text for c in "\r\n\t"):
        return text
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


def _table(*headers: str, title: str | None = None) -> Table:
    """A table whose cells wrap instead of being cut: nothing is lost in narrow output."""
    from rich.table import Table

    table = Table(title=title)
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def _rows(headers: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None) -> None:
    """A table in a terminal; else one tab-separated line per row (no header, no wrapping)."""
    out = _console(stderr=False)
    if out.is_terminal:
        table = _table(*headers, title=_escape(title) if title else None)
        for row in rows:
            table.add_row(*(_escape(cell) for cell in row))
        out.print(table)
        return
    for row in rows:
        echo("\t".join(one_line(cell) for cell in row))


def _strict(data: Any) -> Any:
    """``data`` as strict JSON data: non-finite floats become null, other objects their repr."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if data is None or isinstance(data, (str, int, bool)):
        return data
    if isinstance(data, dict):
        return {str(k): _strict(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_strict(v) for v in data]
    return repr(data)


def _stdout_is_utf8() -> bool:
    try:
        return codecs.lookup(getattr(_stdout(), "encoding", None) or "ascii").name == "utf-8"
    except LookupError:
        return False


def emit_json(data: Any) -> None:
    """Print ``data`` as strict JSON on stdout (``\\u`` escapes when stdout is not UTF-8)."""
    text = json.dumps(_strict(data), indent=2, ensure_ascii=not _stdout_is_utf8(), allow_nan=False)
    echo(text)


def replay_manager(
    plugin_files: Sequence[Path],
    *,
    entrypoints: bool,
    extra: Sequence[tuple[str, object]] = (),
    cwd: str = "",
    settings: Sequence[Path] = (),
) -> PluginManager:
    """The manager ``replay``, ``demo`` and ``plugins`` run: ``extra`` plugins (name, object)
    first, then the installed ones (when ``entrypoints``), then the plugin files and the
    user's and project's plugin directories (with the command hooks of the ``hooks.json``
    beside each), then the command hooks of ``settings`` (Claude Code settings files). A
    settings file that is one of those ``hooks.json`` files, or given twice (by any path to
    it), runs once. Load errors are in ``pm.load_errors``."""
    from .command_hooks import discover_settings, plugins_for

    pm = PluginManager(context=Context(cwd=cwd, print=lambda _: None))
    for name, plugin in extra:
        pm.register(plugin, name=name)
    if entrypoints:
        pm.load_entrypoints()
    pm.load_plugin_files(plugin_files)
    # hooks.json files came with load_plugin_files: each file's hooks run once
    seen = {path.resolve() for path in discover_settings()}
    files: list[Path] = []
    for path in settings:
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            files.append(path)
    hooks, errors = plugins_for(files)
    for hook in hooks:
        try:
            pm.register(hook, name=hook.__name__)
        except Exception as exc:  # a name taken by another plugin: reported, never a traceback
            location = hook.__name__.removeprefix("command-hooks:")
            errors.append(LoadError(name=hook.__name__, kind="file", location=location, error=exc))
    for error in errors:
        pm.report_load_error(error)
    return pm


def _load_error_json(e: LoadError) -> dict[str, str]:
    return {
        "name": e.name,
        "kind": e.kind,
        "location": e.location,
        "distribution": e.distribution,
        "error": f"{type(e.error).__name__}: {e.error}",
        "message": e.message,
    }


def _report_load_errors(pm: PluginManager) -> bool:
    """Print each load error on stderr; True when there was one."""
    for e in pm.load_errors:
        say(f"load error: {e.message}", style="red")
    return bool(pm.load_errors)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kithooks")
def cli() -> None:
    """kithooks: lifecycle hooks for AI agents (KIT's events on pluggy)."""


# --------------------------------------------------------------------------- replay / demo


def _count_lines(path: Path) -> int:
    """The lines of ``path``, to size a progress bar; 0 for what is not a regular file (a
    pipe, ``<(cat rec.jsonl)``), which reading now would leave empty for the replay."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return 0
        with path.open("rb") as fh:
            return sum(1 for _ in fh)
    except OSError:  # the replay reads it next and reports what is wrong
        return 0


@contextmanager
def _progress(path: Path | None, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    err = _console(stderr=True)
    total = _count_lines(path) if path is not None and enabled and err.is_terminal else 0
    if total < PROGRESS_AT:
        yield None
        return
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("replaying", total=total)
        yield lambda n: bar.update(task, completed=n)


def _end_line(end: AgentEndEvent) -> str:
    tools = f"{end.tool_call_count}"
    if end.tool_names:
        tools += f" ({', '.join(end.tool_names)})"
    return (
        f"agent_end: stop={end.stop_reason} tools={tools} llm-calls={end.llm_call_count} "
        f"tokens in={end.input_tokens_delta:,} out={end.output_tokens_delta:,} "
        f"cache read={end.cache_read_tokens_delta:,} write={end.cache_write_tokens_delta:,} "
        f"cost=${end.cost_delta:.4f} duration={end.duration_ms}ms"
    )


_ICONS = {
    "block": ("blocked", "red"),
    "cancel": ("cancelled", "red"),
    "handled": ("handled", "yellow"),
    "transform": ("transformed", "yellow"),
    "rewrite": ("rewrote", "yellow"),
    "inject": ("injected", "cyan"),
    "summary": ("summarized", "cyan"),
    "custom_event": ("sent custom event", "magenta"),
    "error": ("FAILED", "bold red"),
    "print": ("says", "dim"),
    "print_error": ("warns", "yellow"),
}


def _line(text: str, style: str = "") -> None:
    """One record on stdout: styled in a terminal, plain otherwise."""
    out = _console(stderr=False)
    text = _escape(one_line(text))
    out.print(f"[{style}]{text}[/{style}]" if style and out.is_terminal else text)


def _print_report(report: ReplayReport, plugins: list[str]) -> None:
    _line(f"Replaying {report.path}", "bold")
    _line(f"plugins: {', '.join(plugins) or '(none)'}")
    for turn in report.turns:
        if not turn.actions and turn.agent_end is None:
            continue
        label = turn.turn_id or "(outside a turn)"
        _line(f"Turn {label} (session {turn.session_id}, {turn.events} events)", "bold")
        for a in turn.actions:
            verb, style = _ICONS.get(a.kind, (a.kind, ""))
            where = f" {a.event_type}" if a.event_type and a.kind != "custom_event" else ""
            detail = f": {a.detail}" if a.detail else ""
            _line(f"  {a.plugin} {verb}{where}{detail}", style)
        if turn.agent_end is not None:
            _line(f"  {_end_line(turn.agent_end)}", "green")
    status = f"{report.events} events, {report.failure_count} plugin failures"
    if report.bad_lines:
        status += f", {len(report.bad_lines)} bad lines skipped"
    if report.skipped:
        status += f", {report.skipped} events of blocked calls not replayed"
    _line(status)


def _print_failures(report: ReplayReport) -> None:
    for failure in report.failures:
        say(failure.message, style="red")
        for tb in failure.tracebacks:
            _console(stderr=True).out(tb.rstrip("\n"), highlight=False)


def _run_replay(
    source: Path | None,
    pm: PluginManager,
    *,
    skip_bad: bool,
    as_json: bool,
    verbose: bool = False,
) -> int:
    """Replay ``source`` (None: standard input), print the report, return the exit code."""
    from .recording import ReplayError, replay

    name = "<stdin>" if source is None else str(source)
    try:
        with _progress(source, not as_json) as progress:
            report = replay(
                sys.stdin.buffer if source is None else source,
                pm,
                skip_bad=skip_bad,
                progress=progress,
                all_tracebacks=verbose,
                name=name,
            )
    except ReplayError as exc:
        _report_load_errors(pm)
        fail(f"{exc} (use --skip-bad to skip bad lines)")
    except OSError as exc:
        fail(f"cannot read {name}: {exc.strerror or exc}")
    plugins = [n for n, p in pm.list_name_plugin() if p is not None and n != "turn-aggregator"]
    if as_json:
        data = report.to_json()
        data["plugins"] = plugins
        data["load_errors"] = [_load_error_json(e) for e in pm.load_errors]
        emit_json(data)
    else:
        _print_report(report, plugins)
    for bad in report.bad_lines:
        say(f"skipped {bad.message}")
    if report.bad_lines:
        say(f"{len(report.bad_lines)} bad line(s) skipped")
    _print_failures(report)
    failed = _report_load_errors(pm)
    if report.failures:
        hint = "" if verbose else "; -v shows every traceback"
        say(
            f"{report.failure_count} plugin failure(s) of {len(report.failures)} kind(s){hint}",
            style="red",
        )
    return EXIT_PLUGINS_FAILED if failed or report.failures else EXIT_OK


_PLUGIN_OPTION = click.option(
    "--plugin",
    "-p",
    "plugin_files",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="A plugin file or directory to load (repeatable).",
)
_NO_EP_OPTION = click.option(
    "--no-entrypoints", is_flag=True, help="Do not load installed plugins."
)
_SETTINGS_OPTION = click.option(
    "--settings",
    "settings",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A Claude Code settings file whose command hooks run too (repeatable).",
)
_JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
_VERBOSE_OPTION = click.option(
    "--verbose", "-v", is_flag=True, help="Show every traceback of a repeated plugin failure."
)


@cli.command()
@_PLUGIN_OPTION
@_NO_EP_OPTION
@_SETTINGS_OPTION
@_JSON_OPTION
@_VERBOSE_OPTION
def demo(
    plugin_files: tuple[Path, ...],
    no_entrypoints: bool,
    settings: tuple[Path, ...],
    as_json: bool,
    verbose: bool,
) -> None:
    """Replay a bundled two-turn agent session through the example plugins.

    The discovered plugins (entry points, plugin directories, --plugin) run after the
    bundled examples, named demo:<name> so that none of yours clashes with them: a
    permission gate, a secret redactor, a context injector, a usage budget and a tool logger
    (writing to a temporary file unless $KITHOOKS_TOOL_LOG is set).
    """
    import tempfile

    from . import demo as demo_module

    with tempfile.TemporaryDirectory() as tmp, _plugin_output():
        os.environ.setdefault("KITHOOKS_TOOL_LOG", os.path.join(tmp, "tool-log.jsonl"))
        pm = replay_manager(
            plugin_files,
            entrypoints=not no_entrypoints,
            extra=demo_module.demo_plugins(),
            cwd=str(demo_module.demo_project()),
            settings=settings,
        )
        code = _run_replay(
            demo_module.demo_recording(), pm, skip_bad=False, as_json=as_json, verbose=verbose
        )
    sys.exit(code)


@cli.command(name="replay")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@_PLUGIN_OPTION
@_NO_EP_OPTION
@_SETTINGS_OPTION
@click.option(
    "--skip-bad", is_flag=True, help="Skip malformed lines (counted) instead of stopping."
)
@click.option(
    "--otel",
    "otel_kind",
    type=click.Choice(["console", "otlp"]),
    default=None,
    help="Also export the session's traces: console prints spans as JSON (on stderr with "
    "--json); otlp sends them where the OTEL_EXPORTER_OTLP_* variables say.",
)
@_JSON_OPTION
@_VERBOSE_OPTION
def replay_command(
    *,
    file: str,
    plugin_files: tuple[Path, ...],
    no_entrypoints: bool,
    settings: tuple[Path, ...],
    skip_bad: bool,
    otel_kind: str | None,
    as_json: bool,
    verbose: bool,
) -> None:
    """Replay a JSONL recording (FILE, or - for standard input) through the discovered
    plugins and report what they did."""
    extra: list[tuple[str, object]] = []
    shutdown: Callable[[], None] | None = None
    with _plugin_output():
        if otel_kind is not None:
            try:
                from .otel import exporter_for

                exporter, shutdown = exporter_for(
                    otel_kind, out=sys.stderr if as_json else _stdout()
                )
            except (ImportError, ValueError) as exc:
                fail(str(exc))
            extra.append((exporter.NAME, exporter))
        pm = replay_manager(
            plugin_files, entrypoints=not no_entrypoints, extra=extra, settings=settings
        )
        source = None if file == "-" else Path(file)
        try:
            code = _run_replay(source, pm, skip_bad=skip_bad, as_json=as_json, verbose=verbose)
        finally:
            if shutdown is not None:
                shutdown()
    sys.exit(code)


# --------------------------------------------------------------------------- plugins / hooks


@cli.command()
@_PLUGIN_OPTION
@_NO_EP_OPTION
@_SETTINGS_OPTION
@_JSON_OPTION
def plugins(
    plugin_files: tuple[Path, ...], no_entrypoints: bool, settings: tuple[Path, ...], as_json: bool
) -> None:
    """List the discovered plugins, the hooks each implements, load errors, and what was
    found and skipped (a test file beside the plugins, an imported hook class).

    Piped, one plugin a line, tab-separated: name, origin, hooks (comma-separated). Load
    errors and skipped files go to stderr, one a line.
    """
    with _plugin_output():
        pm = replay_manager(plugin_files, entrypoints=not no_entrypoints, settings=settings)
        rows: list[dict[str, Any]] = []
        for name, plugin in pm.list_name_plugin():
            if plugin is None or name == "turn-aggregator":
                continue
            source = pm.plugin_source(name)
            hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
            rows.append(
                {
                    "name": name,
                    "kind": source.kind if source else "object",
                    "location": source.location if source else "",
                    "distribution": source.distribution if source else "",
                    "version": source.version if source else "",
                    "hooks": hooks,
                }
            )
        notes = skipped(pm)
        if as_json:
            errors = [_load_error_json(e) for e in pm.load_errors]
            emit_json(
                {
                    "plugins": rows,
                    "load_errors": errors,
                    "skipped": [attrs.asdict(n) | {"message": n.message} for n in notes],
                }
            )
        elif rows:
            _rows(
                ("plugin", "from", "hooks"),
                [
                    (
                        r["name"],
                        f"{r['distribution']} {r['version']} ({r['location']})"
                        if r["kind"] == "entrypoint"
                        else r["location"],
                        ",".join(r["hooks"]),
                    )
                    for r in rows
                ],
            )
        else:
            say("no plugins found")
        if not as_json:
            for note in notes:  # the warnings were logged (on stderr) as they happened
                if not note.warning:
                    say(note.message)
        failed = _report_load_errors(pm)
    sys.exit(EXIT_PLUGINS_FAILED if failed else EXIT_OK)


@cli.command()
@_JSON_OPTION
def hooks(as_json: bool) -> None:
    """The event catalogue: wire name, hook, dispatch kind, payload fields, result.

    Piped, one event a line, tab-separated: event, hook, kind, payload class, fields
    (comma-separated), result class (- for none).
    """
    rows: list[dict[str, Any]] = []
    for et in all_event_types():
        cls = EVENT_CLASSES[et]
        rule = RULES.get(et)
        rows.append(
            {
                "event": et.value,
                "hook": et.hook_name,
                "kind": KINDS[et].value,
                "payload": cls.__name__,
                "fields": [f.name for f in attrs.fields(cast("type[Any]", cls))],
                "result": rule.result_type.__name__ if rule else None,
            }
        )
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        r["result"] = r["result"] or "-"
    _rows(
        ("event", "hook", "kind", "payload", "fields", "result"),
        [
            (
                r["event"],
                r["hook"],
                r["kind"],
                r["payload"],
                ",".join(r["fields"]),
                r["result"] or "-",
            )
            for r in rows
        ],
    )


# --------------------------------------------------------------------------- scaffold


@cli.command(name="new-plugin")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(path_type=Path), help="Where (default ./NAME).")
def new_plugin_command(name: str, directory: Path | None) -> None:
    """Write a pip-installable plugin project NAME, with tests that pass as generated."""
    from .scaffold import ScaffoldError, kithooks_requirement, new_plugin, next_steps

    requirement = kithooks_requirement()
    try:
        root = new_plugin(name, directory, requirement=requirement)
    except ScaffoldError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write the project: {exc}")
    echo(f"Created {root}. Next:")
    for step in next_steps(root):
        echo(f"  {step}")


# --------------------------------------------------------------------------- state


def _store(session_file: Path, *, must_exist: bool = True) -> StateStore:
    path = (
        session_file
        if session_file.name.endswith(".ext-state.json")
        else sidecar_path(session_file)
    )
    if must_exist and not SidecarBackend(path).exists():
        fail(f"no state file {path}")  # neither the sidecar nor its journal
    try:
        return StateStore(path)
    except StateError as exc:
        fail(str(exc))


def _utf8(what: str, text: str) -> None:
    """Exit 2 unless ``text`` (from the command line) is text the state file can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = ord(text[exc.start])
        shown = f"byte 0x{char - 0xDC00:02x}" if 0xDC80 <= char <= 0xDCFF else f"U+{char:04X}"
        fail(f"the {what} is not UTF-8 text: {shown} at position {exc.start + 1}")


@cli.group()
def state() -> None:
    """Inspect and edit a session's sidecar state (SESSION_FILE: the session or its sidecar)."""


_SESSION = click.argument("session_file", type=click.Path(dir_okay=False, path_type=Path))


@state.command("show")
@_SESSION
@_JSON_OPTION
def state_show(session_file: Path, as_json: bool) -> None:
    """Show every key and value (piped: one key a line, key TAB value)."""
    store = _store(session_file)
    data = store.snapshot()
    if as_json:
        emit_json(data)
    elif not data:
        say(f"{store.path}: empty")
    else:
        _rows(("key", "value"), [(k, data[k]) for k in sorted(data)], title=str(store.path))


@state.command("get")
@_SESSION
@click.argument("key")
def state_get(session_file: Path, key: str) -> None:
    """Print one value (exit 2 when the key is missing)."""
    store = _store(session_file)
    value = store.get(key)
    if value is None:
        fail(f"no key {key!r} in {store.path}")
    echo(value)


@state.command("set")
@_SESSION
@click.argument("key")
@click.argument("value")
def state_set(session_file: Path, key: str, value: str) -> None:
    """Set a key (saved atomically; the file is made when missing)."""
    _utf8("key", key)
    _utf8("value", value)
    store = _store(session_file, must_exist=False)
    try:
        store.set(key, value)
    except StateError as exc:
        fail(str(exc))


@state.command("delete")
@_SESSION
@click.argument("key")
def state_delete(session_file: Path, key: str) -> None:
    """Delete a key (exit 2 when it is missing)."""
    store = _store(session_file)
    if store.get(key) is None:
        fail(f"no key {key!r} in {store.path}")
    try:
        store.delete(key)
    except StateError as exc:
        fail(str(exc))


# --------------------------------------------------------------------------- entry point


class _LogLine(logging.Handler):
    """kithooks' log records as one stderr line each. Plugin failures (logged by
    ``kithooks.callers``, load errors by ``kithooks.manager``) are left out: the commands
    report them themselves, grouped, with their tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and record.module not in ("callers", "manager")

    def emit(self, record: logging.LogRecord) -> None:
        say(record.getMessage())


def _escape_unencodable() -> None:
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def _run(argv: list[str] | None) -> int:
    try:
        # Without standalone mode click returns what the command returned, or an exit code.
        returned = cli.main(args=argv, prog_name="kithooks", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        say("aborted")
        return EXIT_BAD_INPUT
    except click.ClickException as exc:
        exc.show()
        return EXIT_BAD_INPUT
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    return returned if isinstance(returned, int) else EXIT_OK


def _add_commands() -> None:
    """Commands that live with their feature."""
    from .command_hooks import claude_hook

    cli.add_command(claude_hook)


_add_commands()


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the ``kithooks`` console script and of ``python -m kithooks``."""
    _escape_unencodable()
    logger = logging.getLogger("kithooks")
    handler = _LogLine()
    logger.addHandler(handler)
    try:
        code = _run(argv)
        sys.stdout.flush()
    except (PipeClosed, BrokenPipeError):
        # The reader went away (`kithooks demo | head -1`): not an error. Point stdout at
        # /dev/null so the interpreter's final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = EXIT_OK
    finally:
        logger.removeHandler(handler)
    sys.exit(code)
