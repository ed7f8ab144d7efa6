"""Aliases of `iiot.identity.principals` for the modules not yet moved to it."""

from iiot.identity.principals import ApiKeyPrincipal, DevicePrincipal, UserPrincipal

__all__ = ["ApiKeyPrincipal", "DevicePrincipal", "UserPrincipal"]
