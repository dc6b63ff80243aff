"""Where the spans go: an :class:`OtelExporter` wired to the console or to OTLP."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from .exporter import OtelExporter

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["KINDS", "exporter_for"]

#: The kinds :func:`exporter_for` knows.
KINDS = ("console", "otlp")

_EXTRA = "pip install 'kithooks[otel]'"


def _otlp_exporter() -> SpanExporter:
    """The OTLP span exporter the standard ``OTEL_EXPORTER_OTLP_*`` variables configure."""
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found, unused-ignore]
                OTLPSpanExporter as GrpcExporter,
            )
        except ImportError as exc:
            raise ImportError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs opentelemetry-exporter-otlp-proto-grpc, "
                "which is not installed: pip install opentelemetry-exporter-otlp-proto-grpc "
                "(or unset it to use http/protobuf, which the 'otel' extra installs)"
            ) from exc
        grpc: SpanExporter = GrpcExporter()
        return grpc
    if protocol != "http/protobuf":
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: "
            "use 'http/protobuf' (the default) or 'grpc'"
        )
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise ImportError(
            "exporting to OTLP needs opentelemetry-exporter-otlp-proto-http, which is not "
            f"installed: {_EXTRA}"
        ) from exc
    return OTLPSpanExporter()


def exporter_for(
    kind: str, *, out: TextIO | None = None, agent_name: str = ""
) -> tuple[OtelExporter, Callable[[], None]]:
    """An :class:`OtelExporter` with a tracer provider of its own, and its shutdown function.

    ``kind`` is ``"console"`` (each span printed as JSON to ``out``, standard output by
    default, as it ends) or ``"otlp"`` (batched to the OTLP endpoint that the standard
    ``OTEL_EXPORTER_OTLP_*`` variables configure; http/protobuf unless
    ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``). The service name is ``kithooks`` unless
    ``OTEL_SERVICE_NAME`` or ``OTEL_RESOURCE_ATTRIBUTES`` says otherwise. The global tracer
    provider is left alone.

    Call the returned function when done: it ends the turns still open and flushes and
    shuts down the provider, so every span is exported.

    Raises:
        ValueError: ``kind`` is not one of :data:`KINDS`.
        ImportError: the OpenTelemetry SDK or the OTLP exporter is missing; the message
            says what to install.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown OpenTelemetry exporter {kind!r}: use 'console' or 'otlp'")
    try:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
    except ImportError as exc:
        raise ImportError(
            f"exporting traces needs the OpenTelemetry SDK, which is not installed: {_EXTRA}"
        ) from exc
    env_names = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    resource = Resource.create({} if env_names else {SERVICE_NAME: "kithooks"})
    provider = TracerProvider(resource=resource)
    if kind == "console":
        console = ConsoleSpanExporter(out=out if out is not None else sys.stdout)
        provider.add_span_processor(SimpleSpanProcessor(console))
    else:
        provider.add_span_processor(BatchSpanProcessor(_otlp_exporter()))
    exporter = OtelExporter(provider, agent_name=agent_name)

    def shutdown() -> None:
        exporter.end_open_turns()
        provider.shutdown()

    return exporter, shutdown
