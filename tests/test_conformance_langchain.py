"""The LangChain adapter against the adapter conformance suite (offline, scripted model)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("langchain.agents")

from langchain.agents import create_agent
from langchain_core.tools import tool

from kithooks import PluginManager
from kithooks.adapters.langchain import KitHooksMiddleware
from kithooks.testing.conformance import Adapter, AdapterConformance, Script
from test_langchain import ScriptedChatModel, answer_of


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
