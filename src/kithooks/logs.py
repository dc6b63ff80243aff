"""The library's loggers (``kithooks``, ``kithooks.state``), created when first used.

Importing :mod:`logging` (with ``traceback``, ``string`` and their imports) costs as much as
a fifth of the rest of ``import kithooks``, and most processes never log: a Claude Code
command hook, a process per event, logs only when a plugin fails. Each module holds a
stand-in from :func:`get`; the first attribute asked of it imports :mod:`logging` and
hands over the real :class:`logging.Logger`'s, so records name the real caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from logging import Logger


class _Deferred:
    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Logger | None = None

    def __getattr__(self, attr: str) -> Any:
        logger = self._logger
        if logger is None:
            import logging

            logger = self._logger = logging.getLogger(self._name)
        return getattr(logger, attr)

    def __repr__(self) -> str:
        return f"<logger {self._name!r}, created when first used>"


def get(name: str) -> Logger:
    """The logger ``name``, imported and created when first used (see the module doc)."""
    return cast("Logger", _Deferred(name))
