"""Guard policies (issue 15): tool matchers, handler timeouts with a fail policy, and the
tool-input rewrite, through every dispatch path."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pluggy import PluginValidationError

import kithooks
from kithooks import EventType, PluginManager, ToolCallEvent, ToolCallResult, hookimpl
from kithooks.hosting import ToolRun, arun_tool, run_tool
from kithooks.matching import describe_tools, named_tools, tool_matcher


def run(coro, timeout=10):
    return asyncio.run(asyncio.wait_for(coro, timeout))


# ---------------------------------------------------------------- matchers


@pytest.mark.parametrize(
    ("spec", "yes", "no"),
    [
        ("bash|shell", ["bash", "shell"], ["bash2", "Bash", "sh", "bash|shell", ""]),
        (["Edit", "Write"], ["Edit", "Write", "edit", "write_file"], ["Edit2", "EditWrite"]),
        ("mcp__.*", ["mcp__fs__read", "mcp__"], ["xmcp__a", "mcp_", "bash"]),
        (
            "Edit|Write.*",
            ["Edit", "Write", "WriteFile", "edit", "edit_file", "write_file"],
            ["Edit2", "TodoWrite", "todo_write", "multi_edit"],
        ),
        ("Bash", ["Bash", "bash", "shell", "sh"], ["BASH", "bash2"]),
        ("*", ["anything", ""], []),
        ("", ["anything"], []),
    ],
)
def test_matcher_rule(spec, yes, no):
    m = tool_matcher(spec)
    for name in yes:
        assert m is None or m(name), (spec, name)
    for name in no:
        assert m is not None and not m(name), (spec, name)


_SPECS = [
    "bash|shell",
    " Edit , Write ",
    ["Edit", "Write"],
    "mcp__.*",
    "Edit|Write.*",
    "Bash",
    "*",
    "",
    None,
    "Intermediate Answer",
    "github.create_issue",
]


@pytest.mark.parametrize("spec", _SPECS)
@given(data=st.data())
def test_named_tools_reads_a_spec_as_the_matcher_does(spec, data):
    """``named_tools`` (what the contract checks draw tool names from) names exactly what
    ``tool_matcher`` takes: every tool, or names each of which it takes, with the host names
    of Claude Code names, or a pattern whose every full match it takes."""
    matcher, named = tool_matcher(spec), named_tools(spec)
    if named is None:
        assert matcher is None
        return
    assert matcher is not None
    if isinstance(named, frozenset):
        assert named and all(matcher(name) for name in named)
        hosts = {"bash", "shell", "sh", "run_shell_command"}
        assert ("Bash" not in named) or hosts <= named
        return
    name = data.draw(st.from_regex(named, fullmatch=True))
    assert matcher(name), (spec, name)


def test_bad_matchers_fail_where_written():
    with pytest.raises(ValueError, match=r"'\(unclosed'"):
        hookimpl(tools="(unclosed")
    with pytest.raises(TypeError, match="string or a list"):
        tool_matcher(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty list"):
        tool_matcher([])
    assert describe_tools(["a", "b"]) == "a|b" and describe_tools(None) == "*"


@pytest.mark.parametrize(
    "spec", [["bash "], [" bash", "shell "], "Bash,Edit", "bash, shell", " bash ,shell|sh "]
)
def test_tools_lists_are_stripped_and_commas_separate_names(spec):
    """The obvious list is the list: each name stripped, "," as good as "|"."""

    class Guard:
        @hookimpl(tools=spec)
        def on_tool_call(self, event):
            return ToolCallResult(block=True, reason=event.tool_name)

    pm = PluginManager(aggregate_turns=False)  # the aggregator takes every tool
    pm.register(Guard())
    assert pm.has_handlers("tool_call", "bash")
    assert pm.emit(ToolCallEvent(tool_name="bash")).block
    assert not pm.has_handlers("tool_call", "python")


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (["bash|shell"], "list them one per item (['bash', 'shell']) or write the string"),
        (["bash, shell"], "list them one per item (['bash', 'shell'])"),
        (["bash shell|sh"], "several names in one item"),
        (["*"], "for every tool leave tools= out"),
        (["mcp__.*"], "is a pattern, but a list holds exact names"),
        (["bash", "Edit|Write.*"], "write the string tools='Edit|Write.*'"),
        ([""], "an empty name matches no tool"),
        (["  "], "an empty name matches no tool"),
        ("bash|", "has an empty name"),
        ("bash\tshell", "holds a tab or a line break"),
        (["mcp__fs__*"], "write the string tools='mcp__fs__.*'"),
        ("Bash | mcp__.*", "write 'Bash|mcp__.*'"),
        ("Bash,mcp__.*", "separate alternatives with | ('Bash|mcp__.*')"),
        ("Bash, mcp__.*", "separate alternatives with |"),
        ("mcp__*", "not a glob"),
        ("Bash*", "write 'Bash.*'"),
    ],
)
def test_tools_filters_that_could_never_match_are_refused_where_written(spec, says):
    """Each of these used to register, match nothing, and leave has_handlers False."""
    with pytest.raises(ValueError, match="tools=") as info:
        hookimpl(tools=spec)
    assert says in str(info.value)


@pytest.mark.parametrize(
    "spec",
    ["mcp__.{2}fs", r"mcp__fs__\w*", "[a-z_]*", r"a\*", "x{1,3}", "(Bash|Edit)", "(?x) a | b"],
)
def test_patterns_that_merely_look_odd_are_accepted(spec):
    assert tool_matcher(spec) is not None


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("Intermediate Answer", "Intermediate Answer"),  # LangChain's self-ask tool
        (["Intermediate Answer"], "Intermediate Answer"),
        ("Search | Intermediate Answer", "Intermediate Answer"),
        (["github.create_issue"], "github.create_issue"),  # an MCP server's tool
        ("github.create_issue", "github.create_issue"),
        ("Intermediate Answer|Search.*", "Intermediate Answer"),
    ],
)
def test_real_tool_names_with_spaces_and_dots_are_accepted_and_matched(spec, name):
    """A filter naming a real tool is never refused: tool names may hold spaces and dots."""
    matches = tool_matcher(spec)
    assert matches is not None and matches(name)


_PLAIN_NAME = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)
_PAD = st.sampled_from(["", " ", "  ", "\t"])


_PROBES = ["bash", "shell", "Bash", "edit", "Edit", "read_file", "x", "mcp__a"]


@given(
    names=st.lists(st.tuples(_PAD, _PLAIN_NAME, _PAD), min_size=1, max_size=4),
    sep=st.sampled_from(["|", ",", " | ", ", ", " ,"]),
    data=st.data(),
)
def test_a_list_a_pipe_string_and_a_comma_string_are_one_filter(names, sep, data):
    items = [f"{a}{n}{b}" for a, n, b in names]
    plain = [n for _, n, _ in names]
    probe = data.draw(st.sampled_from([*plain, *_PROBES]))
    as_list, as_text = tool_matcher(items), tool_matcher(sep.join(items))
    expected = probe in plain or kithooks.matching.DEFAULT_TOOL_ALIASES.get(probe) in plain
    assert as_list is not None and as_text is not None
    assert as_list(probe) is as_text(probe) is expected


@given(st.text(max_size=12))
def test_a_list_item_is_an_exact_name_or_refused(item):
    """A list item is taken as one exact name unless it can only be meant as something else
    (empty, several names, a pattern): then it is refused, never silently dead."""
    name = item.strip()
    if not name or re.search(r"[|,*+?^$()\[\]{}\\]", name):
        with pytest.raises(ValueError, match=r"tools=\["):
            tool_matcher(["bash", item])
    else:
        matches = tool_matcher(["bash", item])
        assert matches is not None and matches(name) and matches("bash")


class BashOnly:
    def __init__(self):
        self.seen = []

    @hookimpl(tools="bash|shell")
    def on_tool_call(self, event):
        self.seen.append(event.tool_name)


@pytest.mark.parametrize("name", ["bash2", "Bash", "BASH", "bas", "shell-x"])
def test_near_misses_do_not_reach_the_handler(name):
    pm = PluginManager(aggregate_turns=False)  # the aggregator takes every tool
    plugin = BashOnly()
    pm.register(plugin)
    pm.emit(ToolCallEvent(tool_name=name))
    run(pm.aemit(ToolCallEvent(tool_name=name)))
    assert plugin.seen == []
    assert not pm.has_handlers(EventType.TOOL_CALL, tool_name=name)
    pm.emit(ToolCallEvent(tool_name="bash"))
    assert plugin.seen == ["bash"]
    assert pm.handler_names("tool_call", tool_name="bash") == ["BashOnly"]
    assert pm.handler_names("tool_call", tool_name=name) == []


def test_matchers_on_observe_tool_events_use_the_compiled_path():
    pm = PluginManager()
    seen = []

    class Obs:
        @hookimpl(tools=["bash"])
        def on_tool_execution_start(self, event):
            seen.append(event.tool_name)

    pm.register(Obs())
    for name in ("bash", "Bash", "bash"):
        pm.emit(kithooks.ToolExecutionStartEvent(tool_name=name))
    assert seen == ["bash", "bash"]


def test_tools_on_a_hook_without_a_tool_is_a_registration_error():
    class Wrong:
        @hookimpl(tools="bash")
        def on_agent_end(self, event):
            pass

    with pytest.raises(PluginValidationError, match=r"'on_agent_end' sets tools=.*no tool name"):
        PluginManager().register(Wrong())


# ---------------------------------------------------------------- timeouts


class Sleeper:
    def __init__(self, seconds):
        self.seconds = seconds

    @hookimpl(tools="bash", timeout=0.2)
    async def on_tool_call(self, event):
        await asyncio.sleep(self.seconds)
        return ToolCallResult(reason="finished")


@pytest.mark.parametrize("fail_closed", [False, True])
def test_an_async_guard_past_its_deadline_is_a_failure(fail_closed):
    errors = []
    pm = PluginManager(fail_closed=fail_closed, on_error=errors.append)
    pm.register(Sleeper(30), name="sleepy")
    started = time.monotonic()
    result = run(pm.aemit(ToolCallEvent(tool_name="bash")))
    elapsed = time.monotonic() - started
    assert elapsed < 5, "the handler was not cancelled at its deadline"
    assert [e.plugin for e in errors] == ["sleepy"]
    assert "timed out after 0.2s" in errors[0].message and "on_tool_call" in errors[0].message
    if fail_closed:
        assert result.block and "'sleepy'" in result.reason and "timed out" in result.reason
    else:
        assert result is None


def test_a_guard_within_its_deadline_answers():
    pm = PluginManager()
    pm.register(Sleeper(0))
    assert run(pm.aemit(ToolCallEvent(tool_name="bash"))).reason == "finished"


def test_manager_default_timeout_applies_to_async_handlers_only():
    errors = []
    pm = PluginManager(handler_timeout=0.1, on_error=errors.append, fail_closed=True)

    class Hung:
        @hookimpl
        async def on_before_fork(self, event):
            await asyncio.sleep(30)

    pm.register(Hung())
    started = time.monotonic()
    result = run(pm.aemit(kithooks.BeforeForkEvent()))
    assert time.monotonic() - started < 5
    assert result.cancel and "timed out after 0.1s" in result.reason
    with pytest.raises(ValueError, match="positive number"):
        PluginManager(handler_timeout=0)


@pytest.mark.parametrize("stubborn", [False, True], ids=["cancelled", "swallows-cancel"])
def test_an_observer_past_its_deadline_fails_alone_and_frees_its_plugin(stubborn):
    """Observers run by aemit's compiled coroutine honour timeouts like the general loop:
    the late one is reported, the next still runs, and its plugin is free afterwards."""
    errors, heard = [], []
    pm = PluginManager(handler_timeout=0.1, on_error=errors.append)

    class Slow:
        late = True

        @hookimpl(tools="bash")
        async def on_tool_output(self, event):
            if not self.late:
                heard.append("slow")
                return
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                if not stubborn:
                    raise
                await asyncio.sleep(0.2)

    class Next:
        @hookimpl
        async def on_tool_output(self, event):
            heard.append("next")

    slow = Slow()
    pm.register(slow, name="slow")
    pm.register(Next(), name="next")
    started = time.monotonic()
    assert run(pm.aemit(kithooks.ToolOutputEvent(tool_name="bash", chunk="x"))) is None
    assert time.monotonic() - started < 5
    assert heard == ["next"]
    assert [e.plugin for e in errors] == ["slow"]
    assert "timed out after 0.1s" in errors[0].message
    assert ("ignored cancellation" in errors[0].message) is stubborn
    lock = pm._lock_of_name["slow"]  # given back whole: no holder, task or waiter
    assert (lock.slot, lock.task, lock.waiters) == ({}, None, 0)
    slow.late = False
    run(pm.aemit(kithooks.ToolOutputEvent(tool_name="bash", chunk="y")))
    run(pm.aemit(kithooks.ToolOutputEvent(tool_name="edit", chunk="z")))  # tools= skips slow
    assert heard == ["next", "slow", "next", "next"]


def test_timeout_on_a_plain_function_is_refused_with_a_reason():
    class Plain:
        @hookimpl(timeout=1)
        def on_tool_call(self, event):
            pass

    with pytest.raises(PluginValidationError, match=r"plain function.*async def"):
        PluginManager().register(Plain())
    with pytest.raises(ValueError, match="positive number of seconds"):
        hookimpl(timeout=-1)


# ---------------------------------------------------------------- rewrite


class Rewriter:
    """Rewrites `make deploy` to a dry run; the second adds a flag to whatever it sees."""

    @hookimpl(tools="bash")
    def on_tool_call(self, event):
        if (event.parsed_args or {}).get("command") == "make deploy":
            return ToolCallResult(args={"command": "make deploy --dry-run"})
        return None


class Flagger:
    def __init__(self):
        self.seen = []

    @hookimpl(tools="bash")
    def on_tool_call(self, event):
        self.seen.append((event.input, dict(event.parsed_args or {})))
        return ToolCallResult(args={**event.parsed_args, "verbose": True})


def test_a_rewrite_chain_reaches_the_tool_through_run_tool():
    pm = PluginManager()
    flagger = Flagger()
    pm.register(Rewriter())
    pm.register(flagger)
    got = []
    outcome = run_tool(
        pm,
        lambda text: got.append(json.loads(text)) or "ok",
        tool_name="bash",
        tool_call_id="c1",
        input='{"command": "make deploy"}',
    )
    assert outcome.content == "ok"
    # The second handler saw the first one's rewrite, as parsed_args and as input JSON.
    assert flagger.seen == [
        ('{"command": "make deploy --dry-run"}', {"command": "make deploy --dry-run"})
    ]
    assert got == [{"command": "make deploy --dry-run", "verbose": True}]
    merged = pm.emit(ToolCallEvent(tool_name="bash", input='{"command": "make deploy"}'))
    assert dict(merged.args) == {"command": "make deploy --dry-run", "verbose": True}


def test_a_later_block_wins_over_an_earlier_rewrite():
    class Blocker:
        @hookimpl
        def on_tool_call(self, event):
            if "--dry-run" in event.input:
                return ToolCallResult(block=True, reason="no deploys today")
            return None

    pm = PluginManager()
    pm.register(Rewriter())
    pm.register(Blocker())
    ran = []
    outcome = run_tool(
        pm, ran.append, tool_name="bash", tool_call_id="c1", input='{"command": "make deploy"}'
    )
    assert outcome.blocked and outcome.content == "Error: no deploys today" and ran == []


def test_async_rewrite_and_tool_run():
    class AsyncRewriter:
        @hookimpl(tools="bash", timeout=2)
        async def on_tool_call(self, event):
            await asyncio.sleep(0)
            return ToolCallResult(args={"command": "echo safe"})

    pm = PluginManager()
    pm.register(AsyncRewriter())

    async def tool(text):
        return "ran " + json.loads(text)["command"]

    outcome = run(arun_tool(pm, tool, tool_name="bash", tool_call_id="c", input='{"command": "x"}'))
    assert outcome.content == "ran echo safe"


def test_toolrun_exposes_the_final_arguments():
    pm = PluginManager()
    pm.register(Rewriter())
    call = ToolRun(pm, tool_name="bash", tool_call_id="c", input='{"command": "make deploy"}')
    assert call.start() is None
    assert call.rewritten and dict(call.args) == {"command": "make deploy --dry-run"}
    assert json.loads(call.input) == {"command": "make deploy --dry-run"}
    assert call.finish("done").content == "done"


def test_the_whole_policy_in_a_few_lines():
    """The issue's 'done when': only for bash, at most 2 seconds, fail closed, rewrite
    `make deploy` to a dry run."""

    class DeployGuard:
        @hookimpl(tools="bash", timeout=2)
        async def on_tool_call(self, event):
            if event.parsed_args.get("command") == "make deploy":
                return ToolCallResult(args={"command": "make deploy --dry-run"})
            return None

    pm = PluginManager(fail_closed=True)
    pm.register(DeployGuard())
    got = []
    run(
        arun_tool(
            pm, got.append, tool_name="bash", tool_call_id="c", input='{"command": "make deploy"}'
        )
    )
    assert got == ['{"command": "make deploy --dry-run"}']
