"""The pydantic-ai guard's view has the shape of the tool's JSON schema, and a rewrite in
that shape reaches the tool typed, untouched fields unchanged; offline with FunctionModel.

A tool whose one parameter is a model or dataclass takes its fields flat (that is what
the model sends); bytes are read as UTF-8 text; a field the rewrite did not change keeps
the object pydantic-ai validated; the tool's own ``args_validator`` checks a rewrite too.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated, Any

import pytest
from pydantic import AfterValidator, BaseModel, Field, Secret, SecretStr, field_serializer
from pydantic_ai import Agent, ModelRetry
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

import kithooks
from kithooks import Context, PluginManager, hookimpl
from kithooks.adapters.pydantic_ai import KitHooks
from kithooks.testing.conformance import Recorder


class Gate:
    """Blocks ``rm -rf`` in ``command``."""

    @hookimpl
    def on_tool_call(self, event):
        if "rm -rf" in str((event.parsed_args or {}).get("command", "")):
            return kithooks.ToolCallResult(block=True, reason="dangerous command")
        return None


class Rewrite:
    """Sets ``changes`` in the arguments it is shown."""

    def __init__(self, **changes: Any) -> None:
        self.changes = changes

    @hookimpl
    def on_tool_call(self, event):
        return kithooks.ToolCallResult(args={**event.parsed_args, **self.changes})


def returns(messages: list[ModelMessage]) -> list[ToolReturnPart]:
    return [p for m in messages for p in m.parts if isinstance(p, ToolReturnPart)]


def agent_calling(pm: PluginManager, name: str, args: Any) -> tuple[Agent[None, str], list[Any]]:
    """An agent whose model calls ``name`` with ``args`` once, then answers with what the
    tool returned; ``seen`` collects the schemas the model was shown."""
    schemas: list[Any] = []

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        done = returns(messages)
        if not done:
            schemas.extend(t.parameters_json_schema for t in info.function_tools)
            return ModelResponse(parts=[ToolCallPart(name, args, "c1")])
        return ModelResponse(parts=[TextPart(f"{done[-1].outcome}: {done[-1].content}")])

    return Agent(FunctionModel(respond), capabilities=[KitHooks(pm)]), schemas


def host(*plugins: Any) -> tuple[PluginManager, Recorder]:
    pm = PluginManager(context=Context(session_id="s1"))
    log = Recorder()
    pm.register(log, name="log")
    for i, plugin in enumerate(plugins):
        pm.register(plugin, name=f"p{i}")
    return pm, log


def run(agent: Agent[None, str]) -> str:
    return asyncio.run(agent.run("go")).output


class Cmd(BaseModel):
    command: str
    cwd: str = "/"


@dataclasses.dataclass
class DCmd:
    command: str
    cwd: str = "/"


def shell_of(typ: type, ran: list[Any]) -> Any:
    """``def shell(x: typ) -> str``, which records what it gets."""

    def shell(x: Any) -> str:
        ran.append(x)
        return "ok"

    shell.__annotations__ = {"x": typ, "return": str}
    return shell


@pytest.mark.parametrize("typ", [Cmd, DCmd], ids=["model", "dataclass"])
def test_a_tool_taking_one_model_is_guarded_on_its_flat_fields_as_its_schema_says(typ):
    pm, log = host(Gate())
    agent, schemas = agent_calling(pm, "shell", {"command": "rm -rf /"})
    ran: list[Any] = []

    agent.tool_plain(shell_of(typ, ran))
    assert run(agent) == "failed: Error: dangerous command"
    assert ran == []
    assert list(schemas[0]["properties"]) == ["command", "cwd"]
    (call,) = log.of(kithooks.ToolCallEvent)
    assert call.parsed_args == {"command": "rm -rf /", "cwd": "/"}


@pytest.mark.parametrize("typ", [Cmd, DCmd], ids=["model", "dataclass"])
def test_a_flat_rewrite_of_a_one_model_tool_reaches_it_as_the_model(typ):
    pm, _ = host(Rewrite(command="echo safe"))
    agent, _ = agent_calling(pm, "shell", {"command": "rm -rf /", "cwd": "/tmp"})
    ran: list[Any] = []

    agent.tool_plain(shell_of(typ, ran))
    assert run(agent) == "success: ok"
    assert ran == [typ(command="echo safe", cwd="/tmp")]


def test_bytes_are_shown_as_pydantic_ai_reads_them_and_survive_a_rewrite_elsewhere():
    pm, log = host(Rewrite(path="/tmp/b"))
    agent, _ = agent_calling(pm, "put", {"path": "/tmp/a", "data": "hello"})
    got: list[tuple[str, bytes]] = []

    @agent.tool_plain
    def put(path: str, data: bytes) -> str:
        got.append((path, data))
        return "ok"

    assert run(agent) == "success: ok"
    (call,) = log.of(kithooks.ToolCallEvent)
    assert call.parsed_args == {"path": "/tmp/a", "data": "hello"}  # not base64
    assert got == [("/tmp/b", b"hello")]


def test_a_rewrite_leaves_a_secret_the_guard_saw_masked_as_it_was():
    pm, log = host(Rewrite(cmd="ls -l"))
    agent, _ = agent_calling(pm, "login", {"token": "hunter2", "cmd": "ls"})
    got: list[tuple[str, str]] = []

    @agent.tool_plain
    def login(token: SecretStr, cmd: str) -> str:
        got.append((token.get_secret_value(), cmd))
        return "ok"

    assert run(agent) == "success: ok"
    (call,) = log.of(kithooks.ToolCallEvent)
    assert call.parsed_args == {"token": "**********", "cmd": "ls"}
    assert got == [("hunter2", "ls -l")]


def shout(v: str) -> str:
    return v + "!"


class Opts(BaseModel):
    verbose: bool = False
    internal: str = Field("default", exclude=True)
    label: Annotated[str, AfterValidator(shout)] = ""


def test_unchanged_fields_keep_their_validated_objects_excluded_and_validated_once():
    """A single model's excluded field keeps its value; a validator that is not idempotent
    is not applied again to a field the rewrite left alone; a changed field is validated."""
    pm, log = host(Rewrite(verbose=True))
    agent, _ = agent_calling(pm, "cfg", {"verbose": False, "internal": "X", "label": "hi"})
    got: list[Opts] = []

    @agent.tool_plain
    def cfg(opts: Opts) -> str:
        got.append(opts)
        return "ok"

    assert run(agent) == "success: ok"
    (call,) = log.of(kithooks.ToolCallEvent)
    assert call.parsed_args == {"verbose": False, "label": "hi!"}
    assert got == [Opts.model_construct(verbose=True, internal="X", label="hi!")]


def test_a_changed_field_is_validated_by_its_own_validators():
    pm, _ = host(Rewrite(label="yo"))
    agent, _ = agent_calling(pm, "tag", {"label": "hi", "n": 1})
    got: list[tuple[str, int]] = []

    @agent.tool_plain
    def tag(label: Annotated[str, AfterValidator(shout)], n: int) -> str:
        got.append((label, n))
        return "ok"

    assert run(agent) == "success: ok"
    assert got == [("yo!", 1)]


def test_a_rewrite_is_checked_by_the_tools_own_args_validator():
    pm, _ = host(Rewrite(path="/etc/shadow"))
    agent, _ = agent_calling(pm, "read", {"path": "/tmp/a"})
    checked: list[str] = []
    ran: list[str] = []

    def only_tmp(ctx: Any, path: str) -> None:
        checked.append(path)
        if not path.startswith("/tmp/"):
            raise ModelRetry("path must be under /tmp")

    @agent.tool_plain(args_validator=only_tmp)
    def read(path: str) -> str:
        ran.append(path)
        return "secret"

    assert run(agent) == "retried: path must be under /tmp"
    assert checked == ["/tmp/a", "/etc/shadow"]
    assert ran == []


class ShellArgs(BaseModel):
    command: str
    cwd: str = "/"


@pytest.mark.parametrize("annotation", ["model", "typeddict"])
@pytest.mark.parametrize("parameter", ["command", "x"])
def test_a_one_model_tool_of_an_agent_is_guarded_on_its_flat_fields(annotation, parameter):
    """In an agent the tool manager holds each tool as a combined toolset's: the function
    schema is found below it, whatever the parameter is called (even like a field) and
    whether the value is a model or a TypedDict."""
    from typing_extensions import TypedDict

    class ShellDict(TypedDict):
        command: str

    kind = ShellArgs if annotation == "model" else ShellDict
    seen: list[Any] = []

    class Look:
        @hookimpl
        def on_tool_call(self, event):
            seen.append(kithooks.events.thaw(event.parsed_args))

    pm, _ = host(Look(), Gate())
    agent, _ = agent_calling(pm, "shell", {"command": "rm -rf /"})
    ran: list[Any] = []
    namespace: dict[str, Any] = {}
    exec(  # the parameter's name is the case: build the function with it
        f"def shell({parameter}: kind) -> str:\n    ran.append({parameter})\n    return 'ok'",
        {"kind": kind, "ran": ran},
        namespace,
    )
    agent.tool_plain(namespace["shell"])
    assert run(agent) == "failed: Error: dangerous command"
    assert ran == []
    flat = {"command": "rm -rf /", "cwd": "/"} if annotation == "model" else {"command": "rm -rf /"}
    assert seen == [flat]


class Auth(BaseModel):
    user: str
    token: SecretStr


class GenericAuth(BaseModel):
    user: str
    token: Secret[str]


class MaskedAuth(BaseModel):
    user: str
    token: str

    @field_serializer("token")
    def _mask(self, token: str) -> str:
        return "***"


class HiddenAuth(BaseModel):
    user: str
    token: str = Field("default", exclude=True)


class Request(BaseModel):
    url: str
    auth: Auth


class GenericRequest(BaseModel):
    url: str
    auth: GenericAuth


class MaskedRequest(BaseModel):
    url: str
    auth: MaskedAuth


class HiddenRequest(BaseModel):
    url: str
    auth: HiddenAuth


REQUESTS = {
    Auth: Request,
    GenericAuth: GenericRequest,
    MaskedAuth: MaskedRequest,
    HiddenAuth: HiddenRequest,
}


@pytest.mark.parametrize("auth", [Auth, GenericAuth, MaskedAuth, HiddenAuth])
def test_a_rewrite_of_an_argument_holding_what_the_plugins_saw_masked_fails_loudly(auth):
    """A secret, a field a serializer masks, a field left out: rebuilt from what the
    plugins saw, the tool would get the mask or the default. The rewrite is refused."""

    class Pin:
        @hookimpl
        def on_tool_call(self, event):
            args = kithooks.events.thaw(event.parsed_args)
            args["req"]["url"] = "https://y"
            return kithooks.ToolCallResult(args=args)

    pm, _ = host(Pin())
    call = {"req": {"url": "https://x", "auth": {"user": "alice", "token": "sk-1"}}, "n": 1}
    agent, _ = agent_calling(pm, "fetch", call)
    got: list[Any] = []

    def fetch(req: Any, n: int) -> str:
        got.append(req)
        return "ok"

    fetch.__annotations__ = {"req": REQUESTS[auth], "n": int, "return": str}
    agent.tool_plain(fetch)
    with pytest.raises(TypeError, match="changes argument 'req', which holds a value the"):
        run(agent)
    assert got == []


def test_a_rewrite_beside_an_argument_holding_a_secret_keeps_the_secret():
    pm, _ = host(Rewrite(n=2))
    call = {"req": {"url": "https://x", "auth": {"user": "alice", "token": "sk-1"}}, "n": 1}
    agent, _ = agent_calling(pm, "fetch", call)
    got: list[Any] = []

    @agent.tool_plain
    def fetch(req: Request, n: int) -> str:
        got.append((req.auth.token.get_secret_value(), n))
        return "ok"

    run(agent)
    assert got == [("sk-1", 2)]


@pytest.mark.parametrize("raised", ["ToolFailed", "ModelRetry"])
def test_a_redaction_of_a_failure_the_model_receives_reaches_it(raised):
    """A tool raising ToolFailed or ModelRetry sends its message to the model: tool_result
    handlers see that text, and their rewrite is what the model gets."""
    from pydantic_ai.exceptions import ToolFailed

    seen: list[str] = []

    class Redact:
        @hookimpl
        def on_tool_result(self, event):
            seen.append(event.content)
            return kithooks.ToolResultResult(content=event.content.replace("sk-123", "[gone]"))

    pm, _ = host(Redact())
    agent, _ = agent_calling(pm, "login", {})

    @agent.tool_plain
    def login() -> str:
        error = ToolFailed if raised == "ToolFailed" else ModelRetry
        raise error("bad key sk-123")

    got = run(agent)
    assert seen == ["bad key sk-123"]
    assert "sk-123" not in got and "bad key [gone]" in got


def test_a_redaction_of_an_output_functions_model_retry_reaches_the_model():
    """ToolOutput functions raise the bare ModelRetry (pydantic-ai wraps it further out):
    plugins see its message, and their rewrite is what the model gets."""
    from pydantic_ai import ToolOutput

    seen: list[str] = []

    class Redact:
        @hookimpl
        def on_tool_result(self, event):
            seen.append(event.content)
            return kithooks.ToolResultResult(content=event.content.replace("sk-1", "[gone]"))

    pm, _ = host(Redact())
    calls = {"n": 0}

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        calls["n"] += 1
        if calls["n"] > 1:
            retried = [p for p in returns(messages) if p.outcome == "retried"]
            assert retried and "sk-1" not in str(retried[-1].content)
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, {"x": calls["n"]})])

    def answer(x: int) -> str:
        if x == 1:
            raise ModelRetry("secret sk-1 in output")
        return "fine"

    agent = Agent(
        FunctionModel(respond), output_type=ToolOutput(answer), capabilities=[KitHooks(pm)]
    )
    assert run(agent) == "fine"
    assert seen[0] == "secret sk-1 in output"


@pytest.mark.parametrize("raised", ["ToolFailed", "ModelRetry"])
def test_a_plugin_answering_for_a_failed_tool_gives_the_model_a_result(raised):
    """tool_result with is_error=False turns the failure the model would get into the
    tool's successful result, as in every host."""
    from pydantic_ai.exceptions import ToolFailed

    class Fallback:
        @hookimpl
        def on_tool_result(self, event):
            if event.is_error:
                return kithooks.ToolResultResult(content="cached: 42", is_error=False)
            return None

    pm, _ = host(Fallback())
    agent, _ = agent_calling(pm, "lookup", {})

    @agent.tool_plain
    def lookup() -> str:
        error = ToolFailed if raised == "ToolFailed" else ModelRetry
        raise error("backend down")

    assert run(agent) == "success: cached: 42"
