"""Adapters that make agent frameworks kithooks hosts.

* ``kithooks.adapters.pydantic_ai.KitHooks``: a pydantic-ai capability
  (``pip install 'kithooks[pydantic-ai]'``).
"""
