"""The pydantic-ai adapter against the adapter conformance suite (offline, FunctionModel)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

from kithooks import PluginManager
from kithooks.adapters.pydantic_ai import KitHooks, describe_message
from kithooks.testing.conformance import Adapter, AdapterConformance, Script


def scripted_model(script: Script) -> FunctionModel:
    """A FunctionModel that answers with a conformance Script."""

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        reply = script.respond([describe_message(m) for m in messages])
        parts: list[Any] = [TextPart(reply.text)] if reply.text else []
        parts += [ToolCallPart(c.name, json.dumps(dict(c.args)), c.id) for c in reply.tool_calls]
        cached = reply.cache_read_tokens + reply.cache_write_tokens
        return ModelResponse(
            parts=parts,
            usage=RequestUsage(
                input_tokens=reply.input_tokens + cached,  # pydantic-ai counts cache in input
                output_tokens=reply.output_tokens,
                cache_read_tokens=reply.cache_read_tokens,
                cache_write_tokens=reply.cache_write_tokens,
            ),
            model_name=reply.model,
            provider_name=reply.provider,
            finish_reason="tool_call" if reply.tool_calls else "stop",
        )

    return FunctionModel(respond, model_name="gpt-4o")


class PydanticAIAdapter(Adapter):
    sync_modes = ("run_sync",)
    async_modes = ("run",)

    def build(self, pm: PluginManager, script: Script) -> Any:
        agent = Agent(scripted_model(script), capabilities=[KitHooks(pm)])

        @agent.tool_plain
        def shell(command: str) -> str:
            """Run a shell command."""
            return script.shell(command)

        return agent

    def run(self, agent: Any, prompt: str, mode: str) -> str:
        try:
            return str(agent.run_sync(prompt).output)
        finally:
            # run_sync leaves its loop open in this (worker) thread: close it.
            loop = asyncio.get_event_loop()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            asyncio.set_event_loop(None)

    async def arun(self, agent: Any, prompt: str, mode: str) -> str:
        return str((await agent.run(prompt)).output)


class TestPydanticAIConformance(AdapterConformance):
    adapter = PydanticAIAdapter()
