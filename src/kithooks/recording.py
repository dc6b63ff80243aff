"""Record event streams as JSONL, and replay them through a manager.

A recording has one JSON object per line::

    {"session_id": "s1", "turn_id": "t1", "event": {"type": "tool_call", "tool_name": "bash", ...}}

The :class:`Recorder` writes what the host emitted (it runs first, before any plugin can
change or stop an event) and flushes every line, so a crash loses at most the line being
written. :func:`replay` reads a recording and emits each event through a manager, reporting
what the plugins did.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import attrs

from .context import Context
from .events import AgentEndEvent, Event, EventType, Result
from .hookspecs import hookimpl
from .manager import HandlerError, PluginManager
from .structuring import StructureError, event_from_dict, event_to_dict, unstructure

__all__ = [
    "Action",
    "BadLine",
    "Recorder",
    "ReplayError",
    "ReplayReport",
    "TurnReport",
    "read_recording",
    "replay",
]


def _record_line(event: Event, ctx: Context) -> str:
    record = {"session_id": ctx.session_id, "turn_id": ctx.turn_id, "event": event_to_dict(event)}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


class Recorder:
    """A plugin that appends every event it sees to a JSONL file.

    ``events`` limits it to some event types (all 34 by default). Its handlers are
    ``tryfirst``: register it before other ``tryfirst`` plugins to see every event as the
    host emitted it (guards cannot stop it from seeing a call they block).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, events: frozenset[EventType] | None = None
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._events = frozenset(EventType) if events is None else frozenset(events)
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def record(self, event: Event, ctx: Context) -> None:
        """Append one event (with the context's session and turn ids) and flush."""
        line = _record_line(event, ctx)
        with self._lock:
            if self._file is not None:
                self._file.write(line)
                self._file.flush()

    def close(self) -> None:
        """Close the file; later events are not recorded."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _recorder_hook(et: EventType) -> Callable[..., None]:
    def handler(self: Recorder, event: Event, ctx: Context) -> None:
        if et in self._events:
            self.record(event, ctx)

    handler.__name__ = handler.__qualname__ = et.hook_name
    handler.__doc__ = f"Record ``{et.value}``."
    return hookimpl(tryfirst=True)(handler)


for _et in EventType:  # one tryfirst handler per event, written once for all 34
    setattr(Recorder, _et.hook_name, _recorder_hook(_et))


@attrs.frozen(kw_only=True)
class BadLine:
    """A line of a recording that is not a valid record."""

    path: str
    line: int
    error: str

    @property
    def message(self) -> str:
        """``file:line: what is wrong``."""
        return f"{self.path}:{self.line}: {self.error}"


class ReplayError(ValueError):
    """A recording has a bad line (and replay was asked to stop there)."""

    def __init__(self, bad: BadLine) -> None:
        super().__init__(bad.message)
        self.bad = bad


@attrs.frozen(kw_only=True)
class Record:
    """One line of a recording."""

    line: int
    session_id: str
    turn_id: str
    event: Event


def read_recording(
    path: str | os.PathLike[str], *, skip_bad: bool = False, bad: list[BadLine] | None = None
) -> Iterator[Record]:
    """The records of a recording file, in order.

    A malformed line raises :class:`ReplayError` naming the file, the line and what is
    wrong; with ``skip_bad`` it is appended to ``bad`` and skipped. Blank lines are ignored.
    """
    name = os.fspath(path)
    with open(path, encoding="utf-8") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                yield _parse(raw, number)
            except ValueError as exc:
                problem = BadLine(path=name, line=number, error=str(exc))
                if not skip_bad:
                    raise ReplayError(problem) from None
                if bad is not None:
                    bad.append(problem)


def _parse(raw: str, number: int) -> Record:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    unknown = set(data) - {"session_id", "turn_id", "event"}
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}")
    if "event" not in data:
        raise ValueError("missing 'event'")
    for key in ("session_id", "turn_id"):
        if not isinstance(data.get(key, ""), str):
            raise ValueError(f"{key} must be a string")
    try:
        event = event_from_dict(data["event"])
    except StructureError as exc:
        raise ValueError(
            "bad event: " + "; ".join(e.replace("@ $", "@ event") for e in exc.errors)
        ) from None
    return Record(
        line=number,
        session_id=data.get("session_id", ""),
        turn_id=data.get("turn_id", ""),
        event=event,
    )


@attrs.frozen(kw_only=True)
class Action:
    """Something a plugin did during replay."""

    kind: str  #: block, cancel, handled, transform, inject, rewrite, result, custom_event, error
    plugin: str
    event_type: str
    detail: str = ""
    before: Any = None
    after: Any = None

    def describe(self) -> str:
        """One line for people."""
        text = f"{self.plugin}: {self.kind} on {self.event_type}"
        if self.detail:
            text += f": {self.detail}"
        return text


@attrs.define(kw_only=True)
class TurnReport:
    """One turn of a replay: the plugins' actions and the enriched ``agent_end``."""

    session_id: str
    turn_id: str
    events: int = 0
    actions: list[Action] = attrs.Factory(list)
    agent_end: AgentEndEvent | None = None


@attrs.define(kw_only=True)
class ReplayReport:
    """What a replay did."""

    path: str
    events: int = 0
    turns: list[TurnReport] = attrs.Factory(list)
    bad_lines: list[BadLine] = attrs.Factory(list)
    errors: list[HandlerError] = attrs.Factory(list)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data (``kithooks replay --json``)."""
        return {
            "path": self.path,
            "events": self.events,
            "errors": [
                {
                    "plugin": e.plugin,
                    "hook": e.hook,
                    "error": f"{type(e.error).__name__}: {e.error}",
                }
                for e in self.errors
            ],
            "bad_lines": [attrs.asdict(b) for b in self.bad_lines],
            "turns": [
                {
                    "session_id": t.session_id,
                    "turn_id": t.turn_id,
                    "events": t.events,
                    "actions": [
                        {
                            "kind": a.kind,
                            "plugin": a.plugin,
                            "event_type": a.event_type,
                            "detail": a.detail,
                            "before": a.before,
                            "after": a.after,
                        }
                        for a in t.actions
                    ],
                    "agent_end": None if t.agent_end is None else unstructure(t.agent_end),
                }
                for t in self.turns
            ],
        }


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _action(plugin: str, hook: str, event: Event, result: Result) -> Action | None:
    et = event.event_type.value
    data = unstructure(result)
    if getattr(result, "block", False):
        return Action(kind="block", plugin=plugin, event_type=et, detail=data["reason"], after=data)
    if getattr(result, "cancel", False):
        return Action(
            kind="cancel", plugin=plugin, event_type=et, detail=data["reason"], after=data
        )
    if event.event_type is EventType.INPUT:
        action = data["action"]
        if action == "continue":
            return None
        before = getattr(event, "text", "")
        return Action(
            kind=action,
            plugin=plugin,
            event_type=et,
            detail=_short(data["text"]),
            before=before,
            after=data["text"],
        )
    if event.event_type is EventType.TOOL_RESULT:
        content = data["content"]
        if content is None and data["is_error"] is None:
            return None
        before = getattr(event, "content", "")
        detail = f"now {_short(content, 100)!r}" if content is not None else ""
        if data["is_error"] is not None:
            detail += ("; " if detail else "") + f"is_error={data['is_error']}"
        return Action(
            kind="rewrite", plugin=plugin, event_type=et, detail=detail, before=before, after=data
        )
    if event.event_type is EventType.BEFORE_AGENT_START:
        parts = [f"{k} {_short(v, 60)!r}" for k, v in data.items() if v is not None]
        return (
            Action(kind="inject", plugin=plugin, event_type=et, detail=", ".join(parts), after=data)
            if parts
            else None
        )
    if event.event_type in (EventType.CONTEXT_PREPARE, EventType.PREPARE_STEP):
        if data["messages"] is None:
            return None
        before = len(getattr(event, "messages", ()))
        detail = f"{before} -> {len(data['messages'])} messages"
        return Action(kind="rewrite", plugin=plugin, event_type=et, detail=detail, after=data)
    if event.event_type is EventType.BEFORE_COMPACT and data.get("summary"):
        return Action(
            kind="summary", plugin=plugin, event_type=et, detail=_short(data["summary"]), after=data
        )
    return None


def _replay_context(base: Context, turn: TurnReport, session_id: str, turn_id: str) -> Context:
    """A copy of ``base`` for one turn whose print callbacks also land in the turn's report."""

    def capture(kind: str, original: Callable[[str], None]) -> Callable[[str], None]:
        def callback(text: str) -> None:
            turn.actions.append(Action(kind=kind, plugin="", event_type="", detail=text))
            original(text)

        return callback

    return attrs.evolve(
        base,
        session_id=session_id,
        turn_id=turn_id,
        print=capture("print", base.print),
        print_info=capture("print", base.print_info),
        print_error=capture("print_error", base.print_error),
    )


def replay(
    path: str | os.PathLike[str],
    pm: PluginManager,
    *,
    skip_bad: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Emit every event of a recording through ``pm`` and report what the plugins did.

    Each event is emitted with a copy of the manager's context carrying the record's
    ``session_id`` and ``turn_id``. A bad line raises :class:`ReplayError` (the events
    before it were replayed); with ``skip_bad`` it is counted in ``bad_lines`` instead.
    ``progress(n)`` is called after each event.
    """
    report = ReplayReport(path=os.fspath(path))
    turns: dict[tuple[str, str], tuple[TurnReport, Context]] = {}
    event: Event | None = None  # the event being replayed
    active: TurnReport | None = None  # and its turn
    saved = (pm.on_result, pm.on_error, pm.on_custom_event)

    def on_result(plugin: str, hook: str, result: Result) -> None:
        turn = active
        if event is not None and turn is not None:
            action = _action(plugin, hook, event, result)
            if action is not None:
                turn.actions.append(action)
        if saved[0] is not None:
            saved[0](plugin, hook, result)

    def on_error(error: Any) -> None:
        if isinstance(error, HandlerError):
            report.errors.append(error)
            turn = active
            if turn is not None:
                detail = f"{type(error.error).__name__}: {error.error}"
                turn.actions.append(
                    Action(kind="error", plugin=error.plugin, event_type=error.hook, detail=detail)
                )
        if saved[1] is not None:
            saved[1](error)

    def on_custom(name: str, data: Any) -> None:
        turn = active
        if turn is not None:
            detail = f"{name}: {_short(str(data))}"
            turn.actions.append(
                Action(kind="custom_event", plugin="", event_type=name, detail=detail, after=data)
            )
        if saved[2] is not None:
            saved[2](name, data)

    ends: list[AgentEndEvent] = []

    class _EndProbe:
        """Sees agent_end last, as every handler saw it (enriched by the aggregator)."""

        @hookimpl(trylast=True)
        def on_agent_end(self, event: AgentEndEvent) -> None:
            ends.append(event)

    probe = _EndProbe()
    pm.register(probe, name="kithooks-replay-probe")
    pm.on_result, pm.on_error, pm.on_custom_event = on_result, on_error, on_custom
    try:
        for record in read_recording(path, skip_bad=skip_bad, bad=report.bad_lines):
            key = (record.session_id, record.turn_id)
            if key not in turns:
                new = TurnReport(session_id=record.session_id, turn_id=record.turn_id)
                report.turns.append(new)
                turns[key] = (new, _replay_context(pm.context, new, *key))
            turn, ctx = turns[key]
            active, event = turn, record.event
            turn.events += 1
            report.events += 1
            pm.emit(record.event, ctx)
            if isinstance(record.event, AgentEndEvent) and ends:
                turn.agent_end = ends.pop()
            if progress is not None:
                progress(report.events)
    finally:
        pm.on_result, pm.on_error, pm.on_custom_event = saved
        pm.unregister(probe)
    return report
