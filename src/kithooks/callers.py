"""The two handler loops: one for ``emit``, one for ``aemit``.

Every dispatch that is not the compiled observe fast path (see :mod:`kithooks.plans`)
goes through :meth:`Callers.run` or :meth:`Callers.arun`. They own, in one place each:

* the plugin lock around every call (waits that would never end fail the call);
* tool matchers (a handler whose ``tools=`` does not match is not called);
* isolation: a handler that raises an ``Exception`` (or times out) is logged with its
  plugin and hook, reported to the listeners, and skipped; ``fail_closed`` turns a failing
  guard handler into a block / cancel naming the plugin;
* the result type check and the merge (:mod:`kithooks.dispatch`);
* the outcome: ``on_outcome`` handlers hear what a guard or transform dispatch decided.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, cast

from .dispatch import EventKind, Merge, Rule
from .events import Result
from .listeners import HandlerError, Listeners, describe_error
from .locks import LockCycleError, check_task, wait_async, wait_sync
from .plans import OUTCOME_HOOK, Handler, Plan

__all__ = ["Callers"]

logger = logging.getLogger("kithooks")

_get_ident = threading.get_ident


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

    def _accept(self, rule: Rule, h: Handler, result: object) -> bool:
        """True when ``result`` may be merged; a result of the wrong type is reported."""
        if isinstance(result, rule.result_type):
            if self.listeners.results:
                self.listeners.result(h.plugin, h.hook, result)
            return True
        exc = TypeError(
            f"returned {type(result).__name__}; {h.hook} takes {rule.result_type.__name__} or None"
        )
        self.failed(h.plugin, h.hook, exc)
        return False

    def take(self, merge: Merge, h: Handler, result: object) -> bool:
        """Check and merge one handler's result; True means it stops dispatch."""
        return self._accept(merge.rule, h, result) and merge.add(result)

    def done(self, event: Any, result: Any, ctx: Any) -> Any:
        """The end of a guard or transform dispatch: tell on_outcome (if anyone listens)."""
        if OUTCOME_HOOK in self.hooked:
            return self._outcome(event, result, ctx)
        return result

    def _fail_closed(self, rule: Rule | None, h: Handler, exc: BaseException) -> Result | None:
        """The block / cancel a failing guard handler becomes, or None (fail open)."""
        if rule is not None and self.fail_closed and rule.kind is EventKind.GUARD:
            return rule.failure(h.plugin, h.hook, exc)
        return None

    # ------------------------------------------------------------------ sync

    def run(self, plan: Plan, event: Any, ctx: Any) -> Any:
        """Dispatch ``event`` by ``plan`` with plain handlers; returns the merged result."""
        if plan.dispatch is not None:
            return plan.dispatch(event, ctx)
        if plan.has_async:
            names = ", ".join(repr(h.plugin) for h in plan.handlers if h.is_async)
            raise TypeError(
                f"{plan.hook} has coroutine handlers ({names}); use 'await pm.aemit(event)'"
            )
        if plan.prepare is not None:
            event = plan.prepare(event, ctx)
        rule = plan.rule
        merge: Merge | None = None if rule is None else rule.begin(event)
        result: Any = None
        for h in plan.handlers:
            current = event if merge is None else merge.event
            if h.matches is not None and not h.matches(current.tool_name):  # type: ignore[union-attr]
                continue
            try:
                if not h.acquire(False):
                    wait_sync(h.lock)
                elif h.lock.task is not None:
                    check_task(h.lock)
            except LockCycleError as exc:
                self.failed(h.plugin, h.hook, exc)
                if (stop := self._fail_closed(rule, h, exc)) is not None:
                    return self._outcome(event, stop, ctx)
                continue
            try:
                value = h.call(current) if h.event_only else h.call(current, ctx)
            except Exception as exc:
                self.failed(h.plugin, h.hook, exc)
                if (stop := self._fail_closed(rule, h, exc)) is not None:
                    return self._outcome(event, stop, ctx)
                continue
            finally:
                h.release()
            if (
                merge is not None
                and value is not None
                and self._accept(rule, h, value)  # type: ignore[arg-type]
                and merge.add(value)
            ):
                return self._outcome(event, value, ctx)
        if merge is None:
            return None
        result = merge.result()
        return self._outcome(event, result, ctx)

    def _outcome(self, event: Any, result: Any, ctx: Any) -> Any:
        plan = self.outcome_plan()
        if plan is not None:
            for h in plan.handlers:
                if h.is_async:
                    self.failed(h.plugin, h.hook, TypeError("a coroutine handler needs aemit"))
                    continue
                try:
                    if not h.acquire(False):
                        wait_sync(h.lock)
                except LockCycleError as exc:
                    self.failed(h.plugin, h.hook, exc)
                    continue
                try:
                    h.call(event, result, ctx)
                except Exception as exc:
                    self.failed(h.plugin, h.hook, exc)
                finally:
                    h.release()
        return result

    # ------------------------------------------------------------------ async

    async def arun(self, plan: Plan, event: Any, ctx: Any) -> Any:
        """Dispatch ``event`` by ``plan``, awaiting coroutine handlers."""
        import asyncio  # imported already: an event loop is running

        task = asyncio.current_task()
        if plan.prepare is not None:
            event = plan.prepare(event, ctx)
        rule = plan.rule
        merge: Merge | None = None if rule is None else rule.begin(event)
        for h in plan.handlers:
            current = event if merge is None else merge.event
            if h.matches is not None and not h.matches(current.tool_name):  # type: ignore[union-attr]
                continue
            try:
                value = await self._acall(h, task, (current,) if h.event_only else (current, ctx))
            except Exception as exc:
                self.failed(h.plugin, h.hook, exc)
                if (stop := self._fail_closed(rule, h, exc)) is not None:
                    return await self._aoutcome(event, stop, ctx)
                continue
            if (
                merge is not None
                and value is not None
                and self._accept(rule, h, value)  # type: ignore[arg-type]
                and merge.add(value)
            ):
                return await self._aoutcome(event, value, ctx)
        if merge is None:
            return None
        return await self._aoutcome(event, merge.result(), ctx)

    async def _acall(self, h: Handler, task: Any, args: tuple[Any, ...]) -> Any:
        """Call one handler holding its plugin; a coroutine handler holds it across awaits."""
        lock = h.lock
        if not lock.acquire(False):
            await wait_async(lock)
        elif lock.task is not None and lock.task is not task:
            lock.release()
            await wait_async(lock)
        try:
            if not h.is_async:
                return h.call(*args)
            previous, previous_thread = lock.task, lock.task_thread
            lock.task, lock.task_thread = task, _get_ident()
            try:
                pending = cast("Awaitable[Any]", h.call(*args))
                if h.timeout is None:
                    return await pending
                import asyncio

                try:
                    async with asyncio.timeout(h.timeout):
                        return await pending
                except TimeoutError:
                    raise TimeoutError(f"timed out after {h.timeout:g}s") from None
            finally:
                lock.task, lock.task_thread = previous, previous_thread
        finally:
            lock.release()

    async def _aoutcome(self, event: Any, result: Any, ctx: Any) -> Any:
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

    async def aobserve(self, plan: Plan, event: Any, ctx: Any) -> None:
        """An observe dispatch with the compiled coroutine when the plan has one."""
        if plan.aobservers is not None:
            await plan.aobservers(event, ctx)
        else:
            await self.arun(plan, event, ctx)
