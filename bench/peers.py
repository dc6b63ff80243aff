"""The peers a user might pick instead of kithooks, each set up to run N observers that do
the same work (bump a counter): LangChain's callback manager and Strands' hook registry.

Each ``make_*`` returns a zero-argument callable that dispatches one event, or None when
the peer is not installed (``pip install 'kithooks[bench]'``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Counter:
    n = 0


def make_langchain(n: int, counter: Counter) -> Callable[[], object] | None:
    """``on_llm_new_token`` (LangChain's per-token event) to n handlers, handed a pre-built
    ``GenerationChunk`` (LangChain's payload of a streamed token) as kithooks is handed a
    pre-built ``MessageUpdateEvent``."""
    try:
        from langchain_core.callbacks import BaseCallbackHandler, CallbackManager
        from langchain_core.outputs import GenerationChunk
    except ImportError:
        return None

    class Handler(BaseCallbackHandler):
        def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            counter.n += 1

    manager = CallbackManager(handlers=[Handler() for _ in range(n)])
    run = manager.on_llm_start({"name": "bench"}, ["prompt"])[0]
    chunk = GenerationChunk(text="tok")
    return lambda: run.on_llm_new_token("tok", chunk=chunk)


def strands_registry(n: int, counter: Counter, *, coroutine: bool = False) -> Any:
    """Strands' ``HookRegistry`` with n hook providers (Strands' plugin shape, as its docs
    write one: a ``HookProvider`` whose ``register_hooks`` adds a bound method), each
    observing ``MessageAddedEvent`` by bumping ``counter``, as a coroutine when asked.
    kithooks gets the same shape: n plugin objects, a method each."""
    from strands.hooks import HookProvider, HookRegistry, MessageAddedEvent

    class Provider(HookProvider):
        def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
            registry.add_callback(
                MessageAddedEvent, self.on_added_async if coroutine else self.on_added
            )

        def on_added(self, event: MessageAddedEvent) -> None:
            counter.n += 1

        async def on_added_async(self, event: MessageAddedEvent) -> None:
            counter.n += 1

    registry = HookRegistry()
    for _ in range(n):
        registry.add_hook(Provider())
    return registry


def make_strands(n: int, counter: Counter) -> Callable[[], object] | None:
    """An observe event (``MessageAddedEvent``) through Strands' ``HookRegistry`` to n hook
    providers (see :func:`strands_registry`)."""
    try:
        from strands.hooks import MessageAddedEvent
    except ImportError:
        return None

    registry = strands_registry(n, counter)
    event = MessageAddedEvent(
        agent=None, message={"role": "assistant", "content": [{"text": "tok"}]}
    )  # type: ignore[arg-type]
    return lambda: registry.invoke_callbacks(event)


def versions() -> dict[str, str]:
    """Installed versions of the peers."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("pluggy", "langchain-core", "strands-agents"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out
