"""The one error the state store raises."""

from __future__ import annotations

__all__ = ["StateError"]


class StateError(Exception):
    """A state file could not be read or written, or a key or value cannot be stored.

    The message names the file (and the line when parsing) or the key, so it can be shown
    to a person as it is.
    """
