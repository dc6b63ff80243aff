"""kithooks.otel's packaging and exporter_for: the extra, the console and OTLP exporters."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from kithooks import Context, PluginManager, ToolCallResult, hookimpl
from kithooks.hosting import Turn
from kithooks.otel import exporter_for
from kithooks.usage import Usage


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class Gate:
    @hookimpl
    def on_tool_call(self, event: Any) -> ToolCallResult | None:
        return ToolCallResult(block=True, reason="no") if event.tool_name == "bash" else None


def a_turn(pm: PluginManager, *, finish: bool = True) -> None:
    turn = Turn(pm, turn_id="t1", ctx=Context(session_id="s1", model="openai/gpt-5"))
    turn.agent_start("go")
    turn.step_start(0)
    turn.run_tool(lambda _: "ok", tool_name="read", tool_call_id="c1", input="{}")
    turn.run_tool(lambda _: "ok", tool_name="bash", tool_call_id="c2", input="{}")
    turn.step_finish(
        0, provider="openai", model="gpt-5", usage=Usage(input_tokens=3, output_tokens=4)
    )
    if finish:
        turn.end(response="ok", stop_reason="stop")


def test_import_kithooks_does_not_import_opentelemetry() -> None:
    done = python(
        """
        import sys, kithooks
        pm = kithooks.PluginManager()
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_kithooks_otel_without_the_extra_names_it() -> None:
    done = python(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if the extra were not installed
        import kithooks.otel
        """
    )
    assert done.returncode == 1
    assert "ImportError: kithooks.otel needs OpenTelemetry" in done.stderr
    assert "pip install 'kithooks[otel]'" in done.stderr


def test_the_default_is_the_global_tracer_provider_even_when_set_later() -> None:
    done = python(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import kithooks
        from kithooks.otel import OtelExporter

        pm = kithooks.PluginManager()
        pm.register(OtelExporter())
        memory = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        trace.set_tracer_provider(provider)
        ctx = kithooks.Context(session_id="s", turn_id="t")
        pm.emit(kithooks.AgentStartEvent(prompt="x"), ctx)
        pm.emit(kithooks.AgentEndEvent(), ctx)
        print([s.name for s in memory.get_finished_spans()])
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['invoke_agent']"


def spans_in(text: str) -> list[dict[str, Any]]:
    """The JSON objects ConsoleSpanExporter printed, one after another."""
    decoder, out, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        obj, i = decoder.raw_decode(text, i)
        out.append(obj)
    return out


def test_console_exporter_prints_every_span_as_json() -> None:
    out = io.StringIO()
    exporter, shutdown = exporter_for("console", out=out, agent_name="coder")
    pm = PluginManager()
    pm.register(Gate())
    pm.register(exporter)
    a_turn(pm)
    shutdown()
    spans = spans_in(out.getvalue())
    assert [s["name"] for s in spans] == [
        "execute_tool read",
        "execute_tool bash",
        "chat gpt-5",
        "invoke_agent coder",
    ]
    assert {s["context"]["trace_id"] for s in spans} == {spans[-1]["context"]["trace_id"]}
    assert spans[1]["status"] == {"status_code": "ERROR", "description": "no"}
    assert spans[-1]["resource"]["attributes"]["service.name"] == "kithooks"


def test_console_exporter_writes_to_stdout_and_shutdown_ends_open_turns() -> None:
    done = python(
        """
        import kithooks
        from kithooks.otel import exporter_for

        exporter, shutdown = exporter_for("console")
        pm = kithooks.PluginManager()
        pm.register(exporter)
        ctx = kithooks.Context(session_id="s", turn_id="t")
        pm.emit(kithooks.AgentStartEvent(prompt="x"), ctx)
        shutdown()
        """
    )
    assert done.returncode == 0, done.stderr
    (root,) = spans_in(done.stdout)
    assert root["name"] == "invoke_agent"
    assert root["status"]["description"] == "turn unfinished when the exporter closed"


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    received: list[tuple[str, dict[str, str], bytes]] = []
    handler = type("Handler", (Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_otlp_exporter_follows_the_standard_environment_variables(
    collector: tuple[str, list[tuple[str, dict[str, str], bytes]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint, received = collector
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-team=agents")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "my-agent")
    exporter, shutdown = exporter_for("otlp")
    pm = PluginManager()
    pm.register(exporter)
    a_turn(pm)
    shutdown()

    assert received, "nothing reached the collector"
    request = ExportTraceServiceRequest()
    names = []
    for path, headers, body in received:
        assert path == "/v1/traces"
        assert headers["x-team"] == "agents"
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}[
                "service.name"
            ]
            assert service == "my-agent"
            names += [s.name for ss in resource_spans.scope_spans for s in ss.spans]
    assert sorted(names) == [
        "chat gpt-5",
        "execute_tool bash",
        "execute_tool read",
        "invoke_agent",
    ]


def test_exporter_for_says_what_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown OpenTelemetry exporter 'jaeger'"):
        exporter_for("jaeger")

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL='http/json'"):
        exporter_for("otlp")

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.grpc", None)
    with pytest.raises(ImportError, match="opentelemetry-exporter-otlp-proto-grpc"):
        exporter_for("otlp")

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_PROTOCOL")
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(ImportError, match=r"pip install 'kithooks\[otel\]'"):
        exporter_for("otlp")

    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace.export", None)
    with pytest.raises(ImportError, match=r"needs the OpenTelemetry SDK.*kithooks\[otel\]"):
        exporter_for("console")


def test_the_benchmark_runs_and_prints_its_section() -> None:
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "bench.otel", "--quick"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "### OpenTelemetry exporter: one turn (535 events, 6 spans)" in done.stdout
    for row in (
        "| no plugins |",
        "| aggregator |",
        "| exporter, API no-op provider |",
        "| exporter, SDK, in-memory (simple) |",
        "| exporter, SDK, in-memory (batch) |",
    ):
        assert row in done.stdout
