"""What a host hears about dispatch: plugin failures, results and custom events.

Any number of listeners may be attached to a manager (``pm.add_listener``); each hears
every failure (a :class:`HandlerError` or a :class:`~kithooks.loading.LoadError`), every
valid result a guard or transform handler returns (once it is taken, before the next
handler runs; a result that cannot be merged is a failure instead), and every custom
event. A listener that raises is logged and does not stop the others or the dispatch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from . import logs
from .events import Result

if TYPE_CHECKING:
    from .loading import LoadError

__all__ = ["HandlerError", "Listeners", "describe_error"]

logger = logs.get("kithooks")

ErrorListener = Callable[["HandlerError | LoadError"], None]
ResultListener = Callable[[str, str, Result], None]
CustomListener = Callable[[str, Any], None]


def describe_error(error: BaseException) -> str:
    """``Type: message``, even for an exception whose ``__str__`` itself raises."""
    try:
        text = str(error)
    except Exception:
        text = "<the error's message could not be printed>"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@attrs.frozen(kw_only=True)
class HandlerError:
    """A handler that raised, timed out, or returned a result of the wrong type; it was isolated."""

    plugin: str
    hook: str
    error: BaseException = attrs.field(eq=False)

    @property
    def message(self) -> str:
        """One line naming the plugin, the hook and the error."""
        return f"plugin {self.plugin!r} failed in {self.hook}: {describe_error(self.error)}"


class Listeners:
    """The listeners of one manager; adding and removing them is safe from any thread."""

    __slots__ = ("customs", "errors", "results")

    def __init__(self) -> None:
        # Tuples, replaced whole: dispatch reads them without a lock.
        self.errors: tuple[ErrorListener, ...] = ()
        self.results: tuple[ResultListener, ...] = ()
        self.customs: tuple[CustomListener, ...] = ()

    def add(
        self,
        on_error: ErrorListener | None = None,
        on_result: ResultListener | None = None,
        on_custom_event: CustomListener | None = None,
    ) -> Callable[[], None]:
        """Attach the given callbacks; returns a function that detaches them again."""
        if on_error is not None:
            self.errors += (on_error,)
        if on_result is not None:
            self.results += (on_result,)
        if on_custom_event is not None:
            self.customs += (on_custom_event,)

        def remove() -> None:
            if on_error is not None:
                self.errors = _without(self.errors, on_error)
            if on_result is not None:
                self.results = _without(self.results, on_result)
            if on_custom_event is not None:
                self.customs = _without(self.customs, on_custom_event)

        return remove

    def error(self, error: HandlerError | LoadError) -> None:
        """Tell every error listener."""
        for listener in self.errors:
            try:
                listener(error)
            except Exception:
                logger.exception("an on_error listener (%s) itself raised", _named(listener))

    def result(self, plugin: str, hook: str, result: Result) -> None:
        """Tell every result listener."""
        for listener in self.results:
            try:
                listener(plugin, hook, result)
            except Exception:
                logger.exception("an on_result listener (%s) itself raised", _named(listener))

    def custom(self, name: str, data: Any) -> None:
        """Tell every custom-event listener."""
        for listener in self.customs:
            try:
                listener(name, data)
            except Exception:
                logger.exception(
                    "an on_custom_event listener (%s) itself raised on custom event %r",
                    _named(listener),
                    name,
                )


def _named(listener: Callable[..., None]) -> str:
    """A listener's qualified name, for a log line (the logger is ``kithooks`` already)."""
    name = getattr(listener, "__qualname__", None)
    return name if isinstance(name, str) else type(listener).__qualname__


def _without(items: tuple[Any, ...], item: Any) -> tuple[Any, ...]:
    index = next((i for i, x in enumerate(items) if x is item), None)
    return items if index is None else items[:index] + items[index + 1 :]
