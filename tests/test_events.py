"""The event contract: 34 events, payload classes, results, structuring."""

from __future__ import annotations

import contextlib
import json

import attrs
import pluggy
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kithooks
from kithooks import EventType, all_event_types, event_from_dict, event_to_dict
from kithooks.dispatch import RULES
from kithooks.events import EVENT_CLASSES, RESULT_CLASSES, ContextMessage, tool_kind_for
from kithooks.hookspecs import KitHookSpecs
from kithooks.structuring import StructureError, structure, unstructure
from kithooks.testing import strategies as ks

CONTRACT_ORDER = [
    "tool_call",
    "tool_call_input_start",
    "tool_call_input_delta",
    "tool_call_input_end",
    "tool_execution_start",
    "tool_execution_end",
    "tool_output",
    "tool_result",
    "input",
    "before_agent_start",
    "agent_start",
    "agent_end",
    "message_start",
    "message_update",
    "message_end",
    "session_start",
    "session_shutdown",
    "model_change",
    "context_prepare",
    "before_fork",
    "before_session_switch",
    "before_compact",
    "subagent_start",
    "subagent_chunk",
    "subagent_end",
    "step_start",
    "step_finish",
    "reasoning_start",
    "warnings",
    "source",
    "error",
    "retry",
    "prepare_step",
    "llm_usage",
]

ALL_CLASSES = (ContextMessage, *EVENT_CLASSES.values(), *RESULT_CLASSES)


def test_all_event_types_in_contract_order():
    assert [et.value for et in all_event_types()] == CONTRACT_ORDER
    assert len(all_event_types()) == 34
    assert EventType.TOOL_CALL == "tool_call"
    assert EventType("tool_output") is EventType.TOOL_OUTPUT


def test_each_event_type_has_exactly_one_payload_class_and_hookspec():
    classes = [EVENT_CLASSES[et] for et in EventType]
    assert len(set(classes)) == 34
    for et in EventType:
        cls = EVENT_CLASSES[et]
        assert cls.event_type is et
        assert getattr(kithooks, cls.__name__) is cls
        spec = getattr(KitHookSpecs, et.hook_name)
        assert spec.__doc__, et
    hooks = [n for n in dir(KitHookSpecs) if n.startswith("on_")]
    assert sorted(hooks) == sorted(et.hook_name for et in EventType)


def test_go_struct_names_and_fields():
    assert kithooks.LLMUsageEvent.event_type == "llm_usage"
    names = {f.name for f in attrs.fields(kithooks.AgentEndEvent)}
    assert names == {
        "response",
        "stop_reason",
        "tool_call_count",
        "tool_names",
        "llm_call_count",
        "input_tokens_delta",
        "output_tokens_delta",
        "cache_read_tokens_delta",
        "cache_write_tokens_delta",
        "cost_delta",
        "duration_ms",
    }
    assert {f.name for f in attrs.fields(kithooks.ToolOutputEvent)} >= {"is_stderr", "chunk"}
    assert len(RESULT_CLASSES) == 9


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_zero_value_defaults_frozen_slotted_kw_only(cls):
    obj = cls()
    for f in attrs.fields(cls):
        assert f.kw_only, f.name
        assert f.metadata["doc"], f"{cls.__name__}.{f.name} has no documentation"
    assert not hasattr(obj, "__dict__")
    if attrs.fields(cls):
        with pytest.raises(TypeError):
            cls(*[f.default for f in attrs.fields(cls)])


def test_result_defaults():
    assert kithooks.InputResult().action == "continue"
    assert kithooks.ToolResultResult() == kithooks.ToolResultResult(content=None, is_error=None)
    assert kithooks.ToolCallEvent().parsed_args is None
    assert kithooks.ContextPrepareResult().messages is None


@given(ks.events())
def test_json_round_trip_is_lossless(event):
    data = event_to_dict(event)
    assert data["type"] == event.event_type.value
    again = event_from_dict(json.loads(json.dumps(data)))
    assert again == event
    assert type(again) is type(event)


@given(ks.results())
def test_results_round_trip(result):
    data = json.loads(json.dumps(unstructure(result)))
    assert structure(data, type(result)) == result


@given(st.one_of(ks.events(), ks.results()), st.data())
def test_equality_hash_and_repr_go_by_the_fields(value, data):
    """What attrs generates for a frozen class, kept by kithooks' shared methods: equal when
    the class and every field are, the same hash then, and a repr listing every field."""
    cls = type(value)
    fields = attrs.fields(cls)
    twin = cls(**{f.name: getattr(value, f.name) for f in fields})
    assert twin == value
    assert (twin != value) is False
    # A field holding a mapping (parsed_args) makes it unhashable, as attrs' hash would.
    with contextlib.suppress(TypeError):
        assert hash(twin) == hash(value)
    shown = ", ".join(f"{f.name}={getattr(value, f.name)!r}" for f in fields)
    assert repr(value) == f"{cls.__name__}({shown})"
    assert value != object() and value.__eq__(object()) is NotImplemented
    if fields:
        other = data.draw(st.one_of(ks.events(), ks.results()))
        if type(other) is cls:
            differ = any(getattr(other, f.name) != getattr(value, f.name) for f in fields)
            assert (other != value) is differ


@given(ks.events())
def test_payloads_are_immutable(event):
    for f in attrs.fields(type(event)):
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(event, f.name, getattr(event, f.name))
    with pytest.raises((AttributeError, TypeError)):
        event.extra = 1
    for f in attrs.fields(type(event)):
        value = getattr(event, f.name)
        assert not isinstance(value, list | dict | set), f.name


def test_parsed_args_is_deeply_read_only():
    event = kithooks.ToolCallEvent(parsed_args={"cmd": "ls", "opts": {"all": True}, "paths": ["a"]})
    with pytest.raises(TypeError):
        event.parsed_args["cmd"] = "rm"  # type: ignore[index]
    with pytest.raises(TypeError):
        event.parsed_args["opts"]["all"] = False  # type: ignore[index]
    assert event.parsed_args["paths"] == ("a",)
    with pytest.raises(TypeError, match="parsed_args"):
        kithooks.ToolCallEvent(parsed_args={"x": object()})


_WRONG = {
    "str": [1, None, b"x", ["a"]],
    "int": ["1", 1.5, True, None],
    "float": ["1.0", None, True],
    "bool": [1, "true", None],
    "tuple[str, ...]": ["abc", (1,), [None]],
    "tuple[ContextMessage, ...]": ["x", ({"index": 1},)],
    "tuple[ContextMessage, ...] | None": ["x", (1,)],
    "str | None": [1, b"x"],
    "bool | None": [1, "no"],
    "Mapping[str, Any] | None": [[1], "x", 3],
}


_WRONG_JSON = {
    "str": [1, None, ["a"], {"a": 1}],
    "int": ["1", 1.5, True, None],
    "float": ["1.0", None, True],
    "bool": [1, "true", None],
    "tuple[str, ...]": ["abc", [1], [None], {"a": "b"}],
    "tuple[ContextMessage, ...]": ["x", [1], [{"index": "1"}], [{"nope": 1}]],
    "tuple[ContextMessage, ...] | None": ["x", [1]],
    "str | None": [1, ["x"]],
    "bool | None": [1, "no"],
    "Mapping[str, Any] | None": [[1], "x", 3],
}


@given(st.data())
def test_wrong_field_types_are_rejected_naming_the_field(data):
    cls = data.draw(st.sampled_from(ALL_CLASSES))
    fields = attrs.fields(cls)
    if not fields:
        return
    field = data.draw(st.sampled_from(fields))
    bad = data.draw(st.sampled_from(_WRONG[field.metadata["type"]]))
    with pytest.raises(TypeError) as info:
        cls(**{field.name: bad})
    assert field.name in str(info.value)


@given(ks.events(), st.data())
def test_structuring_bad_data_names_the_field(event, data):
    fields = attrs.fields(type(event))
    if not fields:
        return
    field = data.draw(st.sampled_from(fields))
    payload = event_to_dict(event)
    payload[field.name] = data.draw(st.sampled_from(_WRONG_JSON[field.metadata["type"]]))
    with pytest.raises(StructureError) as info:
        event_from_dict(payload)
    assert field.name in str(info.value)


def test_structuring_errors_are_clear():
    with pytest.raises(StructureError, match=r"unknown event type 'nope' @ \$\.type"):
        event_from_dict({"type": "nope"})
    with pytest.raises(StructureError, match=r"missing required field 'type'"):
        event_from_dict({"tool_name": "bash"})
    with pytest.raises(StructureError, match=r"unknown field\(s\) tool @ \$"):
        event_from_dict({"type": "tool_call", "tool": "bash"})
    with pytest.raises(
        StructureError, match=r"expected int, got str '1' @ \$\.messages\[0\]\.index"
    ):
        event_from_dict({"type": "context_prepare", "messages": [{"index": "1"}]})
    with pytest.raises(StructureError, match=r"expected a JSON object"):
        event_from_dict([1, 2])


def test_int_accepted_for_float_fields_from_json():
    event = event_from_dict({"type": "llm_usage", "cost": 1})
    assert event.cost == 1.0 and isinstance(event.cost, float)


def test_input_action_values():
    with pytest.raises(ValueError, match=r"InputResult\.action must be"):
        kithooks.InputResult(action="skip")


def test_tool_kind_table():
    assert tool_kind_for("bash") == "execute"
    assert tool_kind_for("edit") == "edit"
    assert tool_kind_for("grep") == "search"
    assert tool_kind_for("subagent") == "agent"
    assert tool_kind_for("my_tool") == "execute"


def test_every_result_class_belongs_to_one_rule():
    assert sorted(r.result_type.__name__ for r in RULES.values()) == sorted(
        c.__name__ for c in RESULT_CLASSES
    )


def test_hookimpl_with_an_argument_the_spec_lacks_fails_to_register():
    class Bad:
        @kithooks.hookimpl
        def on_tool_call(self, event, ctx, extra):
            return None

    pm = kithooks.PluginManager()
    with pytest.raises(pluggy.PluginValidationError, match="extra"):
        pm.register(Bad())
    assert not pm.has_handlers("tool_call") or pm.handler_names("tool_call") == ["turn-aggregator"]
    assert [n for n, _ in pm.list_name_plugin() if n != "turn-aggregator"] == []


def test_misspelled_hook_fails_with_a_suggestion():
    class Typo:
        @kithooks.hookimpl
        def on_tool_cal(self, event):
            return None

    with pytest.raises(pluggy.PluginValidationError, match="did you mean 'on_tool_call'"):
        kithooks.PluginManager().register(Typo())


@given(ks.events())
def test_every_drawn_event_can_be_emitted(event):
    seen = []

    class Sink:
        pass

    setattr(
        Sink, event.event_type.hook_name, kithooks.hookimpl(lambda self, event: seen.append(event))
    )
    pm = kithooks.PluginManager(aggregate_turns=False)
    pm.register(Sink())
    pm.emit(event)
    assert seen == [event]


def test_each_event_is_declared_once_on_its_payload_class():
    """The hook text and the dispatch rule live on the payload class; the hookspecs and
    RULES are derived from it (issue 12: everything about one event in one place)."""
    import inspect

    for et, cls in EVENT_CLASSES.items():
        spec = getattr(KitHookSpecs, et.hook_name)
        assert inspect.getdoc(spec) == inspect.cleandoc(cls.hook_doc), et
        assert (et in RULES) == (cls.rule is not None), et
        if cls.rule is not None:
            rule = RULES[et]
            assert rule.kind.value == cls.rule.kind and rule.text == cls.rule.text
            assert rule.result_type.__name__ == cls.rule.result
            assert rule.flag == cls.rule.flag and rule.default_reason == cls.rule.default_reason


@pytest.mark.parametrize(
    ("build", "where"),
    [
        (lambda: kithooks.ToolCallResult(args={"a": {1, 2}}), "ToolCallResult.args['a'] holds set"),
        (
            lambda: kithooks.ToolCallResult(args={"a": [1, {"b": object()}]}),
            "ToolCallResult.args['a'][1]['b'] holds object",
        ),
        (lambda: kithooks.ToolCallEvent(parsed_args={"a": {1}}), "parsed_args['a'] holds set"),
    ],
)
def test_a_non_json_argument_is_named_by_its_own_field(build, where):
    with pytest.raises(TypeError) as info:
        build()
    assert str(info.value).startswith(where + ", which is not JSON data")


def test_evolving_a_tool_calls_input_as_the_hook_reference_says():
    """hookspecs.md: evolve keeps a given parsed_args; parsed_args=None derives it again."""
    event = kithooks.ToolCallEvent(tool_name="bash", input='{"command": "ls"}')
    kept = attrs.evolve(event, input='{"command": "rm -rf /"}')
    assert kept.parsed_args == {"command": "ls"}
    derived = attrs.evolve(event, input='{"command": "rm -rf /"}', parsed_args=None)
    assert derived.parsed_args == {"command": "rm -rf /"}


_CLOSED = [
    (cls, f)
    for cls in (*EVENT_CLASSES.values(), *RESULT_CLASSES)
    for f in attrs.fields(cls)
    if f.metadata.get("closed") and f.metadata.get("type") == "str"
]


@pytest.mark.parametrize(("cls", "field"), _CLOSED, ids=lambda x: getattr(x, "name", x))
@given(value=st.one_of(st.text(max_size=12), st.sampled_from(["", "stop", "error", "llm"])))
def test_a_closed_str_field_takes_its_choices_and_refuses_the_rest(cls, field, value):
    """The payload __init__ tests a closed choice inline and hands anything else to the
    field's validator: one of the choices (or '' where '' is the default) is taken as it
    is; any other string is a ValueError naming the class and the field."""
    choices = field.metadata["choices"]
    ok = value in choices or (value == "" and field.default == "")
    if ok:
        assert getattr(cls(**{field.name: value}), field.name) == value
    else:
        with pytest.raises(ValueError, match=rf"{cls.__name__}\.{field.name} must be one of"):
            cls(**{field.name: value})
