"""Tools for testing plugins and hosts.

* :class:`Harness`: load a plugin, emit events, get the merged results, and see every
  call the plugin made to the host (prints, messages, aborts, custom events, state).
* :func:`check_contract` (``kithooks.testing.contract``, needs hypothesis): property-test
  a plugin against every hook it implements, dispatching drawn events through a real
  manager; :func:`acheck_contract` is the same for async code (an async test).
* ``kithooks.testing.strategies`` (needs hypothesis): strategies for every payload and
  result, any event, and whole turns.
* ``kithooks.testing.conformance`` (needs pytest): the adapter conformance suite; an
  adapter author supplies a small ``Adapter`` and subclasses ``AdapterConformance`` to get
  every adapter promise as a parametrized test (see docs/adapters.md).
* A pytest plugin (installed with kithooks) with the fixtures ``kithooks_manager``,
  ``kithooks_harness`` and ``kithooks_contract``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .harness import Harness, HostCall, PluginFailed

if TYPE_CHECKING:
    from .contract import ContractViolation, acheck_contract, check_contract

__all__ = [
    "ContractViolation",
    "Harness",
    "HostCall",
    "PluginFailed",
    "acheck_contract",
    "check_contract",
]


def __getattr__(name: str) -> Any:
    # The contract checks need hypothesis; import them only when asked for.
    if name in ("acheck_contract", "check_contract", "ContractViolation"):
        from . import contract

        return getattr(contract, name)
    raise AttributeError(f"module 'kithooks.testing' has no attribute {name!r}")
