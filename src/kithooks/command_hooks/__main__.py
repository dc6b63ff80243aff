"""``python -m kithooks.command_hooks claude-hook``: the same as ``kithooks claude-hook``."""

from __future__ import annotations

import click

from .claude_hook import claude_hook


@click.group()
def _main() -> None:
    """kithooks command hooks."""


_main.add_command(claude_hook)

if __name__ == "__main__":
    _main(prog_name="python -m kithooks.command_hooks")
