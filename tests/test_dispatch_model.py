"""Model test: for random plugins returning random results (or raising), emit, aemit and
pluggy's own call path all equal a small reference model of the contract's rules."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kithooks
from kithooks import EventType
from kithooks.dispatch import KINDS, RULES, EventKind
from kithooks.matching import DEFAULT_TOOL_ALIASES
from kithooks.testing import strategies as ks

RAISE = "raise"
GUARD_FLAGS = {
    EventType.TOOL_CALL: "block",
    EventType.BEFORE_FORK: "cancel",
    EventType.BEFORE_SESSION_SWITCH: "cancel",
    EventType.BEFORE_COMPACT: "cancel",
}


def matches(tools, name):
    """The tools= rule, written from the docs (independently of kithooks.matching): a tool
    is tried under its own name and under its Claude Code name (the documented alias
    table); names of letters, digits, _ and - separated by | or , are exact; any other
    string is a regular expression that must match the whole name."""
    claude = DEFAULT_TOOL_ALIASES.get(name)
    return any(_matches_name(tools, n) for n in (name, *([claude] if claude else [])))


def _matches_name(tools, name):
    if tools is None or (isinstance(tools, str) and tools.strip() in ("", "*")):
        return True
    if isinstance(tools, list):
        return name in [t.strip() for t in tools]
    if re.fullmatch(r"[A-Za-z0-9_\-\s,|]*", tools):
        return name in [t.strip() for t in re.split(r"[|,]", tools)]
    return re.fullmatch(tools.strip(), name) is not None


def reference(event, behaviours, *, fail_closed=False, tools=None):
    """What the contract says emit returns, and the event each handler sees.

    Written from CONTRACT.md ("Dispatch") and the docs of tools= and args,
    independently of kithooks.dispatch.
    """
    tools = tools or [None] * len(behaviours)
    et = event.event_type
    kind = KINDS[et]
    expected_type = RULES[et].result_type if et in RULES else None
    seen = []
    valid = []  # (index, result) of results of the right type
    current = event
    for i, b in enumerate(behaviours):
        if not matches(tools[i], event.tool_name if hasattr(event, "tool_name") else ""):
            continue
        seen.append(current)
        if b == RAISE:
            if fail_closed and kind is EventKind.GUARD:
                return ("failclosed", i), seen
            continue
        if kind is EventKind.OBSERVE or b is None:
            continue
        if type(b) is not expected_type:
            # A result of the wrong type is a failure of its plugin, like an exception.
            if fail_closed and kind is EventKind.GUARD:
                return ("failclosed", i), seen
            continue
        if kind is EventKind.GUARD and getattr(b, GUARD_FLAGS[et]):
            return b, seen
        if et is EventType.INPUT and b.action == "handled":
            return b, seen
        valid.append(b)
        if et is EventType.TOOL_RESULT:
            changes = {
                k: getattr(b, k) for k in ("content", "is_error") if getattr(b, k) is not None
            }
            current = attrs.evolve(current, **changes)
        elif et is EventType.INPUT and b.action == "transform":
            current = attrs.evolve(current, text=b.text)
        elif et in (EventType.CONTEXT_PREPARE, EventType.PREPARE_STEP) and b.messages is not None:
            current = attrs.evolve(current, messages=b.messages)
        elif et is EventType.TOOL_CALL and b.args is not None:
            current = attrs.evolve(
                current,
                parsed_args=b.args,
                input=json.dumps(kithooks.events.thaw(b.args), ensure_ascii=False),
            )
    if kind is EventKind.OBSERVE or not valid:
        return None, seen
    if et is EventType.TOOL_RESULT:
        contents = [b.content for b in valid if b.content is not None]
        errors = [b.is_error for b in valid if b.is_error is not None]
        return kithooks.ToolResultResult(
            content=contents[-1] if contents else None, is_error=errors[-1] if errors else None
        ), seen
    if et is EventType.INPUT:
        transforms = [b for b in valid if b.action == "transform"]
        if transforms:
            return kithooks.InputResult(action="transform", text=transforms[-1].text), seen
        return valid[-1], seen
    if et is EventType.BEFORE_AGENT_START:
        injects = [b.inject_text for b in valid if b.inject_text is not None]
        prompts = [b.system_prompt for b in valid if b.system_prompt is not None]
        return kithooks.BeforeAgentStartResult(
            inject_text="\n\n".join(injects) if injects else None,
            system_prompt=prompts[-1] if prompts else None,
        ), seen
    if et in (EventType.CONTEXT_PREPARE, EventType.PREPARE_STEP):
        lists = [b.messages for b in valid if b.messages is not None]
        return expected_type(messages=lists[-1] if lists else None), seen
    if et is EventType.BEFORE_COMPACT:
        summaries = [b.summary for b in valid if b.summary]
        return kithooks.BeforeCompactResult(summary=summaries[-1] if summaries else ""), seen
    if et is EventType.TOOL_CALL:
        rewrites = [b.args for b in valid if b.args is not None]
        if rewrites:
            return attrs.evolve(valid[-1], args=rewrites[-1]), seen
    return valid[-1], seen


def behaviour_for(et):
    own = ks.results(et) if et in RULES else st.nothing()
    return st.one_of(st.none(), st.just(RAISE), own, own, own, ks.results())


OBSERVED = [et for et in EventType if et not in RULES]
# Each guard and transform event is its own case, so every merge rule gets the full budget
# of examples; the 25 observe events share one case.
CASES = [*RULES, "observe"]


TOOL_EVENTS = {et for et in EventType if "tool_name" in kithooks.event_class(et).__slots__}


def tool_specs(name):
    """tools= values that match ``name``, almost match it, or are unrelated."""
    near = [
        name + "2",
        name.upper() if name.upper() != name else name.lower() + "x",
        "bash",
        name.title(),  # the Claude Code name of bash and edit
    ]
    return st.one_of(
        st.none(),
        st.just("*"),
        st.lists(st.sampled_from([name, *near]), min_size=1, max_size=3),
        st.sampled_from(near).map(lambda n: f"{n}|other"),
        st.sampled_from(near).map(lambda n: f" other, {n} "),
        st.just(re.escape(name[:1]) + ".*" if name else ".*"),
    )


@st.composite
def scenarios(draw, case):
    et = draw(st.sampled_from(OBSERVED)) if case == "observe" else case
    event = draw(ks.events(et))
    if et in TOOL_EVENTS:  # names that are plain, so "a|b" and regexes mean what they say
        event = attrs.evolve(event, tool_name=draw(st.sampled_from(["bash", "Bash", "edit"])))
    behaviours = draw(st.lists(behaviour_for(et), max_size=6))
    n = len(behaviours)
    asyncs = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    tools = (
        draw(st.lists(tool_specs(event.tool_name), min_size=n, max_size=n))
        if et in TOOL_EVENTS
        else [None] * n
    )
    return event, behaviours, asyncs, tools


class Outcomes:
    """Records what on_outcome hears."""

    def __init__(self):
        self.heard = []

    @kithooks.hookimpl
    def on_outcome(self, event, result):
        self.heard.append((event, result))


def make_plugin(et, behaviour, seen, is_async, tools=None):
    class Plugin:
        pass

    def respond(event):
        seen.append(event)
        if behaviour == RAISE:
            raise RuntimeError("boom")
        return behaviour

    if is_async:

        async def handler(self, event, ctx):
            await asyncio.sleep(0)
            return respond(event)
    else:

        def handler(self, event, ctx):
            return respond(event)

    setattr(Plugin, et.hook_name, kithooks.hookimpl(handler, tools=tools))
    return Plugin()


def build(event, behaviours, asyncs, fail_closed=False, tools=None):
    seen: list = []
    tools = tools or [None] * len(behaviours)
    pm = kithooks.PluginManager(fail_closed=fail_closed, aggregate_turns=False)
    outcomes = Outcomes()
    pm.register(outcomes, name="outcomes")
    for i, (b, a, t) in enumerate(zip(behaviours, asyncs, tools, strict=True)):
        pm.register(make_plugin(event.event_type, b, seen, a, t), name=f"p{i}")
    return pm, seen, outcomes


def check_outcome(outcomes, event, got, behaviours):
    """on_outcome heard exactly one dispatch of a guard / transform event, with its answer."""
    if event.event_type not in RULES or not behaviours:
        assert outcomes.heard == []
    else:
        assert outcomes.heard == [(event, got)]
    outcomes.heard.clear()


def check(got, expected):
    if isinstance(expected, tuple) and expected[0] == "failclosed":
        # fail_closed: the failing guard handler becomes a block / cancel naming it.
        assert got is not None
        assert any(getattr(got, flag, False) for flag in ("block", "cancel"))
        assert f"'p{expected[1]}'" in got.reason
        assert "boom" in got.reason or "TypeError: returned" in got.reason
        return
    assert got == expected


@pytest.mark.parametrize("case", CASES, ids=str)
@given(data=st.data(), fail_closed=st.booleans())
def test_emit_matches_the_reference_model(case, data, fail_closed):
    event, behaviours, _, tools = data.draw(scenarios(case))
    logging.disable(logging.CRITICAL)
    try:
        pm, seen, outcomes = build(event, behaviours, [False] * len(behaviours), fail_closed, tools)
        expected, expected_seen = reference(event, behaviours, fail_closed=fail_closed, tools=tools)
        got = pm.emit(event)
        check(got, expected)
        assert seen == expected_seen
        check_outcome(outcomes, event, got, behaviours)
        seen.clear()
        # pluggy's own call path gives the same answer.
        got = getattr(pm.hook, event.event_type.hook_name)(event=event, ctx=kithooks.Context())
        check(got, expected)
        assert seen == expected_seen
        check_outcome(outcomes, event, got, behaviours)
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.parametrize("case", CASES, ids=str)
@given(data=st.data(), fail_closed=st.booleans())
def test_aemit_matches_the_reference_model(case, data, fail_closed):
    event, behaviours, asyncs, tools = data.draw(scenarios(case))
    logging.disable(logging.CRITICAL)
    try:
        pm, seen, outcomes = build(event, behaviours, asyncs, fail_closed, tools)
        expected, expected_seen = reference(event, behaviours, fail_closed=fail_closed, tools=tools)
        got = asyncio.run(asyncio.wait_for(pm.aemit(event), timeout=10))
        check(got, expected)
        assert seen == expected_seen
        check_outcome(outcomes, event, got, behaviours)
    finally:
        logging.disable(logging.NOTSET)
