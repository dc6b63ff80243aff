"""The attribute names the exporter writes.

The ``gen_ai.*`` names are the OpenTelemetry GenAI semantic conventions (agent, inference
and tool-execution spans). They are spelled out here rather than imported from
``opentelemetry-semantic-conventions``, whose GenAI names live in a private ``_incubating``
module of a beta package. ``operation.cost`` is the cost attribute pydantic-ai and Logfire
use (the conventions have none). ``kithooks.*`` names carry what only kithooks sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

OPERATION_NAME: Final = "gen_ai.operation.name"
PROVIDER_NAME: Final = "gen_ai.provider.name"
CONVERSATION_ID: Final = "gen_ai.conversation.id"
AGENT_NAME: Final = "gen_ai.agent.name"
REQUEST_MODEL: Final = "gen_ai.request.model"
RESPONSE_MODEL: Final = "gen_ai.response.model"
RESPONSE_ID: Final = "gen_ai.response.id"
FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
CACHE_CREATION_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
TOOL_NAME: Final = "gen_ai.tool.name"
TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
TOOL_TYPE: Final = "gen_ai.tool.type"
TOOL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
TOOL_RESULT: Final = "gen_ai.tool.call.result"
ERROR_TYPE: Final = "error.type"
COST: Final = "operation.cost"

#: gen_ai.operation.name values.
INVOKE_AGENT: Final = "invoke_agent"
CHAT: Final = "chat"
EXECUTE_TOOL: Final = "execute_tool"

#: gen_ai.tool.type of a tool the agent runs itself ("function" in the conventions).
FUNCTION: Final = "function"

#: error.type values of kithooks' own failures (the conventions ask for low cardinality).
BLOCKED: Final = "kithooks.blocked"
TOOL_ERROR: Final = "kithooks.tool_error"
SUBAGENT_ERROR: Final = "kithooks.subagent_error"
AGENT_ERROR: Final = "kithooks.agent_error"
LLM_ERROR: Final = "kithooks.llm_error"
UNFINISHED: Final = "kithooks.unfinished"

TOOL_KIND: Final = "kithooks.tool.kind"
ARGS_REWRITTEN: Final = "kithooks.tool.arguments_rewritten"
RESULT_REWRITTEN: Final = "kithooks.tool.result_rewritten"
TURN_ID: Final = "kithooks.turn.id"
STOP_REASON: Final = "kithooks.turn.stop_reason"
TOOL_CALL_COUNT: Final = "kithooks.turn.tool_call_count"
LLM_CALL_COUNT: Final = "kithooks.turn.llm_call_count"
#: True on the root span of a turn opened at a later event than ``agent_start``.
TURN_CONTINUED: Final = "kithooks.turn.continued"

#: Span events on the turn's root span.
COMPACTION_EVENT: Final = "kithooks.compaction"
MODEL_CHANGE_EVENT: Final = "kithooks.model_change"
RETRY_EVENT: Final = "kithooks.retry"
#: A span event on an ``execute_tool`` span whose call was asked again (``tool_call``).
ASKED_AGAIN_EVENT: Final = "kithooks.tool.asked_again"

#: Provider ids (genai-prices', KIT's) whose well-known gen_ai.provider.name is spelled
#: otherwise; any other id is used as it is.
PROVIDER_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "google": "gcp.gen_ai",
        "aws": "aws.bedrock",
        "bedrock": "aws.bedrock",
        "azure": "azure.ai.openai",
        "mistral": "mistral_ai",
        "x-ai": "x_ai",
        "xai": "x_ai",
    }
)


def provider_name(provider: str) -> str:
    """The ``gen_ai.provider.name`` of a provider id (``"google"`` -> ``"gcp.gen_ai"``)."""
    return PROVIDER_NAMES.get(provider, provider)
