"""kithooks: lifecycle hooks for AI agents in Python, built on pluggy.

"The original", throughout kithooks' code and docs, is KIT (github.com/mark3labs/kit), the
Go coding agent whose extension event system kithooks brings to Python; where kithooks
differs from it on purpose (its bugs fixed, not copied), the docs say so.

Every lifecycle event of an agent (34 of them, from KIT) is a pluggy hook
``on_<event>(event, ctx)`` with a typed, immutable payload. A :class:`PluginManager`
dispatches each event with its semantics (observe, guard, transform), isolates faulty
plugins, enriches ``agent_end`` through the :class:`TurnAggregator`, and gives plugins a
session-scoped :class:`StateStore`.

The submodules that cost time to import, or need an extra, are not imported by ``import
kithooks``: ``kithooks.adapters``, ``kithooks.command_hooks``, ``kithooks.hosting``,
``kithooks.otel``, ``kithooks.recording``, ``kithooks.streams`` and ``kithooks.testing`` are
imported on first access (``kithooks.otel.OtelExporter()`` works after a bare ``import
kithooks``).
"""

from typing import TYPE_CHECKING

from .aggregator import TurnAggregator
from .context import Context
from .dispatch import EventKind, kind_of
from .events import (
    AgentEndEvent,
    AgentStartEvent,
    BeforeAgentStartEvent,
    BeforeAgentStartResult,
    BeforeCompactEvent,
    BeforeCompactResult,
    BeforeForkEvent,
    BeforeForkResult,
    BeforeSessionSwitchEvent,
    BeforeSessionSwitchResult,
    ContextMessage,
    ContextPrepareEvent,
    ContextPrepareResult,
    ErrorEvent,
    Event,
    EventType,
    InputEvent,
    InputResult,
    LLMUsageEvent,
    MessageEndEvent,
    MessageStartEvent,
    MessageUpdateEvent,
    ModelChangeEvent,
    PrepareStepEvent,
    PrepareStepResult,
    ReasoningStartEvent,
    Result,
    RetryEvent,
    SessionShutdownEvent,
    SessionStartEvent,
    SourceEvent,
    StepFinishEvent,
    StepStartEvent,
    SubagentChunkEvent,
    SubagentEndEvent,
    SubagentStartEvent,
    ToolCallEvent,
    ToolCallInputDeltaEvent,
    ToolCallInputEndEvent,
    ToolCallInputStartEvent,
    ToolCallResult,
    ToolExecutionEndEvent,
    ToolExecutionStartEvent,
    ToolOutputEvent,
    ToolResultEvent,
    ToolResultResult,
    WarningsEvent,
    all_event_types,
    event_class,
)
from .hookspecs import hookimpl, hookspec
from .loading import LoadError, PluginSource
from .manager import HandlerError, PluginManager, custom_event
from .state import StateError, StateStore, sidecar_path
from .structuring import StructureError, event_from_dict, event_to_dict, structure, unstructure
from .usage import ModelPrice, Usage, compute_cost, usage_event

__version__ = "0.1.0"

#: The submodules ``kithooks.<name>`` imports on first access (PEP 562): ``import kithooks``
#: leaves them for later, so that a hook process pays only for what it uses.
_LAZY_SUBMODULES = frozenset(
    {"adapters", "command_hooks", "hosting", "otel", "recording", "streams", "testing"}
)

if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ imports them
    from . import adapters as adapters
    from . import command_hooks as command_hooks
    from . import hosting as hosting
    from . import otel as otel
    from . import recording as recording
    from . import streams as streams
    from . import testing as testing
else:

    def __getattr__(name: str) -> object:
        """Import the submodule ``name`` on first access (an extra it needs and lacks is
        an ImportError saying so); any other unknown name is an AttributeError."""
        if name in _LAZY_SUBMODULES:
            import importlib

            return importlib.import_module(f"{__name__}.{name}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names, with the submodules not imported yet."""
    return sorted({*globals(), *_LAZY_SUBMODULES})


__all__ = [
    "AgentEndEvent",
    "AgentStartEvent",
    "BeforeAgentStartEvent",
    "BeforeAgentStartResult",
    "BeforeCompactEvent",
    "BeforeCompactResult",
    "BeforeForkEvent",
    "BeforeForkResult",
    "BeforeSessionSwitchEvent",
    "BeforeSessionSwitchResult",
    "Context",
    "ContextMessage",
    "ContextPrepareEvent",
    "ContextPrepareResult",
    "ErrorEvent",
    "Event",
    "EventKind",
    "EventType",
    "HandlerError",
    "InputEvent",
    "InputResult",
    "LLMUsageEvent",
    "LoadError",
    "MessageEndEvent",
    "MessageStartEvent",
    "MessageUpdateEvent",
    "ModelChangeEvent",
    "ModelPrice",
    "PluginManager",
    "PluginSource",
    "PrepareStepEvent",
    "PrepareStepResult",
    "ReasoningStartEvent",
    "Result",
    "RetryEvent",
    "SessionShutdownEvent",
    "SessionStartEvent",
    "SourceEvent",
    "StateError",
    "StateStore",
    "StepFinishEvent",
    "StepStartEvent",
    "StructureError",
    "SubagentChunkEvent",
    "SubagentEndEvent",
    "SubagentStartEvent",
    "ToolCallEvent",
    "ToolCallInputDeltaEvent",
    "ToolCallInputEndEvent",
    "ToolCallInputStartEvent",
    "ToolCallResult",
    "ToolExecutionEndEvent",
    "ToolExecutionStartEvent",
    "ToolOutputEvent",
    "ToolResultEvent",
    "ToolResultResult",
    "TurnAggregator",
    "Usage",
    "WarningsEvent",
    "__version__",
    "all_event_types",
    "compute_cost",
    "custom_event",
    "event_class",
    "event_from_dict",
    "event_to_dict",
    "hookimpl",
    "hookspec",
    "kind_of",
    "sidecar_path",
    "structure",
    "unstructure",
    "usage_event",
]
