"""Who is calling: a user, a device or an API key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass(frozen=True)
class UserPrincipal:
    user_id: uuid.UUID
    email: str
    is_system_admin: bool
    token_tenant_id: uuid.UUID | None
    kind: str = field(default="user", init=False)


@dataclass(frozen=True)
class DevicePrincipal:
    tenant_id: uuid.UUID
    device_id: uuid.UUID
    kind: str = field(default="device", init=False)


@dataclass(frozen=True)
class ApiKeyPrincipal:
    tenant_id: uuid.UUID
    key_id: uuid.UUID
    scopes: frozenset[str]
    kind: str = field(default="api_key", init=False)


@dataclass(frozen=True)
class SystemPrincipal:
    """The platform itself (bootstrap, scheduled jobs)."""

    name: str = "system"
    kind: str = field(default="system", init=False)


Principal = UserPrincipal | DevicePrincipal | ApiKeyPrincipal | SystemPrincipal


def principal_actor_id(principal: Principal) -> uuid.UUID | None:
    if isinstance(principal, UserPrincipal):
        return principal.user_id
    if isinstance(principal, DevicePrincipal):
        return principal.device_id
    if isinstance(principal, ApiKeyPrincipal):
        return principal.key_id
    return None
