"""Resolving the caller and its tenant. The only place a request's `TenantContext` is made.

The membership and role are read from the database on every request, so a role change, a
removal or a suspension takes effect at once. A caller who is not an active member of the
tenant gets 404 for it: its existence does not leak.
"""

from __future__ import annotations

import uuid

from starlette.requests import Request

from iiot.auth.principals import UserPrincipal
from iiot.errors import NotFound, TenantSuspended, Unauthorized
from iiot.models.tenancy import Tenant
from iiot.runtime import Runtime, client_ip, get_runtime
from iiot.tenancy.context import TenantContext
from iiot.users.repository import UserRepository


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("malformed Authorization header")
    return value.strip()


async def resolve_user(request: Request) -> UserPrincipal:
    """The signed-in user from the access token; 401 when absent or invalid."""
    cached = getattr(request.state, "user_principal", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("authentication required")
    rt = get_runtime(request)
    claims = rt.tokens.decode_access(token)
    async with rt.db.system() as session:
        user = await UserRepository(session).get(claims.user_id)
    if user is None or user.status != "active":
        raise Unauthorized("invalid access token")
    principal = UserPrincipal(
        user_id=user.id,
        email=user.email,
        is_system_admin=user.is_system_admin,
        token_tenant_id=claims.tenant_id,
    )
    request.state.user_principal = principal
    return principal


async def resolve_tenant_context(
    rt: Runtime, principal: UserPrincipal, tenant_id: uuid.UUID | None, ip: str | None
) -> TenantContext:
    if tenant_id is None:
        raise NotFound("no active tenant: switch to a tenant first")
    async with rt.db.system() as session:
        membership = await UserRepository(session).membership(principal.user_id, tenant_id)
        tenant = None
        if (membership is None or membership.status != "active") and principal.is_system_admin:
            tenant = await session.get(Tenant, tenant_id)
    if membership is not None and membership.status == "active":
        if membership.tenant_status == "suspended" and not principal.is_system_admin:
            raise TenantSuspended("this tenant is suspended")
        return TenantContext(
            tenant_id=tenant_id,
            principal=principal,
            role=membership.role,
            is_system_admin=principal.is_system_admin,
            client_ip=ip,
        )
    if principal.is_system_admin and tenant is not None and tenant.deleted_at is None:
        return TenantContext(
            tenant_id=tenant_id, principal=principal, role=None, is_system_admin=True, client_ip=ip
        )
    raise NotFound("tenant not found")


async def tenant_context_for(request: Request, tenant_id: uuid.UUID | None) -> TenantContext:
    principal = await resolve_user(request)
    return await resolve_tenant_context(
        get_runtime(request), principal, tenant_id, client_ip(request)
    )
