"""Record event streams as JSONL, and replay them through a manager.

A recording has one JSON object per line::

    {"session_id": "s1", "turn_id": "t1", "time_ms": 1764403200000,
     "event": {"type": "tool_call", "tool_name": "bash", ...}}

The :class:`Recorder` writes what the host emitted (it runs first, before any plugin can
change or stop an event) with the wall-clock time in milliseconds, and flushes every line,
so a crash loses at most the line being written. :func:`replay` reads a recording and
emits each event through a manager with ``aemit`` (async plugins work), reporting what the
plugins did. Reading accepts any bytes: a line that is not a valid record is reported as
``FILE:LINE: what is wrong``.

Every event the library can emit round-trips, with one exception: a line is strict JSON
in UTF-8, so a NaN or an infinity in an event's JSON data (``parsed_args``) is written as
``null`` and named in the record's ``nonfinite`` object by JSON Pointer into the event
(``{"/parsed_args/n": "Infinity"}``), and a string holding a lone surrogate makes its line
ASCII with ``\\u`` escapes (two surrogates in a row that make a pair read back as the one
character they encode, as JSON's escapes are UTF-16). The exception: an int in JSON data
with more digits than Python converts to text (``sys.get_int_max_str_digits()``, 4300 by
default) cannot be written; the :class:`Recorder` raises :class:`ValueError` naming it by
JSON Pointer (the manager logs that as the recorder's failure) and the event is not
recorded. A new :class:`Recorder` on a file whose last line was torn by a crash starts on
a new line, so only that line is lost.
"""

from __future__ import annotations

import asyncio
import codecs
import inspect
import json
import math
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import CodeType, FrameType, ModuleType
from typing import IO, Any, BinaryIO

import attrs

from .aggregator import TurnAggregator, counts_only
from .bus import custom_handlers_of
from .context import Context
from .dispatch import RULES
from .events import (
    AgentEndEvent,
    AgentStartEvent,
    Event,
    EventType,
    Result,
    SubagentEndEvent,
    ToolCallEvent,
    ToolCallResult,
)
from .hookspecs import hookimpl
from .manager import HandlerError, PluginManager
from .structuring import StructureError, event_from_dict, event_to_dict, unstructure

__all__ = [
    "Action",
    "BadLine",
    "Failure",
    "Record",
    "Recorder",
    "ReplayError",
    "RUN_ONLY_EVENTS",
    "ReplayReport",
    "TurnReport",
    "areplay",
    "read_recording",
    "replay",
]

#: How many line numbers a :class:`Failure` keeps (its ``count`` counts them all).
FIRST_LINES = 5

#: The events of one tool call that a live host emits only when the tool runs
#: (:class:`kithooks.hosting.ToolRun`, and the original's tool wrapper): after a replayed
#: block of the call, replay skips the recorded ones (see :func:`areplay`).
RUN_ONLY_EVENTS = frozenset(
    {
        EventType.TOOL_EXECUTION_START,
        EventType.TOOL_OUTPUT,
        EventType.TOOL_EXECUTION_END,
        EventType.TOOL_RESULT,
        EventType.SUBAGENT_CHUNK,
    }
)


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


#: How a record names each number JSON cannot write (its ``nonfinite`` key), and back.
_NONFINITE_NAMES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _nonfinite_name(value: float) -> str:
    return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"


def _pointer_token(key: str) -> str:
    """``key`` as one JSON Pointer (RFC 6901) reference token."""
    return key.replace("~", "~0").replace("/", "~1")


def _finite_only(value: Any, path: str, found: dict[str, str]) -> Any:
    """``value`` with each NaN or infinity replaced by None, named in ``found`` by pointer."""
    if isinstance(value, float) and not math.isfinite(value):
        found[path] = _nonfinite_name(value)
        return None
    if isinstance(value, dict):
        return {k: _finite_only(v, f"{path}/{_pointer_token(k)}", found) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_only(v, f"{path}/{i}", found) for i, v in enumerate(value)]
    return value


def _long_ints(value: Any, path: str) -> Iterator[str]:
    """The JSON Pointers of the ints in ``value`` too long to write as decimal text."""
    if isinstance(value, int) and not _printable_int(value):
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _long_ints(v, f"{path}/{_pointer_token(k)}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _long_ints(v, f"{path}/{i}")


def _dumps(record: dict[str, Any], ascii_only: bool) -> str:
    return json.dumps(record, ensure_ascii=ascii_only, allow_nan=False, separators=(",", ":"))


def _record_line(event: Event, ctx: Context, time_ms: int) -> bytes:
    """One record as a line of strict JSON in UTF-8, which :func:`read_recording` reads back
    to the same event.

    A NaN or an infinity (which JSON has no number for; only an event's JSON data such as
    ``parsed_args`` can hold one) is written as ``null`` and named in the record's
    ``nonfinite`` object, by JSON Pointer into the event. A string holding a lone surrogate
    (which UTF-8 cannot encode) makes the line all ASCII, with ``\\u`` escapes.
    """
    record: dict[str, Any] = {
        "session_id": ctx.session_id,
        "turn_id": ctx.turn_id,
        "time_ms": time_ms,
        "event": event_to_dict(event),
    }
    try:
        text = _dumps(record, ascii_only=False)
    except ValueError:  # a NaN or an infinity, or an int too long to write
        found: dict[str, str] = {}
        record["event"] = _finite_only(record["event"], "", found)
        record["nonfinite"] = found
        try:
            text = _dumps(record, ascii_only=False)
        except ValueError:
            where = next(_long_ints(record["event"], ""), "?")
            raise ValueError(
                f"cannot record this {event.event_type.value} event: the int at {where} has "
                f"more digits than Python writes as text ({sys.get_int_max_str_digits()}, "
                "see sys.set_int_max_str_digits), so no recording can hold it"
            ) from None
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: \u escapes, as JSON allows
        return (_dumps(record, ascii_only=True) + "\n").encode("ascii")


def _open_for_append(path: Path) -> IO[bytes]:
    """``path`` opened to append records, on a line of their own.

    A regular file whose last line has no line end (a writer crashed while writing it) gets
    one first, so that torn line stays one bad line and the next record is whole. A pipe, a
    FIFO or a terminal (``/dev/stdout``) is opened to write only, as it has no last line to
    look at.
    """
    fh = path.open("ab")
    try:
        end = fh.seek(0, os.SEEK_END) if fh.seekable() else 0
        if end and _last_byte(path, end) not in (b"\n", None):
            fh.write(b"\n")
            fh.flush()
    except BaseException:
        fh.close()
        raise
    return fh


def _last_byte(path: Path, end: int) -> bytes | None:
    """The byte before offset ``end`` of ``path``, or None when it cannot be read back (a
    file this process may write but not read)."""
    try:
        with path.open("rb") as reader:
            reader.seek(end - 1)
            return reader.read(1)
    except OSError:
        return None


class Recorder:
    """A plugin that appends every event it sees to a JSONL file.

    ``events`` limits it to some event types (all 34 by default). ``clock`` gives each
    line's ``time_ms`` (wall-clock milliseconds by default); replay measures turn durations
    with it. Its handlers are ``tryfirst``: register it before other ``tryfirst`` plugins to
    see every event as the host emitted it (guards cannot stop it from seeing a call they
    block). It appends; when the file's last line has no line end (a writer crashed while
    writing it), it starts on a new line, so that torn line is the only one lost.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        events: frozenset[EventType] | None = None,
        clock: Callable[[], int] = _wall_clock_ms,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._events = frozenset(EventType) if events is None else frozenset(events)
        self._clock = clock
        self._file: IO[bytes] | None = _open_for_append(self.path)
        self._lock = threading.Lock()

    def record(self, event: Event, ctx: Context) -> None:
        """Append one event (with the context's session and turn ids and the time) and flush.

        Every event round-trips: :func:`read_recording` gives it back equal, NaN and
        infinities in its JSON data and lone surrogates in its strings included; but an
        int in its JSON data with more digits than ``sys.get_int_max_str_digits()`` (4300
        by default) cannot be written: :class:`ValueError` names it (by JSON Pointer into
        the event), and nothing is written.
        """
        with self._lock:
            if self._file is not None:
                self._file.write(_record_line(event, ctx, self._clock()))
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


# --------------------------------------------------------------------------- reading


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
    time_ms: int | None = None  #: when it was recorded (None in recordings without times)


def read_recording(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    skip_bad: bool = False,
    bad: list[BadLine] | None = None,
    name: str | None = None,
) -> Iterator[Record]:
    """The records of a recording (a path, or a binary stream such as ``sys.stdin.buffer``).

    Any bytes are accepted. A line that is not a valid record (not UTF-8, not JSON, too
    deeply nested, ``NaN`` or an out-of-range number, not a known event...) raises
    :class:`ReplayError` naming the file (``name``, by default the path or ``<stdin>``), the
    line and what is wrong; with ``skip_bad`` it is appended to ``bad`` and skipped. Blank
    lines are ignored, and so is a UTF-8 byte order mark at the start.
    """
    if isinstance(source, (str, os.PathLike)):
        label = os.fspath(source) if name is None else name
        with open(source, "rb") as fh:
            yield from _records(fh, label, skip_bad, bad)
    else:
        yield from _records(source, "<stdin>" if name is None else name, skip_bad, bad)


def _records(
    fh: BinaryIO, label: str, skip_bad: bool, bad: list[BadLine] | None
) -> Iterator[Record]:
    for number, raw in enumerate(fh, 1):
        line = (
            raw[len(codecs.BOM_UTF8) :] if number == 1 and raw.startswith(codecs.BOM_UTF8) else raw
        )
        if not line.strip():
            continue
        try:
            yield _parse(line, number)
        except ValueError as exc:
            problem = BadLine(path=label, line=number, error=str(exc))
            if not skip_bad:
                raise ReplayError(problem) from None
            if bad is not None:
                bad.append(problem)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number out of range: {text[:20]}{'...' if len(text) > 20 else ''}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
        raise ValueError(f"integer too long ({len(text)} digits)") from None


def _loads(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"not UTF-8: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}"
        ) from None
    try:
        return json.loads(
            text, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_int
        )
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise ValueError("not JSON this program can read: nested too deeply") from None


def _with_nonfinite(event: Any, nonfinite: Any) -> Any:
    """``event`` with the numbers a record's ``nonfinite`` names put back in their places.

    ``nonfinite`` maps a JSON Pointer into the event to ``"NaN"``, ``"Infinity"`` or
    ``"-Infinity"``; each must point at a ``null`` inside an object or array of the event.
    """
    if not isinstance(nonfinite, dict):
        raise ValueError("nonfinite must be an object")
    for pointer, name in nonfinite.items():
        if not isinstance(name, str) or name not in _NONFINITE_NAMES:
            raise ValueError(
                f"nonfinite {pointer!r:.60}: expected 'NaN', 'Infinity' or '-Infinity', "
                f"got {name!r:.40}"
            )
        tokens = pointer.split("/")
        if pointer == "" or tokens[0] != "":
            raise ValueError(f"nonfinite {pointer!r:.60}: not a JSON Pointer into the event")
        parent: Any = None
        key: Any = None
        here: Any = event
        for token in (t.replace("~1", "/").replace("~0", "~") for t in tokens[1:]):
            parent = here
            if isinstance(here, dict) and token in here:
                key = token
            elif isinstance(here, list) and _is_index(token) and int(token) < len(here):
                key = int(token)
            else:
                here = parent = None
                break
            here = here[key]
        if parent is None or here is not None:
            raise ValueError(f"nonfinite {pointer!r:.60}: no null there in the event")
        parent[key] = _NONFINITE_NAMES[name]
    return event


def _is_index(token: str) -> bool:
    """A JSON Pointer array index: decimal digits, no leading zero."""
    return token.isascii() and token.isdigit() and (token == "0" or token[0] != "0")


def _parse(raw: bytes, number: int) -> Record:
    data = _loads(raw)
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    unknown = set(data) - {"session_id", "turn_id", "time_ms", "event", "nonfinite"}
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}")
    if "event" not in data:
        raise ValueError("missing 'event'")
    if "nonfinite" in data:
        data["event"] = _with_nonfinite(data["event"], data["nonfinite"])
    for key in ("session_id", "turn_id"):
        if not isinstance(data.get(key, ""), str):
            raise ValueError(f"{key} must be a string")
    time_ms = data.get("time_ms")
    if time_ms is not None and (
        not isinstance(time_ms, int) or isinstance(time_ms, bool) or time_ms < 0
    ):
        raise ValueError("time_ms must be a non-negative integer")
    try:
        event = event_from_dict(data["event"])
    except StructureError as exc:
        raise ValueError(
            "bad event: " + "; ".join(e.replace("@ $", "@ event") for e in exc.errors)
        ) from None
    except RecursionError:
        raise ValueError("bad event: nested too deeply") from None
    except Exception as exc:  # a payload validator refusing a value in its own words
        raise ValueError(f"bad event: {type(exc).__name__}: {exc}") from None
    return Record(
        line=number,
        session_id=data.get("session_id", ""),
        turn_id=data.get("turn_id", ""),
        event=event,
        time_ms=time_ms,
    )


# --------------------------------------------------------------------------- the report


@attrs.frozen(kw_only=True)
class Action:
    """Something a plugin did during replay (``plugin`` is never empty)."""

    kind: str  #: block, cancel, handled, transform, inject, rewrite, summary, custom_event, ...
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
class Failure:
    """One kind of handler failure: a (plugin, hook, exception type and message) and its count.

    ``lines`` holds the recording lines of the first :data:`FIRST_LINES` occurrences;
    ``tracebacks`` the first occurrence's traceback, or every one when the replay was asked
    to keep them all.
    """

    plugin: str
    hook: str
    error: str  #: ``ExceptionType: message``
    count: int = 0
    lines: list[int] = attrs.Factory(list)
    tracebacks: list[str] = attrs.Factory(list)

    @property
    def message(self) -> str:
        """One line: who failed where, how often, and on which lines first."""
        where = ", ".join(str(n) for n in self.lines)
        more = ", ..." if self.count > len(self.lines) else ""
        times = "once" if self.count == 1 else f"{self.count} times"
        return (
            f"plugin {self.plugin!r} failed in {self.hook} {times}: {self.error} "
            f"(line {where}{more})"
        )


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
    """What a replay did. ``failures`` groups handler failures; ``failure_count`` sums them.

    ``events`` counts the events emitted; ``skipped`` the recorded events not emitted
    because a replayed plugin blocked their tool call (each such call has a ``skipped``
    action in its turn saying which, and why).
    """

    path: str
    events: int = 0
    skipped: int = 0
    turns: list[TurnReport] = attrs.Factory(list)
    bad_lines: list[BadLine] = attrs.Factory(list)
    failures: list[Failure] = attrs.Factory(list)

    @property
    def failure_count(self) -> int:
        """How many handler calls failed in all."""
        return sum(f.count for f in self.failures)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data (``kithooks replay --json``)."""
        return {
            "path": self.path,
            "events": self.events,
            "skipped": self.skipped,
            "failure_count": self.failure_count,
            "errors": [attrs.asdict(f) for f in self.failures],
            "bad_lines": [attrs.asdict(b) for b in self.bad_lines],
            "turns": [
                {
                    "session_id": t.session_id,
                    "turn_id": t.turn_id,
                    "events": t.events,
                    "actions": [attrs.asdict(a) for a in t.actions],
                    "agent_end": None if t.agent_end is None else unstructure(t.agent_end),
                }
                for t in self.turns
            ],
        }


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _change(before: str, after: str, limit: int = 60) -> str:
    """``'old' -> 'new'`` for people, both from a little before the first difference."""
    same = 0
    for b, a in zip(before, after, strict=False):
        if b != a:
            break
        same += 1
    start = max(0, same - 20)
    lead = "..." if start else ""
    return (
        f"{lead}{_short(repr(before[start:]), limit)} -> {lead}{_short(repr(after[start:]), limit)}"
    )


def _args_text(args: Any) -> str:
    try:
        return json.dumps(args, ensure_ascii=False, sort_keys=True, default=str)
    except ValueError:  # circular data from a plugin
        return repr(args)


#: How deeply a custom event's data is copied into a report (see :func:`_summary`).
SUMMARY_DEPTH = 50


def _shown(value: object, *ways: Callable[[object], str]) -> str:
    """The first of ``ways`` (``str``, ``repr``) that can show ``value``; else a description."""
    error: Exception | None = None
    for way in ways:
        try:
            return way(value)
        except Exception as exc:  # a __str__/__repr__ that raises, an int too long to print
            error = exc
    if isinstance(value, int):
        return f"<int of {value.bit_length()} bits, too long to print>"
    tried = " and ".join(f"{way.__name__}()" for way in ways)
    return f"<{type(value).__qualname__} object: {tried} raised {type(error).__name__}>"


def _printable_int(value: int) -> bool:
    """Whether ``value`` has a decimal form (``sys.get_int_max_str_digits`` limits it)."""
    if value.bit_length() < 2000:  # at most 603 digits: under any limit (640 at the least)
        return True
    try:
        str(value)
    except ValueError:
        return False
    return True


def _summary(value: Any, depth: int = 0, open_: frozenset[int] = frozenset()) -> Any:
    """``value`` (a custom event's data) as JSON-like data that a report can always hold and
    print: strings, numbers, booleans and None as they are; dicts (keys as strings), lists,
    tuples and attrs instances copied; anything else its ``repr``. What cannot be shown so
    becomes a string saying what it is: a cycle (``[...]``, ``{...}``), nesting deeper than
    :data:`SUMMARY_DEPTH`, an object whose ``repr`` raises, a container or field whose
    reading raises, an int too long to print. No key is lost (see
    :func:`_summary_of_mapping`)."""
    if value is None or isinstance(value, (str, bool, float)):
        return value
    if isinstance(value, int):
        return value if _printable_int(value) else _shown(value)
    is_map = isinstance(value, Mapping)
    if not (is_map or isinstance(value, (list, tuple)) or attrs.has(type(value))):
        return _shown(value, repr)
    if id(value) in open_:
        return "{...}" if is_map else "[...]"
    if depth >= SUMMARY_DEPTH:
        return f"<{type(value).__qualname__} nested deeper than {SUMMARY_DEPTH} levels>"
    inner, depth = open_ | {id(value)}, depth + 1
    try:
        if is_map:
            return _summary_of_mapping(value, depth, inner)
        if attrs.has(type(value)):
            fields = attrs.fields(type(value))
            return {f.name: _summary_of_field(value, f.name, depth, inner) for f in fields}
        return [_summary(v, depth, inner) for v in value]
    except (RecursionError, MemoryError):
        raise  # handled where the whole summary is made
    except Exception as exc:  # an __iter__, items() or __getitem__ that raises
        return f"<{type(value).__qualname__} object: reading it raised {type(exc).__name__}>"


def _summary_of_mapping(value: Mapping[Any, Any], depth: int, inner: frozenset[int]) -> Any:
    """A mapping's summary: keys as strings, none lost. A key that is not a string is shown
    as its ``str``; when that is another key's, its type is added (``"1 (int)"``), then a
    number, so ``{1: "a", "1": "b"}`` keeps both values."""
    items = list(value.items())
    taken = {key for key, _ in items if isinstance(key, str)}
    summary: dict[str, Any] = {}
    for key, item in items:
        name = key
        if not isinstance(key, str):
            name = base = _shown(key, str, repr)
            if name in taken:
                name = base = f"{base} ({type(key).__qualname__})"
                number = 2
                while name in taken:
                    name, number = f"{base} #{number}", number + 1
            taken.add(name)
        summary[name] = _summary(item, depth, inner)
    return summary


def _summary_of_field(value: object, name: str, depth: int, inner: frozenset[int]) -> Any:
    """The summary of an attrs field of ``value`` (None when unset; a description when
    reading it raises)."""
    try:
        field = getattr(value, name, None)
    except Exception as exc:
        return f"<field {name}: reading it raised {type(exc).__name__}>"
    return _summary(field, depth, inner)


def _plain(value: Any) -> Any:
    """Frozen JSON-like data (``parsed_args``) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class _Chain:
    """What the plugins before the current one made of the event being replayed."""

    def __init__(self, event: Event) -> None:
        self.event = event
        self.text: str = getattr(event, "text", "")
        self.content: str = getattr(event, "content", "")
        self.is_error: bool = getattr(event, "is_error", False)
        self.args: Any = _plain(getattr(event, "parsed_args", None))


def _action(plugin: str, chain: _Chain, result: Result) -> Action | None:
    """The action a result stands for; updates ``chain`` with what it changed."""
    event = chain.event
    et = event.event_type.value
    data = unstructure(result)
    if getattr(result, "block", False):
        return Action(kind="block", plugin=plugin, event_type=et, detail=data["reason"], after=data)
    if getattr(result, "cancel", False):
        return Action(
            kind="cancel", plugin=plugin, event_type=et, detail=data["reason"], after=data
        )
    kind = event.event_type
    if kind is EventType.TOOL_CALL:
        args = _plain(data.get("args"))
        if args is None:
            return None
        before, chain.args = chain.args, args
        detail = f"args {_short(_args_text(before), 70)} -> {_short(_args_text(args), 70)}"
        return Action(
            kind="rewrite", plugin=plugin, event_type=et, detail=detail, before=before, after=args
        )
    if kind is EventType.INPUT:
        action = data["action"]
        if action == "continue":
            return None
        before = chain.text
        if action == "handled":
            detail = f"{_short(repr(before))} (it never reaches the model)"
        else:
            chain.text = data["text"]
            detail = _change(before, data["text"])
        return Action(
            kind=action, plugin=plugin, event_type=et, detail=detail, before=before, after=data
        )
    if kind is EventType.TOOL_RESULT:
        content, is_error = data["content"], data["is_error"]
        if content is None and is_error is None:
            return None
        before = chain.content
        parts = []
        if content is not None:
            parts.append(_change(before, content))
            chain.content = content
        if is_error is not None:
            parts.append(f"is_error {chain.is_error} -> {is_error}")
            chain.is_error = is_error
        return Action(
            kind="rewrite",
            plugin=plugin,
            event_type=et,
            detail="; ".join(parts),
            before=before,
            after=data,
        )
    if kind is EventType.BEFORE_AGENT_START:
        parts = [f"{k} {_short(v, 60)!r}" for k, v in data.items() if v is not None]
        return (
            Action(kind="inject", plugin=plugin, event_type=et, detail=", ".join(parts), after=data)
            if parts
            else None
        )
    if kind in (EventType.CONTEXT_PREPARE, EventType.PREPARE_STEP):
        if data["messages"] is None:
            return None
        before_n = len(getattr(event, "messages", ()))
        detail = f"{before_n} -> {len(data['messages'])} messages"
        return Action(kind="rewrite", plugin=plugin, event_type=et, detail=detail, after=data)
    if kind is EventType.BEFORE_COMPACT and data.get("summary"):
        return Action(
            kind="summary", plugin=plugin, event_type=et, detail=_short(data["summary"]), after=data
        )
    return None


# --------------------------------------------------------------------------- who is calling


_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def _is_kithooks_internal(source: str) -> bool:
    """True for kithooks' own modules (the bundled example plugins are not internal)."""
    path = os.path.abspath(source)
    return path.startswith(_PACKAGE + os.sep) and not path.startswith(
        os.path.join(_PACKAGE, "examples") + os.sep
    )


class _Attribution:
    """Finds the plugin whose code is running, from the call stack (for prints and events).

    The frame of a registered handler (of a hook or a custom event) names its plugin, the
    innermost such frame winning. Handler code several plugins share (one class registered
    twice, closures from one factory) is told apart by the frame's ``self`` or free
    variables, else credited to all of them (``"gate-curl or gate-rm"``): see
    :func:`_running`. Failing that, a frame of a method running on a
    plugin instance (a helper, a custom-event handler) names that plugin, and then a frame
    of a plugin's source file (a module-level helper) does; a file that several registered
    plugins share names them all (``"gate-curl or gate-rm"``) rather than one at random.
    """

    def __init__(self, pm: PluginManager) -> None:
        #: For each handler's code, every registration of it: the id of the object its
        #: method is bound to (None for a plain function), the function, the plugin name.
        self.codes: dict[CodeType, list[tuple[int | None, Callable[..., Any], str]]] = {}
        #: Plugin instances (kept alive, so their ids stay theirs) and their names, by id.
        self.instances: dict[int, tuple[object, str]] = {}
        files: dict[str, list[str]] = {}
        for name, plugin in pm.list_name_plugin():
            if plugin is None or type(plugin) is TurnAggregator:
                continue  # the built-in aggregator prints nothing; a subclass is a plugin
            if not isinstance(plugin, (ModuleType, type)):
                self.instances.setdefault(id(plugin), (plugin, name))
            for caller in pm.get_hookcallers(plugin) or []:
                for impl in caller.get_hookimpls():
                    if impl.plugin is plugin:
                        self._add_handler(impl.function, name)
            for _, _, function in custom_handlers_of(plugin):
                self._add_handler(function, name)
            module = (
                plugin
                if isinstance(plugin, ModuleType)
                else sys.modules.get(type(plugin).__module__)
            )
            source = getattr(module, "__file__", None)
            if source and not _is_kithooks_internal(source):
                for key in (source, os.path.abspath(source)):
                    names = files.setdefault(key, [])
                    if name not in names:
                        names.append(name)
        self.files = {key: " or ".join(sorted(names)) for key, names in files.items()}

    def _add_handler(self, function: Callable[..., Any], name: str) -> None:
        code = getattr(inspect.unwrap(function), "__code__", None)
        if isinstance(code, CodeType):
            # The bound method kept in codes keeps its object alive: its id stays its own.
            bound = getattr(function, "__self__", None)
            owner = None if bound is None else id(bound)
            self.codes.setdefault(code, []).append((owner, function, name))

    def plugin(self, default: str = "host") -> str:
        """The plugin whose code called the caller of this method, or ``default``."""
        first: FrameType | None = sys._getframe(2)
        frame = first
        while frame is not None:
            handlers = self.codes.get(frame.f_code)
            if handlers is not None:
                return _running(frame, handlers)
            frame = frame.f_back
        frame = first
        while frame is not None:
            if not _is_kithooks_internal(frame.f_code.co_filename):
                found = self.instances.get(id(_first_argument(frame)))
                if found is not None:
                    return found[1]
            frame = frame.f_back
        frame = first
        while frame is not None:
            name = self.files.get(frame.f_code.co_filename)
            if name is not None:
                return name
            frame = frame.f_back
        return default


def _running(frame: FrameType, handlers: list[tuple[int | None, Callable[..., Any], str]]) -> str:
    """Which of ``handlers`` (one code, registered by one or more plugins) ``frame`` runs.

    One class registered twice shares its methods' code: the frame's ``self`` picks the
    instance. Functions made by one factory share their code too: the frame's free
    variables pick the one whose closure holds them. When neither tells (a staticmethod on
    two instances, two closures over equal values), every candidate is named
    (``"gate-curl or gate-rm"``), never one of them at random.
    """
    names = sorted({name for _, _, name in handlers})
    if len(names) == 1:
        return names[0]
    me = id(_first_argument(frame))
    found = {name for owner, _, name in handlers if owner == me}
    if len(found) != 1 and frame.f_code.co_freevars:
        found = {name for _, function, name in handlers if _closes_over(function, frame)}
    return found.pop() if len(found) == 1 else " or ".join(names)


def _closes_over(function: Callable[..., Any], frame: FrameType) -> bool:
    """Whether ``frame`` (of ``function``'s code) runs ``function``: its free variables hold
    the very objects in ``function``'s closure."""
    cells = getattr(inspect.unwrap(function), "__closure__", None)
    if not cells:
        return False
    values = frame.f_locals
    missing = object()
    for var, cell in zip(frame.f_code.co_freevars, cells, strict=False):
        try:
            content = cell.cell_contents
        except ValueError:  # an empty cell
            content = missing
        if values.get(var, missing) is not content:
            return False
    return True


def _first_argument(frame: FrameType) -> object:
    """The object in the first parameter of ``frame``'s function (``self``), or None."""
    code = frame.f_code
    if not code.co_argcount:
        return None
    return frame.f_locals.get(code.co_varnames[0])


# --------------------------------------------------------------------------- replay


class _RecordedClock:
    """The turn aggregator's clock during replay: the recording's time, not the replay's.

    Records with ``time_ms`` set it; an ``agent_end`` without one ends its turn at the
    turn's start plus the ``duration_ms`` the recording carries.
    """

    def __init__(self) -> None:
        self.now_ns = 0
        self._starts: dict[tuple[str, str], int] = {}

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, record: Record) -> None:
        key = (record.session_id, record.turn_id)
        if record.time_ms is not None:
            self.now_ns = record.time_ms * 1_000_000
        elif isinstance(record.event, AgentEndEvent):
            start = self._starts.get(key, self.now_ns)
            self.now_ns = max(self.now_ns, start + record.event.duration_ms * 1_000_000)
        if isinstance(record.event, AgentStartEvent):
            self._starts[key] = self.now_ns
        elif isinstance(record.event, AgentEndEvent):
            self._starts.pop(key, None)


@attrs.define
class _Blocked:
    """A recorded tool call that a replayed plugin blocked, and what replay left out of it."""

    plugin: str  #: the plugin that blocked it
    reason: str
    skipped: list[str] = attrs.Factory(list)  #: the event types skipped, in order
    lines: list[int] = attrs.Factory(list)  #: their lines (the first FIRST_LINES)
    turn: TurnReport | None = None  #: where its ``skipped`` action is, once there is one
    index: int = -1


class _Replay:
    """The state of one replay: the report, the record being replayed, listeners' targets."""

    def __init__(self, pm: PluginManager, path: str, all_tracebacks: bool) -> None:
        self.pm = pm
        self.report = ReplayReport(path=path)
        self.all_tracebacks = all_tracebacks
        self.who = _Attribution(pm)
        self.turn: TurnReport | None = None
        self.line = 0
        self.chain: _Chain | None = None
        self._failures: dict[tuple[str, str, str], Failure] = {}
        self._contexts: dict[tuple[str, str], tuple[TurnReport, Context]] = {}
        #: The tool calls a replayed plugin blocked, by (session id, tool call id).
        self._blocked: dict[tuple[str, str], _Blocked] = {}
        self._blocker = ""  #: the plugin whose block (or fail-closed failure) came last

    def live(self, record: Record, turn: TurnReport) -> Event | None:
        """The event a live host would emit for ``record``, given what the replayed plugins
        decided so far; None: none (the tool call it belongs to was blocked), and the
        call's ``skipped`` action says so.

        A live host runs no blocked tool (:class:`kithooks.hosting.ToolRun`): after a
        block, none of the call's :data:`RUN_ONLY_EVENTS` follow, and a subagent call's
        ``subagent_end`` carries the block's ``Error: <reason>`` instead of a response.
        """
        event = record.event
        call_id = getattr(event, "tool_call_id", "")
        if not call_id:
            return event  # nothing to match it by
        key = (record.session_id, call_id)
        if isinstance(event, ToolCallEvent):
            self._blocked.pop(key, None)  # the same call again: the plugins decide anew
            self._blocker = ""
            return event
        blocked = self._blocked.get(key)
        if blocked is None:
            return event
        if isinstance(event, SubagentEndEvent):
            return attrs.evolve(event, response="", error_msg=f"Error: {blocked.reason}")
        if event.event_type not in RUN_ONLY_EVENTS:
            return event
        blocked.skipped.append(event.event_type.value)
        if len(blocked.lines) < FIRST_LINES:
            blocked.lines.append(record.line)
        self.report.skipped += 1
        if blocked.turn is None:
            blocked.turn, blocked.index = turn, len(turn.actions)
            turn.actions.append(self._skip_action(call_id, blocked))
        else:
            blocked.turn.actions[blocked.index] = self._skip_action(call_id, blocked)
        return None

    def settle(self, record: Record, result: object) -> None:
        """Remember a tool call the replayed plugins blocked (``result`` is its merged one)."""
        event = record.event
        if not isinstance(event, ToolCallEvent) or not event.tool_call_id:
            return
        if isinstance(result, ToolCallResult) and result.block:
            reason = result.reason or RULES[EventType.TOOL_CALL].default_reason
            self._blocked[(record.session_id, event.tool_call_id)] = _Blocked(
                plugin=self._blocker or "a plugin", reason=reason
            )

    @staticmethod
    def _skip_action(call_id: str, blocked: _Blocked) -> Action:
        count = len(blocked.skipped)
        kinds = ", ".join(dict.fromkeys(blocked.skipped))
        where = ", ".join(str(n) for n in blocked.lines)
        more = ", ..." if count > len(blocked.lines) else ""
        detail = (
            f"{count} recorded event{'s' if count != 1 else ''} of tool call {call_id!r} "
            f"({kinds}; line {where}{more}), not replayed: it blocked the call, and a live "
            "host runs no blocked tool"
        )
        after = {"tool_call_id": call_id, "skipped": list(blocked.skipped)}
        return Action(
            kind="skipped", plugin=blocked.plugin, event_type="", detail=detail, after=after
        )

    def on_result(self, plugin: str, hook: str, result: Result) -> None:
        if getattr(result, "block", False) and hook == "on_tool_call":
            self._blocker = plugin
        if self.chain is not None and self.turn is not None:
            action = _action(plugin, self.chain, result)
            if action is not None:
                self.turn.actions.append(action)

    def on_error(self, error: object) -> None:
        if not isinstance(error, HandlerError):
            return  # a load error: the manager keeps it in pm.load_errors
        if error.hook == "on_tool_call" and self.pm.fail_closed:  # its failure blocks
            self._blocker = error.plugin
        exc = error.error
        text = f"{type(exc).__name__}: {exc}"
        key = (error.plugin, error.hook, text)
        failure = self._failures.get(key)
        if failure is None:
            failure = self._failures[key] = Failure(
                plugin=error.plugin, hook=error.hook, error=text
            )
            self.report.failures.append(failure)
            if self.turn is not None:  # the first occurrence shows in its turn; the rest count
                self.turn.actions.append(
                    Action(kind="error", plugin=error.plugin, event_type=error.hook, detail=text)
                )
        failure.count += 1
        if len(failure.lines) < FIRST_LINES:
            failure.lines.append(self.line)
        if self.all_tracebacks or not failure.tracebacks:
            failure.tracebacks.append("".join(traceback.format_exception(exc)))

    def on_custom_event(self, name: str, data: Any) -> None:
        if self.turn is not None:
            plugin = self.who.plugin()
            try:
                after = _summary(data)
            except (RecursionError, MemoryError):  # emitted from deep down an outsized stack
                after = f"<{type(data).__qualname__} object too deep to record here>"
            except Exception as exc:  # isinstance() itself raising: the event is kept
                after = (
                    f"<{type(data).__qualname__} object: reading it raised {type(exc).__name__}>"
                )
            shown = data if isinstance(data, str) else _shown(data, str, repr)
            self.turn.actions.append(
                Action(
                    kind="custom_event",
                    plugin=plugin,
                    event_type=name,
                    detail=f"{name}: {_short(shown)}",
                    after=after,
                )
            )

    def context(self, record: Record) -> tuple[TurnReport, Context]:
        """The record's turn, and a copy of the manager's context for it."""
        key = (record.session_id, record.turn_id)
        found = self._contexts.get(key)
        if found is None:
            turn = TurnReport(session_id=record.session_id, turn_id=record.turn_id)
            self.report.turns.append(turn)
            found = self._contexts[key] = (turn, self._turn_context(turn, *key))
        return found

    def _turn_context(self, turn: TurnReport, session_id: str, turn_id: str) -> Context:
        base = self.pm.context

        def capture(kind: str, original: Callable[[str], None]) -> Callable[[str], None]:
            def callback(text: str) -> None:
                who = self.who.plugin()
                turn.actions.append(Action(kind=kind, plugin=who, event_type="", detail=text))
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


async def areplay(
    source: str | os.PathLike[str] | BinaryIO,
    pm: PluginManager,
    *,
    skip_bad: bool = False,
    progress: Callable[[int], None] | None = None,
    all_tracebacks: bool = False,
    name: str | None = None,
) -> ReplayReport:
    """Emit every event of a recording through ``pm`` with ``aemit`` and report what happened.

    ``source`` is a path or a binary stream (``name`` labels it in messages). Each event is
    emitted with a copy of the manager's context carrying the record's ``session_id`` and
    ``turn_id``. The manager's own turn aggregator (a plain :class:`TurnAggregator`; a
    subclass, or one with a handler set on it, is a plugin, replayed as it is) is
    replaced for the replay by one measuring durations on the recording's clock, in the
    same place in the dispatch order (so it counts the calls a ``tryfirst`` guard blocks,
    as live dispatch does), and put back after. Replay shows what the plugins would have
    done live: when they block a recorded ``tool_call`` (the recording was made without
    that guard, so the tool ran), the call's later recorded :data:`RUN_ONLY_EVENTS`
    (matched by session and ``tool_call_id``) are not emitted, as a live host emits none
    for a blocked call; they are counted in ``skipped``, and a ``skipped`` action of the
    blocking plugin in the turn says which. A subagent call's ``subagent_end`` then
    carries the block's error, as live. A bad line raises :class:`ReplayError` (the events
    before it were replayed); with ``skip_bad`` it is counted in ``bad_lines`` instead.
    Handler failures are grouped in ``failures``
    (``all_tracebacks`` keeps every traceback, not just the first of each group).
    ``progress(n)`` is called after each record, with the number of records replayed or
    skipped.
    """
    label = name or (os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<stdin>")
    state = _Replay(pm, label, all_tracebacks)
    report = state.report
    ends: list[AgentEndEvent] = []

    class _EndProbe:
        """Sees agent_end last, as every handler saw it (enriched by the aggregator). Internal:
        registered while a LangChain agent with no hook exists, too (no agent needs to ask it;
        see PluginManager.keep_unheard)."""

        _kithooks_internal = True

        @hookimpl(trylast=True)
        def on_agent_end(self, event: AgentEndEvent) -> None:
            ends.append(event)

    clock = _RecordedClock()
    original = pm.turn_aggregator
    if original is not None and not all(
        counts_only(original, impl.function)
        for caller in pm.get_hookcallers(original) or ()
        for impl in caller.get_hookimpls()
        if impl.plugin is original
    ):
        # a subclass, or an aggregator with a handler set on it, is a plugin (a guard, say):
        # it is replayed as it is
        original = None
    aggregator_name = None if original is None else pm.get_name(original)
    swap = None if original is None or aggregator_name is None else (aggregator_name, original)
    probe = _EndProbe()
    remove: Callable[[], None] | None = None
    try:
        if swap is not None:
            # In the original's place: its handlers run where the live ones run (first, for
            # the manager's own), so replay counts what a live dispatch counts.
            held = swap[1]
            pm._replace(
                swap[0],
                TurnAggregator(
                    max_open_turns=held.max_open_turns,
                    max_tool_names=held.max_tool_names,
                    clock=clock,
                ),
            )
        pm.register(probe, name="kithooks-replay-probe")
        remove = pm.add_listener(
            on_error=state.on_error,
            on_result=state.on_result,
            on_custom_event=state.on_custom_event,
        )
        for record in read_recording(source, skip_bad=skip_bad, bad=report.bad_lines, name=label):
            turn, ctx = state.context(record)
            clock.advance(record)  # the recording's time passes, emitted or not
            event = state.live(record, turn)
            if event is not None:
                state.turn, state.line, state.chain = turn, record.line, _Chain(event)
                turn.events += 1
                report.events += 1
                state.settle(record, await pm.aemit(event, ctx))
                if isinstance(event, AgentEndEvent) and ends:
                    turn.agent_end = ends.pop()
            if progress is not None:
                progress(report.events + report.skipped)
    finally:
        if remove is not None:
            remove()
        if pm.is_registered(probe):
            pm.unregister(probe)
        if swap is not None:
            pm._replace(*swap)
    return report


def replay(
    source: str | os.PathLike[str] | BinaryIO,
    pm: PluginManager,
    *,
    skip_bad: bool = False,
    progress: Callable[[int], None] | None = None,
    all_tracebacks: bool = False,
    name: str | None = None,
) -> ReplayReport:
    """:func:`areplay` for code that is not async (it runs its own event loop)."""
    return asyncio.run(
        areplay(
            source,
            pm,
            skip_bad=skip_bad,
            progress=progress,
            all_tracebacks=all_tracebacks,
            name=name,
        )
    )
