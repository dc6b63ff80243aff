"""Running hook commands: in a shell, in their own process group, in parallel, with deadlines.

Each command runs as ``bash -c COMMAND`` (``/bin/sh`` where there is no bash) in a new session
(``start_new_session=True``), so a timeout kills the command and everything it started with
one ``os.killpg``. :func:`run_commands` uses one thread per command beside the first;
:func:`arun_commands` uses asyncio subprocesses.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    import asyncio

__all__ = ["SHELL", "CommandRun", "arun_commands", "run_commands"]

#: The shell commands run in.
SHELL = shutil.which("bash") or "/bin/sh"

#: Seconds to wait for a killed command's pipes to close (a grandchild that left the
#: process group may hold them open).
_DRAIN = 1.0


@attrs.frozen(kw_only=True)
class CommandRun:
    """What one command did."""

    command: str
    returncode: int | None  #: None when it timed out or could not start
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    timeout: float = 0.0
    start_error: str = ""  #: why it could not start
    seconds: float = 0.0


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _finished(
    command: str, returncode: int | None, out: bytes, err: bytes, *, timeout: float, start: float
) -> CommandRun:
    """A command that ran: ``returncode`` None means it was killed at its deadline."""
    return CommandRun(
        command=command,
        returncode=returncode,
        stdout=_text(out),
        stderr=_text(err),
        timed_out=returncode is None,
        timeout=timeout,
        seconds=time.monotonic() - start,
    )


def _run_one(
    command: str, timeout: float, stdin: bytes, cwd: str, env: Mapping[str, str]
) -> CommandRun:
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            [SHELL, "-c", command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        return CommandRun(command=command, returncode=None, start_error=str(exc))
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        try:
            out, err = proc.communicate(timeout=_DRAIN)
        except subprocess.TimeoutExpired:
            out, err = b"", b""
        finally:
            proc.kill()
            proc.wait()
        return _finished(command, None, out, err, timeout=timeout, start=start)
    finally:
        if proc.returncode is None:  # interrupted (KeyboardInterrupt...): leave nothing behind
            _kill_group(proc.pid)
            proc.wait()
    return _finished(command, proc.returncode, out, err, timeout=timeout, start=start)


def run_commands(
    commands: Sequence[tuple[str, float]], stdin: bytes, *, cwd: str, env: Mapping[str, str]
) -> list[CommandRun]:
    """Run ``(command, timeout)`` pairs in parallel, each fed ``stdin``; results in order."""
    if len(commands) == 1:
        command, timeout = commands[0]
        return [_run_one(command, timeout, stdin, cwd, env)]
    from concurrent.futures import ThreadPoolExecutor  # here: most calls run one command

    with ThreadPoolExecutor(max_workers=len(commands), thread_name_prefix="kithooks-hook") as ex:
        futures = [ex.submit(_run_one, c, t, stdin, cwd, env) for c, t in commands]
        return [f.result() for f in futures]


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Kill ``proc``'s process group and wait (briefly) until it is gone and its pipes closed."""
    import asyncio  # in the async functions only: a sync host (and claude-hook) needs none

    _kill_group(proc.pid)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), _DRAIN)


async def _arun_one(
    command: str, timeout: float, stdin: bytes, cwd: str, env: Mapping[str, str]
) -> CommandRun:
    import asyncio

    start = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            SHELL,
            "-c",
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
        )
    except OSError as exc:
        return CommandRun(command=command, returncode=None, start_error=str(exc))
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        await _reap(proc)
        return _finished(command, None, b"", b"", timeout=timeout, start=start)
    except asyncio.CancelledError:  # the host gave up on this call: leave nothing behind
        await _reap(proc)
        raise
    return _finished(command, proc.returncode, out, err, timeout=timeout, start=start)


async def arun_commands(
    commands: Sequence[tuple[str, float]], stdin: bytes, *, cwd: str, env: Mapping[str, str]
) -> list[CommandRun]:
    """Like :func:`run_commands`, with asyncio subprocesses (the event loop keeps running)."""
    import asyncio

    return list(await asyncio.gather(*(_arun_one(c, t, stdin, cwd, env) for c, t in commands)))
