"""A pydantic-ai agent with kithooks plugins: the permission gate, the secret redactor, the
context injector and the usage budget, unchanged, inside a real agent run.

Offline by default: a scripted ``FunctionModel`` reads a file that holds a secret, tries a
dangerous command, and answers. With ``--model`` (``openai:gpt-4o``, ``anthropic:claude-
sonnet-4-5``, ...) and the provider's API key in the environment, a real model drives it.

    python examples/pydantic_ai_agent.py                 # offline
    python examples/pydantic_ai_agent.py --model openai:gpt-4o "What is in notes.txt?"

Needs ``pip install 'kithooks[pydantic-ai]'``.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

import kithooks
from kithooks.adapters.pydantic_ai import KitHooks
from kithooks.examples import context_injector, permission_gate, secret_redactor, usage_budget

SAFE_PROGRAMS = {"ls", "cat", "echo", "pwd", "wc", "head"}


def scripted(command: str = "rm -rf /") -> Callable[..., Awaitable[ModelResponse]]:
    """A model played offline: it reads the notes, tries a clean-up running ``command`` (by
    default a dangerous one), then answers. Use it as ``FunctionModel(scripted())``."""

    async def play(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returns = [p for m in messages for p in m.parts if isinstance(p, ToolReturnPart)]
        usage = RequestUsage(input_tokens=900 + 300 * len(returns), output_tokens=60)
        if not returns:
            call = ToolCallPart("read_file", {"path": "notes.txt"}, tool_call_id="call_1")
            return ModelResponse(
                parts=[TextPart("Reading the notes."), call],
                usage=usage,
                model_name="gpt-4o",
                provider_name="openai",
            )
        if len(returns) == 1:
            call = ToolCallPart("bash", {"command": command}, tool_call_id="call_2")
            return ModelResponse(
                parts=[TextPart("Cleaning up."), call],
                usage=usage,
                model_name="gpt-4o",
                provider_name="openai",
            )
        answer = f"The notes say: {returns[0].content!s}. The clean-up: {returns[1].content!s}"
        return ModelResponse(
            parts=[TextPart(answer)], usage=usage, model_name="gpt-4o", provider_name="openai"
        )

    return play


#: The offline model of ``main``: reads the notes, tries ``rm -rf /``, answers.
scripted_model = scripted()


def build_agent(model: object, workdir: Path, pm: kithooks.PluginManager) -> Agent[None, str]:
    agent: Agent[None, str] = Agent(
        model,  # type: ignore[arg-type]
        instructions=f"You are a careful assistant working in {workdir}. Use the tools.",
        capabilities=[KitHooks(pm)],
    )

    @agent.tool_plain
    def read_file(path: str) -> str:
        """Read a file in the working directory."""
        target = (workdir / path).resolve()
        if workdir not in target.parents:
            return "Error: outside the working directory"
        return target.read_text(encoding="utf-8")

    @agent.tool_plain
    def bash(command: str) -> str:
        """Run a read-only command (ls, cat, echo, pwd, wc, head) in the working directory."""
        argv = shlex.split(command)
        if not argv or argv[0] not in SAFE_PROGRAMS:
            return f"Error: only {', '.join(sorted(SAFE_PROGRAMS))} may run here"
        done = subprocess.run(
            argv, cwd=workdir, capture_output=True, text=True, timeout=10, check=False
        )
        return done.stdout + done.stderr

    return agent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prompt", nargs="?", default="Read notes.txt and tidy up the project.")
    parser.add_argument(
        "--model", help="a pydantic-ai model name; offline FunctionModel when omitted"
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
        model = args.model or FunctionModel(scripted_model, model_name="gpt-4o")
        result = build_agent(model, workdir, pm).run_sync(args.prompt)
        print(f"\nanswer: {result.output}")


if __name__ == "__main__":
    main()
