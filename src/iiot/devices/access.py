"""Caller policy for device-facing routes: a device token, or a tenant member.

A `dt_` token (in `X-API-Key` or `Authorization: Bearer`) resolves to a `DevicePrincipal`
and a `TenantContext` for the device's tenant. This resolver is the only place outside
`iiot.tenancy.resolver` that creates a `TenantContext`: the tenant comes from the credential
row found by the token's digest, never from the request. The context has no membership role
(`role=None`), so role checks refuse a device; routes that accept devices check the
principal instead. `device_context` builds the same context for a device verified by another
transport (MQTT, the ThingsBoard HTTP device API). Any other caller is delegated to `TokenTenant`.
"""

from __future__ import annotations

import uuid

from starlette.requests import Request

from iiot.auth.principals import DevicePrincipal
from iiot.auth.tokens import digest
from iiot.devices.token_cache import token_cache
from iiot.errors import Forbidden, TenantSuspended, Unauthorized
from iiot.runtime import client_ip, get_runtime
from iiot.tenancy.access import Access, TokenTenant
from iiot.tenancy.context import TenantContext
from iiot.tenancy.roles import Role

DEVICE_TOKEN_PREFIX = "dt_"  # noqa: S105
MAX_TOKEN_LENGTH = 256


def presented_device_token(request: Request) -> str | None:
    """The device token the caller sent, if the credential it sent is one."""
    key = request.headers.get("x-api-key")
    if key is not None and key.startswith(DEVICE_TOKEN_PREFIX):
        return key.strip()
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value.startswith(DEVICE_TOKEN_PREFIX):
            return value
    return None


async def resolve_device(request: Request, token: str) -> TenantContext:
    if len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("invalid device token")
    rt = get_runtime(request)
    owner = await token_cache(rt).owner(digest(token))
    if owner is None:
        raise Unauthorized("invalid or revoked device token")
    if owner.tenant_status == "suspended":
        raise TenantSuspended("this tenant is suspended")
    if owner.device_status == "disabled":
        raise Forbidden("this device is disabled")
    request.state.device_token_digest = digest(token)
    return device_context(owner.tenant_id, owner.device_id, client_ip(request))


def device_context(
    tenant_id: uuid.UUID, device_id: uuid.UUID, ip: str | None = None
) -> TenantContext:
    """The context of a device whose credential was verified (by token, or through the
    gateway that speaks for it): the device's tenant, no membership role."""
    return TenantContext(
        tenant_id=tenant_id,
        principal=DevicePrincipal(tenant_id=tenant_id, device_id=device_id),
        role=None,
        is_system_admin=False,
        client_ip=ip,
    )


class DeviceOrMember(Access):
    """A device's own token, or a member of the token's active tenant with `minimum` role."""

    tenant_scoped = True

    def __init__(self, minimum: Role = Role.operator, *, api_key_scope: str | None = None) -> None:
        self.minimum = minimum
        self._member = TokenTenant(minimum, api_key_scope=api_key_scope)
        self.api_key_scope = self._member.api_key_scope
        self.label = f"device token, or {minimum.value}+ of the active tenant"

    async def __call__(self, request: Request) -> TenantContext:
        token = presented_device_token(request)
        if token is not None:
            return await resolve_device(request, token)
        return await self._member(request)
