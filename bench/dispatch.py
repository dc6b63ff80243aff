"""Dispatch overhead, every candidate handed the same pre-built payload and calling the
same handler functions the same way.

- observe: one ``message_update`` to 0, 1, 3, 10 observers: a plain loop over the handler
  functions (the floor), kithooks ``emit``, kithooks' pluggy face
  ``pm.hook.on_message_update(event=..., ctx=...)``, pluggy's own hook call, LangChain's
  callback manager (``on_llm_new_token`` with a pre-built ``GenerationChunk``) and Strands'
  hook registry (a pre-built ``MessageAddedEvent`` to hook providers, a method each, as
  kithooks' plugins are objects with a method each).
- guard and transform: ``tool_call`` (nobody blocks), ``tool_result`` and ``input`` (each
  handler rewrites) to 1, 3, 10 handlers, against a hand-written loop with the same
  semantics (per-handler lock, try, result type check, first block wins, each handler sees
  the rewrite of the one before) and pluggy calling the handlers without any semantics.
- aemit against emit: 3 plain observers, both called from a coroutine on a running loop.
- aemit against Strands: 3 coroutine observers (plugin methods; Strands hook providers'
  methods), both awaited from a coroutine on a running loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import pluggy

import kithooks
from kithooks.events import replace
from kithooks.hookspecs import KitHookSpecs

from .peers import Counter, make_langchain, make_strands, strands_registry
from .timing import compare, table

logger = logging.getLogger("bench")

OBSERVE_NAMES = [
    "plain loop",
    "kithooks emit",
    "kithooks pm.hook",
    "pluggy",
    "langchain",
    "strands",
]


def _observer(counter: Counter) -> object:
    class Plugin:
        @kithooks.hookimpl
        def on_message_update(self, event: object, ctx: object) -> None:
            counter.n += 1

    return Plugin()


def _managers(plugins: list[object]) -> tuple[kithooks.PluginManager, pluggy.PluginManager]:
    kpm = kithooks.PluginManager(aggregate_turns=False)
    ppm = pluggy.PluginManager("kithooks")
    ppm.add_hookspecs(KitHookSpecs)
    for p in plugins:
        kpm.register(p)
        ppm.register(p)
    return kpm, ppm


def observe(
    sizes: tuple[int, ...], number: int, rounds: int
) -> tuple[str, dict[int, dict[str, float]]]:
    """One ``message_update`` to 0, 1, 3, 10 observers."""
    event = kithooks.MessageUpdateEvent(chunk="tok")
    ctx = kithooks.Context()
    results: dict[int, dict[str, float]] = {}
    for n in sizes:
        counter = Counter()
        plugins = [_observer(counter) for _ in range(n)]
        kpm, ppm = _managers(plugins)
        funcs = [p.on_message_update for p in plugins]  # type: ignore[attr-defined]

        def loop(funcs: list[Callable[..., Any]] = funcs) -> None:
            for f in funcs:
                f(event, ctx)

        hook, khook = ppm.hook.on_message_update, kpm.hook.on_message_update
        candidates: dict[str, Callable[[], object]] = {
            "plain loop": loop,
            "kithooks emit": lambda kpm=kpm: kpm.emit(event, ctx),
            "kithooks pm.hook": lambda khook=khook: khook(event=event, ctx=ctx),
            "pluggy": lambda hook=hook: hook(event=event, ctx=ctx),
        }
        for name, make in (("langchain", make_langchain), ("strands", make_strands)):
            peer = make(n, counter)
            if peer is not None:
                candidates[name] = peer
        results[n] = compare(candidates, number=number, rounds=rounds)
    rows = []
    for n, r in results.items():
        k = r["kithooks emit"]
        cells = [str(n)] + [f"{r[x]:,.0f}" if x in r else "-" for x in OBSERVE_NAMES]
        cells += [f"{k / r['pluggy']:.2f}", f"{k / r['plain loop']:.2f}" if n else "-"]
        cells += [f"{r['kithooks pm.hook'] / k:.2f}"]
        cells += [f"{r[x] / k:.1f}" if x in r else "-" for x in ("langchain", "strands")]
        rows.append(cells)
    header = [
        "handlers",
        *[f"{x} ns" for x in OBSERVE_NAMES],
        "emit / pluggy",
        "emit / loop",
        "pm.hook / emit",
        "langchain / emit",
        "strands / emit",
    ]
    note = (
        "\nEvery candidate dispatches one pre-built payload to handlers that each bump a "
        "counter: the plain loop calls the plugin methods as `f(event, ctx)`; LangChain gets "
        "`on_llm_new_token(token, chunk=<pre-built GenerationChunk>)`, Strands a pre-built "
        "`MessageAddedEvent` (its handlers are hook providers' methods).\n"
    )
    return table("Observe dispatch (one message_update), ns per event", rows, header) + note, (
        results
    )


# ---------------------------------------------------------------- guard and transform


class _Guard:
    @kithooks.hookimpl
    def on_tool_call(
        self, event: kithooks.ToolCallEvent, ctx: kithooks.Context
    ) -> kithooks.ToolCallResult | None:
        return None if event.tool_name != "rm" else kithooks.ToolCallResult(block=True)


class _ResultRewrite:
    @kithooks.hookimpl
    def on_tool_result(
        self, event: kithooks.ToolResultEvent, ctx: kithooks.Context
    ) -> kithooks.ToolResultResult:
        return kithooks.ToolResultResult(content=event.content + ".")


class _InputRewrite:
    @kithooks.hookimpl
    def on_input(self, event: kithooks.InputEvent, ctx: kithooks.Context) -> kithooks.InputResult:
        return kithooks.InputResult(action="transform", text=event.text + ".")


Handlers = list[tuple[threading.RLock, Callable[..., Any]]]

# The three loops below repeat their lock / try / type-check prologue on purpose: a host
# writing one loop for one event writes it inline, and a shared helper would add a call
# per handler to the baseline (flattering emit).


def guard_loop(handlers: Handlers, event: Any, ctx: Any) -> Any:
    """tool_call by hand: the first block wins and ends dispatch, else the last result."""
    last = None
    for lock, f in handlers:
        lock.acquire()
        try:
            result = f(event, ctx)
        except Exception:
            logger.exception("handler failed")
            continue
        finally:
            lock.release()
        if result is None:
            continue
        if not isinstance(result, kithooks.ToolCallResult):
            logger.error("wrong result type")
            continue
        if result.block:
            return result
        last = result
    return last


def tool_result_loop(handlers: Handlers, event: Any, ctx: Any) -> Any:
    """tool_result by hand: each handler sees the content and flag the one before set."""
    content = is_error = None
    seen = False
    for lock, f in handlers:
        lock.acquire()
        try:
            result = f(event, ctx)
        except Exception:
            logger.exception("handler failed")
            continue
        finally:
            lock.release()
        if result is None:
            continue
        if not isinstance(result, kithooks.ToolResultResult):
            logger.error("wrong result type")
            continue
        seen = True
        changes: dict[str, Any] = {}
        if result.content is not None:
            content = changes["content"] = result.content
        if result.is_error is not None:
            is_error = changes["is_error"] = result.is_error
        if changes:
            event = replace(event, **changes)
    return kithooks.ToolResultResult(content=content, is_error=is_error) if seen else None


def input_loop(handlers: Handlers, event: Any, ctx: Any) -> Any:
    """input by hand: 'handled' ends dispatch, 'transform' rewrites what the next one sees."""
    last = None
    transformed = False
    for lock, f in handlers:
        lock.acquire()
        try:
            result = f(event, ctx)
        except Exception:
            logger.exception("handler failed")
            continue
        finally:
            lock.release()
        if result is None:
            continue
        if not isinstance(result, kithooks.InputResult):
            logger.error("wrong result type")
            continue
        if result.action == "handled":
            return result
        last = result
        if result.action == "transform":
            transformed = True
            event = replace(event, text=result.text)
    if transformed:
        return kithooks.InputResult(action="transform", text=event.text)
    return last


GUARD_TRANSFORM_CASES: dict[str, tuple[type, Any, Callable[[Handlers, Any, Any], Any]]] = {
    "tool_call (guard)": (
        _Guard,
        kithooks.ToolCallEvent(tool_name="bash", input='{"command": "ls"}'),
        guard_loop,
    ),
    "tool_result (transform)": (
        _ResultRewrite,
        kithooks.ToolResultEvent(content="out"),
        tool_result_loop,
    ),
    "input (transform)": (_InputRewrite, kithooks.InputEvent(text="hi"), input_loop),
}


def guard_and_transform(
    sizes: tuple[int, ...], number: int, rounds: int
) -> tuple[str, dict[str, dict[int, dict[str, float]]]]:
    """Each guard and transform case to 1, 3, 10 handlers."""
    ctx = kithooks.Context()
    results: dict[str, dict[int, dict[str, float]]] = {}
    for label, (cls, event, by_hand) in GUARD_TRANSFORM_CASES.items():
        results[label] = {}
        for n in sizes:
            plugins = [cls() for _ in range(n)]
            kpm, ppm = _managers(plugins)
            name = event.event_type.hook_name
            handlers = [(threading.RLock(), getattr(p, name)) for p in plugins]
            # The loop must give what emit gives, or it measures something else.
            assert by_hand(handlers, event, ctx) == kpm.emit(event, ctx), label
            hook = getattr(ppm.hook, name)
            results[label][n] = compare(
                {
                    "hand-written loop": lambda h=handlers, e=event, f=by_hand: f(h, e, ctx),
                    "kithooks emit": lambda kpm=kpm, e=event: kpm.emit(e, ctx),
                    "pluggy (calls only)": lambda hook=hook, e=event: hook(event=e, ctx=ctx),
                },
                number=number,
                rounds=rounds,
            )
    rows = [
        [
            label,
            str(n),
            f"{r['hand-written loop']:,.0f}",
            f"{r['kithooks emit']:,.0f}",
            f"{r['pluggy (calls only)']:,.0f}",
            f"{r['kithooks emit'] / r['hand-written loop']:.2f}",
        ]
        for label, by_size in results.items()
        for n, r in by_size.items()
    ]
    header = ["event", "handlers", "hand-written loop ns", "emit ns", "pluggy ns", "emit / loop"]
    note = (
        "\nThe hand-written loop has emit's semantics (per-plugin lock, try, result type check, "
        "first block wins, each transform handler sees the rewrite before it) and is checked "
        "to return what emit returns; pluggy only calls the handlers and lists their results.\n"
    )
    return table("Guard and transform dispatch, ns per event", rows, header) + note, results


# ---------------------------------------------------------------- aemit


def _async_observer(counter: Counter) -> object:
    class Plugin:
        @kithooks.hookimpl
        async def on_message_update(self, event: object, ctx: object) -> None:
            counter.n += 1

    return Plugin()


def async_vs_strands(number: int, rounds: int) -> tuple[str, dict[str, float]]:
    """3 coroutine observers: ``await pm.aemit`` against Strands' ``invoke_callbacks_async``,
    each handed a pre-built payload, inside one coroutine."""
    counter = Counter()
    kpm, _ = _managers([_async_observer(counter) for _ in range(3)])
    event = kithooks.MessageUpdateEvent(chunk="tok")
    ctx = kithooks.Context()
    loop = asyncio.new_event_loop()

    async def aemits() -> None:
        for _ in range(number):
            await kpm.aemit(event, ctx)

    cases: dict[str, Callable[[], object]] = {
        "kithooks aemit": lambda: loop.run_until_complete(aemits())
    }
    try:
        from strands.hooks import MessageAddedEvent
    except ImportError:
        pass
    else:
        registry = strands_registry(3, counter, coroutine=True)
        added = MessageAddedEvent(
            agent=None,  # type: ignore[arg-type]
            message={"role": "assistant", "content": [{"text": "tok"}]},
        )

        async def strands() -> None:
            for _ in range(number):
                await registry.invoke_callbacks_async(added)

        cases["Strands invoke_callbacks_async"] = lambda: loop.run_until_complete(strands())
    try:
        batches = compare(cases, number=1, rounds=rounds)
    finally:
        loop.close()
    r = {name: ns / number for name, ns in batches.items()}
    rows = [[name, f"{ns:,.0f}"] for name, ns in r.items()]
    text = table(
        "Async handlers: aemit against Strands (one event to 3 coroutine observers)",
        rows,
        ["candidate", "ns per event"],
    )
    return text, r


def aemit_vs_emit(number: int, rounds: int) -> tuple[str, dict[str, float]]:
    """3 plain observers: ``await pm.aemit`` against ``pm.emit``, both inside a coroutine."""
    counter = Counter()
    kpm, _ = _managers([_observer(counter) for _ in range(3)])
    event = kithooks.MessageUpdateEvent(chunk="tok")
    ctx = kithooks.Context()
    loop = asyncio.new_event_loop()

    async def emits() -> None:
        for _ in range(number):
            kpm.emit(event, ctx)

    async def aemits() -> None:
        for _ in range(number):
            await kpm.aemit(event, ctx)

    try:
        batches = compare(
            {
                "emit": lambda: loop.run_until_complete(emits()),
                "aemit": lambda: loop.run_until_complete(aemits()),
            },
            number=1,
            rounds=rounds,
        )
    finally:
        loop.close()
    r = {name: ns / number for name, ns in batches.items()}
    rows = [[f"{r['emit']:,.0f}", f"{r['aemit']:,.0f}", f"{r['aemit'] / r['emit']:.2f}"]]
    text = table(
        "aemit against emit (one message_update to 3 plain observers, inside a coroutine)",
        rows,
        ["emit ns", "aemit ns", "aemit / emit"],
    )
    return text, r
