"""Finding hook settings files: ``.kithooks/hooks.json`` in the user and project directories."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..loading import LoadError, default_project_dir, default_user_dir
from .plugin import CommandHooks
from .settings import SettingsError, load_settings

__all__ = ["SETTINGS_FILE", "discover_settings", "plugins_for"]

#: The file name of a hook settings file in a kithooks directory.
SETTINGS_FILE = "hooks.json"


def discover_settings(
    user_dir: str | os.PathLike[str] | None = None,
    project_dir: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """The hook settings files that exist, user before project.

    ``user_dir`` defaults to ``$XDG_CONFIG_HOME/kithooks`` (``~/.config/kithooks``), the
    directory holding the user's ``plugins/``; ``project_dir`` to the project's
    ``.kithooks`` (the nearest, from the working directory upwards:
    :func:`kithooks.loading.find_project_root`). Each contributes its ``hooks.json``. The
    same file found twice is listed once.
    """
    dirs = [
        Path(user_dir) if user_dir is not None else default_user_dir().parent,
        Path(project_dir) if project_dir is not None else default_project_dir().parent,
    ]
    found: list[Path] = []
    for directory in dirs:
        candidate = (directory / SETTINGS_FILE).expanduser().absolute()
        if candidate.is_file() and candidate.resolve() not in {p.resolve() for p in found}:
            found.append(candidate)
    return found


def plugins_for(
    paths: Iterable[str | os.PathLike[str]], *, project_dir: str | os.PathLike[str] | None = None
) -> tuple[list[CommandHooks], list[LoadError]]:
    """One :class:`CommandHooks` per settings file (named ``command-hooks:<path>``), and a
    :class:`~kithooks.loading.LoadError` for each file that is not valid (left out).

    Every file given was named (``--settings``) or is kithooks' own ``hooks.json``: it is
    there to hold hooks, so one giving no command hook that kithooks can run (no ``"hooks"``
    object, an empty one, only events or hook types not run here) is a load error too. A
    file with ``"disableAllHooks": true`` gives no plugin and no error: its hooks are off,
    as in Claude Code, and a warning on logger ``kithooks`` says so."""
    plugins: list[CommandHooks] = []
    errors: list[LoadError] = []
    for path in paths:
        name = f"command-hooks:{os.fspath(path)}"
        try:
            settings = load_settings(path)  # refuses settings giving no hook that can run
            if settings.disabled:
                continue
            plugins.append(CommandHooks.from_settings(settings, project_dir=project_dir, name=name))
        except SettingsError as exc:
            errors.append(LoadError(name=name, kind="file", location=os.fspath(path), error=exc))
    return plugins, errors
