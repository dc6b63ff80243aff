"""The :class:`Context` a handler receives beside the event."""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from .manager import PluginManager

__all__ = ["Context", "HandlerContext", "handler_view"]


def _noop_text(text: str) -> None:
    return None


def _noop() -> None:
    return None


def _true() -> bool:
    return True


def _empty() -> str:
    return ""


def _no(question: str) -> bool:
    return False


def _noop_model(model: str) -> None:
    return None


def _cb(default: Callable[..., Any], doc: str) -> Any:
    return attrs.field(default=default, repr=False, eq=False, metadata={"doc": doc})


@attrs.define(kw_only=True, slots=True)
class Context:
    """What the host tells a handler about where it runs, and what it lets it do.

    The data fields describe the session. The callbacks are the host's: each defaults to a
    safe no-op, so a handler can always call them. The state methods read and write the
    session's key-value store (the manager's :class:`~kithooks.StateStore`); a context is
    bound to a manager when it is passed to ``emit`` / ``aemit`` or ``set_context``, and
    before that its state methods see an empty store.

    A host updates ``turn_id`` (and ``session_id`` when the session changes) between turns;
    the turn aggregator tells turns apart by the pair.
    """

    session_id: str = attrs.field(default="", metadata={"doc": "The session's id ('' if none)."})
    cwd: str = attrs.field(default="", metadata={"doc": "The agent's working directory."})
    model: str = attrs.field(default="", metadata={"doc": "The active model, 'provider/model'."})
    interactive: bool = attrs.field(
        default=False, metadata={"doc": "True when a person is at the keyboard."}
    )
    turn_id: str = attrs.field(
        default="", metadata={"doc": "The running turn's id; with session_id it keys the turn."}
    )

    print: Callable[[str], None] = _cb(_noop_text, "Show text to the user.")
    print_info: Callable[[str], None] = _cb(_noop_text, "Show an informational line.")
    print_error: Callable[[str], None] = _cb(_noop_text, "Show an error line.")
    send_message: Callable[[str], None] = _cb(_noop_text, "Queue a user message as a new turn.")
    cancel_and_send: Callable[[str], None] = _cb(
        _noop_text, "Cancel the running turn and send a message."
    )
    abort: Callable[[], None] = _cb(_noop, "Abort the running turn.")
    exit: Callable[[], None] = _cb(_noop, "Ask the host to exit.")
    is_idle: Callable[[], bool] = _cb(_true, "True when no turn is running (default True).")
    set_model: Callable[[str], None] = _cb(
        _noop_model, "Switch the model ('provider/model'); the host emits model_change."
    )
    get_session_path: Callable[[], str] = _cb(_empty, "The session file's path ('' if none).")
    compact: Callable[[str], None] = _cb(
        _noop_text, "Ask the host to compact the context, with custom instructions."
    )
    confirm: Callable[[str], bool] = _cb(
        _no, "Ask the person a yes/no question (a permission prompt); False when nobody can answer."
    )

    _manager: PluginManager | None = attrs.field(default=None, init=False, repr=False, eq=False)
    #: The last handler view made of this context, and the manager it belongs to.
    _view: Context | None = attrs.field(default=None, init=False, repr=False, eq=False)

    # -- copies ------------------------------------------------------------------------

    def __copy__(self) -> Context:
        """A new context with the same fields, bound to the same manager; its handler view
        is its own (a copied view would show the handlers the original's fields)."""
        return _copied(self, lambda value: value)

    def __deepcopy__(self, memo: dict[int, Any]) -> Context:
        """:meth:`__copy__` with every field deep-copied (the manager is shared, not copied)."""
        return _copied(self, lambda value: copy.deepcopy(value, memo), memo)

    def for_turn(self, turn_id: str, *, session_id: str | None = None) -> Context:
        """A copy of this context for turn ``turn_id`` (and session ``session_id``, when
        given): what a host hands each turn, as ``attrs.evolve(ctx, turn_id=...)`` would make
        it (a new context, not bound to a manager yet, with no handler view).

        The adapters and :class:`~kithooks.Turn` make one per turn with it; for a
        :class:`Context` it costs less than half of ``attrs.evolve`` (one call of ``__init__`` with
        every field), and a subclass gets ``attrs.evolve`` itself (its own fields and
        ``__init__``)."""
        if self.__class__ is not Context:
            if isinstance(self, HandlerContext):  # a handler's view: a copy of the host's
                host: Context = object.__getattribute__(self, "_host")
                return host.for_turn(turn_id, session_id=session_id)
            if session_id is None:
                return attrs.evolve(self, turn_id=turn_id)
            return attrs.evolve(self, turn_id=turn_id, session_id=session_id)
        copied = _FOR_TURN[0] if _FOR_TURN else _compile_for_turn()
        return copied(self, turn_id, self.session_id if session_id is None else session_id)

    # -- state -------------------------------------------------------------------------

    def get_state(self, key: str) -> str | None:
        """The value stored under ``key`` in the session's state, or None."""
        m = self._manager
        return None if m is None else m.state.get(key)

    def set_state(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``; saved to the sidecar file before returning."""
        m = self._manager
        if m is not None:
            m.state.set(key, value)

    def delete_state(self, key: str) -> None:
        """Remove ``key`` from the session's state (nothing happens if it is missing)."""
        m = self._manager
        if m is not None:
            m.state.delete(key)

    def list_state(self) -> list[str]:
        """The keys in the session's state, sorted."""
        m = self._manager
        return [] if m is None else m.state.keys()

    # -- plugins talking to plugins ----------------------------------------------------

    def emit_custom_event(self, name: str, data: Any = "") -> None:
        """Send ``data`` to every plugin subscribed to ``name`` (see ``kithooks.custom_event``)."""
        m = self._manager
        if m is not None:
            m.emit_custom_event(name, data, ctx=self)


_FIELDS = tuple(f.name for f in attrs.fields(Context) if f.init)


def _compile_for_turn() -> Callable[[Context, str, str], Context]:
    """Compile and keep :meth:`Context.for_turn`'s copy, ``Context(every field=src.field,
    ...)`` with the two ids given, written from the fields themselves (a field added later
    is copied too); on the first call, not at import (``import kithooks`` stays fast)."""
    ids = ("turn_id", "session_id")
    fields = [f.alias for f in attrs.fields(Context) if f.init]
    args = ", ".join(f"{n}={n}" if n in ids else f"{n}=src.{n}" for n in fields)
    namespace: dict[str, Any] = {"Context": Context}
    source = f"def copied_for_turn(src, turn_id, session_id):\n    return Context({args})\n"
    exec(compile(source, "<kithooks Context.for_turn>", "exec"), namespace)
    copied: Callable[[Context, str, str], Context] = namespace["copied_for_turn"]
    _FOR_TURN[:] = [copied]
    return copied


#: :meth:`Context.for_turn`'s copy, once compiled (:func:`_compile_for_turn`).
_FOR_TURN: list[Callable[[Context, str, str], Context]] = []


def _copied(
    ctx: Context, copy_value: Callable[[Any], Any], memo: dict[int, Any] | None = None
) -> Context:
    """A copy of ``ctx`` (of the host's context, for a handler view) with each attribute
    passed through ``copy_value``, bound to the same manager (a view's copy: to the view's
    manager), with no handler view of its own yet. Made without calling ``__init__``, so a
    subclass's own fields and ``__init__`` are kept as they are."""
    original = ctx
    manager = ctx._manager
    if isinstance(ctx, HandlerContext):
        manager = object.__getattribute__(ctx, "_manager")
        ctx = object.__getattribute__(ctx, "_host")
    cls = type(ctx)
    new = object.__new__(cls)
    if memo is not None:  # a callback bound to the context (or its view) copies to the copy
        memo[id(original)] = memo[id(ctx)] = new
    for f in attrs.fields(cls):
        if f.name not in ("_manager", "_view"):
            object.__setattr__(new, f.name, copy_value(getattr(ctx, f.name)))
    if hasattr(ctx, "__dict__"):  # a subclass without slots: its other attributes too
        new.__dict__.update(copy_value(ctx.__dict__))
    object.__setattr__(new, "_manager", manager)
    object.__setattr__(new, "_view", None)
    return new


class HandlerContext(Context):
    """What a handler receives: a read-only view of the host's :class:`Context`.

    Reading a field reads the host's context at that moment (the host may change
    ``turn_id`` between turns); assigning one raises :class:`AttributeError`, so no plugin
    can change the ids the plugins after it see. The state methods and custom events go to
    the manager that dispatches, so a context given to two managers never lets one
    manager's plugins write into the other's store.
    """

    __slots__ = ("_host",)

    def __init__(self, host: Context, manager: PluginManager) -> None:
        object.__setattr__(self, "_host", host)
        object.__setattr__(self, "_manager", manager)
        object.__setattr__(self, "_view", self)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(
            f"a handler cannot change ctx.{name}: the context belongs to the host "
            "(return a result to change what happens, or keep your own data in ctx.set_state)"
        )


def _read_through(name: str) -> property:
    # attrgetter reads self._host.<name> in C: no Python frame per read of a field.
    return property(operator.attrgetter(f"_host.{name}"), doc=f"The host context's ``{name}``.")


for _name in _FIELDS:
    setattr(HandlerContext, _name, _read_through(_name))
del _name


def handler_view(ctx: Context, manager: PluginManager) -> Context:
    """The view of ``ctx`` that ``manager``'s handlers get (made once, then cached)."""
    if isinstance(ctx, HandlerContext):
        ctx = object.__getattribute__(ctx, "_host")
    view = ctx._view
    if view is None or view._manager is not manager:
        view = HandlerContext(ctx, manager)
        ctx._view = view
        if ctx._manager is None:
            ctx._manager = manager  # the host's own get_state reaches its first manager
    return view
