"""The shipped strategies draw every value the payload validators accept, so a plugin that
crashes on a legal payload (one kithooks' own hosts emit) fails its contract check."""

from __future__ import annotations

from typing import ClassVar

import attrs
import pytest
from hypothesis import HealthCheck, Phase, given, settings

import kithooks
from kithooks import hosting
from kithooks.events import EVENT_CLASSES, RESULT_CLASSES, ContextMessage, parse_json_object
from kithooks.testing import ContractViolation, check_contract
from kithooks.testing import strategies as ks

# generate only: the first draw that shows the value ends the search (no shrinking)
FIND = settings(
    max_examples=3000,
    database=None,
    derandomize=True,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)
CLASSES = [*EVENT_CLASSES.values(), *RESULT_CLASSES, ContextMessage]


def _fields(predicate):
    return [
        pytest.param(cls, f, id=f"{cls.__name__}.{f.name}")
        for cls in CLASSES
        for f in attrs.fields(cls)
        if predicate(f)
    ]


class _Seen(Exception):
    """The strategy drew a value the test looked for."""


def _drawn(cls, test):
    @FIND
    @given(ks.for_class(cls))
    def look(value):
        if test(value):
            raise _Seen

    with pytest.raises(_Seen):  # not raised: never drawn in 3000 tries
        look()


@pytest.mark.parametrize(
    ("cls", "field"), _fields(lambda f: f.metadata.get("closed") and f.default == "")
)
def test_a_closed_choice_field_is_drawn_empty_as_its_default_allows(cls, field):
    _drawn(cls, lambda v: getattr(v, field.name) == "")


@pytest.mark.parametrize(
    ("cls", "field"),
    _fields(lambda f: f.metadata.get("choices") and not f.metadata.get("closed")),
)
def test_an_open_choice_field_is_drawn_outside_its_usual_values(cls, field):
    _drawn(cls, lambda v: getattr(v, field.name) not in ("", *field.metadata["choices"]))


@pytest.mark.parametrize(
    ("cls", "field"), _fields(lambda f: f.metadata.get("type") == "int" and f.default == 0)
)
def test_an_int_field_is_drawn_past_32_bits(cls, field):
    _drawn(cls, lambda v: getattr(v, field.name) > 2**31)


@pytest.mark.parametrize(("cls", "field"), _fields(lambda f: f.metadata.get("type") == "float"))
def test_a_float_field_is_drawn_past_one_and_at_zero(cls, field):
    _drawn(cls, lambda v: getattr(v, field.name) > 1.0)
    _drawn(cls, lambda v: getattr(v, field.name) == 0.0)


def test_a_tool_call_is_drawn_as_hosts_emit_it_and_otherwise():
    def consistent(e):
        return (
            e.input != ""
            and e.parsed_args is not None
            and (parse_json_object(e.input) == dict(e.parsed_args))
        )

    _drawn(kithooks.ToolCallEvent, consistent)
    _drawn(kithooks.ToolCallEvent, lambda e: e.parsed_args is not None and not consistent(e))


class CompactPolicy:
    LEVELS = ["ok"] * 8 + ["warn", "warn", "full"]  # one per tenth of usage_percent

    @kithooks.hookimpl
    def on_before_compact(self, event):
        if self.LEVELS[int(event.usage_percent * 10)] == "full":  # past 1.0: IndexError
            return kithooks.BeforeCompactResult(summary="(kept)")
        return None


class SourceTagger:
    TAG: ClassVar[dict[str, str]] = {
        "interactive": "[tty]",
        "cli": "[cli]",
        "script": "[bot]",
        "queue": "[q]",
    }

    @kithooks.hookimpl
    def on_input(self, event):  # '' (hosting.Turn.input's default source): KeyError
        return kithooks.InputResult(action="transform", text=self.TAG[event.source] + event.text)


@pytest.mark.parametrize(
    ("plugin", "error"),
    [(CompactPolicy(), "IndexError"), (SourceTagger(), "KeyError: ''")],
    ids=["usage-past-the-limit", "default-source"],
)
def test_a_plugin_that_fails_on_what_the_host_helpers_emit_fails_its_contract(plugin, error):
    errors: list[str] = []
    pm = kithooks.PluginManager(aggregate_turns=False, on_error=lambda e: errors.append(e.message))
    pm.register(plugin)
    hosting.before_compact(pm, estimated_tokens=230_000, context_limit=200_000, message_count=4)
    hosting.Turn(pm, turn_id="t1").input("hello")
    assert len(errors) == 1 and error in errors[0]  # what a host meets
    with pytest.raises(ContractViolation, match=error):
        check_contract(plugin)
