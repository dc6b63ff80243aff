"""Dispatch overhead: kithooks ``emit`` against pluggy's own hook call and a plain loop.

The same handler functions (each bumps a counter) run under each; kithooks and pluggy call
them through a plugin object per handler.
"""

from __future__ import annotations

import pluggy

import kithooks
from kithooks.hookspecs import KitHookSpecs

from .timing import compare, table


class Counter:
    n = 0


def make_plugin(counter: Counter, marker: pluggy.HookimplMarker) -> object:
    class Plugin:
        @marker
        def on_message_update(self, event: object, ctx: object) -> None:
            counter.n += 1

    return Plugin()


def observe(
    sizes: tuple[int, ...], number: int, rounds: int
) -> tuple[str, dict[int, dict[str, float]]]:
    event = kithooks.MessageUpdateEvent(chunk="tok")
    ctx = kithooks.Context()
    results: dict[int, dict[str, float]] = {}
    for n in sizes:
        counter = Counter()
        kpm = kithooks.PluginManager(aggregate_turns=False)
        ppm = pluggy.PluginManager("kithooks")
        ppm.add_hookspecs(KitHookSpecs)
        plugins = [make_plugin(counter, kithooks.hookimpl) for _ in range(n)]
        for p in plugins:
            kpm.register(p)
            ppm.register(p)
        funcs = [p.on_message_update for p in plugins]  # type: ignore[attr-defined]

        def loop(funcs=funcs) -> None:
            for f in funcs:
                f(event, ctx)

        hook = ppm.hook.on_message_update
        results[n] = compare(
            {
                "plain loop": loop,
                "pluggy hook call": lambda hook=hook: hook(event=event, ctx=ctx),
                "kithooks emit": lambda kpm=kpm: kpm.emit(event, ctx),
            },
            number=number,
            rounds=rounds,
        )
    rows = []
    for n, r in results.items():
        k, p, loop = r["kithooks emit"], r["pluggy hook call"], r["plain loop"]
        rows.append(
            [
                str(n),
                f"{loop:.0f}",
                f"{p:.0f}",
                f"{k:.0f}",
                f"{k / p:.2f}",
                f"{k / loop:.2f}" if n else "-",
            ]
        )
    header = [
        "handlers",
        "plain loop ns",
        "pluggy ns",
        "kithooks emit ns",
        "emit / pluggy",
        "emit / loop",
    ]
    return table("Observe dispatch (message_update), ns per event", rows, header), results
