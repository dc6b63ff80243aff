"""What the CLI tests share: an isolated environment and a runner of the real command.

It holds no tests; the CLI test modules import it (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

KITHOOKS = Path(sys.executable).parent / "kithooks"


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment, with no user or project plugins and no colours, plus ``extra``."""
    return {
        **{k: v for k, v in os.environ.items() if k != "PYTHONIOENCODING"},
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "KITHOOKS_TOOL_LOG": str(tmp_path / "tools.jsonl"),
        "NO_COLOR": "1",
        **extra,
    }


def run_cli(
    tmp_path: Path,
    *args: str | bytes,
    stdin: bytes | None = None,
    command: tuple[str, ...] = (str(KITHOOKS),),
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """Run ``kithooks ARGS`` (or ``command ARGS``) in ``tmp_path``; output decoded leniently."""
    proc = subprocess.run(
        [*command, *args],
        cwd=tmp_path,
        env=cli_env(tmp_path, **env),
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )
    return subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )
