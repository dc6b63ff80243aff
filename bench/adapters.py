"""Adapter overhead: whole agent runs in pydantic-ai and LangChain, with and without kithooks.

Every run is the example agents' scenario, offline, with their scripted models
(``examples/*_agent.py``): the model reads a file holding a secret, cleans up with
``rm -rf build``, then answers (3 model calls, 2 tool calls; the tools here return at once).
The clean-up is one the permission gate allows (:data:`CLEANUP`), so every candidate runs
both tools: a blocked call skips the framework's tool execution (1.35 M of LangChain's
15.4 M instructions per run), which the runs that block would save over the bare agent and
the overhead figures would count as the hooks costing less than they do. Runs are async
(``agent.run`` / ``agent.ainvoke``) with async model and tools, so no thread hand-offs blur
the figures on a busy machine. Per framework, in interleaved rounds in one process:

* ``bare agent``: the agent with no hooks at all.
* ``no-op hooks``: the framework's own hooks at the places the adapter hooks in, doing
  nothing: what the framework charges for having hooks at all (the floor for any adapter).
* ``native hooks``: the framework's own hooks (pydantic-ai ``Hooks``, a LangChain
  ``AgentMiddleware``) doing the example plugins' work with the same functions: the
  permission gate's check, the secret redactor, the context injector's rules file, the usage
  budget's per-call line, running total in a state store and turn report.
* ``kithooks, 0 plugins``: the adapter on a manager with no plugin (no turn aggregator), as
  a host builds it by default: pydantic-ai's capability then gives each run no hook, and
  LangChain's middleware (``hooks="auto"``) adds no hook to the agent it is built for.
* ``kithooks, example plugins``: the adapter with the four example plugins (permission gate,
  secret redactor, context injector, usage budget) and the turn aggregator.

Targets (issue 21): 0 plugins at most 1.03 x the bare run; with the example plugins, the
adapter's overhead over the bare run at most 1.2 x the native hooks' overhead.

Times are the process's CPU time (``time.process_time_ns``), the median of the rounds: the
machine is shared, and wall-clock time would mostly measure the other processes.

CPU instructions, counted with callgrind (valgrind), settle what CPU time cannot: each
candidate in a process of its own, only its measured runs counted, averaged over several
heap layouts (:data:`LAYOUTS`: where objects land moves a single layout's count of a
LangChain run by up to 0.05 M instructions). The load does not move those counts, so they
settle ratios that CPU time, on a shared machine, puts on either side of a target from run
to run; they leave out how fast the instructions run. A full run
(``python -m bench`` or ``python -m bench.adapters``) on a machine with valgrind counts them
too and judges the targets on them (about a minute per candidate, as many at once as there
are cores); ``--instructions RUNS`` counts only them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kithooks
from kithooks.examples import context_injector, permission_gate, secret_redactor, usage_budget

from .timing import table

CLEANUP = "rm -rf build"
"""The model's clean-up command: the permission gate checks it and lets it run."""
NOTES = "deploy key: sk-proj-Zx81kQp0vT3mW9aLr5sYc2Nd; ship on Friday"
PROMPT = "Read notes.txt and tidy up the project."


def _sink(text: str) -> None:
    return None


class NativeWork:
    """The example plugins' work, for the frameworks' own hooks to call."""

    def __init__(self, cwd: str) -> None:
        self.cwd = cwd
        self.state = kithooks.StateStore()
        self.started = 0.0
        self.tools: list[str] = []
        self.calls = 0
        self.tokens = [0, 0]
        self.cost = 0.0

    def rules(self) -> str | None:
        found = context_injector.find_rules(self.cwd)
        if found is None:
            return None
        path, text = found
        return f"Project rules ({path.name}):\n\n{text}"

    def start(self) -> str | None:
        self.started = time.monotonic()
        self.tools, self.calls, self.tokens, self.cost = [], 0, [0, 0], 0.0
        return self.rules()

    def gate(self, name: str, args: dict[str, Any]) -> str | None:
        """The block reason for a tool call, or None; counts the call."""
        self.tools.append(name)
        if name.lower() not in permission_gate.SHELL_TOOLS:
            return None
        command = args.get("command") or args.get("cmd") or ""
        why = permission_gate.check(command)
        return None if why is None else f"Error: permission gate: `{command}` {why}"

    def usage(self, step: int, model: str, inp: int, out: int, finish: str) -> None:
        cost = kithooks.compute_cost(
            provider="openai", model=model, input_tokens=inp, output_tokens=out
        )
        self.calls += 1
        self.tokens[0] += inp
        self.tokens[1] += out
        self.cost += cost
        _sink(
            f"[usage] step={step} openai/{model} tokens=↑{inp} ↓{out} cache=↑0/↓0 "
            f"cost=${cost:.4f} ({finish})"
        )
        raw = self.state.get(usage_budget.TOTAL_KEY)
        total = (float(raw) if raw else 0.0) + cost
        self.state.set(usage_budget.TOTAL_KEY, f"{total:.6f}")
        warn_at = float(self.state.get(usage_budget.WARN_AT_KEY) or usage_budget.DEFAULT_WARN_AT)
        if total > warn_at:
            _sink(f"[usage] session cost ${total:.4f} exceeds soft cap ${warn_at:.2f}")

    def end(self, stop: str) -> None:
        duration = int((time.monotonic() - self.started) * 1000)
        _sink(
            f"[turn] stop={stop} tools={len(self.tools)} llm-calls={self.calls} "
            f"tokens=↑{self.tokens[0]} ↓{self.tokens[1]} cost=${self.cost:.4f} "
            f"duration={duration}ms"
        )
        if self.tools:
            _sink(f"[turn] tool order: {', '.join(self.tools)}")


def manager(cwd: str, *, plugins: bool) -> kithooks.PluginManager:
    """A manager with the example plugins and the aggregator, or with nothing."""
    pm = kithooks.PluginManager(
        context=kithooks.Context(cwd=cwd, print=_sink, print_error=_sink),
        aggregate_turns=plugins,
    )
    if plugins:
        for module in (permission_gate, secret_redactor, context_injector, usage_budget):
            pm.register(module)
    return pm


# -- pydantic-ai ---------------------------------------------------------------------------


def pydantic_ai_candidates(cwd: str, runner: asyncio.Runner) -> dict[str, Callable[[], object]]:
    """One run of each pydantic-ai candidate, on ``runner``'s loop."""
    from examples.pydantic_ai_agent import scripted
    from pydantic_ai import Agent
    from pydantic_ai.capabilities import AbstractCapability, Hooks
    from pydantic_ai.exceptions import ToolFailed
    from pydantic_ai.messages import (
        ModelRequest,
        ToolCallPart,
        UserPromptPart,
    )
    from pydantic_ai.models.function import FunctionModel

    from kithooks.adapters.pydantic_ai import KitHooks

    def build(capabilities: list[Any]) -> Any:
        agent: Any = Agent(
            FunctionModel(scripted(CLEANUP), model_name="gpt-4o"), capabilities=capabilities
        )

        @agent.tool_plain
        async def read_file(path: str) -> str:
            """Read a file."""
            return NOTES

        @agent.tool_plain
        async def bash(command: str) -> str:
            """Run a command."""
            return "ok"

        return agent

    work = NativeWork(cwd)
    hooks: Any = Hooks()
    step = {"n": 0}

    @hooks.on.before_run
    async def before_run(ctx: Any) -> None:
        step["n"] = 0
        rules = work.start()
        if rules is not None:
            ctx.messages.insert(0, ModelRequest(parts=[UserPromptPart(content=rules)]))

    @hooks.on.after_model_request
    async def after_model_request(ctx: Any, *, request_context: Any, response: Any) -> Any:
        finish = (
            "tool-calls" if any(isinstance(p, ToolCallPart) for p in response.parts) else "stop"
        )
        work.usage(
            step["n"], "gpt-4o", response.usage.input_tokens, response.usage.output_tokens, finish
        )
        step["n"] += 1
        return response

    @hooks.on.tool_execute
    async def tool_execute(ctx: Any, *, call: Any, tool_def: Any, args: Any, handler: Any) -> Any:
        reason = work.gate(call.tool_name, args)
        if reason is not None:
            raise ToolFailed(reason)
        result = await handler(args)
        return secret_redactor.redact(result) if isinstance(result, str) else result

    @hooks.on.after_run
    async def after_run(ctx: Any, *, result: Any) -> Any:
        work.end("stop")
        return result

    class NoOp(AbstractCapability[Any]):
        """The hooks KitHooks uses (``prepare_model_request`` only in runs that emit
        ``retry``, so not here), passing everything through."""

        async def wrap_run(self, ctx: Any, *, handler: Any) -> Any:
            return await handler()

        async def before_model_request(self, ctx: Any, request_context: Any) -> Any:
            return request_context

        async def after_model_request(
            self, ctx: Any, *, request_context: Any, response: Any
        ) -> Any:
            return response

        async def wrap_tool_execute(
            self, ctx: Any, *, call: Any, tool_def: Any, args: Any, handler: Any
        ) -> Any:
            return await handler(args)

    agents = {
        "bare agent": build([]),
        "no-op hooks": build([NoOp()]),
        "native hooks": build([hooks]),
        "kithooks, 0 plugins": build([KitHooks(manager(cwd, plugins=False))]),
        "kithooks, example plugins": build([KitHooks(manager(cwd, plugins=True))]),
    }
    return {name: (lambda a=a: runner.run(a.run(PROMPT))) for name, a in agents.items()}


# -- LangChain -----------------------------------------------------------------------------


def langchain_candidates(cwd: str, runner: asyncio.Runner) -> dict[str, Callable[[], object]]:
    """One run of each LangChain candidate, on ``runner``'s loop."""
    from examples.langchain_agent import ScriptedModel
    from langchain.agents import create_agent
    from langchain.agents.middleware import AgentMiddleware
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool

    from kithooks.adapters.langchain import KitHooksMiddleware

    @tool
    async def read_file(path: str) -> str:
        """Read a file."""
        return NOTES

    @tool
    async def bash(command: str) -> str:
        """Run a command."""
        return "ok"

    work = NativeWork(cwd)

    class Native(AgentMiddleware):  # type: ignore[type-arg]
        def __init__(self) -> None:
            super().__init__()
            self.rules: str | None = None
            self.step = 0

        async def abefore_agent(self, state: Any, runtime: Any) -> None:
            self.rules, self.step = work.start(), 0

        def awrap_model_call(self, request: Any, handler: Any) -> Any:
            return self._model_call(request, handler)  # plain, as KitHooksMiddleware's

        async def _model_call(self, request: Any, handler: Any) -> Any:
            if self.rules is not None:
                request = request.override(
                    messages=[HumanMessage(content=self.rules), *request.messages]
                )
            response = await handler(request)
            message = response.result[0]
            usage = message.usage_metadata
            finish = "tool-calls" if message.tool_calls else "stop"
            work.usage(self.step, "gpt-4o", usage["input_tokens"], usage["output_tokens"], finish)
            self.step += 1
            return response

        def awrap_tool_call(self, request: Any, handler: Any) -> Any:
            return self._tool_call(request, handler)

        async def _tool_call(self, request: Any, handler: Any) -> Any:
            call = request.tool_call
            reason = work.gate(call["name"], call["args"])
            if reason is not None:
                return ToolMessage(
                    content=reason, tool_call_id=call["id"], name=call["name"], status="error"
                )
            result = await handler(request)
            cleaned = secret_redactor.redact(result.text)
            if cleaned != result.text:
                result = result.model_copy(update={"content": cleaned})
            return result

        async def aafter_agent(self, state: Any, runtime: Any) -> None:
            work.end("stop")

    class NoOp(AgentMiddleware):  # type: ignore[type-arg]
        """The hooks KitHooksMiddleware uses, passing everything through.

        Here and in ``Native``, the ``awrap_*`` hooks are plain methods returning the
        coroutine, as KitHooksMiddleware's are: LangSmith's ``traceable`` (which LangChain
        puts around every ``wrap_*`` hook) sends two calls per hook call to a worker thread
        around an ``async def``, and inline around a plain function. Same hooks, same
        LangChain cost in every middleware row.
        """

        async def abefore_agent(self, state: Any, runtime: Any) -> None:
            return None

        def awrap_model_call(self, request: Any, handler: Any) -> Any:
            return handler(request)

        def awrap_tool_call(self, request: Any, handler: Any) -> Any:
            return handler(request)

        async def aafter_agent(self, state: Any, runtime: Any) -> None:
            return None

    def build(middleware: list[Any]) -> Any:
        return create_agent(
            ScriptedModel(command=CLEANUP), [read_file, bash], middleware=middleware
        )

    agents = {
        "bare agent": build([]),
        "no-op hooks": build([NoOp()]),
        "native hooks": build([Native()]),
        "kithooks, 0 plugins": build([KitHooksMiddleware(manager(cwd, plugins=False))]),
        "kithooks, example plugins": build([KitHooksMiddleware(manager(cwd, plugins=True))]),
    }
    payload = {"messages": [{"role": "user", "content": PROMPT}]}
    return {name: (lambda a=a: runner.run(a.ainvoke(payload))) for name, a in agents.items()}


# -- the section ---------------------------------------------------------------------------


def check_same_work(name: str, result: Any) -> None:
    """Fail unless a candidate's run ended with both tools run and the secret redacted (or
    not, for the candidates without the redactor): every candidate must do the same work."""
    text = str(result.output) if hasattr(result, "output") else result["messages"][-1].text
    if not text.rstrip().endswith("The clean-up: ok"):
        raise RuntimeError(
            f"bench.adapters: {name!r} did not run the clean-up the other candidates run "
            f"(its answer: {text!r}); the overhead figures would compare different work"
        )


def compare_cpu(
    candidates: dict[str, Callable[[], object]], *, number: int, rounds: int
) -> dict[str, float]:
    """Median CPU ns per call of each candidate, measured in interleaved rounds."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for name, fn in candidates.items():  # warm up
        check_same_work(name, fn())
    for _ in range(rounds):
        for name, fn in candidates.items():
            start = time.process_time_ns()
            for _ in range(number):
                fn()
            samples[name].append((time.process_time_ns() - start) / number)
    return {name: statistics.median(values) for name, values in samples.items()}


def measure(quick: bool) -> dict[str, dict[str, float]]:
    """Median CPU ns per agent run of each candidate, per framework."""
    number, rounds = (2, 3) if quick else (5, 31)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, asyncio.Runner() as runner:
        (Path(tmp) / "AGENTS.md").write_text("Never delete files outside the repository.")
        for framework, candidates in (
            ("pydantic-ai", pydantic_ai_candidates),
            ("LangChain", langchain_candidates),
        ):
            try:
                made = candidates(tmp, runner)
            except ImportError as exc:  # the framework is not installed
                results[framework] = {"not installed": float("nan"), str(exc): 0.0}
                continue
            results[framework] = compare_cpu(made, number=number, rounds=rounds)
    return results


#: Measured runs per heap layout (:data:`LAYOUTS`) when a full run counts instructions.
COUNTED_RUNS = 2

#: The heap layouts a candidate's instructions are counted in, as the number of small
#: objects allocated (and kept) before each layout's runs: where objects land decides which
#: lookups collide in CPython's type-attribute cache (it is indexed by addresses), so one
#: layout's count of a LangChain run moves by up to 0.05 M instructions per run, about a
#: tenth of kithooks' own work there; the count is the mean over these layouts (two sets of
#: 10 gave means up to 0.04 M apart, which puts a ratio near its target on either side).
LAYOUTS = (
    0, 300, 700, 1_100, 1_500, 2_000, 2_500, 3_200, 4_000, 5_000,
    6_000, 7_000, 8_500, 10_000, 12_000, 14_000, 16_000, 18_000, 21_000, 24_000,
)  # fmt: skip


class CountingFailed(RuntimeError):
    """Callgrind could not count a candidate (it failed, or collected nothing)."""


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else "met" if ok else "MISSED"


#: A row of the benchmark's Targets table: name, what it measures, measured, target, met.
Target = tuple[str, str, str, str, "bool | None"]


def _ratios(m: dict[str, float]) -> tuple[float, float, float]:
    """0 plugins / bare, no-op hooks / bare, and the example plugins' overhead / native's."""
    bare = m["bare agent"]
    native = m["native hooks"] - bare
    ours = m["kithooks, example plugins"] - bare
    return (
        m["kithooks, 0 plugins"] / bare,
        m["no-op hooks"] / bare,
        ours / native if native > 0 else float("inf"),
    )


def judge(
    cpu: dict[str, dict[str, float]], counts: dict[str, dict[str, float]] | None
) -> list[Target]:
    """The issue's two adapter targets per framework, judged on the instruction ``counts``
    when there are some (the CPU-time ratio shown beside), else on CPU time."""
    rows: list[Target] = []
    for framework, r in cpu.items():
        zero_name = f"{framework}: 0 plugins / bare agent"
        over_name = f"{framework}: example plugins' overhead / native hooks'"
        if "not installed" in r:
            rows.append((zero_name, f"{framework} is not installed", "-", "-", None))
            rows.append((over_name, f"{framework} is not installed", "-", "-", None))
            continue
        c = counts.get(framework) if counts else None
        judged = c if c is not None else r
        how = "CPU instructions (callgrind)" if c is not None else "CPU time"
        zero, noop, over = _ratios(judged)
        zero_aside = over_aside = ""
        if c is not None:  # the CPU-time ratios beside the judged ones
            cpu_zero, _, cpu_over = _ratios(r)
            zero_aside = f"; CPU time {cpu_zero:.3f} x"
            over_aside = f" (CPU time {cpu_over:.2f} x)"
        rows.append(
            (
                zero_name,
                "one whole agent run with the adapter and no plugin, against the agent without "
                f"it, in {how}",
                f"{zero:.3f} x (the framework's no-op hooks: {noop:.3f} x{zero_aside})",
                "<= 1.03 x",
                zero <= 1.03,
            )
        )
        rows.append(
            (
                over_name,
                "what the example plugins and the aggregator add to a run through the adapter, "
                f"against the same work in the framework's own hooks, in {how}",
                f"{over:.2f} x{over_aside}",
                "<= 1.2 x",
                over <= 1.2,
            )
        )
    return rows


def run(quick: bool) -> tuple[str, list[Target]]:
    """The adapters section of the benchmark report (markdown) and the adapter targets.

    A full run on a machine with valgrind also counts every candidate's instructions
    (:func:`instructions`, :data:`COUNTED_RUNS` runs in each of :data:`LAYOUTS`) and judges
    the targets on them:
    in CPU time, on a shared machine, these ratios of differences of a few percent land
    anywhere from 0.6 x to 2 x from run to run.
    """
    import shutil

    results = measure(quick)
    rows: list[list[str]] = []
    for framework, r in results.items():
        if "not installed" in r:
            rows.append([framework, "not installed", "", "", ""])
            continue
        bare = r["bare agent"]
        for name, ns in r.items():
            rows.append(
                [
                    framework,
                    name,
                    f"{ns / 1e6:.2f}",
                    f"{ns / bare:.3f} x",
                    f"{(ns - bare) / 1e3:+.0f}",
                ]
            )
    text = table(
        "Adapter overhead (one agent run: 3 model calls, 2 tool calls)",
        rows,
        ["framework", "candidate", "CPU ms per run", "x bare", "µs over bare"],
    )
    note = (
        "Each row is one whole offline async agent run (scripted model), in CPU time. *no-op "
        "hooks*: the framework's hooks at the adapter's places, doing nothing; *native hooks*: "
        "the example plugins' work in the framework's own hooks; *kithooks, 0 plugins*: the "
        "adapter with no plugin; *kithooks, example plugins*: the four example plugins and the "
        "turn aggregator through the adapter.\n"
    )
    counts = None
    why = "a quick run" if quick else "no valgrind on PATH"
    if not quick and shutil.which("valgrind") is not None:
        try:
            counts = instructions(COUNTED_RUNS)
        except CountingFailed as exc:
            why = str(exc)
    if counts is not None:
        note += (
            "\n"
            + instructions_table(counts, COUNTED_RUNS)
            + (
                "\nThe adapter targets (in the Targets table) are judged on these counts: in CPU "
                "time, on this shared machine, the same ratios land anywhere from 0.6 x to 2 x "
                "from run to run.\n"
            )
        )
    else:
        note += (
            f"\nThe adapter targets (in the Targets table) are judged on CPU time in this run "
            f"({why}): a full run with valgrind judges them on CPU instructions.\n"
        )
    return text + "\n" + note, judge(results, counts)


# -- CPU instructions (callgrind) -----------------------------------------------------------

_FRAMEWORKS: dict[str, Callable[[str, asyncio.Runner], dict[str, Callable[[], object]]]] = {
    "pydantic-ai": pydantic_ai_candidates,
    "LangChain": langchain_candidates,
}


def _measured_runs(framework: str, candidate: str, runs: int) -> None:
    """The child of :func:`instructions`: build the candidate, warm it up, then, in each
    heap layout of :data:`LAYOUTS`, make ``runs`` runs inside ``functools.reduce``, the C
    function callgrind collects in."""
    import functools
    import gc
    import signal

    # asyncio.Runner installs a SIGINT handler in a foreground process only, at a cost per
    # run; ignoring SIGINT makes every process measure the same.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    kept: list[list[tuple[None, ...]]] = []
    with tempfile.TemporaryDirectory() as tmp, asyncio.Runner() as runner:
        (Path(tmp) / "AGENTS.md").write_text("Never delete files outside the repository.")
        fn = _FRAMEWORKS[framework](tmp, runner)[candidate]
        check_same_work(candidate, fn())
        for _ in range(4):
            fn()
        for objects in LAYOUTS:
            # the next layout: objects of many sizes take the places the runs would reuse
            kept.append([(None,) * (i % 40) for i in range(objects)])
            gc.collect()
            functools.reduce(lambda _, __: fn(), range(runs), None)


def instructions(runs: int, only: tuple[str, str] | None = None) -> dict[str, dict[str, float]]:
    """CPU instructions per agent run of each candidate, per framework: each candidate in a
    process of its own under callgrind, counting only its measured runs (``runs`` in each
    heap layout of :data:`LAYOUTS`; not the start-up, the build or the warm-up), with a
    fixed hash seed; the mean over the layouts. The machine's load does not move these
    counts; what they leave out is how fast the instructions run (caches).
    ``only``: one (framework, candidate) pair."""
    import concurrent.futures
    import os
    import shutil
    import subprocess
    import sys

    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (callgrind) on PATH")
    root = Path(__file__).resolve().parent.parent
    jobs: list[tuple[str, str]] = []
    for framework, candidates in _FRAMEWORKS.items():
        if only is not None and framework != only[0]:
            continue
        with tempfile.TemporaryDirectory() as cwd, asyncio.Runner() as runner:
            try:
                names = list(candidates(cwd, runner))
            except ImportError:
                continue
        jobs += [(framework, name) for name in (names if only is None else [only[1]])]

    def count(job: tuple[str, str], tmp: str) -> float:
        framework, name = job
        out = Path(tmp) / "callgrind.out"
        argv = [
            "valgrind",
            "--tool=callgrind",
            "--collect-atstart=no",
            "--toggle-collect=functools_reduce",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-c",
            "import sys; from bench.adapters import _measured_runs; "
            "_measured_runs(sys.argv[1], sys.argv[2], int(sys.argv[3]))",
            framework,
            name,
            str(runs),
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(root)}
        proc = subprocess.run(argv, check=False, capture_output=True, text=True, cwd=root, env=env)
        if proc.returncode != 0:
            tail = "; ".join(proc.stderr.strip().splitlines()[-3:])
            raise CountingFailed(
                f"callgrind failed on {framework} / {name} (exit {proc.returncode}): {tail}"
            )
        totals = [line for line in out.read_text().splitlines() if line.startswith("totals:")]
        total = int(totals[0].split()[1]) if totals else 0
        if total <= 0:
            raise CountingFailed(
                f"callgrind counted nothing on {framework} / {name}: this Python has no "
                "functools_reduce symbol to collect in (a stripped build?)"
            )
        return total / (runs * len(LAYOUTS))

    def one(job: tuple[str, str]) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            return count(job, tmp)

    # One process per candidate, as many at once as this process may use cores: the counts
    # do not depend on what else runs.
    with concurrent.futures.ThreadPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        counted = list(pool.map(one, jobs))
    results: dict[str, dict[str, float]] = {}
    for (framework, name), n in zip(jobs, counted, strict=True):
        results.setdefault(framework, {})[name] = n
    return results


def instructions_table(results: dict[str, dict[str, float]], runs: int) -> str:
    """The instruction counts per run (markdown)."""
    rows: list[list[str]] = []
    for framework, r in results.items():
        bare = r["bare agent"]
        for name, count in r.items():
            rows.append([framework, name, f"{count / 1e6:.2f}", f"{count / bare:.3f} x"])
    return table(
        f"Adapter overhead in CPU instructions (callgrind, mean of {runs} measured runs in "
        f"each of {len(LAYOUTS)} heap layouts)",
        rows,
        ["framework", "candidate", "M instructions per run", "x bare"],
    )


def run_instructions(runs: int) -> str:
    """The instructions section (markdown): per-run counts and the targets judged on them."""
    results = instructions(runs)
    targets = ["| target | measured | |", "|---|---|---|"]
    for name, _measures, measured, target, ok in judge(results, None):
        ratio = measured.split(" (")[0]
        targets.append(f"| {name} {target} | {ratio} | {_verdict(ok)} |")
    return instructions_table(results, runs) + "\n" + "\n".join(targets) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.adapters", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts: proves it runs")
    parser.add_argument(
        "--instructions",
        type=int,
        metavar="RUNS",
        help="count only CPU instructions per run, with callgrind (RUNS runs each; slow)",
    )
    args = parser.parse_args()
    if args.instructions:
        try:
            print(run_instructions(args.instructions))
        except CountingFailed as exc:
            raise SystemExit(str(exc)) from None
    else:
        text, targets = run(args.quick)
        print(text)
        for name, _measures, measured, target, ok in targets:
            print(f"{name}: {measured} (target {target}): {_verdict(ok)}")


if __name__ == "__main__":
    main()
