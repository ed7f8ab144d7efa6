"""Aliases of `iiot.identity.credentials` for the modules not yet moved to it."""

from iiot.identity.credentials import API_KEY_PREFIX, MalformedAuthorization, bearer, presented

__all__ = ["API_KEY_PREFIX", "MalformedAuthorization", "bearer", "presented"]
