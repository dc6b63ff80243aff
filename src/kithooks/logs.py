"""The library's loggers (``kithooks``, ``kithooks.state``), created when first used.

Importing :mod:`logging` (with ``traceback``, ``string`` and their imports) costs as much as
a fifth of the rest of ``import kithooks``, and most processes never log: a Claude Code
command hook, a process per event, logs only when a plugin fails. Each module holds a
stand-in from :func:`get`; the first attribute asked of it imports :mod:`logging` and
hands over the real :class:`logging.Logger`'s, so records name the real caller (attributes
set on it are set on the real logger). The real logger is ``logging.getLogger(name)``,
configured as any other; it exists once something is logged or asked of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from logging import Logger


class _Deferred:
    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_logger", None)

    def _real(self) -> Logger:
        logger: Logger | None = self._logger
        if logger is None:
            import logging

            logger = logging.getLogger(self._name)
            object.__setattr__(self, "_logger", logger)
        return logger

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._real(), attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        setattr(self._real(), attr, value)  # ``.propagate``, ``.level``, ``.disabled``

    def __repr__(self) -> str:
        return f"<logger {self._name!r}, created when first used>"


def get(name: str) -> Logger:
    """The logger ``name``, imported and created when first used (see the module doc)."""
    return cast("Logger", _Deferred(name))
