"""Aliases of `iiot.identity.denylist` for the modules not yet moved to it."""

from iiot.identity.denylist import deny_list

__all__ = ["deny_list"]
