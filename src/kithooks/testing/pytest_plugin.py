"""The kithooks pytest plugin (entry point ``pytest11``), for plugin authors.

Its fixtures do nothing unless a test asks for them:

* ``kithooks_manager``: a fresh :class:`~kithooks.PluginManager` that loads no entry
  points, with its state in the test's temporary directory.
* ``kithooks_harness``: a factory, ``kithooks_harness(plugin, ...)`` returns a
  :class:`~kithooks.testing.Harness` around ``plugin`` (an object, module or ``.py`` path),
  its state in the test's temporary directory.
* ``kithooks_contract``: :func:`~kithooks.testing.contract.check_contract`, which
  property-tests a plugin against every hook it implements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..manager import PluginManager
from ..state import StateStore
from .harness import Harness


@pytest.fixture
def kithooks_manager(tmp_path: Path) -> PluginManager:
    """A fresh manager without entry points; state in ``tmp_path/session.ext-state.json``."""
    return PluginManager(state=StateStore(tmp_path / "session.ext-state.json"))


@pytest.fixture
def kithooks_harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    """Make harnesses: ``kithooks_harness(plugin, context={"session_id": "s"})``."""
    made: list[Harness] = []

    def make(*plugins: object, **kwargs: Any) -> Harness:
        kwargs.setdefault("state_dir", tmp_path / f"harness-{len(made)}")
        harness = Harness(*plugins, **kwargs)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()


@pytest.fixture
def kithooks_contract() -> Callable[..., list[str]]:
    """``kithooks_contract(plugin)`` property-tests every hook the plugin implements."""
    from .contract import check_contract

    return check_contract
