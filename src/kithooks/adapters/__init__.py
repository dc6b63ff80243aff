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
