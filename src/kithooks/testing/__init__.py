"""Tools for testing plugins and hosts: hypothesis strategies for every payload and result.

``kithooks.testing.strategies`` needs hypothesis (``pip install 'kithooks[test]'``).
"""
