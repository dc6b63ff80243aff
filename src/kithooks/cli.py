"""The ``kithooks`` command line.

Exit codes: 0 success, 1 when plugins failed (a load error or a handler error), 2 for bad
usage or bad input; each failure prints a one-line reason on stderr. Output is rich text in
a terminal, plain text otherwise, and JSON with ``--json``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, cast

import attrs
import click
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from . import demo as demo_module
from .context import Context
from .dispatch import KINDS, RULES
from .events import EVENT_CLASSES, AgentEndEvent, all_event_types
from .loading import LoadError
from .manager import PluginManager
from .recording import ReplayError, ReplayReport, replay
from .state import StateError, StateStore, sidecar_path

__all__ = ["main"]

EXIT_OK, EXIT_PLUGINS_FAILED, EXIT_BAD_INPUT = 0, 1, 2
PROGRESS_AT = 1_000  # lines: replays longer than this show a progress bar in a terminal

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print ``kithooks: <message>`` on stderr and exit with ``code``."""
    err.print(f"kithooks: {escape(message)}", style="red" if err.is_terminal else None)
    sys.exit(code)


def _table(*headers: str, title: str | None = None) -> Table:
    """A table whose cells wrap instead of being cut: nothing is lost in narrow output."""
    table = Table(title=title)
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def emit_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _manager(plugin_files: tuple[Path, ...], entrypoints: bool) -> PluginManager:
    pm = PluginManager(context=Context(print=lambda _: None))
    if entrypoints:
        pm.load_entrypoints()
    pm.load_plugin_files(plugin_files)
    return pm


def _load_error_json(e: LoadError) -> dict[str, str]:
    return {
        "name": e.name,
        "kind": e.kind,
        "location": e.location,
        "error": f"{type(e.error).__name__}: {e.error}",
    }


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kithooks")
def cli() -> None:
    """kithooks: lifecycle hooks for AI agents (KIT's events on pluggy)."""


# --------------------------------------------------------------------------- replay / demo


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


@contextmanager
def _progress(path: Path, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    total = _count_lines(path) if enabled and err.is_terminal else 0
    if total < PROGRESS_AT:
        yield None
        return
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
    "custom_event": ("custom event", "magenta"),
    "error": ("FAILED", "bold red"),
    "print": ("says", "dim"),
    "print_error": ("warns", "yellow"),
}


def _print_report(report: ReplayReport, load_errors: list[LoadError], plugins: list[str]) -> None:
    out.print(f"[bold]Replaying[/bold] {escape(report.path)}")
    out.print(f"plugins: {escape(', '.join(plugins)) or '(none)'}")
    for e in load_errors:
        out.print(f"[red]load error:[/red] {escape(e.message)}")
    for turn in report.turns:
        if not turn.actions and turn.agent_end is None:
            continue
        label = turn.turn_id or "(outside a turn)"
        out.print()
        out.print(
            f"[bold]Turn {escape(label)}[/bold] "
            f"(session {escape(turn.session_id)}, {turn.events} events)"
        )
        for a in turn.actions:
            verb, style = _ICONS.get(a.kind, (a.kind, ""))
            who = f"{a.plugin} " if a.plugin else ""
            where = f" {a.event_type}" if a.event_type and a.kind not in ("custom_event",) else ""
            detail = f": {a.detail}" if a.detail else ""
            out.print(
                f"  [{style}]{escape(who + verb + where + detail)}[/{style}]"
                if style
                else f"  {escape(who + verb + where + detail)}"
            )
        if turn.agent_end is not None:
            out.print(f"  [green]{escape(_end_line(turn.agent_end))}[/green]")
    out.print()
    status = f"{report.events} events, {len(report.errors)} plugin errors"
    if report.bad_lines:
        status += f", {len(report.bad_lines)} bad lines skipped"
    out.print(status)


def _run_replay(
    path: Path,
    pm: PluginManager,
    *,
    skip_bad: bool,
    as_json: bool,
) -> int:
    try:
        with _progress(path, not as_json) as progress:
            report = replay(path, pm, skip_bad=skip_bad, progress=progress)
    except ReplayError as exc:
        fail(f"{exc} (use --skip-bad to skip bad lines)")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    plugins = [name for name, _ in pm.list_name_plugin() if name != "turn-aggregator"]
    if as_json:
        data = report.to_json()
        data["plugins"] = plugins
        data["load_errors"] = [_load_error_json(e) for e in pm.load_errors]
        emit_json(data)
    else:
        _print_report(report, pm.load_errors, plugins)
    for bad in report.bad_lines:
        err.print(f"kithooks: skipped {escape(bad.message)}")
    if pm.load_errors or report.errors:
        n = len(pm.load_errors) + len(report.errors)
        err.print(f"kithooks: {n} plugin failure(s); see above")
        return EXIT_PLUGINS_FAILED
    return EXIT_OK


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
_JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@cli.command()
@_PLUGIN_OPTION
@_NO_EP_OPTION
@_JSON_OPTION
def demo(plugin_files: tuple[Path, ...], no_entrypoints: bool, as_json: bool) -> None:
    """Replay a bundled two-turn agent session through the example plugins.

    The discovered plugins (entry points, plugin directories, --plugin) run beside the
    bundled examples: a permission gate, a secret redactor, a context injector, a usage
    budget and a tool logger (writing to a temporary file unless $KITHOOKS_TOOL_LOG is set).
    """
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("KITHOOKS_TOOL_LOG", os.path.join(tmp, "tool-log.jsonl"))
        pm = PluginManager(
            context=Context(cwd=str(demo_module.demo_project()), print=lambda _: None)
        )
        for name, module in demo_module.EXAMPLE_PLUGINS:
            pm.register(module, name=name)
        if not no_entrypoints:
            pm.load_entrypoints()
        pm.load_plugin_files(plugin_files)
        code = _run_replay(demo_module.demo_recording(), pm, skip_bad=False, as_json=as_json)
    sys.exit(code)


@cli.command(name="replay")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_PLUGIN_OPTION
@_NO_EP_OPTION
@click.option(
    "--skip-bad", is_flag=True, help="Skip malformed lines (counted) instead of stopping."
)
@_JSON_OPTION
def replay_command(
    file: Path, plugin_files: tuple[Path, ...], no_entrypoints: bool, skip_bad: bool, as_json: bool
) -> None:
    """Replay a JSONL recording through the discovered plugins and report what they did."""
    pm = _manager(plugin_files, entrypoints=not no_entrypoints)
    sys.exit(_run_replay(file, pm, skip_bad=skip_bad, as_json=as_json))


# --------------------------------------------------------------------------- plugins / hooks


@cli.command()
@_PLUGIN_OPTION
@_NO_EP_OPTION
@_JSON_OPTION
def plugins(plugin_files: tuple[Path, ...], no_entrypoints: bool, as_json: bool) -> None:
    """List the discovered plugins, the hooks each implements, and load errors."""
    pm = _manager(plugin_files, entrypoints=not no_entrypoints)
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
    errors = [_load_error_json(e) for e in pm.load_errors]
    if as_json:
        emit_json({"plugins": rows, "load_errors": errors})
    else:
        if not rows:
            out.print("No plugins found.")
        table = _table("plugin", "from", "hooks")
        for r in rows:
            origin = (
                f"{r['distribution']} {r['version']} ({r['location']})"
                if r["kind"] == "entrypoint"
                else r["location"]
            )
            table.add_row(r["name"], escape(origin), ", ".join(r["hooks"]))
        if rows:
            out.print(table)
        for e in pm.load_errors:
            out.print(f"[red]load error:[/red] {escape(e.message)}")
    sys.exit(EXIT_PLUGINS_FAILED if errors else EXIT_OK)


@cli.command()
@_JSON_OPTION
def hooks(as_json: bool) -> None:
    """The event catalogue: wire name, hook, dispatch kind, payload fields, result."""
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
    table = _table("event", "hook", "kind", "fields", "result")
    for r in rows:
        table.add_row(r["event"], r["hook"], r["kind"], ", ".join(r["fields"]), r["result"] or "")
    out.print(table)


# --------------------------------------------------------------------------- scaffold


@cli.command(name="new-plugin")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(path_type=Path), help="Where (default ./NAME).")
def new_plugin_command(name: str, directory: Path | None) -> None:
    """Write a pip-installable plugin project NAME, with tests that pass as generated."""
    from importlib.metadata import version

    from .scaffold import ScaffoldError, new_plugin

    try:
        root = new_plugin(name, directory, kithooks_version=version("kithooks"))
    except ScaffoldError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write the project: {exc}")
    click.echo(f"Created {root}. Next:")
    click.echo(f"  cd {root} && python3 -m venv .venv && .venv/bin/pip install -e '.[test]'")
    click.echo("  .venv/bin/python -m pytest")


# --------------------------------------------------------------------------- state


def _store(session_file: Path) -> StateStore:
    path = (
        session_file
        if session_file.name.endswith(".ext-state.json")
        else sidecar_path(session_file)
    )
    try:
        return StateStore(path)
    except StateError as exc:
        fail(str(exc))


@cli.group()
def state() -> None:
    """Inspect and edit a session's sidecar state (SESSION_FILE: the session or its sidecar)."""


_SESSION = click.argument("session_file", type=click.Path(dir_okay=False, path_type=Path))


@state.command("show")
@_SESSION
@_JSON_OPTION
def state_show(session_file: Path, as_json: bool) -> None:
    """Show every key and value."""
    store = _store(session_file)
    data = store.snapshot()
    if as_json:
        emit_json(data)
        return
    if not data:
        out.print(f"{escape(str(store.path))}: empty")
        return
    table = _table("key", "value", title=escape(str(store.path)))
    for key in sorted(data):
        table.add_row(escape(key), escape(data[key]))
    out.print(table)


@state.command("get")
@_SESSION
@click.argument("key")
def state_get(session_file: Path, key: str) -> None:
    """Print one value (exit 2 when the key is missing)."""
    value = _store(session_file).get(key)
    if value is None:
        fail(f"no key {key!r} in {sidecar_path(session_file)}")
    click.echo(value)


@state.command("set")
@_SESSION
@click.argument("key")
@click.argument("value")
def state_set(session_file: Path, key: str, value: str) -> None:
    """Set a key (saved atomically)."""
    store = _store(session_file)
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


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``kithooks`` console script."""
    try:
        cli.main(args=argv, prog_name="kithooks", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        fail("aborted")
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
