"""The :class:`PluginManager`: a pluggy plugin manager with kithooks' dispatch.

A thin facade over the house's rooms: plans (:mod:`kithooks.plans`), the handler loops
(:mod:`kithooks.callers`), the custom-event bus (:mod:`kithooks.bus`), listeners
(:mod:`kithooks.listeners`), plugin locks (:mod:`kithooks.locks`) and loading
(:mod:`kithooks.loading`). It owns the registry and keeps one cached plan per hook,
rebuilt only for the hooks a registration touches.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import os
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import pluggy
from pluggy import HookCaller, HookImpl, PluginValidationError

from . import logs
from .aggregator import TurnAggregator, counts_only
from .bus import CustomEventBus, custom_event, custom_handlers_of
from .callers import Callers
from .context import Context, HandlerContext, handler_view
from .events import EVENT_CLASSES, Event, EventType, Result, SessionShutdownEvent, SessionStartEvent
from .hookspecs import (
    KIT_HOOKS,
    POLICY_ATTR,
    PROJECT,
    HandlerPolicy,
    KitHookSpecs,
    OutcomeSpecs,
    static_function,
)
from .listeners import HandlerError, Listeners
from .loading import Loader, LoadError, PluginSource, default_project_dir, default_user_dir
from .locks import PluginLock
from .plans import OUTCOME_HOOK, Plan, Prepare, build_plan
from .state import StateStore

__all__ = [
    "HandlerError",
    "NotRegisteredError",
    "PluginManager",
    "custom_event",
    "event_type_named",
]

logger = logs.get("kithooks")

_HOOK_EVENTS: Final[dict[str, EventType]] = {et.hook_name: et for et in EventType}
#: An event's hook by the event's name (an EventType, a str enum, finds its entry too).
_HOOK_OF: Final[dict[str, str]] = {et.value: et.hook_name for et in EventType}
_HOOK_CLASSES: Final[dict[str, type[Event]]] = {et.hook_name: EVENT_CLASSES[et] for et in EventType}
_TOOL_HOOKS: Final[frozenset[str]] = frozenset(
    et.hook_name for et, cls in EVENT_CLASSES.items() if "tool_name" in cls.__slots__
)
_DEFAULT: Any = object()
# emit() meets something that is not a payload class, or an event whose handlers changed
# since its plan was built: either way the slow path finds (or builds) the plan.
_UNKNOWN: Any = object()


def _key(name: str) -> str:
    """``name`` without case, underscores or the ``on`` prefix: ``onToolCall`` -> ``toolcall``."""
    return name.lower().replace("_", "").removeprefix("on")


def _near_hook(name: str, known: Iterable[str]) -> str | None:
    """The hook among ``known`` that ``name`` was probably meant to be, or None.

    Compared without case, underscores and the ``on`` prefix (``onToolCall``, ``OnToolCall``,
    ``toolcall`` and ``tool_call`` all mean ``on_tool_call``); Claude Code's hook names
    (``PreToolUse``, ``pre_tool_use``) mean their kithooks counterpart; a name ending in a
    hook's name (``before_tool_call``, ``handle_tool_call``) means that hook; otherwise the
    closest name (difflib), if one is close enough.
    """
    import difflib  # here: only a name that matches no hook needs these

    from .command_hooks.settings import CLAUDE_EVENTS

    by_key = {_key(hook): hook for hook in known}
    for claude, et in CLAUDE_EVENTS.items():
        by_key.setdefault(_key(claude), et.hook_name)
    key = _key(name)
    if key in by_key:
        return by_key[key]
    suffixes = [k for k in by_key if k and key.endswith(k)]
    if suffixes:
        return by_key[max(suffixes, key=len)]
    close = difflib.get_close_matches(key, by_key, n=1)
    return by_key[close[0]] if close else None


def event_type_named(name: EventType | str, where: str = "event type") -> EventType:
    """``name`` as an :class:`EventType`; an unknown name is a ValueError with a did-you-mean."""
    if isinstance(name, EventType):
        return name
    try:
        return EventType(name)
    except ValueError:
        import difflib  # here: only an unknown name needs it

        close = difflib.get_close_matches(str(name), [e.value for e in EventType], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown {where} {name!r}{hint}") from None


class NotRegisteredError(ValueError, AssertionError):
    """``unregister`` of a plugin that is not registered.

    A ``ValueError`` naming the plugin; also an ``AssertionError``, which is what pluggy's
    own ``unregister`` raises there, so code written for pluggy keeps working.
    """


class _KitHookCaller(HookCaller):
    """``pm.hook.on_<event>(event=..., ctx=...)`` straight into :meth:`PluginManager.emit`.

    pluggy's own ``__call__`` checks and copies its arguments and handler list before it
    reaches ``_hookexec``; kithooks hooks take ``event`` and an optional ``ctx``, so the
    call goes to ``emit`` (same plan, same answer) without that detour.
    """

    __slots__ = ()

    def __call__(self, **kwargs: object) -> Any:
        """Call the hook: the same dispatch and result as ``pm.emit(event, ctx)``."""
        pm: PluginManager = self._hookexec.__self__  # type: ignore[attr-defined]
        event = kwargs.get("event")
        if type(event) is not _HOOK_CLASSES.get(self.name):
            event = pm._checked_event(self.name, kwargs)  # a subclass, or a TypeError
        return pm.emit(event, kwargs.get("ctx"))  # type: ignore[arg-type]


class PluginManager(pluggy.PluginManager):
    """A pluggy plugin manager with the kithooks hookspecs and dispatch semantics.

    Args:
        state: the session's :class:`StateStore` (an in-memory one by default), exposed
            as ``pm.state`` and to handlers through ``ctx.get_state`` and friends.
        context: the :class:`Context` handlers get when ``emit`` is called without one.
        fail_closed: a guard handler that raises (or times out) blocks / cancels, with a
            reason naming the plugin and the error, instead of being skipped.
        aggregate_turns: register a :class:`TurnAggregator` as ``turn-aggregator``. It
            handles ``agent_start``, ``tool_call``, ``llm_usage`` and ``agent_end`` whether
            or not another plugin listens (so ``has_handlers`` is true for them); False
            leaves a manager with no plugins handling nothing.
        handler_timeout: the deadline, in seconds, of every coroutine handler that sets
            none itself (``@kithooks.hookimpl(timeout=...)``); None waits forever.
        on_error, on_result, on_custom_event: a first listener (see :meth:`add_listener`).

    Handlers run in registration order (``tryfirst`` / ``trylast`` move one to the front
    or back). Calling a hook through pluggy (``pm.hook.on_tool_call(event=e, ctx=c)``)
    runs the same dispatch as :meth:`emit` and returns the same answer (so pluggy's
    tracing and call monitoring do not see kithooks hooks; use listeners). Wrappers are
    refused on kithooks hooks (the merge rules are the manager's; ``on_outcome`` sees
    what a dispatch decided); hooks a host adds with :meth:`add_hookspecs` behave as in
    pluggy, except that a marked function no spec knows is refused when its plugin
    registers (see :meth:`register`) instead of waiting for ``check_pending()``.
    """

    def __init__(
        self,
        *,
        state: StateStore | None = None,
        context: Context | None = None,
        fail_closed: bool = False,
        aggregate_turns: bool = True,
        handler_timeout: float | None = None,
        on_error: Callable[[HandlerError | LoadError], None] | None = None,
        on_result: Callable[[str, str, Result], None] | None = None,
        on_custom_event: Callable[[str, Any], None] | None = None,
    ) -> None:
        super().__init__(PROJECT)
        self.add_hookspecs(KitHookSpecs)
        self.add_hookspecs(OutcomeSpecs)
        for hook in _HOOK_EVENTS:
            getattr(self.hook, hook).__class__ = _KitHookCaller
        if handler_timeout is not None and not (
            isinstance(handler_timeout, int | float) and handler_timeout > 0
        ):
            raise ValueError(
                f"handler_timeout must be a positive number of seconds, not {handler_timeout!r}"
            )
        self.handler_timeout = handler_timeout
        self.listeners = Listeners()
        self._first_error = on_error
        self._first_result = on_result
        self._first_custom = on_custom_event
        self._remove_first = self.listeners.add(on_error, on_result, on_custom_event)
        self._hooked: set[str] = set()  # the kithooks hooks that have handlers now
        #: Whether some plugin handles each event now, by the event's name (an EventType is
        #: equal to its name): has_handlers' answer in one lookup.
        self._handled: dict[str, bool] = dict.fromkeys(_HOOK_OF, False)
        #: Whether some plugin handles each event now, by the event's name: a live read-only
        #: view, ``pm.handled[EventType.STEP_START]`` is ``pm.has_handlers("step_start")``
        #: without the method call, for hosts that ask about many events per model or tool
        #: call (the adapters). A ``KeyError`` for what is not an event's name.
        self.handled: Mapping[str, bool] = types.MappingProxyType(self._handled)
        self._callers = Callers(self.listeners, fail_closed, self._outcome_plan, self._hooked)
        self.state: StateStore = StateStore() if state is None else state
        #: Plugins that could not be loaded, with why (entry points and files).
        self.load_errors: list[LoadError] = []
        self._registry_lock = threading.RLock()
        self._seq = itertools.count()
        self._order: dict[str, tuple[int, int]] = {}
        self._lock_of_name: dict[str, PluginLock] = {}
        # A plugin object keeps its lock across unregister / register, so a handler still
        # running under the old registration and one under the new never overlap.
        self._locks_by_object: weakref.WeakKeyDictionary[Any, PluginLock] = (
            weakref.WeakKeyDictionary()
        )
        self._locks_by_id: dict[int, tuple[object, PluginLock]] = {}
        self._bus = CustomEventBus()
        #: Inside :meth:`_swap`: the hooks whose plans wait for its end, and the custom-event
        #: subscriptions that change then (a plugin's handlers, lock and order; None: gone).
        self._deferred: set[str] | None = None
        self._deferred_bus: dict[str, tuple[list[Any], PluginLock, tuple[int, int]] | None] = {}
        self._sources: dict[str, PluginSource] = {}
        self._loader = Loader(self)
        self._pending_order: tuple[int, int] | None = None
        self._plans: dict[str, Plan] = {}
        #: The hooks that must stay unheard because a host installed none for them, and why
        #: (the first host to ask, per set of hooks: see :meth:`keep_unheard`).
        self._unheard: dict[frozenset[str], str] = {}
        self._by_class: dict[type, Plan | None] = dict.fromkeys(EVENT_CLASSES.values())
        self._aggregator: TurnAggregator | None = None  # the registered aggregator
        self._context = Context()
        self._view: Context = handler_view(self._context, self)
        self.set_context(Context() if context is None else context)
        if aggregate_turns:
            self.register(TurnAggregator(), name=TurnAggregator.NAME)

    # ------------------------------------------------------------------ listeners

    @property
    def fail_closed(self) -> bool:
        """Whether a failing guard handler blocks / cancels (see the class docstring)."""
        return self._callers.fail_closed

    @fail_closed.setter
    def fail_closed(self, value: bool) -> None:
        self._callers.fail_closed = bool(value)

    def add_listener(
        self,
        *,
        on_error: Callable[[HandlerError | LoadError], None] | None = None,
        on_result: Callable[[str, str, Result], None] | None = None,
        on_custom_event: Callable[[str, Any], None] | None = None,
    ) -> Callable[[], None]:
        """Hear plugin failures, handler results and custom events; returns a detach function.

        ``on_error(error)`` gets every :class:`HandlerError` and
        :class:`~kithooks.loading.LoadError` (after it is logged on logger ``kithooks``);
        ``on_result(plugin, hook, result)`` every valid result a guard or transform handler
        returns, once it is taken and before the next handler runs (a result that cannot be
        merged is reported to ``on_error`` instead); ``on_custom_event(name, data)`` every
        custom event.
        Any number of listeners may listen at once.
        """
        return self.listeners.add(on_error, on_result, on_custom_event)

    def _reset_first(self) -> None:
        self._remove_first()
        self._remove_first = self.listeners.add(
            self._first_error, self._first_result, self._first_custom
        )

    @property
    def on_error(self) -> Callable[[HandlerError | LoadError], None] | None:
        """The ``on_error`` listener given to the constructor (assigning replaces it)."""
        return self._first_error

    @on_error.setter
    def on_error(self, value: Callable[[HandlerError | LoadError], None] | None) -> None:
        self._first_error = value
        self._reset_first()

    @property
    def on_result(self) -> Callable[[str, str, Result], None] | None:
        """The ``on_result`` listener given to the constructor (assigning replaces it)."""
        return self._first_result

    @on_result.setter
    def on_result(self, value: Callable[[str, str, Result], None] | None) -> None:
        self._first_result = value
        self._reset_first()

    @property
    def on_custom_event(self) -> Callable[[str, Any], None] | None:
        """The ``on_custom_event`` listener given to the constructor (assigning replaces it)."""
        return self._first_custom

    @on_custom_event.setter
    def on_custom_event(self, value: Callable[[str, Any], None] | None) -> None:
        self._first_custom = value
        self._reset_first()

    # ------------------------------------------------------------------ context

    @property
    def context(self) -> Context:
        """The context handlers get when ``emit`` is called without one."""
        return self._context

    def set_context(self, ctx: Context) -> None:
        """Make ``ctx`` the default context handlers get (through a read-only view)."""
        if not isinstance(ctx, Context) or isinstance(ctx, HandlerContext):
            raise TypeError(
                f"set_context() takes a host's kithooks.Context, not {type(ctx).__name__}"
            )
        self._context = ctx
        self._view = handler_view(ctx, self)

    def _view_for(self, ctx: object) -> Context:
        """The view of ``ctx`` (None: the default context) this manager's handlers get."""
        if ctx is None:
            return self._view
        view = getattr(ctx, "_view", None)
        if view is not None and view._manager is self:
            return view  # type: ignore[no-any-return]
        if not isinstance(ctx, Context):
            raise TypeError(f"ctx must be a kithooks.Context or None, not {type(ctx).__name__}")
        return handler_view(ctx, self)

    # ------------------------------------------------------------------ registration

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register a plugin (any object or module with ``@kithooks.hookimpl`` functions).

        Raises :class:`ValueError` when the object or the name is already registered (the
        first registration stays whole), and :class:`pluggy.PluginValidationError` naming
        the plugin and the function when a marked function matches no hook (neither a
        kithooks hook nor one the host added with :meth:`add_hookspecs` before; the error
        suggests the closest hook name; ``@kithooks.hookimpl(optionalhook=True)`` lets it
        wait for its spec, as in pluggy), a function named like a kithooks hook is not
        marked ``@kithooks.hookimpl``, a handler takes an argument its hook does not have,
        ``tools=`` is set on a hook without a tool, ``timeout=`` on a plain function, or a
        kithooks hook has a wrapper, and ``ValueError`` when it handles an event a host
        installed no hook for (:meth:`keep_unheard`). A plugin that fails to register leaves
        nothing behind.
        """
        with self._registry_lock:
            if self.is_registered(plugin):
                raise ValueError(
                    f"plugin {self.get_name(plugin)!r} is already registered; unregister it first"
                )
            label = name or self._unique_name(plugin)
            if self._name2plugin.get(label) is not None:
                raise ValueError(f"a plugin named {label!r} is already registered")
            handlers = self._validate(plugin, label)
            hooks = [hook for hook, _ in handlers]
            custom = custom_handlers_of(plugin)
            for attr, _event, fn in custom:
                if inspect.iscoroutinefunction(fn):
                    raise PluginValidationError(
                        plugin, f"plugin {label!r}: custom event handler {attr!r} must not be async"
                    )
            if self._unheard and not self.is_blocked(label):
                self._refuse_unheard(plugin, label, handlers)
            try:
                registered = super().register(plugin, label)
            except BaseException:
                if self._name2plugin.get(label) is plugin:
                    super().unregister(plugin=plugin, name=label)
                raise
            if registered is None:  # blocked by name
                return None
            self._pass_defaulted(plugin)
            self._order[registered] = self._pending_order or (next(self._seq), 0)
            lock = self._lock_for(plugin, registered)
            self._subscribe(registered, (custom, lock, self._order[registered]))
            self._sources.setdefault(registered, PluginSource(kind="object", name=registered))
            self._rebuild(hooks)
            return registered

    def keep_unheard(self, event_types: Iterable[EventType | str], why: str) -> bool:
        """Whether a host may leave ``event_types`` unhooked, for good.

        For a host that hooks into a framework once, when it is built (a LangChain agent's
        middleware), and would cost its framework something even with no plugin: when no
        plugin but a :class:`TurnAggregator` handles any of ``event_types`` (see
        :meth:`plugins_handle`), this returns True, and from then on, for the manager's whole
        life, :meth:`register` refuses a plugin that handles one of them (a ``ValueError``
        naming the plugin, the event and ``why``), so a guard never sits registered where
        the host would not ask it. (For its whole life: the manager cannot tell when the
        host's agent is gone, and a framework holds no reference to a hook it never calls.)
        Otherwise it returns False and the host hooks in as usual. The check and the
        promise are one step under the registry lock.
        """
        types = tuple(event_type_named(e) for e in event_types)
        hooks = frozenset("on_" + e for e in types)
        with self._registry_lock:
            # Inside a swap (a reload) the handler table is not current yet: hook in.
            if self._deferred is not None or self.plugins_handle(types):
                return False
            self._unheard.setdefault(hooks, why)
            return True

    def _refuse_unheard(
        self, plugin: object, label: str, handlers: Sequence[tuple[str, Any]]
    ) -> None:
        """Refuse plugin ``label`` when one of its ``handlers`` must stay unheard (see
        :meth:`keep_unheard`): any but a plain aggregator's own, and kithooks' internal
        observers that no agent asks (replay's probe, marked ``_kithooks_internal``)."""
        if getattr(type(plugin), "_kithooks_internal", False):
            return
        for held, why in self._unheard.items():
            for hook, function in handlers:
                if hook in held and not counts_only(plugin, function):
                    raise ValueError(
                        f"plugin {label!r} handles {hook.removeprefix('on_')!r}, but {why}"
                    )

    def _lock_for(self, plugin: object, name: str) -> PluginLock:
        try:
            lock = self._locks_by_object.get(plugin)
            if lock is None:
                lock = self._locks_by_object[plugin] = PluginLock(name)
        except TypeError:  # not weak-referenceable: keep it by id, with the object alive
            kept = self._locks_by_id.get(id(plugin))
            if kept is None or kept[0] is not plugin:
                kept = self._locks_by_id[id(plugin)] = (plugin, PluginLock(name))
            lock = kept[1]
        lock.name = name
        self._lock_of_name[name] = lock
        return lock

    def _unique_name(self, plugin: object) -> str:
        """A readable default name: a module's name, else the class name (``Gate``, ``Gate-2``).

        A subclass that overrides :meth:`get_canonical_name` decides instead.
        """
        if type(self).get_canonical_name is not pluggy.PluginManager.get_canonical_name:
            return self.get_canonical_name(plugin)
        if isinstance(plugin, type(sys)):
            return self.get_canonical_name(plugin)
        base = getattr(plugin, "__name__", None) or type(plugin).__name__
        name, n = base, 1
        while name in self._name2plugin:
            n += 1
            name = f"{base}-{n}"
        return name

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any | None:
        """Unregister a plugin (by object or name) and all its handlers.

        Raises :class:`NotRegisteredError` (a ``ValueError``) naming the plugin when it is
        not registered, and ``ValueError`` when ``plugin`` and ``name`` disagree.
        """
        with self._registry_lock:
            if name is None:
                if plugin is None:
                    raise NotRegisteredError("unregister() needs a plugin or a name")
                name = self.get_name(plugin)
                if name is None:
                    raise NotRegisteredError(f"{plugin!r} is not registered")
            elif name not in self._name2plugin:
                if plugin is not None and self.get_name(plugin) is not None:
                    return super().unregister(plugin=plugin, name=name)  # pluggy: "do not agree"
                raise NotRegisteredError(f"no plugin named {name!r} is registered")
            obj = self._name2plugin[name]
            if obj is None:  # a blocked name: nothing registered under it
                return super().unregister(name=name)
            hooks = [caller.name for caller in self.get_hookcallers(obj) or []]
            removed = super().unregister(plugin=plugin, name=name)
            self._order.pop(name, None)
            self._lock_of_name.pop(name, None)
            self._sources.pop(name, None)
            self._subscribe(name, None)
            self._rebuild(hooks)
            return removed

    def _replace(self, name: str, plugin: object) -> object:
        """Put ``plugin`` in the place of the plugin registered as ``name``; returns that one.

        The new plugin takes the old one's name and its place in the registration order, so
        its handlers run where the old one's ran (replay swaps in a turn aggregator on the
        recording's clock this way: registered first, it still counts the calls a
        ``tryfirst`` guard blocks). Dispatch on another thread sees the old plugin or the
        new one, never neither. Raises :class:`NotRegisteredError` when no plugin is
        registered as ``name``; a new plugin that fails to register leaves the old in place.
        """
        with self._registry_lock:
            old = self._name2plugin.get(name)
            if old is None:
                raise NotRegisteredError(f"no plugin named {name!r} is registered")
            order, pending = self._order[name], self._pending_order
            with self._swap():
                self.unregister(name=name)
                self._pending_order = order
                try:
                    self.register(plugin, name=name)
                except BaseException:
                    self._pending_order = order
                    self.register(old, name=name)
                    raise
                finally:
                    self._pending_order = pending
            return old

    def _subscribe(
        self, name: str, subscription: tuple[list[Any], PluginLock, tuple[int, int]] | None
    ) -> None:
        """Subscribe plugin ``name``'s custom-event handlers (None or none: unsubscribe it)."""
        if subscription is not None and not subscription[0]:
            subscription = None
        if self._deferred is not None:
            self._deferred_bus[name] = subscription
        elif subscription is None:
            self._bus.unsubscribe(name)
        else:
            self._bus.subscribe(name, *subscription)

    @contextlib.contextmanager
    def _swap(self) -> Iterator[None]:
        """Registry changes that dispatch sees all at once, when the block ends.

        Inside, ``register`` and ``unregister`` change pluggy's registry but not what
        dispatch reads: an ``emit`` meanwhile runs the plans built before (or, for a plan
        not built yet, waits for the registry lock and builds it from the registry as it is
        after), and custom events reach the subscribers of before. At the end, under the
        registry lock, the plans of every hook touched are marked stale and the custom-event
        subscriptions change, a plugin replaced under its own name in one step. So a guard
        present before and after is never missing from a dispatch in between.
        """
        with self._registry_lock:
            if self._deferred is not None:  # nested: the outermost block publishes
                yield
                return
            self._deferred = set()
            try:
                yield
            finally:
                hooks, self._deferred = self._deferred, None
                bus, self._deferred_bus = self._deferred_bus, {}
                # new subscriptions first (each replaces its name's old one), then removals
                for name, subscription in sorted(bus.items(), key=lambda kv: kv[1] is None):
                    self._subscribe(name, subscription)
                self._rebuild(hooks)

    def set_blocked(self, name: str) -> None:
        """Block registrations under ``name`` (unregistering the plugin there, if any)."""
        with self._registry_lock:
            if self._name2plugin.get(name) is not None:
                self.unregister(name=name)
            self._name2plugin[name] = None  # pluggy's mark of a blocked name

    def add_hookspecs(self, module_or_class: Any) -> None:
        """Add hook specifications, as in pluggy (a host may add its own hooks).

        Add them before registering the plugins that implement them: a marked function no
        spec knows is refused (unless it is marked ``optionalhook=True``).
        """
        super().add_hookspecs(module_or_class)
        if getattr(self, "_plans", None) is not None:
            # Pending hookimpls of the new specs are now verified and callable through pm.hook.
            self._rebuild([h for h in vars(self.hook) if not h.startswith("_")])

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        """pluggy's hookimpl discovery, skipping dunder names (no hook is called ``__x__``).

        Looking at the 25-odd dunders of every plugin object was most of what registering
        cost.
        """
        if name.startswith("__"):
            return None
        return super().parse_hookimpl_opts(plugin, name)

    def _validate(self, plugin: object, label: str) -> list[tuple[str, Any]]:
        """Refuse what kithooks cannot dispatch; returns the kithooks hooks of ``plugin``, each
        with its handler."""
        hooks: list[tuple[str, Any]] = []
        for attr in dir(plugin):
            opts = self.parse_hookimpl_opts(plugin, attr)
            if opts is None:
                self._refuse_uncallable(plugin, label, attr)
                if attr in KIT_HOOKS:
                    self._refuse_unmarked(plugin, label, attr)
                continue
            hook = opts.get("specname") or attr
            if hook not in KIT_HOOKS:
                caller: HookCaller | None = getattr(self.hook, hook, None)
                if (caller is None or not caller.has_spec()) and not opts.get("optionalhook"):
                    self._refuse_unknown(plugin, label, attr, hook)
                continue  # a host's own hook, or an optional one pluggy keeps pending
            if opts.get("wrapper") or opts.get("hookwrapper"):
                raise PluginValidationError(
                    plugin,
                    f"plugin {label!r}: {attr!r} is a wrapper; kithooks hooks take plain "
                    "handlers (on_outcome sees what a dispatch decided)",
                )
            fn = getattr(plugin, attr)
            self._check_arguments(plugin, label, attr, hook, fn)
            self._check_policy(plugin, label, attr, hook, fn, inspect.iscoroutinefunction(fn))
            hooks.append((hook, fn))
        return hooks

    def _check_arguments(self, plugin: object, label: str, attr: str, hook: str, fn: Any) -> None:
        """A handler takes some of its hook's arguments, by name, as ordinary parameters,
        before any parameter of its own (pluggy's rule, said plainly: its own message prints
        the signature with a literal newline). A hook argument given a default is passed
        all the same (:meth:`_pass_defaulted`). Refused: a hook argument after a parameter
        of the handler's own (it would get the wrong value), a keyword-only hook argument
        or a keyword-only parameter without a default (handlers are called by position, so
        it would never get one: a guard that checks ``ctx`` would never block, or every call
        would fail), and a parameter its hook does not pass."""
        spec = getattr(self.hook, hook).spec
        try:
            parameters = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            return  # no signature to read: pluggy's own check decides
        given = ", ".join(spec.argnames)
        keyword_only = [
            p.name
            for p in parameters
            if p.kind is p.KEYWORD_ONLY and (p.name in spec.argnames or p.default is p.empty)
        ]
        if keyword_only:
            raise PluginValidationError(
                plugin,
                f"plugin {label!r}: {attr!r} takes {', '.join(map(repr, keyword_only))} as "
                f"keyword-only, but a handler's arguments ({given}) are picked by name and "
                "passed by position, so a keyword-only parameter never gets one (every call "
                "would fail, or its default stand in); make them ordinary parameters (no * "
                "before them)",
            )
        named = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if not named and any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
            raise PluginValidationError(
                plugin,
                f"plugin {label!r}: {attr!r} takes only *args / **kwargs, but hooks pass their "
                f"arguments by name ({given}), so it would get none (a "
                "decorator without functools.wraps hides them); name the arguments it needs",
            )
        required = [p.name for p in named if p.default is p.empty]
        unknown = [name for name in required if name not in spec.argnames]
        if unknown:
            raise PluginValidationError(
                plugin,
                f"plugin {label!r}: {attr!r} takes {', '.join(map(repr, unknown))}, which "
                f"{hook} does not pass; a handler takes any of ({given}), by those names",
            )
        names = [p.name for p in named]
        hook_args = [name for name in names if name in spec.argnames]
        if names[: len(hook_args)] != hook_args:
            own = next(name for name in names if name not in spec.argnames)
            late = [name for name in hook_args if names.index(name) > names.index(own)]
            raise PluginValidationError(
                plugin,
                f"plugin {label!r}: {attr!r} takes {', '.join(map(repr, late))} after its own "
                f"parameter {own!r}; handlers are called by position, so it would get the "
                f"wrong value: put the hook's arguments ({given}) first",
            )

    def _pass_defaulted(self, plugin: object) -> None:
        """Pass a registered plugin's kithooks handlers the hook arguments they give a
        default (``def on_tool_call(self, event, ctx=None)``), which pluggy leaves out: a
        guard that checks ``ctx`` must get it (:meth:`_check_arguments` put them first)."""
        for caller in self.get_hookcallers(plugin) or ():
            spec = caller.spec
            if caller.name not in KIT_HOOKS or spec is None:
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and impl.kwargnames:
                    extra = tuple(name for name in impl.kwargnames if name in spec.argnames)
                    if extra:
                        impl.argnames = (*impl.argnames, *extra)  # type: ignore[misc]

    @staticmethod
    def _check_policy(  # noqa: PLR0917
        plugin: object, label: str, attr: str, hook: str, fn: Any, coroutine: bool
    ) -> None:
        """``tools=`` only on tool hooks; ``timeout=`` only on coroutine handlers."""
        policy: HandlerPolicy | None = getattr(fn, POLICY_ATTR, None)
        if policy is None:
            return
        if policy.tools is not None and hook not in _TOOL_HOOKS:
            raise PluginValidationError(
                plugin,
                f"plugin {label!r}: {attr!r} sets tools=, but {hook} has no tool name "
                "to match (tools= works on tool events only)",
            )
        if policy.timeout is not None and not coroutine:
            raise PluginValidationError(
                plugin,
                f"plugin {label!r}: {attr!r} sets timeout=, but it is a plain function; "
                "a running Python function cannot be stopped safely. Make it "
                "'async def' (and emit with aemit), or bound its work inside",
            )

    def _refuse_unknown(self, plugin: object, label: str, attr: str, hook: str) -> None:
        """Refuse ``attr``, marked as an implementation of ``hook``, which no spec knows.

        pluggy would keep it pending until ``check_pending()``, which few hosts call: a
        misspelt guard would look exactly like a guard that allowed every call.
        """
        specs = [h for h, c in vars(self.hook).items() if not h.startswith("_") and c.has_spec()]
        close = _near_hook(hook, specs)
        what = repr(attr) if hook == attr else f"{attr!r} (specname {hook!r})"
        hint = f"; did you mean {close!r}?" if close else ""
        raise PluginValidationError(
            plugin,
            f"plugin {label!r}: {what} is marked @{self.project_name}.hookimpl but matches no "
            f"hook, so it would never be called{hint} (kithooks hooks are named on_<event>; a "
            "host's own hook is added with add_hookspecs before its plugins register, and "
            "hookimpl(optionalhook=True) marks a hook that may not exist)",
        )

    def _refuse_uncallable(self, plugin: object, label: str, attr: str) -> None:
        """Refuse a marked ``attr`` that is not a function (a ``functools.partial``, an
        object with ``__call__``): pluggy skips those without a word, so the hook would
        never run."""
        try:  # the marker in the object's own namespace: a Mock answers any getattr
            raw = inspect.getattr_static(plugin, attr)
            marked = vars(raw).get(self.project_name + "_impl") is not None
        except Exception:  # no namespace (or one that cannot be read): not marked
            return
        if marked and not isinstance(raw, staticmethod | classmethod):
            raise PluginValidationError(
                plugin,
                f"plugin {label!r}: {attr!r} is marked @{self.project_name}.hookimpl but is a "
                f"{type(raw).__name__}, not a function, so it would never be called; mark a "
                "function (def) that calls it",
            )

    @staticmethod
    def _refuse_unmarked(plugin: object, label: str, attr: str) -> None:
        if static_function(plugin, attr) is not None:
            raise PluginValidationError(
                plugin,
                f"plugin {label!r}: {attr!r} is named like a kithooks hook but is not marked; "
                "decorate it with @kithooks.hookimpl (or rename it if it is a helper)",
            )

    # ------------------------------------------------------------------ plans

    def _rebuild(self, hooks: Iterable[str]) -> None:
        """Mark the plans of ``hooks`` stale; the next dispatch of each builds it again.

        Registration stays cheap (no compiling); ``has_handlers`` stays exact, from the
        set of hooks that have handlers, updated here.
        """
        if self._deferred is not None:  # inside _swap: published at its end
            self._deferred.update(hooks)
            return
        touched = {h for h in hooks if h in KIT_HOOKS}
        aggregator = self.turn_aggregator
        if aggregator is not self._aggregator:
            # Another aggregator (registered, unregistered, blocked, replaced) takes its
            # place: agent_end's plan enriches with the registered one.
            touched.add("on_agent_end")
            self._aggregator = aggregator
        for hook in touched:
            impls = self._impls(hook)
            self._plans.pop(hook, None)
            if impls:
                self._hooked.add(hook)
            else:
                self._hooked.discard(hook)
            if hook in _HOOK_EVENTS:
                et = _HOOK_EVENTS[hook]
                self._by_class[EVENT_CLASSES[et]] = _UNKNOWN if impls else None
                self._handled[et.value] = bool(impls)

    def _impls(self, hook: str) -> list[HookImpl]:
        """The implementations of ``hook`` (pluggy's order)."""
        impls: list[HookImpl] = getattr(self.hook, hook).get_hookimpls()
        return impls

    def _prepare(self, hook: str) -> Prepare | None:
        """What makes ``hook``'s event before its handlers see it: for ``agent_end``, the
        registered aggregator's ``enrich`` (by its name), which the plan keeps only while a
        handler listens (:attr:`Plan.listens`: a subclass's ``on_agent_end`` may read the
        counts); alone, an aggregator's own handler just ends the turn."""
        active = self._aggregator
        if hook != "on_agent_end" or active is None:
            return None
        return (self.get_name(active) or active.NAME, active.enrich)

    def _plan(self, hook: str) -> Plan | None:
        """The cached plan of ``hook``, built now if a registration made it stale."""
        plan = self._plans.get(hook)
        if plan is not None or hook not in self._hooked:
            return plan
        with self._registry_lock:
            plan = self._plans.get(hook)
            if plan is None and hook in self._hooked:
                impls = self._impls(hook)
                plan = build_plan(
                    hook,
                    impls,
                    order=lambda i: self._order.get(i.plugin_name, (sys.maxsize, 0)),
                    lock_of=self._lock_of_impl,
                    prepare=self._prepare(hook),
                    callers=self._callers,
                    default_timeout=self.handler_timeout,
                )
                if plan is not None and self._deferred is None:  # not mid-_swap: kept
                    self._plans[hook] = plan
                    if hook in _HOOK_EVENTS:
                        self._by_class[EVENT_CLASSES[_HOOK_EVENTS[hook]]] = plan
            return plan

    def _lock_of_impl(self, impl: HookImpl) -> PluginLock:
        lock = self._lock_of_name.get(impl.plugin_name)
        return lock if lock is not None else self._lock_for(impl.plugin, impl.plugin_name)

    def _outcome_plan(self) -> Plan | None:
        return self._plan(OUTCOME_HOOK) if OUTCOME_HOOK in self._hooked else None

    # ------------------------------------------------------------------ queries

    def has_handlers(self, event_type: EventType | str, tool_name: str | None = None) -> bool:
        """True when some plugin handles ``event_type`` (for ``tool_name``, when given).

        Constant time without ``tool_name`` (:attr:`handled` answers the same without a
        call). An unknown event name is a ValueError with the closest name.
        """
        try:
            handled: bool | None = self._handled[event_type]
        except (KeyError, TypeError):  # not an event's name: the error below names it
            handled = None
        if handled is not None:
            if tool_name is None or not handled:
                return handled
            plan = self._plans.get(_HOOK_OF[event_type])  # current, or None when stale
            if plan is not None and plan.every_tool:
                return True
        hook = _HOOK_OF.get(event_type) if isinstance(event_type, str) else None
        if hook is None:  # not an event's name (a did-you-mean ValueError), or not a str
            hook = "on_" + event_type_named(event_type)
        if hook not in self._hooked:
            return False
        if tool_name is None:
            return True
        plan = self._plan(hook)
        return plan is not None and (
            plan.every_tool or any(h.wants(tool_name) for h in plan.handlers)
        )

    def has_async_handlers(self, event_type: EventType | str) -> bool:
        """True when a handler of ``event_type`` (or of its outcome) is a coroutine function.

        Such an event must be dispatched with :meth:`aemit`; a sync host can run it with
        ``asyncio.run(pm.aemit(event))`` or on a loop of its own.
        """
        et = event_type_named(event_type)
        plan = self._plan(et.hook_name)
        if plan is None:
            return False
        outcome = self._outcome_plan() if plan.rule is not None else None
        return plan.has_async or (outcome is not None and outcome.has_async)

    def handler_names(self, event_type: EventType | str, tool_name: str | None = None) -> list[str]:
        """The plugins handling ``event_type`` (for ``tool_name`` when given), in order."""
        plan = self._plan("on_" + event_type_named(event_type))
        return [] if plan is None else plan.names(tool_name)

    def plugins_handle(self, event_types: Iterable[EventType | str]) -> bool:
        """True when a plugin other than a turn aggregator handles one of ``event_types``.

        What a host asks before hooking into a whole run: a :class:`TurnAggregator` alone
        counts turns only for the plugins that read ``agent_end``, so with no other plugin a
        run can skip its events (the pydantic-ai adapter then runs with no hook at all).
        Only the own methods of an object that is exactly a :class:`TurnAggregator` are left
        out: a subclass's handlers, or a function set on the object, are a plugin's (it may
        guard, or read what it counts), never skipped.
        """
        # The plans, as dispatch sees them (during a reload on another thread, the plans
        # from before it: never a registry half swapped).
        for event_type in event_types:
            if self.has_handlers(event_type):
                hook = "on_" + event_type_named(event_type)
                if self._deferred is not None and hook not in self._plans:
                    # In a swap with no plan from before it (the registry is half swapped on
                    # its thread; other threads would wait for it): hooking in is safe.
                    return True
                plan = self._plan(hook)
                if plan is not None and plan.listens:
                    return True
        return False

    def plugin_source(self, name: str) -> PluginSource | None:
        """Where the plugin ``name`` came from (entry point, file or object)."""
        return self._sources.get(name)

    @property
    def turn_aggregator(self) -> TurnAggregator | None:
        """The registered :class:`TurnAggregator` (or subclass) whose ``enrich`` fills
        ``agent_end``: the first one registered, if any."""
        for plugin in self._name2plugin.values():
            if isinstance(plugin, TurnAggregator):
                return plugin
        return None

    # ------------------------------------------------------------------ dispatch

    def emit(self, event: Event, ctx: Context | None = None) -> Any:
        """Dispatch ``event`` to its handlers and return the merged result (or None).

        Observe events return None; guard and transform events return the merged result of
        their kind (see ``kithooks.dispatch``). A handler that raises is logged and skipped.
        Raises :class:`TypeError` when ``event`` is not a kithooks event or ``ctx`` not a
        :class:`Context`, and when a handler of this event is a coroutine function (use
        :meth:`aemit`).
        """
        # One lookup by class (every payload class is a key): no isinstance on the hot path.
        plan = self._by_class.get(type(event), _UNKNOWN)
        if plan is None:
            return None
        if plan is _UNKNOWN:
            plan = self._plan_of(event, "emit")
            if plan is None:
                return None
        try:  # the handler view of ctx: _view_for, inlined for a context seen before
            view = self._view if ctx is None else ctx._view
            if view._manager is not self:  # type: ignore[union-attr]
                raise AttributeError
        except AttributeError:  # new to this manager, or not a Context (a TypeError)
            view = self._view_for(ctx)
        compiled = plan.compiled
        if compiled is not None:
            # The hot path: plain handlers, unrolled into one function (see kithooks.plans).
            return compiled(event, view)
        return self._callers.run(plan, event, view)

    def _plan_of(self, event: object, verb: str) -> Plan | None:
        if not isinstance(event, Event):
            raise TypeError(f"{verb}() takes a kithooks event, not {type(event).__name__}")
        return self._plan(event.event_type.hook_name)  # stale, or a subclass of a payload class

    async def aemit(self, event: Event, ctx: Context | None = None) -> Any:
        """Like :meth:`emit`, awaiting coroutine handlers; plain handlers are called.

        A plugin's handlers never run at once, across threads, tasks and event loops: a
        coroutine handler holds its plugin while it is suspended, and waiting for a busy
        plugin lets the event loop run other tasks.
        """
        # A coroutine function (not a plain one returning the dispatch's coroutine, which
        # would save one coroutine per call): frameworks decide whether to await a callback
        # with inspect.iscoroutinefunction, and would call a plain one without awaiting it.
        plan: Plan | None = self._by_class.get(type(event), _UNKNOWN)
        if plan is None:
            return None
        if plan is _UNKNOWN:
            plan = self._plan_of(event, "aemit")
            if plan is None:
                return None
        try:  # as in emit
            view = self._view if ctx is None else ctx._view
            if view._manager is not self:  # type: ignore[union-attr]
                raise AttributeError
        except AttributeError:
            view = self._view_for(ctx)
        return await plan.acompiled(event, view)

    def _hookexec(
        self,
        hook_name: str,
        methods: Sequence[HookImpl],
        kwargs: Any,
        firstresult: bool,
    ) -> object | list[object]:
        """pluggy's call path: kithooks hooks get the same dispatch (and plan) as :meth:`emit`."""
        if hook_name not in _HOOK_EVENTS:
            if hook_name == OUTCOME_HOOK:
                raise TypeError(
                    "on_outcome is called by the manager after a dispatch, not by hosts"
                )
            # pluggy's own path (one frame, as in pluggy: its warnings point at the caller)
            return self._inner_hookexec(hook_name, methods, kwargs, firstresult)
        # call_extra / subset_hook_caller: exactly the handlers pluggy hands over, with the
        # kithooks rules (the normal call goes straight to emit, see _KitHookCaller).
        event = self._checked_event(hook_name, kwargs)
        plan = build_plan(
            hook_name,
            list(methods),
            order=lambda i: self._order.get(i.plugin_name, (sys.maxsize, 0)),
            lock_of=lambda i: self._lock_of_name.get(i.plugin_name) or PluginLock(i.plugin_name),
            prepare=self._prepare(hook_name),
            callers=self._callers,
            default_timeout=self.handler_timeout,
        )
        if plan is None:
            return None
        result: object = self._callers.run(plan, event, self._view_for(kwargs.get("ctx")))
        return result

    def _checked_event(self, hook_name: str, kwargs: Mapping[str, object]) -> Event:
        event = kwargs.get("event")
        cls = EVENT_CLASSES[_HOOK_EVENTS[hook_name]]
        if type(event) is not cls and not isinstance(event, cls):
            raise TypeError(f"{hook_name} takes event={cls.__name__}, not {type(event).__name__}")
        return event

    # ------------------------------------------------------------------ custom events

    def emit_custom_event(self, name: str, data: Any = "", ctx: Context | None = None) -> None:
        """Call every plugin subscribed to ``name`` with ``data``, in registration order."""
        if self.listeners.customs:
            self.listeners.custom(name, data)
        if not self._bus.has(name):
            return
        view = self._view_for(ctx)
        self._bus.emit(name, data, view, self._callers.failed)

    def report_load_error(self, error: LoadError) -> None:
        """Record a plugin that could not be loaded: in :attr:`load_errors`, on logger
        ``kithooks`` and to the listeners (what the ``load_*`` methods do for their own)."""
        self.load_errors.append(error)
        logger.error("%s", error.message, exc_info=error.error)
        self.listeners.error(error)

    def has_custom_subscribers(self, name: str) -> bool:
        """True when some plugin subscribed to the custom event ``name``."""
        return self._bus.has(name)

    # ------------------------------------------------------------------ loading

    _load_failed = report_load_error  # the loader's name for it

    def load_entrypoints(self, group: str = PROJECT) -> list[str]:
        """Register every plugin of the entry-point ``group``; returns the names registered.

        The entry point's object is registered as it is (a module or an instance), a class is
        built with no arguments. One whose import raises (or calls ``sys.exit()``), that
        cannot be built, that has no hooks, or whose name another plugin already has is
        logged, reported, recorded in :attr:`load_errors` (naming the distribution) and left
        out; the others load. An entry point this manager already loaded is skipped. Names
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
        command_hooks: bool = True,
    ) -> list[str]:
        """Load plugin files and directory plugins, in the original's order; returns the names.

        Order: the user directory (``$XDG_CONFIG_HOME/kithooks/plugins``), the project
        directory (``.kithooks/plugins``), then ``paths`` (a ``.py`` file, a directory plugin
        or a directory of plugins; a path that is none of these is a load error). Pass
        ``None`` to skip a directory. A file or directory reached twice loads once. A file's
        module-level hooks are one plugin named after its stem; each module-level instance
        of a class with marked methods is registered as it is, as ``<stem>:<variable>``,
        and each such class defined in it with no instance there is built with no
        arguments, as ``<stem>:<ClassName>`` (``kithooks.loading.module_plugins``; the file's
        full path instead of the stem when one of those names is taken). Anything that
        fails, or would be a plugin with no hooks, is logged, reported and left out.
        :meth:`reload` re-reads the same sources. See ``docs/plugins.md``.

        With ``command_hooks`` (the default), the ``hooks.json`` beside each of the two
        directories (``$XDG_CONFIG_HOME/kithooks/hooks.json``, ``.kithooks/hooks.json``)
        also runs, as Claude Code command hooks (``kithooks.command_hooks``): one plugin per
        file, named ``command-hooks:<path>``, after the file plugins. An invalid file, or one
        giving no command hook that can run, is a load error naming it; one with
        ``"disableAllHooks": true`` loads nothing, with a warning that its hooks are off.
        """
        dirs: list[Path] = []
        if user_dir is not None:
            dirs.append(default_user_dir() if user_dir is _DEFAULT else Path(user_dir))
        if project_dir is not None:
            dirs.append(default_project_dir() if project_dir is _DEFAULT else Path(project_dir))
        dirs = [d.expanduser().absolute() for d in dirs]
        explicit = [Path(p).expanduser().absolute() for p in paths]
        with self._registry_lock:
            return self._loader.load_files(dirs, explicit, command_hooks=command_hooks)

    def reload(self) -> list[str]:
        """Reload the file plugins from disk; returns the file plugins now loaded.

        Emits ``session_shutdown`` to the old set, unregisters every file plugin, loads the
        same sources again (new, changed and removed files included, and the ``hooks.json``
        files that :meth:`load_plugin_files` read, or would read now), and emits
        ``session_start`` (with the context's ``session_id``) to the new set. The new set
        replaces the old at once (see :meth:`_swap`): a dispatch on another thread meanwhile
        runs the old set or the new one, never neither. A file that is gone loses its
        plugins; one whose new version fails to load (a ``hooks.json`` too; a syntax error
        or truncated JSON while an editor saves it) is a load error and keeps its previous,
        working version registered (``LoadError.kept``). Entry-point
        and object plugins, the context and the state are kept; dispatch order stays that
        of registration, each file batch keeping its place.
        """
        self.emit(SessionShutdownEvent())
        with self._swap():
            names = self._loader.reload()
        self.emit(SessionStartEvent(session_id=self._context.session_id))
        return names
