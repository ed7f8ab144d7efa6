"""Caller policy for device-facing routes: a device token, or a tenant member.

A `dt_` token (in `X-API-Key` or `Authorization: Bearer`) resolves to a `DevicePrincipal`
and a `TenantContext` for the device's tenant. This resolver is the only place outside
`iiot.callers.resolver` that creates a `TenantContext`: the tenant comes from the credential
row found by the token's digest, never from the request. The context has no membership role
(`role=None`), so role checks refuse a device; routes that accept devices check the
principal instead. `device_context` builds the same context for a device verified by another
transport (MQTT, the ThingsBoard HTTP device API). Any other caller is delegated to `TokenTenant`.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from starlette.requests import Request

from iiot.callers.access import Access, TokenTenant
from iiot.devices.repository import TokenOwner
from iiot.devices.token_cache import token_cache
from iiot.errors import Forbidden, IIoTError, TenantSuspended, Unauthorized
from iiot.identity.credentials import DEVICE_TOKEN_PREFIX, presented
from iiot.identity.tokens import digest
from iiot.runtime import client_ip, get_runtime
from iiot.tenancy.context import TenantContext
from iiot.tenancy.principals import DevicePrincipal
from iiot.tenancy.roles import Role

if TYPE_CHECKING:
    from iiot.runtime import Runtime

MAX_TOKEN_LENGTH = 256


def presented_device_token(request: Request) -> str | None:
    """The device token the caller sent, if the credential it sent is one."""
    return presented(request, DEVICE_TOKEN_PREFIX)


def refuse_unusable(owner: TokenOwner | None) -> TokenOwner:
    """The owner of a token that may act now; otherwise the precise refusal."""
    if owner is None:
        raise Unauthorized("invalid or revoked device token")
    if owner.tenant_status == "suspended":
        raise TenantSuspended("this tenant is suspended")
    if owner.device_status == "disabled":
        raise Forbidden("this device is disabled")
    return owner


async def explain_refusal(rt: Runtime, token_digest: bytes) -> IIoTError:
    """Why a write transaction refused a device token the cache still held: read afresh."""
    owner = await token_cache(rt).fresh_owner(token_digest)
    try:
        refuse_unusable(owner)
    except IIoTError as exc:
        return exc
    return Unauthorized("invalid or revoked device token")


async def resolve_device(request: Request, token: str) -> TenantContext:
    if len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("invalid device token")
    rt = get_runtime(request)
    token_digest = digest(token)
    owner = refuse_unusable(await token_cache(rt).owner(token_digest))
    request.state.device_token_digest = token_digest
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

    def openapi_security(self) -> list[dict[str, list[str]]]:
        return [{"deviceToken": []}, *self._member.openapi_security()]

    async def __call__(self, request: Request) -> TenantContext:
        token = presented_device_token(request)
        if token is not None:
            return await resolve_device(request, token)
        return await self._member(request)
