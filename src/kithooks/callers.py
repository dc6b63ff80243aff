"""The rules of one handler call, and the ``on_outcome`` loop.

Every event's dispatch is compiled (:mod:`kithooks.plans`: observers; guard and transform
dispatch; sync and async), and calls back into this class for everything but the lock and
the call itself; :meth:`Callers.run` runs a plan's compiled form for ``emit`` (or says why
it has none). ``on_outcome`` handlers are called by :meth:`Callers.outcome` / ``aoutcome``.
What a call needs is decided here, once:

* the plugin lock (:func:`kithooks.locks.enter_sync` / ``enter_async``: a try, then a wait
  that fails a call which would never finish);
* tool matchers (a handler whose ``tools=`` does not match is not called);
* isolation: a handler that raises an ``Exception``, times out, or returns a mistake (an
  awaitable from a plain function, a result of the wrong type) is logged with its plugin and
  hook, reported to the listeners, and skipped; ``fail_closed`` turns a failing guard handler
  into a block / cancel naming the plugin (:meth:`Callers.failed`, :meth:`Callers.stray`);
* the result check and the merge (:meth:`Callers.take`, rules in :mod:`kithooks.dispatch`);
* the outcome: ``on_outcome`` handlers hear what a guard or transform dispatch decided
  (:meth:`Callers.outcome`, ``aoutcome``).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, cast

from . import logs
from .dispatch import EventKind, Merge, Rule
from .events import Result
from .listeners import HandlerError, Listeners, describe_error
from .locks import LockCycleError, enter_async, enter_sync, hold, leave, unhold
from .plans import Handler, Plan

__all__ = ["Callers"]

logger = logs.get("kithooks")


class Callers:
    """Runs plans; shared by every dispatch path of one manager."""

    __slots__ = ("fail_closed", "hooked", "listeners", "outcome_plan")

    def __init__(
        self,
        listeners: Listeners,
        fail_closed: bool,
        outcome_plan: Callable[[], Plan | None],
        hooked: set[str],
    ) -> None:
        self.listeners = listeners
        self.fail_closed = fail_closed
        self.outcome_plan = outcome_plan
        #: The manager's set of hooks that have handlers (is on_outcome among them?).
        self.hooked = hooked

    # ------------------------------------------------------------------ reporting

    def failed(self, plugin: str, hook: str, exc: BaseException) -> None:
        """Log and report a handler that failed; dispatch goes on."""
        logger.error(
            "plugin %r failed in %s (%s); skipped", plugin, hook, describe_error(exc), exc_info=exc
        )
        self.listeners.error(HandlerError(plugin=plugin, hook=hook, error=exc))

    def take(self, merge: Merge, h: Handler, result: object) -> Any:
        """Check and merge one handler's (non-None) result.

        Returns what dispatch must stop with (the result itself for a block / cancel /
        ``handled``; a fail-closed block for a result of the wrong type or one the merge
        cannot take), or None to go on. Such a result is a failure of the plugin, like an
        exception: logged, reported, and it contributes nothing. The result listeners hear a
        result once it is taken (before dispatch goes on to the next handler).
        """
        rule = merge.rule
        if isinstance(result, rule.result_type):
            try:
                stop = merge.add(result)
            except Exception as exc:  # a result the merge cannot take: the plugin's failure
                return self._fail_closed(rule, h, self._untakable(h, result, exc))
            if self.listeners.results:
                self.listeners.result(h.plugin, h.hook, result)
            return result if stop else None
        return self._fail_closed(rule, h, self.stray(h, result, rule))

    def _untakable(self, h: Handler, result: object, exc: Exception) -> BaseException:
        """Report a valid-looking result that its merge refused (say ``args`` whose JSON
        cannot be written); returns the error. The merge took none of it."""
        error = ValueError(
            f"returned a {type(result).__name__} that cannot be used ({describe_error(exc)})"
        )
        error.__cause__ = exc
        self.failed(h.plugin, h.hook, error)
        return error

    def stray(self, h: Handler, value: object, rule: Rule | None = None) -> BaseException | None:
        """Report a return value that is a mistake; returns the error (None: not a mistake).

        An awaitable from a plain function (an ``async def`` behind a sync decorator) would
        never run: it is closed and reported, never silently dropped. For a guard or
        transform, any value of the wrong type is a mistake; an observer's other return
        values are ignored.
        """
        if inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()
            exc: BaseException = TypeError(
                f"returned an awaitable from a plain function, so it never ran; declare "
                f"{h.hook} 'async def' (or mark the wrapper with "
                "inspect.markcoroutinefunction) and dispatch it with aemit"
            )
        elif rule is not None:
            exc = TypeError(
                f"returned {type(value).__name__}; {h.hook} takes "
                f"{rule.result_type.__name__} or None"
            )
        else:
            return None
        self.failed(h.plugin, h.hook, exc)
        return exc

    def _fail_closed(
        self, rule: Rule | None, h: Handler, exc: BaseException | None
    ) -> Result | None:
        """The block / cancel a failing guard handler becomes, or None (fail open)."""
        if (
            exc is not None
            and rule is not None
            and self.fail_closed
            and rule.kind is EventKind.GUARD
        ):
            return rule.failure(h.plugin, h.hook, exc)
        return None

    # ------------------------------------------------------------------ sync

    def run(self, plan: Plan, event: Any, ctx: Any) -> Any:
        """Dispatch ``event`` by ``plan``'s compiled form; returns the merged result. A plan
        with coroutine handlers has none for ``emit``: a TypeError naming them."""
        compiled = plan.compiled
        if compiled is None:
            names = ", ".join(repr(h.plugin) for h in plan.handlers if h.is_async)
            raise TypeError(
                f"{plan.hook} has coroutine handlers ({names}); use 'await pm.aemit(event)'"
            )
        return compiled(event, ctx)

    def outcome(self, event: Any, result: Any, ctx: Any) -> Any:
        """Tell the on_outcome handlers what a dispatch decided; returns ``result``."""
        plan = self.outcome_plan()
        if plan is not None:
            for h in plan.handlers:
                if h.is_async:
                    self.failed(h.plugin, h.hook, TypeError("a coroutine handler needs aemit"))
                else:
                    self._call(h, (event, result, ctx))
        return result

    def _call(self, h: Handler, args: tuple[Any, ...]) -> None:
        """Call one plain handler under its plugin's lock, isolated; a value it returns is
        checked (:meth:`stray`)."""
        try:
            own = enter_sync(h.lock)
        except LockCycleError as exc:
            self.failed(h.plugin, h.hook, exc)
            return
        try:
            value = h.call(*args)
        except Exception as exc:
            self.failed(h.plugin, h.hook, exc)
            return
        finally:
            if own:
                leave(h.lock)
        if value is not None:
            self.stray(h, value)

    # ------------------------------------------------------------------ async

    async def _acall(self, h: Handler, task: Any, args: tuple[Any, ...]) -> Any:
        """Call one handler holding its plugin; a coroutine handler holds it across awaits."""
        lock = h.lock
        own = await enter_async(lock)
        if not h.is_async:
            try:
                return h.call(*args)
            finally:
                if own:
                    leave(lock)
        state = hold(lock, task, own)
        try:
            pending = cast("Awaitable[Any]", h.call(*args))
            return await (pending if h.timeout is None else self.timed(h, pending))
        finally:
            unhold(lock, state)  # gives the plugin back when this ends the hold

    @staticmethod
    async def timed(h: Handler, pending: Awaitable[Any]) -> Any:
        """Await a coroutine handler's ``pending`` call within its ``timeout``."""
        import asyncio

        timeout = h.timeout
        if timeout is None:
            return await pending
        try:
            async with asyncio.timeout(timeout) as scope:
                value = await pending
        except TimeoutError:
            raise TimeoutError(f"timed out after {timeout:g}s") from None
        if scope.expired():  # it swallowed the cancellation and went on
            raise TimeoutError(f"timed out after {timeout:g}s (and ignored cancellation)")
        return value

    async def aoutcome(self, event: Any, result: Any, ctx: Any) -> Any:
        """:meth:`outcome` for ``aemit``: coroutine on_outcome handlers are awaited."""
        plan = self.outcome_plan()
        if plan is not None:
            import asyncio

            task = asyncio.current_task()
            for h in plan.handlers:
                try:
                    await self._acall(h, task, (event, result, ctx))
                except Exception as exc:
                    self.failed(h.plugin, h.hook, exc)
        return result
