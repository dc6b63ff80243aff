"""Example plugins shipped with kithooks (``kithooks demo`` runs them).

Each module is a plugin: register the module itself (``pm.register(usage_budget)``) or
load its file (``pm.load_plugin_files([path])``).
"""
