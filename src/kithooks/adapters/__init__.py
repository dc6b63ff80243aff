"""Adapters that make agent frameworks kithooks hosts.

* ``kithooks.adapters.pydantic_ai.KitHooks``: a pydantic-ai capability
  (``pip install 'kithooks[pydantic-ai]'``).
* ``kithooks.adapters.langchain.KitHooksMiddleware``: a LangChain v1 agent middleware
  (``pip install 'kithooks[langchain]'``).

Both pass the adapter conformance suite, ``kithooks.testing.conformance``.
"""

from ..events import EventType

#: The events a tool call emits (``ToolRun``): an adapter with none handled skips the wrapper.
TOOL_EVENTS = (
    EventType.TOOL_CALL,
    EventType.TOOL_EXECUTION_START,
    EventType.TOOL_EXECUTION_END,
    EventType.TOOL_RESULT,
)

#: The events an agent run can emit through either adapter (the pydantic-ai adapter adds
#: ``retry``): what a host asks :meth:`~kithooks.PluginManager.plugins_handle` about.
RUN_EVENTS = (
    EventType.INPUT,
    EventType.BEFORE_AGENT_START,
    EventType.CONTEXT_PREPARE,
    EventType.AGENT_START,
    EventType.MESSAGE_START,
    EventType.PREPARE_STEP,
    EventType.STEP_START,
    EventType.MESSAGE_UPDATE,
    EventType.REASONING_START,
    EventType.TOOL_CALL_INPUT_START,
    EventType.TOOL_CALL_INPUT_DELTA,
    EventType.TOOL_CALL_INPUT_END,
    *TOOL_EVENTS,
    EventType.STEP_FINISH,
    EventType.LLM_USAGE,
    EventType.ERROR,
    EventType.MESSAGE_END,
    EventType.AGENT_END,
)
