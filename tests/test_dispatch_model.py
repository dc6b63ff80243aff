"""Model test: for random plugins returning random results (or raising), emit, aemit and
pluggy's own call path all equal a small reference model of the contract's rules."""

from __future__ import annotations

import asyncio
import logging

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kithooks
from kithooks import EventType
from kithooks.dispatch import KINDS, RULES, EventKind
from kithooks.testing import strategies as ks

RAISE = "raise"
GUARD_FLAGS = {
    EventType.TOOL_CALL: "block",
    EventType.BEFORE_FORK: "cancel",
    EventType.BEFORE_SESSION_SWITCH: "cancel",
    EventType.BEFORE_COMPACT: "cancel",
}


def reference(event, behaviours, *, fail_closed=False):
    """What the contract says emit returns, and the event each handler sees.

    Written from CONTRACT.md ("Dispatch"), independently of kithooks.dispatch.
    """
    et = event.event_type
    kind = KINDS[et]
    expected_type = RULES[et].result_type if et in RULES else None
    seen = []
    valid = []  # (index, result) of results of the right type
    current = event
    for i, b in enumerate(behaviours):
        seen.append(current)
        if b == RAISE:
            if fail_closed and kind is EventKind.GUARD:
                return ("failclosed", i), seen
            continue
        if kind is EventKind.OBSERVE or b is None or type(b) is not expected_type:
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
    return valid[-1], seen


def behaviour_for(et):
    own = ks.results(et) if et in RULES else st.nothing()
    return st.one_of(st.none(), st.just(RAISE), own, own, own, ks.results())


OBSERVED = [et for et in EventType if et not in RULES]
# Each guard and transform event is its own case, so every merge rule gets the full budget
# of examples; the 25 observe events share one case.
CASES = [*RULES, "observe"]


@st.composite
def scenarios(draw, case):
    et = draw(st.sampled_from(OBSERVED)) if case == "observe" else case
    event = draw(ks.events(et))
    behaviours = draw(st.lists(behaviour_for(et), max_size=6))
    asyncs = draw(st.lists(st.booleans(), min_size=len(behaviours), max_size=len(behaviours)))
    return event, behaviours, asyncs


def make_plugin(et, behaviour, seen, is_async):
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

    setattr(Plugin, et.hook_name, kithooks.hookimpl(handler))
    return Plugin()


def build(event, behaviours, asyncs, fail_closed=False):
    seen: list = []
    pm = kithooks.PluginManager(fail_closed=fail_closed, aggregate_turns=False)
    for i, (b, a) in enumerate(zip(behaviours, asyncs, strict=True)):
        pm.register(make_plugin(event.event_type, b, seen, a), name=f"p{i}")
    return pm, seen


def check(got, expected):
    if isinstance(expected, tuple) and expected[0] == "failclosed":
        # fail_closed: the failing guard handler becomes a block / cancel naming it.
        assert got is not None
        assert any(getattr(got, flag, False) for flag in ("block", "cancel"))
        assert f"'p{expected[1]}'" in got.reason and "boom" in got.reason
        return
    assert got == expected


@pytest.mark.parametrize("case", CASES, ids=str)
@given(data=st.data(), fail_closed=st.booleans())
def test_emit_matches_the_reference_model(case, data, fail_closed):
    event, behaviours, _ = data.draw(scenarios(case))
    logging.disable(logging.CRITICAL)
    try:
        pm, seen = build(event, behaviours, [False] * len(behaviours), fail_closed)
        expected, expected_seen = reference(event, behaviours, fail_closed=fail_closed)
        check(pm.emit(event), expected)
        assert seen == expected_seen
        seen.clear()
        # pluggy's own call path gives the same answer.
        got = getattr(pm.hook, event.event_type.hook_name)(event=event, ctx=kithooks.Context())
        check(got, expected)
        assert seen == expected_seen
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.parametrize("case", CASES, ids=str)
@given(data=st.data(), fail_closed=st.booleans())
def test_aemit_matches_the_reference_model(case, data, fail_closed):
    event, behaviours, asyncs = data.draw(scenarios(case))
    logging.disable(logging.CRITICAL)
    try:
        pm, seen = build(event, behaviours, asyncs, fail_closed)
        expected, expected_seen = reference(event, behaviours, fail_closed=fail_closed)
        check(asyncio.run(pm.aemit(event)), expected)
        assert seen == expected_seen
    finally:
        logging.disable(logging.NOTSET)
