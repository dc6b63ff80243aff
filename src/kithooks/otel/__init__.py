"""OpenTelemetry traces of every turn, following the GenAI semantic conventions.

:class:`OtelExporter` is a kithooks plugin: register it in a :class:`~kithooks.PluginManager`
and each turn becomes one trace, a root span ``invoke_agent`` with a ``chat`` span per LLM
call and an ``execute_tool`` span per tool call (blocked calls and rewrites included).
:func:`exporter_for` builds one with a console or OTLP exporter, for ``kithooks replay``.

Needs the ``otel`` extra: ``pip install 'kithooks[otel]'``. ``import kithooks`` never
imports OpenTelemetry.
"""

try:
    import opentelemetry.trace  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without the extra
    raise ImportError(
        "kithooks.otel needs OpenTelemetry, which is not installed: pip install 'kithooks[otel]'"
    ) from exc

from .backends import exporter_for
from .exporter import OtelExporter

__all__ = ["OtelExporter", "exporter_for"]
