"""The :class:`PluginManager`: registration, dispatch with kithooks semantics, loading."""

from __future__ import annotations

import difflib
import inspect
import itertools
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final, cast

import attrs
import pluggy
from pluggy import HookImpl, PluginValidationError

from .aggregator import TurnAggregator
from .context import Context
from .dispatch import RULES, EventKind, Merge, Rule
from .events import EVENT_CLASSES, Event, EventType, Result, SessionShutdownEvent, SessionStartEvent
from .hookspecs import PROJECT, KitHookSpecs
from .loading import Loader, LoadError, PluginSource, default_project_dir, default_user_dir
from .locks import PluginLock
from .state import StateStore

__all__ = ["HandlerError", "PluginManager", "custom_event"]

logger = logging.getLogger("kithooks")

_HOOK_EVENTS: Final[dict[str, EventType]] = {et.hook_name: et for et in EventType}
_CUSTOM_MARK = "kithooks_custom_event"
_DEFAULT: Any = object()
_UNKNOWN: Any = object()  # emit() was given something that is not a payload class


def custom_event(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Mark a plugin function as a handler of the custom event ``name``.

    The handler is called as ``fn(data)`` or ``fn(data, ctx)`` when any plugin or the host
    calls ``emit_custom_event(name, data)``; subscribers run in registration order under
    their plugin's lock, and one that raises is logged and skipped.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"custom_event() needs a non-empty event name, got {name!r}")

    def mark(fn: Callable[..., None]) -> Callable[..., None]:
        setattr(fn, _CUSTOM_MARK, name)
        return fn

    return mark


@attrs.frozen(kw_only=True)
class HandlerError:
    """A handler that raised, or returned a result of the wrong type; it was isolated."""

    plugin: str
    hook: str
    error: BaseException = attrs.field(eq=False)

    @property
    def message(self) -> str:
        """One line naming the plugin, the hook and the error."""
        error = f"{type(self.error).__name__}: {self.error}"
        return f"plugin {self.plugin!r} failed in {self.hook}: {error}"


class _Handler:
    """One hookimpl: ``call(event)`` when ``event_only``, else ``call(event, ctx)``."""

    __slots__ = (
        "acquire",
        "call",
        "event_only",
        "hook",
        "is_async",
        "plugin",
        "release",
        "task_lock",
        "thread_lock",
    )

    def __init__(self, impl: HookImpl, hook: str, lock: PluginLock) -> None:
        fn = impl.function
        self.plugin = impl.plugin_name
        self.hook = hook
        self.thread_lock = lock.thread
        # Bound once: calling acquire()/release() costs a third of a `with lock:` block.
        self.acquire = lock.thread.acquire
        self.release = lock.thread.release
        self.task_lock = lock.task
        self.is_async = inspect.iscoroutinefunction(fn)
        args = tuple(impl.argnames)
        call: Callable[..., Any]
        #: ``def on_x(self, event)`` is called as ``call(event)``: no adapter frame on the hot path.
        self.event_only = args == ("event",)
        if args == ("event", "ctx") or self.event_only:
            call = fn
        elif args == ("ctx",):
            call = lambda e, c: fn(c)  # noqa: E731
        elif args == ("ctx", "event"):
            call = lambda e, c: fn(c, e)  # noqa: E731
        else:
            call = lambda e, c: fn()  # noqa: E731
        self.call: Callable[..., Any] = call


def _compile_observers(
    handlers: tuple[_Handler, ...], failed: Callable[[str, str, Exception], None]
) -> Callable[[Any, Any], None]:
    """One straight-line function calling every observer, each under its plugin's lock.

    Built once per registration change: no loop, no tuple unpacking, no attribute lookups at
    dispatch time. Each handler's failure is isolated exactly as in the general path.
    """
    namespace: dict[str, Any] = {"_failed": failed}
    lines = ["def observe(event, ctx):"]
    for i, h in enumerate(handlers):
        namespace[f"_a{i}"], namespace[f"_r{i}"], namespace[f"_c{i}"] = h.acquire, h.release, h.call
        namespace[f"_p{i}"], namespace[f"_h{i}"] = h.plugin, h.hook
        call = f"_c{i}(event)" if h.event_only else f"_c{i}(event, ctx)"
        lines += [
            f"    _a{i}()",
            "    try:",
            f"        {call}",
            "    except Exception as exc:",
            f"        _failed(_p{i}, _h{i}, exc)",
            "    finally:",
            f"        _r{i}()",
        ]
    if not handlers:
        lines.append("    return None")
    exec(compile("\n".join(lines) + "\n", "<kithooks observers>", "exec"), namespace)
    observe: Callable[[Any, Any], None] = namespace["observe"]
    return observe


class _Plan:
    """Everything one event's dispatch needs, computed at registration time.

    ``observers`` is set for the common case (an observe event, plain handlers, nothing to
    prepare): one compiled function that runs them all (see ``_compile_observers``).
    """

    __slots__ = ("event_type", "handlers", "has_async", "observers", "prepare", "rule")

    def __init__(
        self,
        event_type: EventType,
        handlers: tuple[_Handler, ...],
        prepare: Callable[[Any, Context], Any] | None,
        failed: Callable[[str, str, Exception], None],
    ) -> None:
        self.event_type = event_type
        self.handlers = handlers
        self.rule: Rule | None = RULES.get(event_type)
        self.has_async = any(h.is_async for h in handlers)
        self.prepare = prepare
        fast = self.rule is None and not self.has_async and prepare is None
        self.observers = _compile_observers(handlers, failed) if fast else None


class _CustomHandler:
    __slots__ = ("call", "lock", "plugin")

    def __init__(self, plugin: str, fn: Callable[..., None], lock: PluginLock) -> None:
        self.plugin = plugin
        self.lock = lock.thread
        try:
            params = [
                p
                for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
            ]
        except (TypeError, ValueError):
            params = []
        self.call: Callable[[Any, Context], None] = fn if len(params) >= 2 else (lambda d, c: fn(d))


def _order_group(impl: HookImpl) -> int:
    return 0 if impl.tryfirst else 2 if impl.trylast else 1


class PluginManager(pluggy.PluginManager):
    """A pluggy plugin manager with the kithooks hookspecs and dispatch semantics.

    Args:
        state: the session's :class:`StateStore` (an in-memory one by default), exposed
            as ``pm.state`` and to handlers through ``ctx.get_state`` and friends.
        context: the :class:`Context` handlers get when ``emit`` is called without one.
        fail_closed: a guard handler that raises blocks / cancels, with a reason naming
            the plugin and the error, instead of being skipped.
        aggregate_turns: register a :class:`TurnAggregator` as ``turn-aggregator``.
        on_error: called with a :class:`HandlerError` or :class:`~kithooks.loading.LoadError`
            whenever a plugin fails (after it is logged on logger ``kithooks``).
        on_result: called as ``on_result(plugin, hook, result)`` for every valid result a
            guard or transform handler returns, before it is merged (replay uses it to say
            which plugin did what).
        on_custom_event: called as ``on_custom_event(name, data)`` for every custom event.

    Handlers run in registration order (``tryfirst`` / ``trylast`` move one to the front
    or back). Calling a hook through pluggy (``pm.hook.on_tool_call(event=e, ctx=c)``)
    runs the same dispatch as :meth:`emit` and returns the same answer (so pluggy's
    tracing and call monitoring do not see kithooks hooks; use ``on_error`` and
    ``on_result``). Hookimpl wrappers are refused: the merge rules are the manager's.
    """

    def __init__(
        self,
        *,
        state: StateStore | None = None,
        context: Context | None = None,
        fail_closed: bool = False,
        aggregate_turns: bool = True,
        on_error: Callable[[HandlerError | LoadError], None] | None = None,
        on_result: Callable[[str, str, Result], None] | None = None,
        on_custom_event: Callable[[str, Any], None] | None = None,
    ) -> None:
        super().__init__(PROJECT)
        self.add_hookspecs(KitHookSpecs)
        self.fail_closed = fail_closed
        self.on_error = on_error
        self.on_result = on_result
        self.on_custom_event = on_custom_event
        self.state: StateStore = StateStore() if state is None else state
        #: Plugins that could not be loaded, with why (entry points and files).
        self.load_errors: list[LoadError] = []
        self._registry_lock = threading.RLock()
        self._seq = itertools.count()
        self._order: dict[str, tuple[int, int]] = {}
        self._locks: dict[str, PluginLock] = {}
        self._custom_of: dict[str, list[tuple[str, Callable[..., None]]]] = {}
        self._sources: dict[str, PluginSource] = {}
        self._loader = Loader(self)
        self._pending_order: tuple[int, int] | None = None
        self._plans: dict[EventType, _Plan] = {}
        self._by_class: dict[type, Any] = {}
        self._custom: dict[str, tuple[_CustomHandler, ...]] = {}
        self._aggregator: TurnAggregator | None = None
        self._context = Context()
        self.set_context(Context() if context is None else context)
        if aggregate_turns:
            self.register(TurnAggregator(), name=TurnAggregator.NAME)

    # ------------------------------------------------------------------ context

    @property
    def context(self) -> Context:
        """The context handlers get when ``emit`` is called without one."""
        return self._context

    def set_context(self, ctx: Context) -> None:
        """Make ``ctx`` the default context (bound to this manager's state and events)."""
        if not isinstance(ctx, Context):
            raise TypeError(f"set_context() takes a kithooks.Context, not {type(ctx).__name__}")
        ctx._manager = self
        self._context = ctx

    def _ctx(self, ctx: Context | None) -> Context:
        if ctx is None:
            return self._context
        if ctx._manager is not self:
            if not isinstance(ctx, Context):
                raise TypeError(f"ctx must be a kithooks.Context, not {type(ctx).__name__}")
            ctx._manager = self
        return ctx

    # ------------------------------------------------------------------ registration

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register a plugin (any object or module with ``@kithooks.hookimpl`` functions).

        Raises :class:`pluggy.PluginValidationError` naming the plugin when a hookimpl is
        not a kithooks hook (with the closest hook name), takes an argument its hook does
        not have, or is a wrapper. A plugin that fails to register leaves nothing behind.
        """
        with self._registry_lock:
            label = name or self._unique_name(plugin)
            custom = self._validate(plugin, label)
            try:
                registered = super().register(plugin, label)
            except BaseException:
                if label in self._name2plugin and self._name2plugin[label] is plugin:
                    super().unregister(plugin=plugin, name=label)
                raise
            if registered is None:
                return None
            self._order[registered] = self._pending_order or (next(self._seq), 0)
            self._locks[registered] = PluginLock()
            self._custom_of[registered] = custom
            self._sources.setdefault(registered, PluginSource(kind="object", name=registered))
            self._rebuild()
            return registered

    def _unique_name(self, plugin: object) -> str:
        """A readable default name: a module's name, else the class name (``Gate``, ``Gate-2``)."""
        if isinstance(plugin, type(sys)):
            return self.get_canonical_name(plugin)
        base = getattr(plugin, "__name__", None) or type(plugin).__name__
        name, n = base, 1
        while name in self._name2plugin:
            n += 1
            name = f"{base}-{n}"
        return name

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any | None:
        """Unregister a plugin (by object or name) and all its handlers."""
        with self._registry_lock:
            if name is None and plugin is not None:
                name = self.get_name(plugin)
            removed = super().unregister(plugin=plugin, name=name)
            if name is not None:
                self._order.pop(name, None)
                self._locks.pop(name, None)
                self._sources.pop(name, None)
                self._custom_of.pop(name, None)
            self._rebuild()
            return removed

    def _validate(self, plugin: object, label: str) -> list[tuple[str, Callable[..., None]]]:
        """Refuse what kithooks cannot dispatch; returns the plugin's custom-event handlers."""
        for attr in dir(plugin):
            opts = self.parse_hookimpl_opts(plugin, attr)
            if opts is None:
                continue
            hook = opts.get("specname") or attr
            if hook not in _HOOK_EVENTS:
                close = difflib.get_close_matches(hook, _HOOK_EVENTS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise PluginValidationError(
                    plugin, f"plugin {label!r}: {attr!r} is not a kithooks hook{hint}"
                )
            if opts.get("wrapper") or opts.get("hookwrapper"):
                raise PluginValidationError(
                    plugin,
                    f"plugin {label!r}: {attr!r} is a wrapper; kithooks hooks take plain "
                    "handlers (dispatch semantics are the manager's)",
                )
        custom = self._custom_handlers_of(plugin)
        for attr, fn in custom:
            if inspect.iscoroutinefunction(fn):
                raise PluginValidationError(
                    plugin, f"plugin {label!r}: custom event handler {attr!r} must not be async"
                )
        return custom

    @staticmethod
    def _custom_handlers_of(plugin: object) -> list[tuple[str, Callable[..., None]]]:
        found = []
        for attr in dir(plugin):
            try:
                raw = inspect.getattr_static(plugin, attr)
            except AttributeError:
                continue
            if isinstance(raw, staticmethod | classmethod):
                raw = raw.__func__
            if callable(raw) and isinstance(getattr(raw, _CUSTOM_MARK, None), str):
                found.append((attr, getattr(plugin, attr)))
        return found

    def _rebuild(self) -> None:
        """Recompute every dispatch plan; readers see the old or the new plans, never half."""
        aggregator = self.turn_aggregator
        impls = {et: getattr(self.hook, et.hook_name).get_hookimpls() for et in EventType}
        active = aggregator
        if aggregator is not None and not any(
            i.plugin is not aggregator for i in impls[EventType.AGENT_END]
        ):
            active = None
        plans: dict[EventType, _Plan] = {}
        for et in EventType:
            plan = self._make_plan(et, impls[et], aggregator, active)
            if plan is not None:
                plans[et] = plan
        custom: dict[str, list[tuple[tuple[int, int], _CustomHandler]]] = {}
        for name, found in self._custom_of.items():
            for _attr, fn in found:
                handler = _CustomHandler(name, fn, self._locks[name])
                custom.setdefault(getattr(fn, _CUSTOM_MARK), []).append(
                    (self._order[name], handler)
                )
        self._custom = {
            k: tuple(h for _, h in sorted(v, key=lambda x: x[0])) for k, v in custom.items()
        }
        self._aggregator = active
        self._by_class = {cls: plans.get(et) for et, cls in EVENT_CLASSES.items()}
        self._plans = plans

    def _make_plan(
        self,
        et: EventType,
        impls: Sequence[HookImpl],
        aggregator: TurnAggregator | None,
        active: TurnAggregator | None,
    ) -> _Plan | None:
        chosen = [
            i
            for i in impls
            if active is not None or aggregator is None or i.plugin is not aggregator
        ]
        chosen.sort(
            key=lambda i: (_order_group(i), self._order.get(i.plugin_name, (sys.maxsize, 0)))
        )
        handlers = tuple(
            _Handler(i, et.hook_name, self._locks.get(i.plugin_name) or PluginLock())
            for i in chosen
        )
        prepare = active.enrich if (et is EventType.AGENT_END and active is not None) else None
        if not handlers:
            return None
        return _Plan(et, handlers, prepare, self._handler_failed)

    # ------------------------------------------------------------------ queries

    def has_handlers(self, event_type: EventType | str) -> bool:
        """True when some plugin handles ``event_type`` (constant time)."""
        return event_type in self._plans

    def handler_names(self, event_type: EventType | str) -> list[str]:
        """The plugins handling ``event_type``, in dispatch order."""
        plan = self._plans.get(EventType(event_type))
        return [] if plan is None else [h.plugin for h in plan.handlers]

    def plugin_source(self, name: str) -> PluginSource | None:
        """Where the plugin ``name`` came from (entry point, file or object)."""
        return self._sources.get(name)

    @property
    def turn_aggregator(self) -> TurnAggregator | None:
        """The registered :class:`TurnAggregator`, if any."""
        for plugin in self._name2plugin.values():
            if isinstance(plugin, TurnAggregator):
                return plugin
        return None

    # ------------------------------------------------------------------ dispatch

    def emit(self, event: Event, ctx: Context | None = None) -> Any:
        """Dispatch ``event`` to its handlers and return the merged result (or None).

        Observe events return None; guard and transform events return the merged result of
        their kind (see ``kithooks.dispatch``). A handler that raises is logged and skipped.
        Raises :class:`TypeError` when ``event`` is not a kithooks event, and when a handler
        of this event is a coroutine function (use :meth:`aemit`).
        """
        # One lookup by class (every payload class is a key): no isinstance on the hot path.
        plan = self._by_class.get(type(event), _UNKNOWN)
        if plan is None:
            return None
        if plan is _UNKNOWN:
            if not isinstance(event, Event):
                raise TypeError(f"emit() takes a kithooks event, not {type(event).__name__}")
            plan = self._plans.get(event.event_type)  # a subclass of a payload class
            if plan is None:
                return None
        if ctx is None:
            ctx = self._context
        elif ctx._manager is not self:
            ctx = self._ctx(ctx)
        observers = plan.observers
        if observers is None:
            return self._run(plan, event, ctx)
        # The hot path (message_update, tool_output): observe, plain handlers, compiled.
        observers(event, ctx)
        return None

    def _run(self, plan: _Plan, event: Any, ctx: Context) -> Any:
        if plan.has_async:
            names = ", ".join(repr(h.plugin) for h in plan.handlers if h.is_async)
            raise TypeError(
                f"{plan.event_type.hook_name} has coroutine handlers ({names}); "
                "use 'await pm.aemit(event)'"
            )
        if plan.prepare is not None:
            event = plan.prepare(event, ctx)
        rule = plan.rule
        if rule is None:
            for h in plan.handlers:
                h.acquire()
                try:
                    h.call(event) if h.event_only else h.call(event, ctx)
                except Exception as exc:
                    self._handler_failed(h.plugin, h.hook, exc)
                finally:
                    h.release()
            return None
        merge = rule.begin(event)
        for h in plan.handlers:
            h.acquire()
            try:
                result = h.call(merge.event) if h.event_only else h.call(merge.event, ctx)
            except Exception as exc:
                self._handler_failed(h.plugin, h.hook, exc)
                if self.fail_closed and rule.kind is EventKind.GUARD:
                    return rule.failure(h.plugin, h.hook, exc)
                continue
            finally:
                h.release()
            if result is not None and self._merge(rule, merge, h, result):
                return result
        return merge.result()

    def _merge(self, rule: Rule, merge: Merge, h: _Handler, result: object) -> bool:
        """Check one handler's result and merge it; True means it stops dispatch."""
        if not isinstance(result, rule.result_type):
            self._wrong_result(h.plugin, h.hook, result, rule.result_type)
            return False
        if self.on_result is not None:
            self.on_result(h.plugin, h.hook, result)
        return merge.add(result)

    async def aemit(self, event: Event, ctx: Context | None = None) -> Any:
        """Like :meth:`emit`, awaiting coroutine handlers; plain handlers are called.

        Handlers of one plugin are serialized across tasks (a per-plugin lock re-entrant
        within a task) and, for plain handlers, across threads too.
        """
        if not isinstance(event, Event):
            raise TypeError(f"aemit() takes a kithooks event, not {type(event).__name__}")
        plan = self._plans.get(event.event_type)
        if plan is None:
            return None
        ctx = self._ctx(ctx)
        if plan.prepare is not None:
            event = plan.prepare(event, ctx)
        rule = plan.rule
        merge = None if rule is None else rule.begin(event)
        for h in plan.handlers:
            current = event if merge is None else merge.event
            await h.task_lock.acquire()
            try:
                if h.is_async:
                    pending = h.call(current) if h.event_only else h.call(current, ctx)
                    result = await cast("Awaitable[Any]", pending)
                else:
                    with h.thread_lock:
                        result = h.call(current) if h.event_only else h.call(current, ctx)
            except Exception as exc:
                self._handler_failed(h.plugin, h.hook, exc)
                if rule is not None and self.fail_closed and rule.kind is EventKind.GUARD:
                    return rule.failure(h.plugin, h.hook, exc)
                continue
            finally:
                h.task_lock.release()
            if merge is not None and result is not None:
                assert rule is not None
                if self._merge(rule, merge, h, result):
                    return result
        return None if merge is None else merge.result()

    def _hookexec(
        self,
        hook_name: str,
        methods: Sequence[HookImpl],
        kwargs: Any,
        firstresult: bool,
    ) -> object | list[object]:
        """pluggy's call path: kithooks hooks get the same dispatch as :meth:`emit`."""
        et = _HOOK_EVENTS.get(hook_name)
        if et is None:
            return super()._hookexec(hook_name, methods, kwargs, firstresult)
        event = kwargs.get("event")
        if not isinstance(event, EVENT_CLASSES[et]):
            raise TypeError(
                f"{hook_name} takes event={EVENT_CLASSES[et].__name__}, not {type(event).__name__}"
            )
        plan = self._make_plan(et, methods, self.turn_aggregator, self._aggregator)
        if plan is None:
            return None
        result: object = self._run(plan, event, self._ctx(kwargs.get("ctx")))
        return result

    def _report(self, error: HandlerError | LoadError) -> None:
        if self.on_error is None:
            return
        try:
            self.on_error(error)
        except Exception:
            logger.exception("kithooks: the on_error callback itself raised")

    def _handler_failed(self, plugin: str, hook: str, exc: Exception) -> None:
        logger.error("plugin %r raised in %s; skipped", plugin, hook, exc_info=exc)
        self._report(HandlerError(plugin=plugin, hook=hook, error=exc))

    def _wrong_result(self, plugin: str, hook: str, result: object, expected: type[Result]) -> None:
        exc = TypeError(
            f"returned {type(result).__name__}; {hook} takes {expected.__name__} or None"
        )
        logger.error("plugin %r %s; ignored", plugin, exc)
        self._report(HandlerError(plugin=plugin, hook=hook, error=exc))

    # ------------------------------------------------------------------ custom events

    def emit_custom_event(self, name: str, data: Any = "", ctx: Context | None = None) -> None:
        """Call every plugin subscribed to ``name`` with ``data``, in registration order."""
        if self.on_custom_event is not None:
            self.on_custom_event(name, data)
        handlers = self._custom.get(name)
        if not handlers:
            return
        context = self._ctx(ctx)
        for h in handlers:
            with h.lock:
                try:
                    h.call(data, context)
                except Exception as exc:
                    self._handler_failed(h.plugin, f"custom event {name!r}", exc)

    def has_custom_subscribers(self, name: str) -> bool:
        """True when some plugin subscribed to the custom event ``name``."""
        return name in self._custom

    # ------------------------------------------------------------------ loading

    def _load_failed(self, error: LoadError) -> None:
        self.load_errors.append(error)
        logger.error("%s", error.message, exc_info=error.error)
        self._report(error)

    def load_entrypoints(self, group: str = PROJECT) -> list[str]:
        """Register every plugin of the entry-point ``group``; returns the names registered.

        The entry point's object is registered as it is (a module or an instance), a class is
        built with no arguments. One whose import raises (or calls ``sys.exit()``), that
        cannot be built, or that has no hooks is logged, reported, recorded in
        :attr:`load_errors` (naming the distribution) and left out; the others load. Names
        in ``$KITHOOKS_BLOCK_PLUGINS`` are skipped, and ``$KITHOOKS_DISABLE_ENTRYPOINTS=1``
        loads nothing. See ``docs/plugins.md``.
        """
        with self._registry_lock:
            return self._loader.load_entrypoints(group)

    def load_plugin_files(
        self,
        paths: Iterable[str | os.PathLike[str]] = (),
        *,
        user_dir: str | os.PathLike[str] | None = _DEFAULT,
        project_dir: str | os.PathLike[str] | None = _DEFAULT,
    ) -> list[str]:
        """Load plugin files and directory plugins, in the original's order; returns the names.

        Order: the user directory (``$XDG_CONFIG_HOME/kithooks/plugins``), the project
        directory (``.kithooks/plugins``), then ``paths`` (a ``.py`` file, a directory plugin
        or a directory of plugins; a path that is none of these is a load error). Pass
        ``None`` to skip a directory. A file or directory reached twice loads once. A file's
        module-level hooks are one plugin named after its stem (its full path when the stem
        is taken); each class defined in it with marked methods is built with no arguments
        and registered as ``<stem>:<ClassName>``. Anything that fails, or would be a plugin
        with no hooks, is logged, reported and left out. :meth:`reload` re-reads the same
        sources. See ``docs/plugins.md``.
        """
        dirs: list[Path] = []
        if user_dir is not None:
            dirs.append(default_user_dir() if user_dir is _DEFAULT else Path(user_dir))
        if project_dir is not None:
            dirs.append(default_project_dir() if project_dir is _DEFAULT else Path(project_dir))
        explicit = [Path(p).expanduser().absolute() for p in paths]
        with self._registry_lock:
            return self._loader.load_files([d.expanduser().absolute() for d in dirs], explicit)

    def reload(self) -> list[str]:
        """Reload the file plugins from disk; returns the file plugins now loaded.

        Emits ``session_shutdown`` to the old set, unregisters every file plugin, loads the
        same sources again (new, changed and removed files included), and emits
        ``session_start`` (with the context's ``session_id``) to the new set. Entry-point
        and object plugins, the context and the state are kept; dispatch order stays that
        of registration, each file batch keeping its place.
        """
        self.emit(SessionShutdownEvent())
        with self._registry_lock:
            names = self._loader.reload()
        self.emit(SessionStartEvent(session_id=self._context.session_id))
        return names
