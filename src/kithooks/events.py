"""The event contract: event types, payload classes and result classes.

Every lifecycle event of an agent is one frozen, slotted, keyword-only attrs class whose
fields are the original KIT struct's fields in snake_case, each defaulting to the Go zero
value. A field of the wrong type is a :class:`TypeError` naming the class and the field,
raised at construction. Field meanings live in each field's ``metadata["doc"]``; they are
appended to the class docstring and rendered into ``hookspecs.md``.
"""

from __future__ import annotations

import enum
import inspect
import json
import math
import operator
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Final, NoReturn, TypeVar

import attrs

__all__ = [
    "TOOL_KINDS",
    "AgentEndEvent",
    "AgentStartEvent",
    "BeforeAgentStartEvent",
    "BeforeAgentStartResult",
    "BeforeCompactEvent",
    "BeforeCompactResult",
    "BeforeForkEvent",
    "BeforeForkResult",
    "BeforeSessionSwitchEvent",
    "BeforeSessionSwitchResult",
    "ContextMessage",
    "ContextPrepareEvent",
    "ContextPrepareResult",
    "ErrorEvent",
    "Event",
    "EventType",
    "InputEvent",
    "InputResult",
    "LLMUsageEvent",
    "MessageEndEvent",
    "MessageStartEvent",
    "MessageUpdateEvent",
    "ModelChangeEvent",
    "PrepareStepEvent",
    "PrepareStepResult",
    "ReasoningStartEvent",
    "Result",
    "RetryEvent",
    "SessionShutdownEvent",
    "SessionStartEvent",
    "SourceEvent",
    "StepFinishEvent",
    "StepStartEvent",
    "SubagentChunkEvent",
    "SubagentEndEvent",
    "SubagentStartEvent",
    "ToolCallEvent",
    "ToolCallInputDeltaEvent",
    "ToolCallInputEndEvent",
    "ToolCallInputStartEvent",
    "ToolCallResult",
    "ToolExecutionEndEvent",
    "ToolExecutionStartEvent",
    "ToolOutputEvent",
    "ToolResultEvent",
    "ToolResultResult",
    "WarningsEvent",
    "EVENT_CLASSES",
    "RESULT_CLASSES",
    "ImmutablePayloadError",
    "ReadOnlyMapping",
    "RuleSpec",
    "all_event_types",
    "event_class",
    "parse_json_object",
    "thaw",
    "tool_kind_for",
]


class EventType(enum.StrEnum):
    """One member per lifecycle event; the value is the wire name (``"tool_call"``)."""

    TOOL_CALL = "tool_call"
    TOOL_CALL_INPUT_START = "tool_call_input_start"
    TOOL_CALL_INPUT_DELTA = "tool_call_input_delta"
    TOOL_CALL_INPUT_END = "tool_call_input_end"
    TOOL_EXECUTION_START = "tool_execution_start"
    TOOL_EXECUTION_END = "tool_execution_end"
    TOOL_OUTPUT = "tool_output"
    TOOL_RESULT = "tool_result"
    INPUT = "input"
    BEFORE_AGENT_START = "before_agent_start"
    AGENT_START = "agent_start"
    AGENT_END = "agent_end"
    MESSAGE_START = "message_start"
    MESSAGE_UPDATE = "message_update"
    MESSAGE_END = "message_end"
    SESSION_START = "session_start"
    SESSION_SHUTDOWN = "session_shutdown"
    MODEL_CHANGE = "model_change"
    CONTEXT_PREPARE = "context_prepare"
    BEFORE_FORK = "before_fork"
    BEFORE_SESSION_SWITCH = "before_session_switch"
    BEFORE_COMPACT = "before_compact"
    SUBAGENT_START = "subagent_start"
    SUBAGENT_CHUNK = "subagent_chunk"
    SUBAGENT_END = "subagent_end"
    STEP_START = "step_start"
    STEP_FINISH = "step_finish"
    REASONING_START = "reasoning_start"
    WARNINGS = "warnings"
    SOURCE = "source"
    ERROR = "error"
    RETRY = "retry"
    PREPARE_STEP = "prepare_step"
    LLM_USAGE = "llm_usage"

    @property
    def hook_name(self) -> str:
        """The pluggy hook that carries this event: ``on_<wire name>``."""
        return "on_" + self.value


_ALL_EVENT_TYPES: tuple[EventType, ...] = tuple(EventType)


def all_event_types() -> tuple[EventType, ...]:
    """All 34 event types in the original's order (``tool_output`` after ``tool_execution_end``)."""
    return _ALL_EVENT_TYPES


#: The original's tool-kind table: core tool name → kind. Unknown tools are ``"execute"``.
TOOL_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "bash": "execute",
        "edit": "edit",
        "write": "edit",
        "read": "read",
        "ls": "search",
        "grep": "search",
        "find": "search",
        "subagent": "agent",
    }
)
_TOOL_KIND_VALUES = ("execute", "edit", "read", "search", "agent")


def tool_kind_for(tool_name: str) -> str:
    """The ``tool_kind`` the original assigns to ``tool_name`` (``"execute"`` when unknown)."""
    return TOOL_KINDS.get(tool_name, "execute")


# --------------------------------------------------------------------------- validators


def _type_error(
    inst: object, attribute: attrs.Attribute[Any], expected: str, value: object
) -> TypeError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return TypeError(
        f"{type(inst).__name__}.{attribute.name} must be {expected}, "
        f"not {type(value).__name__} ({shown})"
    )


def _v_str(inst: object, a: attrs.Attribute[Any], v: object) -> None:
    if not isinstance(v, str):
        raise _type_error(inst, a, "str", v)


def _v_int(inst: object, a: attrs.Attribute[Any], v: object) -> None:
    if not isinstance(v, int) or isinstance(v, bool):
        raise _type_error(inst, a, "int", v)


def _v_float(inst: object, a: attrs.Attribute[Any], v: object) -> None:
    if not isinstance(v, float):
        raise _type_error(inst, a, "float", v)


def _v_bool(inst: object, a: attrs.Attribute[Any], v: object) -> None:
    if not isinstance(v, bool):
        raise _type_error(inst, a, "bool", v)


def _v_count(inst: object, a: attrs.Attribute[Any], v: object) -> None:
    _v_int(inst, a, v)
    if v < 0:  # type: ignore[operator]
        raise ValueError(f"{type(inst).__name__}.{a.name} must be 0 or more, not {v!r}")


def _v_amount(inst: object, a: attrs.Attribute[Any], v: object) -> None:
    _v_float(inst, a, v)
    if not math.isfinite(v) or v < 0:  # type: ignore[arg-type, operator]
        raise ValueError(
            f"{type(inst).__name__}.{a.name} must be a finite number, 0 or more, not {v!r}"
        )


def _v_choice(inst: object, a: attrs.Attribute[Any], v: object) -> None:
    _v_str(inst, a, v)
    choices = a.metadata["choices"]
    if v not in choices and not (v == "" and a.default == ""):
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{type(inst).__name__}.{a.name} must be one of {allowed}, not {v!r}")


def _v_opt_str(inst: object, a: attrs.Attribute[Any], v: object) -> None:
    if v is not None and not isinstance(v, str):
        raise _type_error(inst, a, "str or None", v)


def _v_opt_bool(inst: object, a: attrs.Attribute[Any], v: object) -> None:
    if v is not None and not isinstance(v, bool):
        raise _type_error(inst, a, "bool or None", v)


def _v_strs(inst: object, a: attrs.Attribute[Any], v: object) -> None:
    if not isinstance(v, tuple):
        raise _type_error(inst, a, "a tuple of str", v)
    for i, item in enumerate(v):
        if not isinstance(item, str):
            raise TypeError(
                f"{type(inst).__name__}.{a.name}[{i}] must be str, not {type(item).__name__}"
            )


def _v_messages(inst: object, a: attrs.Attribute[Any], v: object) -> None:
    if v is None and a.default is None:
        return
    if not isinstance(v, tuple):
        raise _type_error(inst, a, "a tuple of ContextMessage", v)
    for i, item in enumerate(v):
        if not isinstance(item, ContextMessage):
            raise TypeError(
                f"{type(inst).__name__}.{a.name}[{i}] must be ContextMessage, "
                f"not {type(item).__name__}"
            )


def _v_args(inst: object, a: attrs.Attribute[Any], v: object) -> None:
    if v is not None and not isinstance(v, ReadOnlyMapping):
        raise _type_error(inst, a, "a mapping of JSON data or None", v)


def _to_float(v: object) -> object:
    """Accept an int (JSON has one number type) for a float field; leave anything else."""
    if isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    return v


def _to_tuple(v: object) -> object:
    """Accept a list for a sequence field; the payload always holds a tuple."""
    if isinstance(v, list):
        return tuple(v)
    return v


class _NotJSON(TypeError):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        #: Where in the value, outermost first (``["['a']", "[0]"]``).
        self.where: list[str] = []


class ReadOnlyMapping(Mapping[str, Any]):
    """A JSON object that cannot be changed: ``parsed_args`` and ``ToolCallResult.args``.

    Compares equal to a dict with the same items; ``dict(m)`` (or :func:`thaw`) gives a
    copy to change.
    """

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(self._data)

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(
            "tool arguments are read-only: a handler cannot change them in place; return "
            "ToolCallResult(args={...}) to rewrite the call's arguments (dict(args) is a copy)"
        )

    __setitem__ = __delitem__ = _refuse


class ImmutablePayloadError(attrs.exceptions.FrozenInstanceError):
    """Assigning a field of a payload or result: it says what to do instead."""

    def __init__(self, message: str) -> None:
        AttributeError.__init__(self, message)
        self.msg = message
        self.args = (message,)


def _refuse_setattr(self: object, name: str, value: object) -> NoReturn:
    cls: Any = type(self)
    if isinstance(self, Event):
        rules = sys.modules.get(__package__ + ".dispatch")
        rule = None if rules is None else rules.RULES.get(cls.event_type)
        how = (
            f"return a {rule.result_type.__name__} from on_{cls.event_type} to change what happens"
            if rule is not None
            else f"{cls.event_type} is observed only: no handler can change it"
        )
        raise ImmutablePayloadError(
            f"{cls.__name__} is immutable: a handler cannot set .{name}; {how}"
        )
    raise ImmutablePayloadError(
        f"{cls.__name__} is immutable: cannot set .{name}; build a new one "
        f"(attrs.evolve(value, {name}=...))"
    )


_SCALARS = frozenset({str, bool, int, float})
#: How deep ``parsed_args`` may nest. Deeper is refused (a ``ValueError``) rather than
#: left for the recording, replay, OTel and host code that walk it to overflow the stack.
MAX_ARGS_DEPTH = 128


def _freeze_json(v: object, depth: int = 0) -> object:
    """``v`` with its mappings read-only and its lists tuples; :class:`_NotJSON` for what is
    not JSON data, whose ``where`` names it (built only then: this runs on every guard)."""
    cls = v.__class__
    if cls in _SCALARS or v is None:
        return v
    if cls is not dict and isinstance(v, str | bool | int | float):  # their subclasses
        return v
    if depth >= MAX_ARGS_DEPTH:
        raise ValueError(
            f"the arguments are nested deeper than {MAX_ARGS_DEPTH} levels; refused rather than "
            "walked until the stack overflows"
        )
    if cls is dict or isinstance(v, Mapping):
        out: dict[str, object] = {}
        for k, item in v.items():  # type: ignore[attr-defined]  # a dict: no isinstance
            if k.__class__ is not str and not isinstance(k, str):
                raise _NotJSON(f"has a non-str key {k!r}")
            if item.__class__ in _SCALARS:  # the usual leaf, without a call
                out[k] = item
                continue
            try:
                out[k] = _freeze_json(item, depth + 1)
            except _NotJSON as exc:
                exc.where.insert(0, f"[{k!r}]")
                raise
        return ReadOnlyMapping(out)
    if isinstance(v, list | tuple):
        frozen = []
        for i, item in enumerate(v):
            try:
                frozen.append(_freeze_json(item, depth + 1))
            except _NotJSON as exc:
                exc.where.insert(0, f"[{i}]")
                raise
        return tuple(frozen)
    raise _NotJSON(f"holds {type(v).__name__}, which is not JSON data")


def _to_args(v: object, field: str = "parsed_args") -> object:
    """Deep-freeze a JSON object into read-only mappings and tuples; an error names ``field``."""
    if v is None or (v.__class__ is not dict and not isinstance(v, Mapping)):
        return v
    try:
        return _freeze_json(v)
    except _NotJSON as exc:
        raise TypeError(f"{field}{''.join(exc.where)} {exc.args[0]}") from None


def parse_json_object(text: str) -> dict[str, Any] | None:
    """``text`` parsed as a JSON object, or None when it is not JSON or not an object.

    Raises :class:`ValueError` for text that may well be a JSON object but that Python's
    ``json`` cannot read: nested deeper than the recursion limit, or holding an integer of
    more digits than ``sys.get_int_max_str_digits()``. Other JSON readers (the tool's own)
    read such text, so taking it for "no arguments" would let a guard that looks at
    ``parsed_args`` allow what it would block.
    """
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    except (RecursionError, ValueError) as exc:  # not a syntax error: what json cannot read
        if not text.lstrip().startswith("{"):
            return None  # whatever it is, not an object
        why = (
            "it is nested deeper than Python's json module can read"
            if isinstance(exc, RecursionError)
            else f"Python's json module cannot read it ({exc})"
        )
        raise ValueError(
            f"{why}, so its arguments cannot be shown to the plugins; refused rather than "
            "shown as no arguments"
        ) from None
    return value if isinstance(value, dict) else None


def thaw(value: object) -> Any:
    """Turn read-only mappings and tuples (as in ``parsed_args``) back into dicts and lists."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


# --------------------------------------------------------------------------- fields
# Each helper returns an attrs field whose metadata carries what the docs and the
# hypothesis strategies need: a type name, the meaning, and allowed values if any.


def _meta(
    type_name: str, doc: str, choices: Iterable[str] = (), kind: str = "", closed: bool = False
) -> dict[str, Any]:
    # closed: only the choices are valid (enforced); otherwise they are the usual values.
    return {
        "type": type_name,
        "doc": doc,
        "choices": tuple(choices),
        "kind": kind or type_name,
        "closed": closed,
    }


def _str(doc: str, choices: Iterable[str] = (), *, closed: bool = False) -> Any:
    """A str field; with ``closed``, only ``choices`` (and the zero value '') are valid."""
    return attrs.field(
        default="",
        validator=_v_choice if closed else _v_str,
        metadata=_meta("str", doc, choices, closed=closed),
    )


def _int(doc: str, kind: str = "count") -> Any:
    """An int field; counts and step numbers (every kind but 'index') are 0 or more."""
    return attrs.field(
        default=0,
        validator=_v_int if kind == "index" else _v_count,
        metadata=_meta("int", doc, kind=kind),
    )


def _float(doc: str, kind: str = "float") -> Any:
    """A float field: a finite amount, 0 or more (costs, percentages)."""
    return attrs.field(
        default=0.0,
        converter=_to_float,
        validator=_v_amount,
        metadata=_meta("float", doc, kind=kind),
    )


def _bool(doc: str) -> Any:
    return attrs.field(default=False, validator=_v_bool, metadata=_meta("bool", doc))


def _strs(doc: str) -> Any:
    return attrs.field(
        default=(), converter=_to_tuple, validator=_v_strs, metadata=_meta("tuple[str, ...]", doc)
    )


def _messages(doc: str) -> Any:
    return attrs.field(
        default=(),
        converter=_to_tuple,
        validator=_v_messages,
        metadata=_meta("tuple[ContextMessage, ...]", doc, kind="messages"),
    )


def _opt_messages(doc: str) -> Any:
    return attrs.field(
        default=None,
        converter=_to_tuple,
        validator=_v_messages,
        metadata=_meta("tuple[ContextMessage, ...] | None", doc, kind="opt_messages"),
    )


def _opt_str(doc: str) -> Any:
    return attrs.field(default=None, validator=_v_opt_str, metadata=_meta("str | None", doc))


def _opt_bool(doc: str) -> Any:
    return attrs.field(default=None, validator=_v_opt_bool, metadata=_meta("bool | None", doc))


def _args(doc: str, field: str = "parsed_args") -> Any:
    return attrs.field(
        default=None,
        converter=_to_args if field == "parsed_args" else lambda v: _to_args(v, field),
        validator=_v_args,
        metadata=_meta("Mapping[str, Any] | None", doc, kind="json_object"),
    )


_C = TypeVar("_C", bound=type)


_FAST_TYPES = {"str": "str", "int": "int", "bool": "bool"}


def _fast_init(cls: type) -> None:
    """Give ``cls`` an ``__init__`` that checks each field inline (attrs generates none
    for these classes, see ``_OWN_INIT``), compiled when the class is first built.

    attrs' ``__init__`` would call one validator function per field after setting it; on
    the hot events (a ``message_update`` per streamed token) those calls are most of the
    cost. This ``__init__`` keeps the same contract (the same validators run whenever a
    value is not of the exact expected type, so the same ``TypeError`` names the field) but
    tests the common case inline: ``type(value) is str``.

    Compiling it for all 44 classes took a seventh of ``import kithooks``, and a process
    builds few of them (a ``claude-hook`` call builds one or two). So the class first gets
    an ``__init__`` that compiles the real one (and :func:`replace`'s), installs it and
    calls it; its ``__signature__`` is the real one's, for ``help()`` and ``inspect``.
    """
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default)
        for f in attrs.fields(cls)
    ]

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init = cls.__dict__["__init__"]
        if init is __init__:  # else: called through a reference taken before the first build
            init = _compile_init(cls)
        init(self, *args, **kwargs)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__doc__ = _INIT_DOC.format(cls.__name__)
    __init__.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    __init__.__annotations__ = {}  # as the compiled one's
    cls.__init__ = __init__  # type: ignore[misc]


_INIT_DOC = "Build a {}; a field of the wrong type is a TypeError naming it."


def _compile_init(cls: type) -> Callable[..., None]:
    """Compile, install and return ``cls``'s checking ``__init__`` (see ``_fast_init``),
    and compile its :func:`replace`. Two threads may both compile; the results are equal."""
    fields = attrs.fields(cls)
    namespace: dict[str, Any] = {"_inf": math.inf}
    params, body = [], []
    for f in fields:
        name = f.name
        namespace[f"_d_{name}"] = f.default
        namespace[f"_a_{name}"] = f
        namespace[f"_v_{name}"] = f.validator
        params.append(f"{name}=_d_{name}")
        if f.converter is not None:
            namespace[f"_c_{name}"] = f.converter
            body.append(f"    {name} = _c_{name}({name})")
        # The common case is tested inline; anything else goes to the field's validators,
        # which raise the error naming the field (or pass, for an unusual but valid value).
        exact = _FAST_TYPES.get(f.metadata["type"])
        check = f"_v_{name}(self, _a_{name}, {name})"
        if f.metadata["type"] == "float":
            body.append(
                f"    if {name}.__class__ is not float or not 0.0 <= {name} < _inf: {check}"
            )
        elif exact == "str" and f.metadata["closed"]:  # one of the choices, else the check
            namespace[f"_ch_{name}"] = frozenset(f.metadata["choices"])
            body.append(f"    if {name}.__class__ is not str or {name} not in _ch_{name}: {check}")
        elif exact == "int" and f.metadata["kind"] != "index":
            body.append(f"    if {name}.__class__ is not int or {name} < 0: {check}")
        elif exact is not None and not f.metadata["closed"]:
            body.append(f"    if {name}.__class__ is not {exact}: {check}")
        else:
            body.append(f"    {check}")
        # The slot's own setter: frozen classes refuse setattr, and this skips the name lookup.
        namespace[f"_s_{name}"] = cls.__dict__[name].__set__
        body.append(f"    _s_{name}(self, {name})")
    post = getattr(cls, "_derive", None)
    if post is not None:  # fields computed from others (ToolCallEvent.parsed_args)
        namespace["_post"] = post
        body.append("    _post(self)")
    signature = f"self, *, {', '.join(params)}" if params else "self"
    lines = [f"def __init__({signature}):", *(body or ["    pass"])]
    # replace(): the same slot setters, values taken from the instance or the changes.
    lines += ["def _replace(inst, changes):", "    new = _new(_cls)"]
    lines += [
        f"    _s_{f.name}(new, changes[{f.name!r}] if {f.name!r} in changes else inst.{f.name})"
        for f in fields
    ]
    lines.append("    return new")
    namespace.update(_new=object.__new__, _cls=cls)
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<kithooks __init__ and replace of {cls.__name__}>", "exec"), namespace)
    _REPLACE[cls] = namespace["_replace"]
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = _INIT_DOC.format(cls.__name__)
    cls.__init__ = init  # type: ignore[misc]
    return init


def replace(inst: _T, **changes: Any) -> _T:
    """A copy of a payload or result with some fields changed, without re-validating.

    For values that are already of the field's type (from a validated result, say):
    dispatch uses it to hand the next transform handler the changed event at a fraction of
    ``attrs.evolve``'s cost. Use ``attrs.evolve`` for values from outside.
    """
    try:
        copy = _REPLACE[type(inst)]
    except KeyError:  # the class was never built in this process (an unpickled payload)
        if type(inst) not in _DOCUMENTED:
            raise
        _compile_init(type(inst))
        copy = _REPLACE[type(inst)]
    result: _T = copy(inst, changes)
    return result


_T = TypeVar("_T")
#: :func:`replace`'s function per class, compiled with the class's ``__init__``.
_REPLACE: dict[type, Callable[[Any, dict[str, Any]], Any]] = {}
_DOCUMENTED: set[type] = set()


#: The methods attrs does not generate for the classes ``_documented`` completes:
#: ``__init__`` (``_fast_init``), ``__eq__``, ``__hash__`` and ``__repr__`` (``_by_value``,
#: one shared function each, with attrs' semantics). Generating and compiling them per
#: class was most of the time ``import kithooks`` took. Passed as ``**`` so that type
#: checkers' attrs support still derives the ``__init__`` signature from the fields.
_OWN_INIT: Final[dict[str, Any]] = {"init": False, "eq": False, "repr": False}


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    values = self._values
    return values(self) == values(other)


def _hash(self: Any) -> int:
    return hash((self.__class__, self._values(self)))


def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._shown)
    return f"{self.__class__.__qualname__}({shown})"


def _by_value(cls: type) -> None:
    """Equality, hashing and repr over the fields, as attrs generates them for a frozen
    class: equal when the class and every field are; the repr lists the fields."""
    names = tuple(f.name for f in attrs.fields(cls))
    cls._values = staticmethod(operator.attrgetter(*names) if names else lambda inst: ())  # type: ignore[attr-defined]
    cls._shown = tuple(f.name for f in attrs.fields(cls) if f.repr)  # type: ignore[attr-defined]
    cls.__eq__ = _eq  # type: ignore[assignment,method-assign]
    cls.__hash__ = _hash  # type: ignore[assignment,method-assign]
    cls.__repr__ = _repr  # type: ignore[assignment,method-assign]


def _documented(cls: _C) -> _C:
    """Append the fields' meanings to the class docstring (``help()`` shows them), install
    the fast checking ``__init__``, and an assignment error that says what to do instead."""
    _DOCUMENTED.add(cls)
    _fast_init(cls)
    _by_value(cls)
    cls.__setattr__ = _refuse_setattr  # type: ignore[assignment]
    cls.__delattr__ = _refuse_setattr  # type: ignore[assignment]
    fields = attrs.fields(cls)
    if fields:
        lines = ["", "", "Fields:"]
        for f in fields:
            line = (
                f"    {f.name} ({f.metadata['type']}, default {f.default!r}): {f.metadata['doc']}"
            )
            if f.metadata["choices"]:
                line += " One of: " + ", ".join(repr(c) for c in f.metadata["choices"]) + "."
            lines.append(line)
        cls.__doc__ = (cls.__doc__ or "").rstrip() + "\n".join(lines)
    return cls


# --------------------------------------------------------------------------- base classes


@attrs.frozen(kw_only=True)
class RuleSpec:
    """How a guard or transform event is dispatched, declared on its payload class.

    ``kithooks.dispatch.RULES`` is built from these: ``kind`` ('guard' or 'transform'),
    ``result`` (the result class's name), ``merge`` (the merge rule, one of
    ``kithooks.dispatch.MERGES``), ``text`` (the rule in words, for the docs), ``flag`` (the
    result attribute that stops a guard) and ``default_reason`` (what a host shows for a
    block or cancel that gave no reason).
    """

    kind: str
    result: str
    merge: str
    text: str
    flag: str = ""
    default_reason: str = ""


class Event:
    """Base of the 34 payload classes.

    Each class declares, in one place: ``event_type`` (its name on the wire), its fields,
    ``hook_doc`` (when the event is emitted and what its results do: the text of its hook
    ``on_<event>``) and, for guard and transform events, ``rule`` (how results combine).
    The hookspecs, ``dispatch.RULES`` and ``hookspecs.md`` are derived from these.
    """

    __slots__ = ()
    event_type: ClassVar[EventType]
    hook_doc: ClassVar[str] = ""
    rule: ClassVar[RuleSpec | None] = None


class Result:
    """Base of the 9 result classes a guard or transform handler may return."""

    __slots__ = ()


# --------------------------------------------------------------------------- shared data


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class ContextMessage:
    """One message of the context window as plugins see it."""

    index: int = _int(
        "Position of this message in the window the host gave; a new message a plugin adds "
        "has an index below 0 (an index outside the original window also counts as new).",
        kind="index",
    )
    role: str = _str(
        "Who speaks: 'system', 'user', 'assistant' or 'tool' (a new message with any other "
        "role becomes a user message).",
        choices=("system", "user", "assistant", "tool"),
    )
    content: str = _str("The message's text parts, joined (tool calls and results carry no text).")


_TOOL_CALL_ID = "Id the model gave this tool call."
_TOOL_NAME = (
    "Tool name as the host registered it "
    "(core tools: bash, edit, write, read, ls, grep, find, subagent)."
)
_TOOL_KIND = "Kind of tool, from the original's table; unknown tools are 'execute'."
_TOKENS_IN = "Input tokens of the call, excluding cache reads and cache writes."


# --------------------------------------------------------------------------- the 34 events


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class ToolCallEvent(Event):
    """A tool is about to run: a guard may block it."""

    event_type: ClassVar[EventType] = EventType.TOOL_CALL
    hook_doc: ClassVar[str] = """
    A tool is about to run. Guard: return ``ToolCallResult(block=True)`` to stop it.

    Emitted once per tool call the agent executes, after the model's stream ended and the
    call was parsed, before ``tool_execution_start``. When a handler blocks, the tool never
    runs, no ``tool_execution_*`` or ``tool_result`` events follow, and the model receives
    the error result ``Error: <reason>`` (``blocked by extension`` when the reason is
    empty). The turn aggregator counts every ``tool_call``, blocked ones included.
    """
    rule: ClassVar[RuleSpec | None] = RuleSpec(
        kind="guard",
        result="ToolCallResult",
        merge="tool_call",
        flag="block",
        default_reason="blocked by extension",
        text=(
            "The first result with `block=True` stops dispatch and is returned. A result's "
            "`args` replace the call's arguments: later handlers see them as `parsed_args` and "
            "`input`, and the merged result carries the final ones. Otherwise the last non-None "
            "result (None when no handler returned one)."
        ),
    )
    tool_name: str = _str(_TOOL_NAME)
    tool_call_id: str = _str(_TOOL_CALL_ID)
    tool_kind: str = _str(_TOOL_KIND, _TOOL_KIND_VALUES)
    input: str = _str(
        "The tool's arguments as JSON text: what the tool will get (an adapter whose framework "
        "validates arguments first gives the validated ones, else the text the model produced)."
    )
    parsed_args: Mapping[str, Any] | None = _args(
        "The arguments as a read-only mapping; derived from `input` when not given (None when "
        "`input` is not a JSON object; a JSON object Python's json cannot read, nested too "
        "deep or with an integer past the digit limit, is a ValueError rather than None)."
    )
    source: str = _str("Who asked for the call; always 'llm' from the host helpers.")

    def _derive(self) -> None:
        # parsed_args not given: the JSON object in `input`, if it holds one.
        if self.parsed_args is None and self.input:
            try:
                args = parse_json_object(self.input)
            except ValueError as exc:
                raise ValueError(f"{type(self).__name__}.input: {exc}") from None
            if args is not None:
                object.__setattr__(self, "parsed_args", _to_args(args))


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class ToolCallInputStartEvent(Event):
    """The model began streaming a tool call's arguments."""

    event_type: ClassVar[EventType] = EventType.TOOL_CALL_INPUT_START
    hook_doc: ClassVar[str] = """
    The model began streaming the arguments of a tool call. Observe.

    Emitted during the step's stream, before the call is complete; ``tool_call`` for it
    comes later, once the stream has ended.
    """
    tool_call_id: str = _str(_TOOL_CALL_ID)
    tool_name: str = _str(_TOOL_NAME)
    tool_kind: str = _str(_TOOL_KIND, _TOOL_KIND_VALUES)


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class ToolCallInputDeltaEvent(Event):
    """One streamed fragment of a tool call's JSON arguments."""

    event_type: ClassVar[EventType] = EventType.TOOL_CALL_INPUT_DELTA
    hook_doc: ClassVar[str] = """
    One streamed fragment of a tool call's JSON arguments. Observe.

    Emitted once per fragment, between ``tool_call_input_start`` and
    ``tool_call_input_end`` of the same ``tool_call_id``. Fragments of different calls may
    interleave when the provider interleaves them.
    """
    tool_call_id: str = _str(_TOOL_CALL_ID)
    delta: str = _str("The JSON fragment, as streamed.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class ToolCallInputEndEvent(Event):
    """The model finished streaming a tool call's arguments."""

    event_type: ClassVar[EventType] = EventType.TOOL_CALL_INPUT_END
    hook_doc: ClassVar[str] = """
    The model finished streaming a tool call's arguments. Observe.

    Emitted still during the stream, before the call is executed.
    """
    tool_call_id: str = _str(_TOOL_CALL_ID)


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class ToolExecutionStartEvent(Event):
    """A tool that was not blocked starts running."""

    event_type: ClassVar[EventType] = EventType.TOOL_EXECUTION_START
    hook_doc: ClassVar[str] = """
    A tool starts running. Observe.

    Emitted after ``tool_call`` did not block, immediately before the tool runs.
    """
    tool_call_id: str = _str(_TOOL_CALL_ID)
    tool_name: str = _str(_TOOL_NAME)
    tool_kind: str = _str(_TOOL_KIND, _TOOL_KIND_VALUES)


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class ToolExecutionEndEvent(Event):
    """A tool returned (successfully or not)."""

    event_type: ClassVar[EventType] = EventType.TOOL_EXECUTION_END
    hook_doc: ClassVar[str] = """
    A tool returned. Observe.

    Emitted right after the tool returns, also when it failed; ``tool_result`` follows.
    """
    tool_call_id: str = _str(_TOOL_CALL_ID)
    tool_name: str = _str(_TOOL_NAME)
    tool_kind: str = _str(_TOOL_KIND, _TOOL_KIND_VALUES)


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class ToolOutputEvent(Event):
    """A chunk of output a running tool streamed (a line of a shell command, say)."""

    event_type: ClassVar[EventType] = EventType.TOOL_OUTPUT
    hook_doc: ClassVar[str] = """
    A running tool streamed a chunk of output. Observe.

    Emitted by streaming tools (a shell command, say) between ``tool_execution_start`` and
    ``tool_execution_end``, possibly from another thread than the agent loop; it is on the
    hot path, once per line a tool prints.
    """
    tool_call_id: str = _str(_TOOL_CALL_ID)
    tool_name: str = _str(_TOOL_NAME)
    tool_kind: str = _str(_TOOL_KIND, _TOOL_KIND_VALUES)
    chunk: str = _str("The output text.")
    is_stderr: bool = _bool("True when the chunk came from standard error.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class ToolResultEvent(Event):
    """A tool's result, before the model sees it: a transform may rewrite it."""

    event_type: ClassVar[EventType] = EventType.TOOL_RESULT
    hook_doc: ClassVar[str] = """
    A tool's result, before the model sees it. Transform: return ``ToolResultResult``.

    Emitted after ``tool_execution_end``. A handler may replace the ``content`` and the
    ``is_error`` flag; ``None`` fields leave them as they are. Each handler's event
    carries the changes of the handlers before it, and the host applies the merged
    result: that is what the model receives.
    """
    rule: ClassVar[RuleSpec | None] = RuleSpec(
        kind="transform",
        result="ToolResultResult",
        merge="tool_result",
        text=(
            "A later non-None `content` / `is_error` replaces an earlier one, and the next "
            "handler's event carries it; the merged `ToolResultResult` is returned (None when "
            "no handler returned one)."
        ),
    )
    tool_call_id: str = _str(_TOOL_CALL_ID)
    tool_name: str = _str(_TOOL_NAME)
    tool_kind: str = _str(_TOOL_KIND, _TOOL_KIND_VALUES)
    input: str = _str("The tool's arguments as raw JSON text.")
    content: str = _str("The result text the model will receive (as changed by earlier handlers).")
    is_error: bool = _bool("True when the tool failed (as changed by earlier handlers).")
    metadata: str = _str("The tool's JSON metadata (diffs, say); plugins cannot change it.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class InputEvent(Event):
    """The user's prompt, before anything else happens in the turn."""

    event_type: ClassVar[EventType] = EventType.INPUT
    hook_doc: ClassVar[str] = """
    The user's prompt arrived. Transform: return ``InputResult``.

    Emitted first in every turn. ``action='transform'`` replaces the prompt (later
    handlers see the new text); ``action='handled'`` consumes it: dispatch stops and the
    prompt never reaches the model (the turn ends there); ``action='continue'`` leaves it.
    """
    rule: ClassVar[RuleSpec | None] = RuleSpec(
        kind="transform",
        result="InputResult",
        merge="input",
        text=(
            "`action='handled'` stops dispatch and is returned. `action='transform'` replaces "
            "the text later handlers see, and the result is `InputResult(action='transform', "
            "text=<final text>)`. Otherwise the last non-None result."
        ),
    )
    text: str = _str("The prompt text (as transformed by earlier handlers).")
    source: str = _str(
        "Where the prompt came from.",
        choices=("interactive", "cli", "script", "queue"),
        closed=True,
    )


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class BeforeAgentStartEvent(Event):
    """The prompt is accepted; plugins may inject text or a system prompt."""

    event_type: ClassVar[EventType] = EventType.BEFORE_AGENT_START
    hook_doc: ClassVar[str] = """
    The prompt was accepted. Transform: return ``BeforeAgentStartResult``.

    Emitted after ``input``, before the context is prepared. ``inject_text`` adds a user
    message ahead of the prompt and ``system_prompt`` an extra system message, for this
    turn. Every handler's ``inject_text`` is kept.
    """
    rule: ClassVar[RuleSpec | None] = RuleSpec(
        kind="transform",
        result="BeforeAgentStartResult",
        merge="inject",
        text=(
            "Every handler's `inject_text` is kept, joined in order by a blank line; the last "
            "non-None `system_prompt` wins (None when no handler returned a result)."
        ),
    )
    prompt: str = _str("The prompt text of the turn.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class AgentStartEvent(Event):
    """The agent loop starts generating for the turn."""

    event_type: ClassVar[EventType] = EventType.AGENT_START
    hook_doc: ClassVar[str] = """
    The agent starts generating for the turn. Observe.

    Emitted after ``context_prepare``, immediately before the first step; the turn
    aggregator starts timing the turn here.
    """
    prompt: str = _str("The turn's label: the prompt, '[steer] ...' or '[follow-up]'.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class AgentEndEvent(Event):
    """The turn is over. The turn aggregator fills in the counts, tokens, cost and duration."""

    event_type: ClassVar[EventType] = EventType.AGENT_END
    hook_doc: ClassVar[str] = """
    The turn is over. Observe.

    Emitted last in every turn, after ``message_end`` on success, right after ``error``
    on failure. The host gives only ``response`` and ``stop_reason``; the turn aggregator
    fills in the tool calls, LLM calls, tokens, cost and duration of the turn
    ``(ctx.session_id, ctx.turn_id)`` before any handler sees the event.
    """
    response: str = _str("The final response text; '' when the turn failed.")
    stop_reason: str = _str(
        "Why the turn stopped: the final step's finish reason, 'completed' when the provider "
        "gave none, 'error' when the turn failed.",
        choices=(
            "stop",
            "length",
            "tool-calls",
            "content-filter",
            "error",
            "other",
            "unknown",
            "completed",
        ),
        closed=True,
    )
    tool_call_count: int = _int("Tool calls emitted in the turn (blocked ones included).")
    tool_names: tuple[str, ...] = _strs(
        "Tool names in call order, duplicates kept, empty names left out."
    )
    llm_call_count: int = _int("LLM calls (llm_usage events) in the turn.")
    input_tokens_delta: int = _int(
        "Sum of the turn's input tokens (cache reads and writes excluded)."
    )
    output_tokens_delta: int = _int("Sum of the turn's output tokens.")
    cache_read_tokens_delta: int = _int("Sum of the turn's cache-read tokens.")
    cache_write_tokens_delta: int = _int("Sum of the turn's cache-write tokens.")
    cost_delta: float = _float("Sum of the turn's LLM cost, in USD.", kind="usd")
    duration_ms: int = _int("Milliseconds from agent_start to agent_end, on a monotonic clock.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class MessageStartEvent(Event):
    """The assistant's message for the turn begins (once per turn)."""

    event_type: ClassVar[EventType] = EventType.MESSAGE_START
    hook_doc: ClassVar[str] = """
    The assistant's message begins. Observe.

    Emitted once per turn, right after ``agent_start`` (not once per step).
    """


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class MessageUpdateEvent(Event):
    """One streamed delta of the assistant's text."""

    event_type: ClassVar[EventType] = EventType.MESSAGE_UPDATE
    hook_doc: ClassVar[str] = """
    One streamed delta of the assistant's text. Observe.

    Emitted for every text delta of every step: the hottest event of all. Reasoning text
    is not included.
    """
    chunk: str = _str("The text delta.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class MessageEndEvent(Event):
    """The assistant's message is complete (successful turns only)."""

    event_type: ClassVar[EventType] = EventType.MESSAGE_END
    hook_doc: ClassVar[str] = """
    The assistant's message is complete. Observe.

    Emitted once per successful turn, before ``agent_end``, with the final step's text.
    Not emitted when the turn fails.
    """
    content: str = _str("The text of the final step's response.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class SessionStartEvent(Event):
    """A session was loaded or created, or plugins were reloaded."""

    event_type: ClassVar[EventType] = EventType.SESSION_START
    hook_doc: ClassVar[str] = """
    A session starts. Observe.

    Emitted when the host starts or loads a session, and to the new set of plugins after
    ``PluginManager.reload()``.
    """
    session_id: str = _str("The session's id ('' when the host has none).")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class SessionShutdownEvent(Event):
    """The host is closing, or plugins are about to be reloaded."""

    event_type: ClassVar[EventType] = EventType.SESSION_SHUTDOWN
    hook_doc: ClassVar[str] = """
    The session ends. Observe.

    Emitted when the host closes, and to the old set of plugins at the start of
    ``PluginManager.reload()``.
    """


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class ModelChangeEvent(Event):
    """The active model changed."""

    event_type: ClassVar[EventType] = EventType.MODEL_CHANGE
    hook_doc: ClassVar[str] = """
    The active model changed. Observe.

    Emitted after a plugin (``ctx.set_model``, source ``extension``) or the user (source
    ``user``) switched models.
    """
    new_model: str = _str("The new model, as 'provider/model'.")
    previous_model: str = _str("The model before the change.")
    source: str = _str("Who changed it.", choices=("extension", "user"), closed=True)


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class ContextPrepareEvent(Event):
    """The context window is about to be sent for the turn: a transform may edit it."""

    event_type: ClassVar[EventType] = EventType.CONTEXT_PREPARE
    hook_doc: ClassVar[str] = """
    The turn's context window is ready. Transform: return ``ContextPrepareResult``.

    Emitted once per turn, after ``before_agent_start`` and before ``agent_start``. A
    handler may filter, reorder or add messages: a kept message is given by its ``index``
    into the original window, a new message has ``index < 0`` (its ``role`` and
    ``content`` make it). The change lasts for this turn only.
    """
    rule: ClassVar[RuleSpec | None] = RuleSpec(
        kind="transform",
        result="ContextPrepareResult",
        merge="messages",
        text=(
            "Each handler sees the message list returned by the handler before it; the result "
            "carries the final list, or `messages=None` when nobody changed it (None when no "
            "handler returned a result). A kept message keeps its `index` into the original "
            "window; a new message has `index < 0`."
        ),
    )
    messages: tuple[ContextMessage, ...] = _messages(
        "The window's messages (as changed by earlier handlers)."
    )


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class BeforeForkEvent(Event):
    """The user asked to fork the session: a guard may cancel."""

    event_type: ClassVar[EventType] = EventType.BEFORE_FORK
    hook_doc: ClassVar[str] = """
    The user asked to fork the session. Guard: return ``BeforeForkResult(cancel=True)``.

    Emitted before the session is branched from ``target_id``. A cancel stops the fork;
    the user is shown the reason (``Fork cancelled by extension.`` when empty).
    """
    rule: ClassVar[RuleSpec | None] = RuleSpec(
        kind="guard",
        result="BeforeForkResult",
        merge="last_wins",
        flag="cancel",
        default_reason="Fork cancelled by extension.",
        text=(
            "The first result with `cancel=True` stops dispatch and is returned; otherwise the "
            "last non-None result is returned (None when no handler returned one)."
        ),
    )
    target_id: str = _str("Id of the entry the fork branches from.")
    is_user_message: bool = _bool("True when the user picked one of their own messages.")
    user_text: str = _str("Text of that user message, if any.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class BeforeSessionSwitchEvent(Event):
    """The user asked for another session: a guard may cancel."""

    event_type: ClassVar[EventType] = EventType.BEFORE_SESSION_SWITCH
    hook_doc: ClassVar[str] = """
    The user asked for another session. Guard: return ``BeforeSessionSwitchResult``.

    Emitted before the host switches (``reason`` says why). A cancel keeps the current
    session (``Session switch cancelled by extension.`` when the reason is empty).
    """
    rule: ClassVar[RuleSpec | None] = RuleSpec(
        kind="guard",
        result="BeforeSessionSwitchResult",
        merge="last_wins",
        flag="cancel",
        default_reason="Session switch cancelled by extension.",
        text=(
            "The first result with `cancel=True` stops dispatch and is returned; otherwise the "
            "last non-None result is returned (None when no handler returned one)."
        ),
    )
    reason: str = _str("Why the session switches.", choices=("new", "clear", "resume"), closed=True)


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class BeforeCompactEvent(Event):
    """The context is about to be compacted: a guard may cancel or give its own summary."""

    event_type: ClassVar[EventType] = EventType.BEFORE_COMPACT
    hook_doc: ClassVar[str] = """
    The context is about to be compacted. Guard: return ``BeforeCompactResult``.

    Emitted before a manual or automatic compaction. ``cancel=True`` stops it
    (``compaction cancelled by extension`` when the reason is empty); a non-empty
    ``summary`` is used instead of asking the model for one.
    """
    rule: ClassVar[RuleSpec | None] = RuleSpec(
        kind="guard",
        result="BeforeCompactResult",
        merge="compact",
        flag="cancel",
        default_reason="compaction cancelled by extension",
        text=(
            "The first result with `cancel=True` stops dispatch and is returned; otherwise "
            "`BeforeCompactResult(summary=<the last non-empty summary>)` (None when no handler "
            "returned a result)."
        ),
    )
    estimated_tokens: int = _int("Estimated tokens in the context.")
    context_limit: int = _int("The model's context limit, in tokens.")
    usage_percent: float = _float(
        "estimated_tokens / context_limit: 1.0 at the limit, more past it.", kind="fraction"
    )
    message_count: int = _int("Messages in the context.")
    is_automatic: bool = _bool("True for automatic compaction, False when asked for.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class SubagentStartEvent(Event):
    """A subagent tool call was parsed."""

    event_type: ClassVar[EventType] = EventType.SUBAGENT_START
    hook_doc: ClassVar[str] = """
    A subagent tool call was parsed. Observe.

    Emitted once per ``subagent`` call, before its ``tool_call`` (which may still block
    it: then ``subagent_end`` with the error follows and no chunks).
    """
    tool_call_id: str = _str(_TOOL_CALL_ID)
    task: str = _str("The subagent's task ('' when the call has none).")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class SubagentChunkEvent(Event):
    """One event of a running subagent, forwarded."""

    event_type: ClassVar[EventType] = EventType.SUBAGENT_CHUNK
    hook_doc: ClassVar[str] = """
    A running subagent did something. Observe.

    Emitted for each event of the subagent (text, its turn start and end, its tool
    calls and results), between ``subagent_start`` and ``subagent_end``, possibly from
    another thread.
    """
    tool_call_id: str = _str(_TOOL_CALL_ID)
    task: str = _str("The subagent's task.")
    chunk_type: str = _str(
        "What the subagent did.",
        choices=(
            "text",
            "turn_start",
            "turn_end",
            "tool_call",
            "tool_execution_start",
            "tool_execution_end",
            "tool_result",
        ),
        closed=True,
    )
    content: str = _str("Text of a 'text' chunk.")
    tool_name: str = _str("Tool of a tool_* chunk.")
    tool_args: str = _str("Raw JSON arguments of a 'tool_call' chunk.")
    tool_result: str = _str("Result text of a 'tool_result' chunk.")
    is_error: bool = _bool("True when a 'tool_result' chunk is an error.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class SubagentEndEvent(Event):
    """A subagent tool call finished."""

    event_type: ClassVar[EventType] = EventType.SUBAGENT_END
    hook_doc: ClassVar[str] = """
    A subagent tool call finished. Observe.

    Emitted after the call's ``tool_result``, with the (possibly rewritten) result as
    ``response`` or ``error_msg``.
    """
    tool_call_id: str = _str(_TOOL_CALL_ID)
    task: str = _str("The subagent's task.")
    response: str = _str("The result text when it succeeded, else ''.")
    error_msg: str = _str("The result text when it failed, else ''.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class StepStartEvent(Event):
    """One LLM call of a multi-step turn begins."""

    event_type: ClassVar[EventType] = EventType.STEP_START
    hook_doc: ClassVar[str] = """
    One LLM call of the turn begins. Observe.

    Emitted after ``prepare_step``, before the provider is called, once per step.
    """
    step_number: int = _int("Zero-based step index within the turn.", kind="step")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class StepFinishEvent(Event):
    """A step (its LLM call and its tool runs) finished."""

    event_type: ClassVar[EventType] = EventType.STEP_FINISH
    hook_doc: ClassVar[str] = """
    A step finished: its LLM call and all its tool runs. Observe.

    Emitted once per completed step, beside ``llm_usage`` for the same call; not emitted
    for a step that failed.
    """
    step_number: int = _int("Zero-based step index within the turn.", kind="step")
    has_tool_calls: bool = _bool("True when the step called tools.")
    finish_reason: str = _str(
        "The provider's finish reason.",
        choices=("stop", "length", "tool-calls", "content-filter", "error", "other", "unknown"),
        closed=True,
    )
    input_tokens: int = _int(_TOKENS_IN)
    output_tokens: int = _int("Output tokens of the call.")
    cache_read_tokens: int = _int("Tokens read from the provider's cache.")
    cache_write_tokens: int = _int("Tokens written to the provider's cache.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class ReasoningStartEvent(Event):
    """The model opened a reasoning block."""

    event_type: ClassVar[EventType] = EventType.REASONING_START
    hook_doc: ClassVar[str] = """
    The model opened a reasoning block. Observe.

    Emitted during a step's stream; reasoning text itself has no event.
    """
    id: str = _str("The reasoning block's id.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class WarningsEvent(Event):
    """The provider returned warnings."""

    event_type: ClassVar[EventType] = EventType.WARNINGS
    hook_doc: ClassVar[str] = """
    The provider returned warnings. Observe.

    Emitted during a step's stream, usually at its start.
    """
    warnings: tuple[str, ...] = _strs("The warnings' messages.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class SourceEvent(Event):
    """The model referenced a source (a web search result, say)."""

    event_type: ClassVar[EventType] = EventType.SOURCE
    hook_doc: ClassVar[str] = """
    The model referenced a source. Observe.

    Emitted during a step's stream, once per source part (a web search result, say).
    """
    source_type: str = _str("Kind of source, as the provider names it ('url', 'document').")
    id: str = _str("The source's id.")
    url: str = _str("The source's URL.")
    title: str = _str("The source's title.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class ErrorEvent(Event):
    """A step failed after its retries; agent_end with stop_reason 'error' follows."""

    event_type: ClassVar[EventType] = EventType.ERROR
    hook_doc: ClassVar[str] = """
    A step failed after its retries. Observe.

    Emitted when the turn fails (including cancellation); ``agent_end`` with
    ``stop_reason='error'`` follows and ``message_end`` does not.
    """
    error: str = _str("The error's message.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class RetryEvent(Event):
    """The provider call of a step is retried after a transient error."""

    event_type: ClassVar[EventType] = EventType.RETRY
    hook_doc: ClassVar[str] = """
    A provider call is retried after a transient error. Observe.

    Emitted within a step, after ``step_start``, once per retry; no new ``step_start``.
    """
    attempt: int = _int("1 for the first retry, 2 for the second, and so on.")
    error: str = _str("The error that caused the retry.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class PrepareStepEvent(Event):
    """The messages of one step are about to be sent: a transform may edit them."""

    event_type: ClassVar[EventType] = EventType.PREPARE_STEP
    hook_doc: ClassVar[str] = """
    The messages of one step are about to be sent. Transform: return ``PrepareStepResult``.

    Emitted before every step, step 0 included, before ``step_start``. The messages are
    the step's whole input, system prompt first; a handler may replace them for this step
    with the same ``index`` rules as ``context_prepare``.
    """
    rule: ClassVar[RuleSpec | None] = RuleSpec(
        kind="transform",
        result="PrepareStepResult",
        merge="messages",
        text=(
            "Each handler sees the message list returned by the handler before it; the result "
            "carries the final list, or `messages=None` when nobody changed it (None when no "
            "handler returned a result). A kept message keeps its `index` into the step's "
            "messages; a new message has `index < 0`."
        ),
    )
    step_number: int = _int("Zero-based step index within the turn.", kind="step")
    messages: tuple[ContextMessage, ...] = _messages(
        "The step's input, system prompt first (as changed by earlier handlers)."
    )


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class LLMUsageEvent(Event):
    """The usage and cost of one LLM call."""

    event_type: ClassVar[EventType] = EventType.LLM_USAGE
    hook_doc: ClassVar[str] = """
    The usage and cost of one LLM call. Observe.

    Emitted once per completed step, after ``step_finish``, with the call's tokens (input
    tokens exclude cache reads and writes), its cost in USD and the model and provider
    that answered. The turn aggregator sums these into ``agent_end``.
    """
    input_tokens: int = _int(_TOKENS_IN)
    output_tokens: int = _int("Output tokens of the call.")
    cache_read_tokens: int = _int("Tokens read from the provider's cache.")
    cache_write_tokens: int = _int("Tokens written to the provider's cache.")
    cost: float = _float(
        "Cost of the call in USD (0.0 for unknown models and subscription billing).", kind="usd"
    )
    model: str = _str("The model that answered, without the provider ('claude-sonnet-4-5').")
    provider: str = _str("The provider ('anthropic', 'openai').")
    request_id: str = _str("The provider's request id, when the host knows it.")
    step_number: int = _int("Zero-based step index within the turn.", kind="step")
    finish_reason: str = _str(
        "The provider's finish reason for the call.",
        choices=("stop", "length", "tool-calls", "content-filter", "error", "other", "unknown"),
        closed=True,
    )


# --------------------------------------------------------------------------- results


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class ToolCallResult(Result):
    """What an ``on_tool_call`` handler may return."""

    block: bool = _bool(
        "True stops the call: the tool never runs and the model gets 'Error: <reason>'."
    )
    reason: str = _str("Why it was blocked; 'blocked by extension' when empty.")
    args: Mapping[str, Any] | None = _args(
        "New arguments for the tool (a JSON object), or None to keep them. Later handlers see "
        "them as `parsed_args` (and their JSON as `input`); a block from any handler wins.",
        field="ToolCallResult.args",
    )


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class ToolResultResult(Result):
    """What an ``on_tool_result`` handler may return; None fields leave the result unchanged."""

    content: str | None = _opt_str("New result text, or None to keep it.")
    is_error: bool | None = _opt_bool("New error flag, or None to keep it.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class InputResult(Result):
    """What an ``on_input`` handler may return."""

    action: str = attrs.field(
        default="continue",
        validator=_v_choice,
        metadata=_meta(
            "str",
            "'continue' leaves the prompt alone, 'transform' replaces it with `text`, 'handled' "
            "consumes it: the prompt never reaches the model.",
            ("continue", "transform", "handled"),
            closed=True,
        ),
    )
    text: str = _str("The replacement prompt, for 'transform'.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class BeforeAgentStartResult(Result):
    """What an ``on_before_agent_start`` handler may return."""

    inject_text: str | None = _opt_str("Text added to the turn as a user message, or None.")
    system_prompt: str | None = _opt_str("Extra system message for the turn, or None.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class ContextPrepareResult(Result):
    """What an ``on_context_prepare`` handler may return."""

    messages: tuple[ContextMessage, ...] | None = _opt_messages(
        "The new window: kept messages by their index, new ones with index < 0; None keeps it."
    )


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class BeforeForkResult(Result):
    """What an ``on_before_fork`` handler may return."""

    cancel: bool = _bool("True cancels the fork.")
    reason: str = _str("Why; 'Fork cancelled by extension.' when empty.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class BeforeSessionSwitchResult(Result):
    """What an ``on_before_session_switch`` handler may return."""

    cancel: bool = _bool("True cancels the switch.")
    reason: str = _str("Why; 'Session switch cancelled by extension.' when empty.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class BeforeCompactResult(Result):
    """What an ``on_before_compact`` handler may return."""

    cancel: bool = _bool("True cancels the compaction.")
    reason: str = _str("Why; 'compaction cancelled by extension' when empty.")
    summary: str = _str("A summary to use instead of the model's; '' lets the model summarize.")


@_documented
@attrs.frozen(kw_only=True, **_OWN_INIT)
class PrepareStepResult(Result):
    """What an ``on_prepare_step`` handler may return."""

    messages: tuple[ContextMessage, ...] | None = _opt_messages(
        "The step's new messages: kept ones by index, new ones with index < 0; None keeps them."
    )


_EVENT_CLASSES: dict[EventType, type[Event]] = {
    cls.event_type: cls
    for cls in (
        ToolCallEvent,
        ToolCallInputStartEvent,
        ToolCallInputDeltaEvent,
        ToolCallInputEndEvent,
        ToolExecutionStartEvent,
        ToolExecutionEndEvent,
        ToolOutputEvent,
        ToolResultEvent,
        InputEvent,
        BeforeAgentStartEvent,
        AgentStartEvent,
        AgentEndEvent,
        MessageStartEvent,
        MessageUpdateEvent,
        MessageEndEvent,
        SessionStartEvent,
        SessionShutdownEvent,
        ModelChangeEvent,
        ContextPrepareEvent,
        BeforeForkEvent,
        BeforeSessionSwitchEvent,
        BeforeCompactEvent,
        SubagentStartEvent,
        SubagentChunkEvent,
        SubagentEndEvent,
        StepStartEvent,
        StepFinishEvent,
        ReasoningStartEvent,
        WarningsEvent,
        SourceEvent,
        ErrorEvent,
        RetryEvent,
        PrepareStepEvent,
        LLMUsageEvent,
    )
}

RESULT_CLASSES: tuple[type[Result], ...] = (
    ToolCallResult,
    ToolResultResult,
    InputResult,
    BeforeAgentStartResult,
    ContextPrepareResult,
    BeforeForkResult,
    BeforeSessionSwitchResult,
    BeforeCompactResult,
    PrepareStepResult,
)


def event_class(event_type: EventType | str) -> type[Event]:
    """The payload class of ``event_type`` (a member or its wire name).

    Raises :class:`ValueError` naming the unknown type.
    """
    try:
        return _EVENT_CLASSES[EventType(event_type)]
    except ValueError:
        raise ValueError(f"unknown event type {event_type!r}") from None


EVENT_CLASSES: Mapping[EventType, type[Event]] = MappingProxyType(_EVENT_CLASSES)
