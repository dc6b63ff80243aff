"""A LangChain agent with kithooks plugins: the permission gate, the secret redactor, the
context injector and the usage budget, unchanged, inside a real ``create_agent`` run.

Offline by default: a scripted chat model reads a file that holds a secret, tries a
dangerous command, and answers. With ``--model`` (``openai:gpt-4o``, ``anthropic:claude-
sonnet-4-5``, ...), the provider's LangChain package installed and its API key in the
environment, a real model drives it.

    python examples/langchain_agent.py                 # offline
    python examples/langchain_agent.py --model openai:gpt-4o "What is in notes.txt?"

Needs ``pip install 'kithooks[langchain]'``.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool

import kithooks
from kithooks.adapters.langchain import KitHooksMiddleware
from kithooks.examples import context_injector, permission_gate, secret_redactor, usage_budget

SAFE_PROGRAMS = {"ls", "cat", "echo", "pwd", "wc", "head"}


class ScriptedModel(BaseChatModel):
    """Plays a model offline: read the notes, try a clean-up (``command``: by default a
    dangerous one), then answer."""

    command: str = "rm -rf /"

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        return self._play(messages)

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        return self._play(messages)

    def _play(self, messages: list[BaseMessage]) -> ChatResult:
        returns = [m for m in messages if isinstance(m, ToolMessage)]
        fresh = 900 + 300 * len(returns)
        metadata = {"model_name": "gpt-4o", "model_provider": "openai"}
        usage = {"input_tokens": fresh, "output_tokens": 60, "total_tokens": fresh + 60}
        if not returns:
            call = {"name": "read_file", "args": {"path": "notes.txt"}, "id": "call_1"}
            answer = AIMessage(content="Reading the notes.", tool_calls=[call])
        elif len(returns) == 1:
            call = {"name": "bash", "args": {"command": self.command}, "id": "call_2"}
            answer = AIMessage(content="Cleaning up.", tool_calls=[call])
        else:
            answer = AIMessage(
                content=f"The notes say: {returns[0].text}. The clean-up: {returns[1].text}"
            )
        answer.usage_metadata = usage  # type: ignore[assignment]
        answer.response_metadata = metadata
        return ChatResult(generations=[ChatGeneration(message=answer)])


def build_agent(model: Any, workdir: Path, pm: kithooks.PluginManager) -> Any:
    @tool
    def read_file(path: str) -> str:
        """Read a file in the working directory."""
        target = (workdir / path).resolve()
        if workdir not in target.parents:
            return "Error: outside the working directory"
        return target.read_text(encoding="utf-8")

    @tool
    def bash(command: str) -> str:
        """Run a read-only command (ls, cat, echo, pwd, wc, head) in the working directory."""
        argv = shlex.split(command)
        if not argv or argv[0] not in SAFE_PROGRAMS:
            return f"Error: only {', '.join(sorted(SAFE_PROGRAMS))} may run here"
        done = subprocess.run(
            argv, cwd=workdir, capture_output=True, text=True, timeout=10, check=False
        )
        return done.stdout + done.stderr

    return create_agent(
        model,
        [read_file, bash],
        system_prompt=f"You are a careful assistant working in {workdir}. Use the tools.",
        middleware=[KitHooksMiddleware(pm)],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prompt", nargs="?", default="Read notes.txt and tidy up the project.")
    parser.add_argument(
        "--model", help="a LangChain model name ('openai:gpt-4o'); scripted offline when omitted"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp).resolve()
        (workdir / "notes.txt").write_text(
            "deploy key: sk-proj-Zx81kQp0vT3mW9aLr5sYc2Nd; ship on Friday"
        )
        (workdir / "AGENTS.md").write_text("Never delete files outside the repository.")
        pm = kithooks.PluginManager(
            context=kithooks.Context(cwd=str(workdir), print=print, print_error=print)
        )
        for module in (permission_gate, secret_redactor, context_injector, usage_budget):
            pm.register(module)
        pm.load_entrypoints()
        if args.model:
            from langchain.chat_models import init_chat_model

            model: Any = init_chat_model(args.model)
        else:
            model = ScriptedModel()
        state = build_agent(model, workdir, pm).invoke(
            {"messages": [{"role": "user", "content": args.prompt}]}
        )
        print(f"\nanswer: {state['messages'][-1].text}")


if __name__ == "__main__":
    main()
