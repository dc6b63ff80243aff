"""The LangChain adapter against the adapter conformance suite (offline, scripted model)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("langchain.agents")

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool

from kithooks import PluginManager
from kithooks.adapters.langchain import KitHooksMiddleware, describe_message
from kithooks.testing.conformance import Adapter, AdapterConformance, Script


class ScriptedChatModel(BaseChatModel):
    """A chat model that answers with a conformance Script (tool calls and usage included)."""

    script: Any

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        reply = self.script.respond([describe_message(m) for m in messages])
        cached = reply.cache_read_tokens + reply.cache_write_tokens
        message = AIMessage(
            content=reply.text,
            tool_calls=[
                {"name": c.name, "args": dict(c.args), "id": c.id} for c in reply.tool_calls
            ],
            usage_metadata={
                "input_tokens": reply.input_tokens + cached,  # LangChain counts cache in input
                "output_tokens": reply.output_tokens,
                "total_tokens": reply.input_tokens + cached + reply.output_tokens,
                "input_token_details": {
                    "cache_read": reply.cache_read_tokens,
                    "cache_creation": reply.cache_write_tokens,
                },
            },
            response_metadata={
                "model_name": reply.model,
                "model_provider": reply.provider,
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def answer_of(state: dict[str, Any]) -> str:
    last = [m for m in state["messages"] if isinstance(m, AIMessage)]
    return last[-1].text if last else ""


class LangChainAdapter(Adapter):
    sync_modes = ("invoke", "stream")
    async_modes = ("ainvoke", "astream")

    def build(self, pm: PluginManager, script: Script) -> Any:
        @tool
        def shell(command: str) -> str:
            """Run a shell command."""
            return script.shell(command)

        return create_agent(
            ScriptedChatModel(script=script), [shell], middleware=[KitHooksMiddleware(pm)]
        )

    def run(self, agent: Any, prompt: str, mode: str) -> str:
        payload = {"messages": [{"role": "user", "content": prompt}]}
        if mode == "invoke":
            return answer_of(agent.invoke(payload))
        states = list(agent.stream(payload, stream_mode="values"))
        return answer_of(states[-1])

    async def arun(self, agent: Any, prompt: str, mode: str) -> str:
        payload = {"messages": [{"role": "user", "content": prompt}]}
        if mode == "ainvoke":
            return answer_of(await agent.ainvoke(payload))
        states = [s async for s in agent.astream(payload, stream_mode="values")]
        return answer_of(states[-1])


class TestLangChainConformance(AdapterConformance):
    adapter = LangChainAdapter()
