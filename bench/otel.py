"""What the OpenTelemetry exporter costs per turn, next to the turn aggregator.

The turn of ``bench.turn`` (three LLM calls, two tool calls, 500 streamed chunks) is played
through managers that differ in one thing, measured in interleaved rounds in one process:

* ``no plugins``: the baseline, a manager made with ``aggregate_turns=False``;
* ``aggregator``: the aggregator counting and enriching ``agent_end`` for one no-op
  ``agent_end`` handler, which is what any plugin that reads ``agent_end`` costs;
* ``exporter, API no-op provider``: the exporter with OpenTelemetry's ``NoOpTracerProvider``
  (what a host pays when no SDK is configured);
* ``exporter, SDK, in-memory (simple)``: the SDK recording every span and handing each to
  an ``InMemorySpanExporter`` as it ends (``SimpleSpanProcessor``): the whole cost of the
  spans, without a network;
* ``exporter, SDK, in-memory (batch)``: the same through a ``BatchSpanProcessor``, as a
  production setup exports.

Run ``python -m bench.otel`` (``--quick`` for tiny counts).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider

import kithooks
from kithooks.otel import OtelExporter

from .timing import table
from .turn import play, script


class _ReadsAgentEnd:
    @kithooks.hookimpl
    def on_agent_end(self, event: kithooks.AgentEndEvent) -> None:
        pass


def _manager(*plugins: object) -> kithooks.PluginManager:
    pm = kithooks.PluginManager(aggregate_turns=bool(plugins))
    for plugin in plugins:
        pm.register(plugin)
    return pm


def run(quick: bool) -> str:
    """The section of the benchmark report: µs per turn, and the exporter's share."""
    turns, rounds = (3, 3) if quick else (40, 15)
    turn = script()
    memories: list[InMemorySpanExporter] = []
    providers: list[TracerProvider] = []

    def sdk(processor: Callable[[InMemorySpanExporter], object]) -> OtelExporter:
        memory = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(processor(memory))  # type: ignore[arg-type]
        memories.append(memory)
        providers.append(provider)
        return OtelExporter(provider)

    managers = {
        "no plugins": _manager(),
        "aggregator": _manager(_ReadsAgentEnd()),
        "exporter, API no-op provider": _manager(OtelExporter(NoOpTracerProvider())),
        "exporter, SDK, in-memory (simple)": _manager(sdk(SimpleSpanProcessor)),
        "exporter, SDK, in-memory (batch)": _manager(sdk(BatchSpanProcessor)),
    }
    ctx = kithooks.Context(session_id="bench", turn_id="t")
    for pm in managers.values():
        play(pm, turn, ctx)  # warm up
    spans = len(memories[0].get_finished_spans())  # what one turn records
    samples: dict[str, list[float]] = {label: [] for label in managers}
    for _ in range(rounds):
        for label, pm in managers.items():
            start = time.perf_counter()
            for _ in range(turns):
                play(pm, turn, ctx)
            samples[label].append((time.perf_counter() - start) / turns)
        for provider in providers:
            provider.force_flush()
        for memory in memories:
            memory.clear()
    for provider in providers:
        provider.shutdown()
    per_turn = {label: statistics.median(v) for label, v in samples.items()}
    base = per_turn["aggregator"]
    rows = [
        [
            label,
            f"{us * 1e6:,.0f}",
            "" if label in ("no plugins", "aggregator") else f"{(us - base) * 1e6:+,.0f}",
            f"{us / per_turn['no plugins']:.2f} x",
        ]
        for label, us in per_turn.items()
    ]
    text = table(
        f"OpenTelemetry exporter: one turn ({len(turn)} events, {spans} spans)",
        rows,
        ["manager", "µs per turn", "µs over the aggregator", "vs no plugins"],
    )
    text += (
        "\nEach row plays the same turn; 'µs over the aggregator' is what the exporter adds to "
        "a manager whose aggregator is active (the exporter handles agent_end, which makes the "
        "aggregator count the turn). "
        f"Median of {rounds} interleaved rounds of {turns} turns.\n"
    )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.otel", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts: proves it runs")
    print(run(parser.parse_args().quick))


if __name__ == "__main__":
    main()
