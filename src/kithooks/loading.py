"""Loading plugins: entry points, plugin files, directory plugins and classes in files.

The :class:`Loader` finds plugins, imports them, turns what it imported into plugin objects
(a module by one rule, :func:`module_plugins`, however it was loaded) and registers them
with its :class:`~kithooks.PluginManager` (which delegates ``load_entrypoints``,
``load_plugin_files`` and ``reload`` to it). Every shape either registers a plugin with at
least one hook or is a :class:`LoadError` naming the file, class or entry point; nothing
loads silently as a plugin that does nothing, and what is found and not loaded is a
:class:`Skipped` note. ``docs/plugins.md`` describes the rules.
"""

from __future__ import annotations

import importlib.machinery
import inspect
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Final

import attrs
from pluggy import PluginValidationError

from .aggregator import TurnAggregator
from .bus import custom_handlers_of
from .hookspecs import KIT_HOOKS, static_function

if TYPE_CHECKING:
    import importlib.metadata

    from .manager import PluginManager

__all__ = [
    "BLOCK_ENV",
    "DISABLE_ENTRYPOINTS_ENV",
    "LoadError",
    "Loader",
    "PluginSource",
    "Skipped",
    "blocked_names",
    "default_project_dir",
    "default_user_dir",
    "entrypoints_disabled",
    "find_project_root",
    "forget_modules",
    "import_plugin_directory",
    "import_plugin_file",
    "module_name_for",
    "module_plugins",
    "register_plugin",
    "skipped",
]


#: Comma-separated plugin names that are never registered (entry points and files alike).
BLOCK_ENV = "KITHOOKS_BLOCK_PLUGINS"
#: When set to a non-empty value other than ``0``, ``load_entrypoints`` loads nothing.
DISABLE_ENTRYPOINTS_ENV = "KITHOOKS_DISABLE_ENTRYPOINTS"

#: ``LoadError.kind`` of plugins that came from files (dropped and re-read by ``reload``).
FILE_KINDS: Final = frozenset({"file", "directory", "class"})


@attrs.frozen(kw_only=True)
class PluginSource:
    """Where a registered plugin came from."""

    #: ``"entrypoint"`` (the entry point's object, or a class or instance of the module it
    #: names), ``"file"`` (a module, or the command hooks of a ``hooks.json``),
    #: ``"directory"`` (``<name>/main.py`` or a package ``<name>/__init__.py``), ``"class"``
    #: (a class in a file, built, or an instance of one made there) or ``"object"``
    kind: str
    name: str
    location: str = ""  #: the file's path, or the entry point's ``module:attr``
    distribution: str = ""  #: for entry points: the distribution's name
    version: str = ""  #: for entry points: the distribution's version


@attrs.frozen(kw_only=True)
class LoadError:
    """A plugin that could not be loaded or registered, and why. It was left out entirely."""

    name: str
    #: ``"entrypoint"``, ``"file"``, ``"directory"`` or ``"class"`` (see :class:`PluginSource`)
    kind: str
    location: str
    error: BaseException = attrs.field(eq=False)
    distribution: str = ""  #: for entry points: the distribution that declares it
    #: A reload whose new version of the file failed: the plugins of the file's previous,
    #: working version, which stay registered (``()``: nothing was kept).
    kept: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        """One line: which plugin, from where, and the error (and what was kept)."""
        where = f"{self.kind} {self.location}"
        if self.distribution:
            where += f" of distribution {self.distribution!r}"
        text = (
            f"plugin {self.name!r} ({where}) failed to load: "
            f"{type(self.error).__name__}: {_describe(self.error)}"
        )
        if self.kept:
            names = ", ".join(map(repr, self.kept))
            text += (
                f"; the previous version of {self.location} is kept ({names} stay registered) "
                "until it loads again"
            )
        return text


@attrs.frozen(kw_only=True)
class Skipped:
    """Something the loader found and did not load, and why: ``kithooks plugins`` lists it.

    A file or folder of a plugin directory skipped by its name (``test_gate.py``,
    ``_helpers/``), or a class with hooks in a plugin's module that is not built (imported
    into it, not defined there). The second kind is ``warning``: logged at WARNING on logger
    ``kithooks.loading``, since a guard the author meant to load would not run; the first is
    logged at INFO.
    """

    #: ``"file"``, ``"directory"``, ``"class"`` or ``"entrypoint"`` (as :class:`LoadError`)
    kind: str
    location: str  #: the path, or the entry point's value
    reason: str  #: one sentence: what was skipped and why, and how to load it
    warning: bool = False  #: True for something with hooks that will not run

    @property
    def message(self) -> str:
        """One line: where, and why it was skipped."""
        return f"skipped {self.location}: {self.reason}"


def _describe(error: BaseException) -> str:
    try:
        text = str(error)
    except Exception:  # an exception whose __str__ raises still gets reported
        return f"<{type(error).__name__} whose str() raised>"
    if isinstance(error, SystemExit):
        return f"sys.exit({error.code!r}) while importing"
    return text


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


#: The directory that marks a project (and holds its ``plugins/`` and ``hooks.json``).
PROJECT_MARKER = ".kithooks"


def find_project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The project ``start`` (the working directory by default) belongs to: the nearest
    directory holding ``.kithooks``, from ``start`` upwards; ``start`` itself when none does.

    Every command finds the project this way (as git finds its repository), so its guards
    apply in a subdirectory of the project too (a shell that ran ``cd src``).
    """
    begin = Path(start if start is not None and str(start) else os.getcwd()).absolute()
    for directory in (begin, *begin.parents):
        if (directory / PROJECT_MARKER).is_dir():
            return directory
    return begin


def default_project_dir(cwd: str | os.PathLike[str] | None = None) -> Path:
    """``.kithooks/plugins`` of the project: under :func:`find_project_root` of the working
    directory by default, or under ``cwd`` itself when given (a project root already found)."""
    root = find_project_root() if cwd is None or not str(cwd) else Path(cwd)
    return root / PROJECT_MARKER / "plugins"


# --------------------------------------------------------------------------- finding


@attrs.frozen
class _Found:
    """One plugin file or directory plugin found on disk."""

    name: str  #: the file's stem, or the directory's name
    path: Path  #: the resolved file (``x.py``) or directory (``<name>/``)
    kind: str  #: ``"file"`` or ``"directory"``


def _skipped(name: str) -> bool:
    stem = name.removesuffix(".py")
    return stem.startswith(("_", ".", "test_")) or stem.endswith("_test") or stem == "conftest"


def _is_directory_plugin(path: Path) -> bool:
    return (path / "main.py").is_file() or (path / "__init__.py").is_file()


def _python_files(directory: Path) -> list[str]:
    try:
        return sorted(p.name for p in directory.iterdir() if p.suffix == ".py" and p.is_file())
    except OSError:
        return []


def _skip_note(entry: Path) -> Skipped | None:
    """The note for an entry of a plugin directory skipped by its name, when it holds Python
    (a ``.py`` file, or a folder with ``.py`` files); hidden entries and caches need none."""
    if entry.name.startswith(".") or entry.name == "__pycache__":
        return None
    if entry.is_file() and entry.suffix == ".py":
        kind = "file"
    elif entry.is_dir() and _python_files(entry):
        kind = "directory"
    else:
        return None
    if entry.name.startswith("_"):
        why = "its name starts with _ (private: helpers, not plugins)"
    else:
        why = "it is named like a test (test_*, *_test and conftest are not plugins)"
    return Skipped(kind=kind, location=str(entry), reason=why)


def _folder_without_entry(entry: Path) -> LoadError:
    files = _python_files(entry)
    shown = ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")
    return LoadError(
        name=entry.name,
        kind="directory",
        location=str(entry),
        error=FileNotFoundError(
            f"plugin folder {str(entry)!r} holds Python files ({shown}) but neither main.py "
            "nor __init__.py, so none of them is loaded: name the plugin's file main.py (or "
            "add an __init__.py), or start the folder's name with _ if it holds no plugin"
        ),
    )


def _plugins_in(directory: Path) -> Iterator[_Found | LoadError | Skipped]:
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        if _skipped(entry.name):
            note = _skip_note(entry)
            if note is not None:
                yield note
            continue
        if entry.is_file() and entry.suffix == ".py":
            yield _Found(entry.stem, entry.resolve(), "file")
        elif entry.is_dir() and _is_directory_plugin(entry):
            yield _Found(entry.name, entry.resolve(), "directory")
        elif entry.is_dir() and _python_files(entry):
            yield _folder_without_entry(entry)


def _find(dirs: Iterable[Path], paths: Iterable[Path]) -> Iterator[_Found | LoadError | Skipped]:
    """Plugins in ``dirs`` (plugin directories; a missing one is skipped), then ``paths``.

    An explicit path is a ``.py`` file, a directory plugin (holding ``main.py`` or
    ``__init__.py``) or a plugin directory; a path that is none of these is a LoadError.
    """
    for directory in dirs:
        if directory.is_dir():
            yield from _plugins_or_nothing(directory, explicit=False)
    for path in paths:
        if path.is_file() and path.suffix == ".py":
            yield _Found(path.stem, path.resolve(), "file")
        elif path.is_dir() and _is_directory_plugin(path):
            yield _Found(path.name, path.resolve(), "directory")
        elif path.is_dir():
            yield from _plugins_or_nothing(path, explicit=True)
        else:
            problem = "does not exist" if not path.exists() else "is not a .py file or a directory"
            yield _path_error(path, problem)


def _path_error(path: Path, problem: str) -> LoadError:
    return LoadError(
        name=path.name,
        kind="file",
        location=str(path),
        error=FileNotFoundError(f"plugin path {str(path)!r} {problem}"),
    )


def _plugins_or_nothing(
    directory: Path, *, explicit: bool
) -> Iterator[_Found | LoadError | Skipped]:
    """The plugins in ``directory``; none at all is a LoadError when the directory was named
    explicitly (``-p DIR``), or when its ``plugins`` subdirectory holds some (the project's
    ``.kithooks`` given where ``.kithooks/plugins`` was meant). An empty default plugin
    directory is no mistake."""
    found = list(_plugins_in(directory))
    inner = directory / "plugins"
    if (
        not any(isinstance(f, _Found) for f in found)
        and inner.is_dir()
        and any(isinstance(f, _Found) for f in _plugins_in(inner))
    ):
        # not "a folder without main.py": the project's .kithooks, given for its plugins/
        yield from (f for f in found if getattr(f, "location", "") != str(inner))
        yield _path_error(directory, f"holds no plugin, but {str(inner)!r} does: name that one")
        return
    yield from found
    if any(not isinstance(f, Skipped) for f in found):
        return
    if explicit:
        yield _path_error(directory, "holds no plugin (no .py file, no directory plugin)")


# --------------------------------------------------------------------------- importing


def module_name_for(path: Path) -> str:
    """The private ``sys.modules`` name a plugin file or directory is imported under."""
    import hashlib  # here: most processes that import kithooks load no plugin file

    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    ident = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"_kithooks_plugin_{ident}_{digest}"


def _exec_source(module: ModuleType, path: Path) -> None:
    # Compiled from the source each time (no bytecode cache), so a reload always sees the
    # file as it is now, even when it changed twice within the cache's mtime resolution.
    code = compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
    exec(code, module.__dict__)


def import_plugin_file(path: Path) -> ModuleType:
    """Import one plugin file as a fresh module (re-reading it from disk)."""
    name = module_name_for(path)
    module = ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    try:
        _exec_source(module, path)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def import_plugin_directory(directory: Path) -> ModuleType:
    """Import a directory plugin; returns its ``main`` module, else its package.

    The directory is a package (its ``__init__.py`` run first when there is one), so
    ``main.py`` and ``__init__.py`` can import their siblings with ``from . import helper``.
    """
    name = module_name_for(directory)
    package = ModuleType(name)
    init = directory / "__init__.py"
    package.__file__ = str(init)
    package.__path__ = [str(directory)]
    package.__package__ = name
    package.__spec__ = importlib.machinery.ModuleSpec(name, None, origin=str(init), is_package=True)
    package.__spec__.submodule_search_locations = [str(directory)]
    sys.modules[name] = package
    try:
        if init.is_file():
            _exec_source(package, init)
        main = directory / "main.py"
        if not main.is_file():
            return package
        module = ModuleType(f"{name}.main")
        module.__file__ = str(main)
        module.__package__ = name
        sys.modules[module.__name__] = module
        _exec_source(module, main)
        package.main = module  # type: ignore[attr-defined]
        return module
    except BaseException:
        forget_modules(directory)
        raise


def forget_modules(path: Path) -> None:
    """Drop a plugin file's or directory's modules (and its submodules) from ``sys.modules``."""
    name = module_name_for(path)
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


# --------------------------------------------------------------------------- shapes


def _is_marked(pm: PluginManager, obj: object, attr: str) -> bool:
    try:
        return pm.parse_hookimpl_opts(obj, attr) is not None
    except Exception:
        return False


def _has_hooks(pm: PluginManager, obj: object) -> bool:
    """True when ``obj`` has a marked hookimpl or a custom-event handler (a class's own
    attributes are read too: ``dir`` of an ``Enum`` class hides its methods)."""
    every = set(dir(obj))
    if inspect.isclass(obj):
        for klass in obj.__mro__:
            every.update(vars(klass))
    names = (attr for attr in every if not attr.startswith("__"))  # no dunder is a hook
    return any(_is_marked(pm, obj, attr) for attr in names) or bool(custom_handlers_of(obj))


def _named_like_hooks(obj: object) -> bool:
    """True when ``obj`` has a function named like a kithooks hook (marked or not).

    ``PluginManager.register`` refuses such a function when it is not marked; the loader
    registers such an object so that the refusal is reported, instead of skipping it.
    """
    return any(static_function(obj, a) is not None for a in KIT_HOOKS.intersection(dir(obj)))


def _looks_like_plugin(pm: PluginManager, obj: object) -> bool:
    return _has_hooks(pm, obj) or _named_like_hooks(obj)


def _defined_classes(module: ModuleType) -> list[type]:
    """The classes bound in ``module`` that were defined there (not imported), in order."""
    return [
        v for v in vars(module).values() if inspect.isclass(v) and v.__module__ == module.__name__
    ]


def _class_has_hooks(pm: PluginManager, cls: type) -> bool:
    try:
        return _has_hooks(pm, cls)
    except Exception:  # a class whose attributes cannot be listed holds no hook we can see
        return False


def _plugin_classes(pm: PluginManager, module: ModuleType) -> list[type]:
    """The classes of ``module`` that are plugins when no instance of them is, in order.

    Defined there (not imported), public (no leading ``_``), not abstract, not a base of
    another class defined there, and with a marked method (or one named like a hook, which
    is then refused as unmarked).
    """
    defined = _defined_classes(module)
    bases = {base for cls in defined for base in cls.__mro__[1:]}
    return [
        cls
        for cls in dict.fromkeys(defined)  # a class bound twice (an alias) is one plugin
        if not cls.__name__.startswith("_")
        and not inspect.isabstract(cls)
        and cls not in bases
        and _looks_like_plugin(pm, cls)
    ]


def _is_instance_plugin(pm: PluginManager, value: object, classes: Sequence[type]) -> bool:
    """True when ``value`` is an instance of a class with hooks (a plugin class of the
    module, or any class with a marked method or a custom-event handler)."""
    if inspect.isclass(value) or inspect.ismodule(value) or inspect.isroutine(value):
        return False
    cls = type(value)
    if cls.__module__ == "builtins":
        return False
    return cls in classes or _class_has_hooks(pm, cls)


def _defined_at(cls: type) -> str:
    """``file:line`` of a class's definition, or ``""`` when its source cannot be found."""
    try:
        return (
            f"{inspect.getsourcefile(cls) or inspect.getfile(cls)}:{inspect.getsourcelines(cls)[1]}"
        )
    except (OSError, TypeError):
        return ""


def module_plugins(
    pm: PluginManager, module: ModuleType, base: str, where: str
) -> tuple[list[tuple[str, object]], list[Skipped]]:
    """The plugins ``module`` gives when it is loaded as a plugin, and what it skips.

    The one rule for a module as a plugin, whichever way it was loaded (a plugin file, a
    directory plugin, an entry point naming a module), in the module's namespace order:

    - the module itself, named ``base``, when it has module-level hooks;
    - each public module-level *instance* of a class with hooks, registered as it is (a
      configured guard, ``plugin = Gate(words=...)``), named ``<base>:<variable>``; the same
      object bound twice is one plugin;
    - each class *defined* in the module that is a plugin (:func:`_plugin_classes`) and has
      no public instance in the module, built with no arguments and named
      ``<base>:<ClassName>``; one that cannot be built gives, in place of the object, a
      :class:`TypeError` naming the class, its file and line.

    Returns ``(name, object or error)`` pairs, and a warning :class:`Skipped` for each public
    class with hooks imported into the module (defined elsewhere, so not built) that is no
    base of a plugin class here and has no instance here. ``where`` says what was loaded
    (for the messages). No pair at all means the module holds no plugin.
    """
    out: list[tuple[str, object]] = []
    if _looks_like_plugin(pm, module):
        out.append((base, module))
    classes = _plugin_classes(pm, module)
    namespace = list(vars(module).items())
    instances = {
        id(value): (attr, value)
        for attr, value in reversed(namespace)  # reversed: the first name of an object wins
        if not attr.startswith("_") and _is_instance_plugin(pm, value, classes)
    }
    configured = {type(value) for _, value in instances.values()}
    done: set[int] = set()
    for attr, value in namespace:
        if id(value) in done:
            continue
        if inspect.isclass(value) and value in classes and value not in configured:
            done.add(id(value))
            label = f"{base}:{value.__name__}"
            instead = f"make the configured instance in the module ({attr.lower()} = {attr}(...))"
            try:
                out.append((label, _instantiate(value, label, where, instead)))
            except TypeError as exc:
                out.append((label, exc))
        elif instances.get(id(value), (None, None))[0] == attr:
            done.add(id(value))
            out.append((f"{base}:{attr}", value))
    covered = {k for cls in (*_defined_classes(module), *configured) for k in cls.__mro__}
    skipped = [
        Skipped(
            kind="class",
            location=where,
            warning=True,
            reason=(
                f"class {value.__name__} (imported from {value.__module__}) has hooks but is "
                "not built: only classes defined in the module are; define a subclass there "
                f"(class My{value.__name__}({value.__name__}): ...) or create an instance "
                f"there ({attr.lower()} = {attr}())"
            ),
        )
        for attr, value in namespace
        if inspect.isclass(value)
        and value.__module__ != module.__name__
        and not attr.startswith("_")
        and value not in covered
        and value.__module__.partition(".")[0] != "kithooks"  # kithooks' own types: tools
        and not inspect.isabstract(value)
        and _class_has_hooks(pm, value)
    ]
    return out, skipped


def _holds_plugins(pm: PluginManager, module: ModuleType) -> bool:
    """True when :func:`module_plugins` would give ``module`` some plugin (nothing built)."""
    classes = _plugin_classes(pm, module)
    return (
        bool(classes)
        or _looks_like_plugin(pm, module)
        or any(
            not attr.startswith("_") and _is_instance_plugin(pm, value, classes)
            for attr, value in vars(module).items()
        )
    )


def _instantiate(cls: type, label: str, where: str, instead: str) -> object:
    """``cls()``, or a TypeError naming the plugin, the class and where it is defined, and
    the way to configure it (``instead``: a configured instance where it would be used)."""
    try:
        return cls()
    except (Exception, SystemExit) as exc:
        at = _defined_at(cls)
        raise TypeError(
            f"plugin {label!r}: class {cls.__name__} in {where}"
            + (f" (defined at {at})" if at else "")
            + f" cannot be built with no arguments ({type(exc).__name__}: {_describe(exc)}); "
            f"give its __init__ defaults, {instead}: it is registered as it is instead, or "
            "register an instance from your host"
        ) from exc


def _refuse_if_nothing_runs(pm: PluginManager, obj: object, name: str, what: str) -> None:
    """Unregister ``obj`` (registered as ``name``) and raise when no hook of it can run."""
    callers = pm.get_hookcallers(obj) or []
    if not any(c.has_spec() for c in callers) and not custom_handlers_of(obj):
        # Only optional hooks no spec knows: as a plugin, it would do nothing.
        pm.unregister(name=name)
        unknown = ", ".join(sorted(c.name for c in callers)) or "none"
        raise PluginValidationError(
            obj,
            f"plugin {name!r}: {what} has no hook that can run (its marked functions, "
            f"{unknown}, are optional hooks that match no hook; kithooks hooks are named "
            "on_<event>)",
        )


def register_plugin(pm: PluginManager, plugin: object, name: str | None = None) -> str | None:
    """Register a plugin object or module as the loader registers what it finds.

    Unlike a bare ``pm.register`` (which lets a host register any object), an object with
    no hook at all, or with only optional hooks that match no hook, is refused with a
    :class:`pluggy.PluginValidationError` naming it (and left unregistered). Returns the
    name registered, or None when the name is blocked. ``kithooks.testing`` loads objects
    this way, so a plugin that would do nothing fails its tests instead of passing them.
    """
    shown = name or getattr(plugin, "__name__", None) or type(plugin).__name__
    if isinstance(plugin, ModuleType):
        what = f"module {plugin.__name__}"
    else:
        what = f"{type(plugin).__name__} object"
    if not _looks_like_plugin(pm, plugin):
        raise PluginValidationError(
            plugin,
            f"plugin {shown!r}: {what} has no hooks; mark its hook functions or methods with "
            "@kithooks.hookimpl",
        )
    label = pm.register(plugin, name=name)
    if label is not None:
        _refuse_if_nothing_runs(pm, plugin, label, what)
    return label


# --------------------------------------------------------------------------- the loader


@attrs.frozen
class _Previous:
    """What one file gave before a reload: its plugins (name, object, source) and modules."""

    plugins: tuple[tuple[str, object, PluginSource | None], ...]
    modules: dict[str, ModuleType]


def _modules_of(path: Path) -> dict[str, ModuleType]:
    name = module_name_for(path)
    return {k: m for k, m in sys.modules.items() if k == name or k.startswith(name + ".")}


@attrs.frozen
class _Batch:
    seq: int
    dirs: tuple[Path, ...]
    paths: tuple[Path, ...]
    #: also the ``hooks.json`` beside each of ``dirs``, as command-hook plugins
    command_hooks: bool = False


class Loader:
    """Loads plugins into one :class:`~kithooks.PluginManager` and reloads the file plugins.

    A plugin file (``x.py``), a directory plugin (``<name>/main.py``, or a package
    ``<name>/__init__.py``) and an entry point naming a module give the same plugins, by
    the one rule of :func:`module_plugins` (``<base>`` is the file's stem, the directory's
    name or the entry point's name):

    - ``<base>``: the module, holding its module-level hookimpls, when it has any;
    - ``<base>:<variable>``: each public module-level instance of a class with hooks (a
      configured guard), registered as it is;
    - ``<base>:<ClassName>``: each class *defined* in it (not imported) with at least one
      marked method and no public instance there, built with no arguments (private
      classes, abstract classes and classes other classes of the module derive from are
      not plugins).

    A module giving no plugin, a class that cannot be built, a function named like a hook
    but not marked, and a folder of a plugin directory holding ``.py`` files but neither
    ``main.py`` nor ``__init__.py`` are each a :class:`LoadError`; the others still load.
    A class with hooks imported into the module (and so not built), and a file or folder
    skipped by its name (``test_*``, ``_*``) are each a :class:`Skipped` note.

    :meth:`reload` keeps a file's previous version when its new version fails to load (see
    there).
    """

    def __init__(self, pm: PluginManager) -> None:
        self._pm = pm
        self._batches: list[_Batch] = []
        #: file plugins by the resolved path they came from (a file or a directory)
        self._from_path: dict[Path, list[str]] = {}
        #: the paths whose plugins come from a version that loaded without a load error
        self._clean: set[Path] = set()
        #: during a reload: the previous version of each clean path, kept if its new fails
        self._previous: dict[Path, _Previous] = {}
        #: what was found and not loaded (see :func:`skipped`)
        self.skipped: list[Skipped] = []

    # ------------------------------------------------------------------ entry points

    def load_entrypoints(self, group: str) -> list[str]:
        """Register every plugin of the entry-point ``group``; returns the names registered.

        Entry points load in the order of their names (then of their distributions' names),
        whatever order the installer wrote them in, so the handlers' order (and which guard
        answers first) does not depend on how the distributions were built or installed.
        """
        if entrypoints_disabled():
            return []
        pm = self._pm
        blocked = blocked_names()
        loaded: list[str] = []
        import importlib.metadata  # here: reading entry points is slow to import

        def dist_name(ep: importlib.metadata.EntryPoint) -> str:
            return ep.dist.metadata["Name"] if ep.dist is not None else ""

        found = importlib.metadata.entry_points(group=group)
        for ep in sorted(found, key=lambda ep: (ep.name, dist_name(ep), ep.value)):
            if ep.name in blocked or pm.is_blocked(ep.name):
                continue
            dist = ep.dist
            source = PluginSource(
                kind="entrypoint",
                name=ep.name,
                location=ep.value,
                distribution=dist_name(ep),
                version=dist.version if dist is not None else "",
            )
            if self._same_entrypoint(source):
                continue  # loaded by an earlier call: nothing to do
            try:
                if pm.get_plugin(ep.name) is not None:  # not even imported then
                    raise ValueError(self._taken(ep.name))
                plugins = self._entrypoint_plugins(ep)
            except (Exception, SystemExit) as exc:
                self._failed(self._entrypoint_error(ep.name, source, exc))
                continue
            for label, obj in plugins:
                if label in blocked or pm.is_blocked(label):
                    continue
                try:
                    if isinstance(obj, BaseException):
                        raise obj
                    if pm.get_plugin(label) is not None:
                        raise ValueError(self._taken(label))
                    what = f"entry point {ep.name} = {ep.value}"
                    screened = isinstance(obj, ModuleType) or label != ep.name
                    named = attrs.evolve(source, name=label)
                    self._register(obj, label, what, named, screened=screened)
                except (Exception, SystemExit) as exc:
                    self._failed(self._entrypoint_error(label, source, exc))
                    continue
                loaded.append(label)
        return loaded

    @staticmethod
    def _entrypoint_error(name: str, source: PluginSource, exc: BaseException) -> LoadError:
        return LoadError(
            name=name,
            kind="entrypoint",
            location=source.location,
            distribution=source.distribution,
            error=exc,
        )

    def _same_entrypoint(self, source: PluginSource) -> bool:
        """True when a plugin of that very entry point (``source``) is registered."""
        mine = (source.location, source.distribution)
        return any(
            held.kind == "entrypoint"
            and (held.location, held.distribution) == mine
            and (held.name == source.name or held.name.startswith(source.name + ":"))
            for held in list(self._pm._sources.values())
            if self._pm.get_plugin(held.name) is not None
        )

    def _taken(self, name: str) -> str:
        return (
            f"the name {name!r} is already taken by {self._holder(name)}; plugin names are "
            "unique, so one of the two must be renamed"
        )

    def _holder(self, name: str) -> str:
        """What holds the plugin name ``name``, for an error naming both sides."""
        pm = self._pm
        plugin = pm.get_plugin(name)
        held = pm.plugin_source(name)
        if type(plugin) is TurnAggregator:  # a subclass is the host's plugin (below)
            return "kithooks' built-in turn aggregator"
        if held is None or held.kind == "object":
            if isinstance(plugin, ModuleType):
                shown = f"module {plugin.__name__}"
            else:
                shown = type(plugin).__name__
            return f"a plugin the host registered ({shown})"
        if held.kind == "entrypoint":
            return (
                f"entry point {held.name} = {held.location} of distribution "
                f"{held.distribution!r} {held.version}"
            ).strip()
        return f"the {held.kind} plugin {held.location}"

    def _entrypoint_plugins(self, ep: importlib.metadata.EntryPoint) -> list[tuple[str, object]]:
        """``(name, plugin object or the error)`` for what the entry point ``ep`` names: a
        module gives what :func:`module_plugins` finds in it (as a plugin file would), a class
        is built with no arguments, any other object is the plugin as it is."""
        what = f"entry point {ep.name} = {ep.value}"
        obj = ep.load()
        if inspect.isclass(obj):
            instead = f"point the entry point at a configured instance ({ep.module}:plugin)"
            return [(ep.name, _instantiate(obj, ep.name, what, instead))]
        if inspect.isroutine(obj):
            raise TypeError(
                f"{what} is a function; point it at the module holding the hooks or at a "
                "plugin class"
            )
        if not isinstance(obj, ModuleType):
            return [(ep.name, obj)]
        plugins, skipped = module_plugins(self._pm, obj, ep.name, what)
        for note in skipped:
            self._note(attrs.evolve(note, kind="entrypoint", location=ep.value))
        if not plugins:
            raise PluginValidationError(
                obj,
                f"plugin {ep.name!r}: {what} has no hooks; mark functions of module "
                f"{obj.__name__}, or methods of a class defined there, with @kithooks.hookimpl",
            )
        return plugins

    # ------------------------------------------------------------------ files

    def load_files(
        self, dirs: Sequence[Path], paths: Sequence[Path], *, command_hooks: bool = False
    ) -> list[str]:
        """Load the plugins in the plugin directories ``dirs`` then at ``paths``, then (with
        ``command_hooks``) the ``hooks.json`` beside each of ``dirs``.

        Returns the names registered. The batch is remembered for :meth:`reload`.
        """
        batch = _Batch(next(self._pm._seq), tuple(dirs), tuple(paths), command_hooks)
        self._batches.append(batch)
        return self._load(batch)

    def reload(self) -> list[str]:
        """Unregister every file plugin (``hooks.json`` ones too) and load every batch again,
        in order; the load errors of files are reported anew.

        A file (a ``.py`` file, a directory plugin, a ``hooks.json``) whose previous version
        loaded without a load error, and whose new version gives any load error (a syntax
        error or truncated JSON while an editor saves it, an import that raises, a class
        that cannot be built, no hook left), keeps its previous version whole: the same
        plugin objects, under their names and in their place, with their modules. Each load
        error is still reported (``load_errors``, ``on_error``, logged), its message saying
        that the previous version is kept. A file that is gone, or blocked, loses its
        plugins; so does a ``hooks.json`` turned off with ``"disableAllHooks": true``.

        The manager runs this inside its ``_swap()``, so dispatch sees the result at once.
        """
        pm = self._pm
        previous: dict[Path, _Previous] = {}
        for path, registered in list(self._from_path.items()):
            plugins = []
            for name in registered:
                plugin = pm.get_plugin(name)
                if plugin is not None:
                    plugins.append((name, plugin, pm.plugin_source(name)))
                    pm.unregister(name=name)
            if plugins and path in self._clean:
                previous[path] = _Previous(tuple(plugins), _modules_of(path))
            forget_modules(path)
        self._from_path.clear()
        self._clean.clear()
        pm.load_errors[:] = [e for e in pm.load_errors if e.kind not in FILE_KINDS]
        self.skipped[:] = [n for n in self.skipped if n.kind not in FILE_KINDS]
        self._previous = previous
        names: list[str] = []
        try:
            for batch in self._batches:
                names.extend(self._load(batch))
        finally:
            self._previous = {}
        return names

    def _settle(
        self,
        path: Path,
        registered: list[str],
        errors: list[LoadError],
        order: tuple[int, int],
        blocked: frozenset[str],
    ) -> None:
        """Report ``errors``, the load errors of ``path``'s new version (``registered``: the
        names it registered). When it has some and a reload holds the file's previous clean
        version, that version replaces the new one in ``registered``, at ``order``."""
        previous = self._previous.pop(path, None)
        if not errors:
            if registered:
                self._clean.add(path)
            return
        if previous is not None:
            kept = self._restore(path, previous, registered, order, blocked)
            if kept:
                self._clean.add(path)
                errors = [attrs.evolve(e, kept=tuple(kept)) for e in errors]
        for error in errors:
            self._failed(error)

    def _restore(
        self,
        path: Path,
        previous: _Previous,
        registered: list[str],
        order: tuple[int, int],
        blocked: frozenset[str],
    ) -> list[str]:
        """Put ``previous`` back in place of the new version's plugins ``registered``."""
        pm = self._pm
        for name in registered:
            if pm.get_plugin(name) is not None:
                pm.unregister(name=name)
        registered.clear()
        forget_modules(path)
        sys.modules.update(previous.modules)
        seq, position = order
        for name, plugin, source in previous.plugins:
            if name in blocked or pm.is_blocked(name):
                continue
            kind = source.kind if source is not None else "file"
            label = name
            if pm.get_plugin(name) is not None:
                # Another file took the name in this reload: the name a fresh load of this
                # one would get then (its path), so the working version is not lost.
                label = f"{path}:{name.rsplit(':', 1)[1]}" if kind == "class" else str(path)
            pm._pending_order = (seq, position + len(registered))
            try:
                pm.register(plugin, name=label)
            except Exception as exc:  # not even that name is free: said, not raised
                self._failed(LoadError(name=name, kind=kind, location=str(path), error=exc))
                continue
            finally:
                pm._pending_order = None
            if source is not None:
                pm._sources[label] = attrs.evolve(source, name=label)
            registered.append(label)
        return list(registered)

    def _load(self, batch: _Batch) -> list[str]:
        pm = self._pm
        blocked = blocked_names()
        names: list[str] = []
        position = 0
        for found in _find(batch.dirs, batch.paths):
            if isinstance(found, LoadError):
                self._failed(found)
                continue
            if isinstance(found, Skipped):
                self._note(found)
                continue
            if found.path in self._from_path:  # reached through another directory
                continue
            if found.name in blocked or pm.is_blocked(found.name):
                continue
            registered: list[str] = []
            errors: list[LoadError] = []
            self._from_path[found.path] = registered
            try:
                self._load_found(found, batch.seq, position, blocked, registered, errors=errors)
            except BaseException:  # KeyboardInterrupt: a retry must not skip this path
                if not registered:
                    del self._from_path[found.path]
                raise
            self._settle(found.path, registered, errors, (batch.seq, position), blocked)
            position += len(registered)
            names += registered
            if not registered:
                forget_modules(found.path)
        if batch.command_hooks:
            names += self._load_command_hooks(batch, position, blocked)
        return names

    def _load_command_hooks(
        self, batch: _Batch, position: int, blocked: frozenset[str]
    ) -> list[str]:
        """The ``hooks.json`` beside each plugin directory of ``batch``: one command-hook
        plugin per file, after the batch's file plugins. A file that is not valid or gives
        no hook that can run is a load error; one with ``"disableAllHooks": true`` gives no
        plugin (a warning says its hooks are off)."""
        from .command_hooks import SETTINGS_FILE, plugins_for  # it imports this module

        pm = self._pm
        names: list[str] = []
        for path in dict.fromkeys(d.parent / SETTINGS_FILE for d in batch.dirs):
            if not path.is_file():
                continue
            resolved = path.resolve()
            if resolved in self._from_path:  # loaded by another batch, or the same file twice
                continue
            plugins, errors = plugins_for([path])
            registered: list[str] = []
            self._from_path[resolved] = registered
            start = position + len(names)
            for plugin in plugins:
                name = plugin.__name__
                if name in blocked or pm.is_blocked(name):
                    continue
                pm._pending_order = (batch.seq, start + len(registered))
                try:
                    source = PluginSource(kind="file", name=name, location=str(path))
                    self._register(plugin, name, f"settings file {path}", source)
                except Exception as exc:
                    errors.append(LoadError(name=name, kind="file", location=str(path), error=exc))
                    continue
                finally:
                    pm._pending_order = None
                registered.append(name)
            self._settle(resolved, registered, errors, (batch.seq, start), blocked)
            names.extend(registered)
        return names

    def _load_found(
        self,
        found: _Found,
        seq: int,
        position: int,
        blocked: frozenset[str],
        registered: list[str],
        *,
        errors: list[LoadError],
    ) -> None:
        """Register what ``found`` provides, appending each name to ``registered`` and each
        load error to ``errors``."""
        pm = self._pm
        where = str(found.path)
        plugins = self._plugins_of(found, found.name)
        if any(pm.get_plugin(label) is not None for label, _, _ in plugins):
            # Another plugin has one of its names: all of them go by the file's path.
            plugins = [(where + label[len(found.name) :], k, o) for label, k, o in plugins]
        for label, kind, obj in plugins:
            if label in blocked or pm.is_blocked(label):
                continue
            if isinstance(obj, BaseException):
                errors.append(LoadError(name=label, kind=kind, location=where, error=obj))
                continue
            pm._pending_order = (seq, position + len(registered))
            try:
                source = PluginSource(kind=kind, name=label, location=where)
                self._register(obj, label, f"{kind} {where}", source, screened=True)
            except Exception as exc:
                errors.append(LoadError(name=label, kind=kind, location=where, error=exc))
                continue
            finally:
                pm._pending_order = None
            registered.append(label)

    def _plugins_of(self, found: _Found, base: str) -> list[tuple[str, str, object]]:
        """``(name, kind, plugin object or the error)`` for everything ``found`` provides."""
        pm = self._pm
        try:
            if found.kind == "directory":
                module = import_plugin_directory(found.path)
            else:
                module = import_plugin_file(found.path)
        except (Exception, SystemExit) as exc:
            forget_modules(found.path)
            return [(base, found.kind, exc)]
        out: list[tuple[str, str, object]] = []
        package = sys.modules.get(module.__name__.removesuffix(".main"))
        if package is not None and package is not module and _holds_plugins(pm, package):
            # main.py is the plugin: hooks in __init__.py would silently never run
            message = (
                f"plugin {base!r}: both __init__.py and main.py in {found.path} hold hooks; "
                "main.py is the plugin, so move the hooks of __init__.py into it"
            )
            return [(base, found.kind, PluginValidationError(package, message))]
        plugins, skipped = module_plugins(pm, module, base, f"{found.kind} {found.path}")
        for note in skipped:
            self._note(attrs.evolve(note, location=str(found.path)))
        for label, obj in plugins:
            out.append((label, found.kind if obj is module else "class", obj))
        if not out:
            what = "file" if found.kind == "file" else "directory plugin"
            error = PluginValidationError(
                module,
                f"plugin {base!r}: {what} {found.path} has no hooks; mark functions, or methods "
                "of a class defined there, with @kithooks.hookimpl (an instance of such a "
                "class, made there, is a plugin too)",
            )
            out.append((base, found.kind, error))
        return out

    # ------------------------------------------------------------------ common

    def _register(
        self, obj: object, name: str, what: str, source: PluginSource, *, screened: bool = False
    ) -> None:
        """Register ``obj``; ``screened`` when the caller already found hooks (or hook names)."""
        pm = self._pm
        if not screened and not _looks_like_plugin(pm, obj):
            raise PluginValidationError(
                obj,
                f"plugin {name!r}: {what} has no hooks; mark its hook functions or methods "
                "with @kithooks.hookimpl",
            )
        # refuses a function named like a hook but not marked, and a marked one that matches
        # no hook (unless optionalhook=True): either would never be called
        pm.register(obj, name=name)
        _refuse_if_nothing_runs(pm, obj, name, what)
        pm._sources[name] = source

    def _failed(self, error: LoadError) -> None:
        self._pm._load_failed(error)

    def _note(self, note: Skipped) -> None:
        """Record (once) and log something found and not loaded."""
        if note in self.skipped:
            return
        self.skipped.append(note)
        import logging  # here: ``import kithooks`` leaves logging for its first use

        level = logging.WARNING if note.warning else logging.INFO
        logging.getLogger(__name__).log(level, "%s", note.message)


def skipped(pm: PluginManager) -> list[Skipped]:
    """What ``pm``'s loader found and did not load (see :class:`Skipped`), in the order met;
    a reload lists its files' anew. ``kithooks plugins`` shows them."""
    return list(pm._loader.skipped)
