"""Dispatch overhead: kithooks ``emit`` side by side with a plain loop over the same
functions (the floor), pluggy's own hook call, LangChain's callback manager and Strands'
hook registry; and a guard and a transform event with 3 handlers."""

from __future__ import annotations

import pluggy

import kithooks
from kithooks.hookspecs import KitHookSpecs

from .peers import Counter, make_langchain, make_strands
from .timing import compare, table


def _observer(counter: Counter) -> object:
    class Plugin:
        @kithooks.hookimpl
        def on_message_update(self, event: object, ctx: object) -> None:
            counter.n += 1

    return Plugin()


def observe(
    sizes: tuple[int, ...], number: int, rounds: int
) -> tuple[str, dict[int, dict[str, float]]]:
    """One ``message_update`` to 0, 1, 3, 10 observers."""
    event = kithooks.MessageUpdateEvent(chunk="tok")
    ctx = kithooks.Context()
    results: dict[int, dict[str, float]] = {}
    for n in sizes:
        counter = Counter()
        kpm = kithooks.PluginManager(aggregate_turns=False)
        ppm = pluggy.PluginManager("kithooks")
        ppm.add_hookspecs(KitHookSpecs)
        plugins = [_observer(counter) for _ in range(n)]
        for p in plugins:
            kpm.register(p)
            ppm.register(p)
        funcs = [p.on_message_update for p in plugins]  # type: ignore[attr-defined]

        def loop(funcs: list = funcs) -> None:  # type: ignore[type-arg]
            for f in funcs:
                f(event, ctx)

        hook = ppm.hook.on_message_update
        candidates = {
            "plain loop": loop,
            "pluggy": lambda hook=hook: hook(event=event, ctx=ctx),
            "kithooks": lambda kpm=kpm: kpm.emit(event, ctx),
        }
        for name, make in (("langchain", make_langchain), ("strands", make_strands)):
            peer = make(n, counter)
            if peer is not None:
                candidates[name] = peer
        results[n] = compare(candidates, number=number, rounds=rounds)
    names = ["plain loop", "pluggy", "kithooks", "langchain", "strands"]
    rows = []
    for n, r in results.items():
        k = r["kithooks"]
        cells = [str(n)] + [f"{r[x]:.0f}" if x in r else "-" for x in names]
        cells += [f"{k / r['pluggy']:.2f}", f"{k / r['plain loop']:.2f}" if n else "-"]
        cells += [f"{r[x] / k:.1f}" if x in r else "-" for x in ("langchain", "strands")]
        rows.append(cells)
    header = [
        "handlers",
        *[f"{x} ns" for x in names],
        "kithooks / pluggy",
        "kithooks / loop",
        "langchain / kithooks",
        "strands / kithooks",
    ]
    return table("Observe dispatch (one message_update), ns per event", rows, header), results


def guard_and_transform(number: int, rounds: int) -> tuple[str, dict[str, dict[str, float]]]:
    """tool_call (guard, nobody blocks) and tool_result (transform, each rewrites) to 3 handlers."""
    ctx = kithooks.Context()

    class Guard:
        @kithooks.hookimpl
        def on_tool_call(self, event: kithooks.ToolCallEvent) -> kithooks.ToolCallResult | None:
            return None if event.tool_name != "rm" else kithooks.ToolCallResult(block=True)

    class Rewrite:
        @kithooks.hookimpl
        def on_tool_result(self, event: kithooks.ToolResultEvent) -> kithooks.ToolResultResult:
            return kithooks.ToolResultResult(content=event.content + ".")

    results: dict[str, dict[str, float]] = {}
    for label, cls, event in (
        (
            "tool_call (guard)",
            Guard,
            kithooks.ToolCallEvent(tool_name="bash", input='{"command": "ls"}'),
        ),
        ("tool_result (transform)", Rewrite, kithooks.ToolResultEvent(content="out")),
    ):
        kpm = kithooks.PluginManager(aggregate_turns=False)
        ppm = pluggy.PluginManager("kithooks")
        ppm.add_hookspecs(KitHookSpecs)
        plugins = [cls() for _ in range(3)]
        for p in plugins:
            kpm.register(p)
            ppm.register(p)
        hook = getattr(ppm.hook, event.event_type.hook_name)
        funcs = [getattr(p, event.event_type.hook_name) for p in plugins]

        def loop(funcs: list = funcs, event: object = event) -> None:  # type: ignore[type-arg]
            for f in funcs:
                f(event)

        results[label] = compare(
            {
                "plain loop": loop,
                "pluggy (no semantics)": lambda hook=hook, event=event: hook(event=event, ctx=ctx),
                "kithooks": lambda kpm=kpm, event=event: kpm.emit(event, ctx),
            },
            number=number,
            rounds=rounds,
        )
    rows = [
        [
            label,
            f"{r['plain loop']:.0f}",
            f"{r['pluggy (no semantics)']:.0f}",
            f"{r['kithooks']:.0f}",
            f"{r['kithooks'] / r['pluggy (no semantics)']:.2f}",
        ]
        for label, r in results.items()
    ]
    header = ["event, 3 handlers", "plain loop ns", "pluggy ns", "kithooks ns", "kithooks / pluggy"]
    note = (
        "\npluggy here only calls the handlers and lists their results; kithooks also merges "
        "them (for tool_result, each handler sees the content the one before rewrote).\n"
    )
    return table("Guard and transform dispatch", rows, header) + note, results
