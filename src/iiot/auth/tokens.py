"""Aliases of `iiot.identity.tokens` for the modules not yet moved to it."""

from iiot.identity.tokens import AccessClaims, digest

__all__ = ["AccessClaims", "digest"]
