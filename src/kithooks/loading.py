"""Finding plugins: entry points and plain ``.py`` files, and what is recorded about them."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import attrs

__all__ = [
    "DISABLE_ENTRYPOINTS_ENV",
    "BLOCK_ENV",
    "LoadError",
    "PluginSource",
    "blocked_names",
    "default_project_dir",
    "default_user_dir",
    "entrypoints_disabled",
    "find_plugin_files",
    "import_plugin_file",
    "module_name_for",
]

#: Comma-separated plugin names that are never registered (entry points and files alike).
BLOCK_ENV = "KITHOOKS_BLOCK_PLUGINS"
#: When set to a non-empty value other than ``0``, ``load_entrypoints`` loads nothing.
DISABLE_ENTRYPOINTS_ENV = "KITHOOKS_DISABLE_ENTRYPOINTS"


@attrs.frozen(kw_only=True)
class PluginSource:
    """Where a registered plugin came from."""

    kind: str  #: ``"entrypoint"``, ``"file"`` or ``"object"``
    name: str
    location: str = ""  #: the file's path, or the entry point's ``module:attr``
    distribution: str = ""  #: for entry points: the distribution's name
    version: str = ""  #: for entry points: the distribution's version


@attrs.frozen(kw_only=True)
class LoadError:
    """A plugin that could not be loaded or registered, and why. It was left out entirely."""

    name: str
    kind: str
    location: str
    error: BaseException = attrs.field(eq=False)

    @property
    def message(self) -> str:
        """One line: which plugin, from where, and the error."""
        return (
            f"plugin {self.name!r} ({self.kind} {self.location}) failed to load: "
            f"{type(self.error).__name__}: {self.error}"
        )


def blocked_names() -> frozenset[str]:
    """The names in ``$KITHOOKS_BLOCK_PLUGINS``."""
    raw = os.environ.get(BLOCK_ENV, "")
    return frozenset(n.strip() for n in raw.split(",") if n.strip())


def entrypoints_disabled() -> bool:
    """True when ``$KITHOOKS_DISABLE_ENTRYPOINTS`` is set (and not ``0``)."""
    return os.environ.get(DISABLE_ENTRYPOINTS_ENV, "") not in ("", "0")


def default_user_dir() -> Path:
    """``$XDG_CONFIG_HOME/kithooks/plugins`` (``~/.config/kithooks/plugins`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "kithooks" / "plugins"


def default_project_dir(cwd: str | os.PathLike[str] | None = None) -> Path:
    """``.kithooks/plugins`` under the working directory."""
    return Path(cwd or os.getcwd()) / ".kithooks" / "plugins"


def _plugin_files_in(directory: Path) -> list[Path]:
    found = []
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        if entry.is_file() and entry.suffix == ".py":
            stem = entry.stem
            if stem.startswith(("_", "test_")) or stem.endswith("_test") or stem == "conftest":
                continue
            found.append(entry)
    return found


def find_plugin_files(sources: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Plugin files from ``sources`` in order, deduplicated by absolute path.

    A directory contributes its ``*.py`` files sorted by name (not ``_*``, ``test_*``,
    ``*_test`` or ``conftest``); a file is used when it ends in ``.py``; missing paths are
    skipped, as in the original.
    """
    seen: set[Path] = set()
    out: list[Path] = []
    for source in sources:
        path = Path(source).expanduser().absolute()
        if path.is_dir():
            candidates = _plugin_files_in(path)
        elif path.is_file() and path.suffix == ".py":
            candidates = [path]
        else:
            continue
        for candidate in candidates:
            resolved = candidate.resolve()
            if resolved not in seen:
                seen.add(resolved)
                out.append(resolved)
    return out


def module_name_for(path: Path) -> str:
    """The private ``sys.modules`` name a plugin file is imported under."""
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    ident = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"_kithooks_plugin_{ident}_{digest}"


def import_plugin_file(path: Path) -> ModuleType:
    """Import one plugin file as a fresh module (re-reading it from disk)."""
    name = module_name_for(path)
    # Compiled from the source each time (no bytecode cache), so a reload always sees the
    # file as it is now, even when it changed twice within the cache's mtime resolution.
    module = ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    try:
        code = compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
