"""Standard output kept for a command's own output while plugins run in the process.

``kithooks claude-hook`` answers Claude Code on stdout, and ``kithooks replay|demo|plugins``
print their report there (``--json`` is read by programs). A plugin's ``print`` at import
or in a handler, a library's banner, a subprocess it starts or an ``atexit`` handler would
write into that output and break it. :func:`owned_stdout` sends all of that to stderr.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TextIO

__all__ = ["owned_stdout"]


@contextlib.contextmanager
def owned_stdout(encoding: str | None = None) -> Iterator[TextIO]:
    """Everything written to stdout while this is open goes to stderr; the stream it gives
    writes to the real stdout.

    ``sys.stdout`` is ``sys.stderr`` until the end, and when stdout is file descriptor 1,
    fd 1 is made a copy of fd 2 for good (subprocesses, C code, ``atexit`` handlers and the
    interpreter's final flush write there too). The stream given then writes to a saved
    copy of the real fd 1, in ``encoding`` (default: stdout's) with what it cannot encode
    escaped (``backslashreplace``: a lone surrogate is written as its JSON escape), and is
    closed at the end, so a plugin's lingering child process does not hold the reader's
    pipe open. When stdout is not fd 1 (a test's capture), the
    stream given is the original ``sys.stdout``.

    The stream is flushed when the block ends without an exception: an error writing the
    output (a full disk) is raised there. A reader that went away shows as
    ``BrokenPipeError`` from the stream's writes and flushes, as on any stdout; at the end,
    what is left unwritten for it is dropped.
    """
    original = sys.stdout
    saved: int | None = None
    with contextlib.suppress(AttributeError, OSError, ValueError):
        original.flush()
        if original.fileno() == 1:
            saved = os.dup(1)
            os.dup2(2, 1)
    out: TextIO = original
    if saved is not None:
        out = wrapper = open(  # noqa: SIM115 - closed below, after the command
            saved,
            "w",
            encoding=encoding or getattr(original, "encoding", None) or "utf-8",
            errors="backslashreplace",
            closefd=True,
        )
        wrapper.reconfigure(line_buffering=bool(getattr(original, "line_buffering", False)))
    sys.stdout = sys.stderr
    try:
        yield out
        with contextlib.suppress(BrokenPipeError):
            out.flush()
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        sys.stdout = original
        if saved is not None:
            # Only after a failure (or a closed pipe) is anything left to flush here; the
            # descriptor is closed all the same.
            with contextlib.suppress(OSError, ValueError):
                out.close()
