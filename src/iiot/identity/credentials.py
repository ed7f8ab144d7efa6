"""How a caller presents a credential, parsed in one place.

A user access token comes as `Authorization: Bearer <jwt>`; an API key (`ik_...`) or a device
token (`dt_...`) comes in `X-API-Key` or as a bearer token. The prefixes are defined here
once, for the services that issue the secrets and the resolvers that read them.
"""

from __future__ import annotations

from starlette.requests import Request

API_KEY_PREFIX = "ik_"
DEVICE_TOKEN_PREFIX = "dt_"  # noqa: S105 - a prefix, not a secret


class MalformedAuthorization(ValueError):
    """An Authorization header that is not `Bearer <token>`."""


def bearer(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>`; None without the header.

    Raises `MalformedAuthorization` for any other Authorization header."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        raise MalformedAuthorization("malformed Authorization header")
    return value


def presented(request: Request, prefix: str) -> str | None:
    """The credential starting with `prefix` in `X-API-Key` or as a bearer token, if any."""
    key = request.headers.get("x-api-key", "").strip()
    if key.startswith(prefix):
        return key
    try:
        token = bearer(request)
    except MalformedAuthorization:
        return None
    return token if token is not None and token.startswith(prefix) else None
