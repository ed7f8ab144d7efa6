"""Providers of tenant B's objects for the cross-tenant isolation walk (tests/test_isolation.py).

Each domain adds a module here; `registry.load_providers()` imports them all.
"""
