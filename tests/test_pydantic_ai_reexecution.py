"""The pydantic-ai adapter when the tool runs more than once for one call of the model
(another capability's own retry, calling its ``handler`` again), and when an answer the
tool did not return itself reaches the model (a question answered during the run, results
the host gives on resuming a run)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic_ai import (
    Agent,
    CallDeferred,
    DeferredToolRequests,
    DeferredToolResults,
    ModelRetry,
)
from pydantic_ai.capabilities import AbstractCapability, HandleDeferredToolCalls
from pydantic_ai.exceptions import ToolFailed, ToolFailedError, ToolRetryError
from pydantic_ai.messages import (
    ToolReturn,
    ToolReturnPart,
)
from pydantic_ai.models.function import FunctionModel

import kithooks
from kithooks import PluginManager, hookimpl
from kithooks.adapters.pydantic_ai import KitHooks
from kithooks.testing.conformance import Recorder

# Script calls shell then answers; host()'s Gate blocks rm and redacts SECRET from results.
from test_pydantic_ai_lifecycle import Script, host, run

SECRET = "SECRET"


def tool_events(log: Recorder) -> list[str]:
    return [n for n in log.names() if n.startswith("tool_execution") or n == "tool_result"]


def assert_paired(log: Recorder) -> None:
    """Every tool_execution_start has one tool_execution_end, before the next starts; every
    end follows a start."""
    open_ = 0
    for name in tool_events(log):
        if name == "tool_execution_start":
            assert open_ == 0, log.names()
            open_ += 1
        elif name == "tool_execution_end":
            assert open_ == 1, log.names()
            open_ -= 1
    assert open_ == 0, log.names()


# -- a capability that runs the tool again --------------------------------------------------

#: One attempt of the retrier: the command it hands the tool, and what the tool does.
OUTCOMES = ("return", "retry", "fail")


class Retrier(AbstractCapability[Any]):
    """Runs the tool once per planned attempt, each with its own command; a failure
    (the guard's block included) is kept and the next attempt made. The last attempt's
    result, or failure, is what comes out."""

    def __init__(self, commands: list[str]) -> None:
        self.commands = commands

    async def wrap_tool_execute(self, ctx, *, call, tool_def, args, handler):
        last: Exception | None = None
        for command in self.commands:
            try:
                result = await handler({"command": command})
            except (ToolFailed, ToolFailedError, ModelRetry, ToolRetryError) as exc:
                last = exc
            else:
                last = None
        if last is not None:
            raise last
        return result


def retrying_agent(pm: PluginManager, plan: list[tuple[str, str]], kit_first: bool) -> Any:
    commands = [command for command, _ in plan]
    outcomes = iter([outcome for command, outcome in plan if "rm" not in command])
    kit, retrier = KitHooks(pm), Retrier(commands)
    script = Script(command=commands[0])
    agent = Agent(
        FunctionModel(script), capabilities=[kit, retrier] if kit_first else [retrier, kit]
    )
    ran: list[str] = []

    @agent.tool_plain(retries=5)
    def shell(command: str) -> str:
        ran.append(command)
        outcome = next(outcomes)
        if outcome == "retry":
            raise ModelRetry(f"try again {SECRET}")
        if outcome == "fail":
            raise ToolFailed(f"failed {SECRET}")
        return f"ran {command} {SECRET}"

    return agent, script, ran


ATTEMPTS = st.lists(
    st.tuples(st.sampled_from(["ls", "cat a", "rm x"]), st.sampled_from(OUTCOMES)),
    min_size=1,
    max_size=4,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=ATTEMPTS, kit_first=st.booleans())
def test_each_execution_another_capability_makes_is_guarded_paired_and_its_result_redacted(
    plan, kit_first
):
    """Whatever the attempts: the guard is asked once per execution with the arguments the
    tool gets, a blocked one never runs, every execution that started ends once, and what
    reaches the model passed through tool_result (or is the guard's block message)."""
    pm, log, gate = host()
    agent, script, ran = retrying_agent(pm, plan, kit_first)
    run(agent)
    commands = [command for command, _ in plan]
    assert gate.calls == [{"command": c} for c in commands]
    assert ran == [c for c in commands if "rm" not in c]
    assert_paired(log)
    assert log.names().count("tool_execution_start") == len(ran)
    (seen,) = script.seen
    assert SECRET not in seen
    if "rm" in commands[-1]:
        assert seen == "Error: dangerous"
    else:
        assert gate.results, "the result the model got never passed tool_result"
    end = log.of(kithooks.AgentEndEvent)[-1]
    assert end.tool_call_count == len(commands)


def test_a_blocked_attempt_then_a_failing_one_still_passes_the_failure_through_tool_result():
    """The guard blocks the first attempt; the capability tries again with arguments the
    guard allows and the tool raises ModelRetry: the model gets the redacted message."""
    pm, log, gate = host()
    agent, script, ran = retrying_agent(pm, [("rm x", "return"), ("ls", "retry")], True)
    run(agent)
    assert ran == ["ls"]
    assert gate.results == [(f"try again {SECRET}", True)]
    assert script.seen == ["try again [redacted]"]
    assert tool_events(log) == ["tool_execution_start", "tool_execution_end", "tool_result"]


def test_running_the_tool_twice_is_two_guarded_executions_each_ended():
    pm, log, gate = host()
    agent, script, ran = retrying_agent(pm, [("ls", "return"), ("cat a", "return")], True)
    run(agent)
    assert ran == ["ls", "cat a"]
    assert gate.calls == [{"command": "ls"}, {"command": "cat a"}]
    names = [n for n in log.names() if n.startswith("tool_") and "input" not in n]
    assert names == [
        "tool_call",
        "tool_execution_start",
        "tool_execution_end",  # the first execution, whose result the capability dropped
        "tool_call",
        "tool_execution_start",
        "tool_execution_end",
        "tool_result",
    ]
    assert script.seen == ["ran cat a [redacted]"]


class Swallow(AbstractCapability[Any]):
    """Answers in place of a blocked call."""

    async def wrap_tool_execute(self, ctx, *, call, tool_def, args, handler):
        try:
            return await handler(args)
        except ToolFailed:
            return f"fallback {SECRET}"


def test_an_answer_another_capability_gives_for_a_blocked_call_is_a_result_of_no_execution():
    pm, log, _ = host()
    script = Script(command="rm x")
    agent = Agent(FunctionModel(script), capabilities=[KitHooks(pm), Swallow()])

    @agent.tool_plain
    def shell(command: str) -> str:
        raise AssertionError("blocked")

    run(agent)
    assert script.seen == ["fallback [redacted]"]
    assert tool_events(log) == ["tool_result"]  # no end of an execution that never started


# -- answers the tool did not return itself --------------------------------------------------


def test_the_answer_to_a_question_given_during_the_run_passes_tool_result():
    pm, log, gate = host()
    script = Script()
    answer = DeferredToolResults(calls={"c1": f"answer {SECRET}"})
    agent = Agent(
        FunctionModel(script),
        capabilities=[KitHooks(pm), HandleDeferredToolCalls(handler=lambda ctx, req: answer)],
    )

    @agent.tool_plain
    def shell(command: str) -> str:
        raise CallDeferred(kind="question")

    run(agent)
    assert gate.results == [(f"answer {SECRET}", False)]
    assert script.seen == ["answer [redacted]"]
    assert tool_events(log) == ["tool_execution_start", "tool_execution_end", "tool_result"]


def resumed(pm: PluginManager, given: Any, kind: str = "external") -> tuple[Script, Any]:
    """A run whose tool defers the call, resumed with ``given`` as the call's result: the
    model's script and the resumed run's result. A recorder registered as ``log`` sees only
    the resumed run."""
    script = Script()
    agent = Agent(
        FunctionModel(script), capabilities=[KitHooks(pm)], output_type=[str, DeferredToolRequests]
    )

    @agent.tool_plain
    def shell(command: str) -> str:
        raise CallDeferred(kind=kind)

    first = run(agent)
    assert isinstance(first.output, DeferredToolRequests)
    log = pm.get_plugin("log")
    if log is not None:
        log.events.clear()
    results = DeferredToolResults(calls={"c1": given})
    return script, run(
        agent, None, message_history=first.all_messages(), deferred_tool_results=results
    )


@pytest.mark.parametrize("kind", ["question", "external"])
def test_results_the_host_gives_on_resuming_a_run_pass_tool_result(kind):
    pm, log, gate = host()
    script, _ = resumed(pm, f"answer {SECRET}", kind)
    assert gate.results == [(f"answer {SECRET}", False)]
    assert script.seen == ["answer [redacted]"]
    assert tool_events(log) == ["tool_result"]
    names = log.names()
    assert names.index("agent_start") < names.index("tool_result") < names.index("step_start")
    (event,) = log.of(kithooks.ToolResultEvent)
    assert (event.tool_call_id, event.tool_name) == ("c1", "shell")


@pytest.mark.parametrize(
    ("given", "is_error"),
    [
        (ToolFailed(f"failed {SECRET}"), True),
        (ModelRetry(f"try again {SECRET}"), True),
        (ToolReturn(f"value {SECRET}"), False),
    ],
    ids=["ToolFailed", "ModelRetry", "ToolReturn"],
)
def test_a_failure_or_tool_return_the_host_gives_on_resuming_is_shown_and_rewritten(
    given, is_error
):
    pm, _, gate = host()
    script, _ = resumed(pm, given)
    ((content, flagged),) = gate.results
    assert SECRET in content and flagged is is_error
    assert script.seen == [content.replace(SECRET, "[redacted]")]


class Fails:
    """Makes every result of ``shell`` a failure."""

    @hookimpl
    def on_tool_result(self, event):
        return kithooks.ToolResultResult(content="refused", is_error=True)


def test_a_result_the_host_gives_can_be_made_a_failure():
    pm = PluginManager()
    pm.register(Fails(), name="fails")
    _, second = resumed(pm, "fine")
    (part,) = [p for m in second.new_messages() for p in m.parts if isinstance(p, ToolReturnPart)]
    assert (part.content, part.outcome) == ("refused", "failed")
