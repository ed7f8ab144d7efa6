"""Resolving the caller and its tenant. The only place a request's `TenantContext` is made.

The membership and role are read from the database on every request, so a role change, a
removal or a suspension takes effect at once. A caller who is not an active member of the
tenant gets 404 for it: its existence does not leak. What resolution reads comes from
`iiot.callers.repository` alone: the user, their membership, the tenant's status and limits in
one statement. `TenantTransaction` reads it inside the transaction the route then works in,
so a route declared with `PathTenantScope` costs one transaction in all. `read_in_tenant`
goes further for the hottest reads: the caller is resolved and the route's tenant-owned
values are read in one statement, which is its own transaction (one round trip in all).

An API key (`ik_...` in `X-API-Key` or `Authorization: Bearer`) is looked up by its digest on
every request too, so a revoked key is refused at once. It yields a context of the key's
tenant whose principal is an `ApiKeyPrincipal`; which routes accept it is decided by the
route's access policy from the key's scopes.

Every resolved request of a tenant's member or API key counts against the tenant's
`api_requests_per_minute` (`charge_api_request`); system admins are exempt.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from types import TracebackType
from typing import Any

from starlette.requests import Request

from iiot.callers.repository import (
    ApiKeyUse,
    CallerInTenant,
    CallerLookup,
    CallerReading,
    CallerUser,
    caller_reading,
    read_api_key,
    read_as_caller,
    read_caller_in_tenant,
    read_user,
)
from iiot.db.driver import TenantValues
from iiot.db.session import TenantScope
from iiot.errors import Forbidden, NotFound, TenantSuspended, Unauthorized
from iiot.identity.credentials import API_KEY_PREFIX, MalformedAuthorization, bearer, presented
from iiot.identity.denylist import deny_list
from iiot.identity.tokens import AccessClaims, digest
from iiot.quotas.limits import EffectiveLimits
from iiot.quotas.rates import check_api_request
from iiot.runtime import client_ip, get_runtime
from iiot.tenancy.context import TenantContext
from iiot.tenancy.principals import ApiKeyPrincipal, UserPrincipal
from iiot.tenancy.roles import Role

# last_used_at is written at most this often per key, not on every request.
API_KEY_TOUCH_INTERVAL_SECONDS = 60
# The role an API key acts with inside services, from the strongest scope it holds.
_SCOPE_ROLES = (
    ("manage", Role.developer),
    ("telemetry:write", Role.operator),
    ("read", Role.viewer),
)


def bearer_token(request: Request) -> str | None:
    try:
        return bearer(request)
    except MalformedAuthorization as exc:
        raise Unauthorized(str(exc)) from exc


async def _access_claims(request: Request) -> AccessClaims:
    """The verified claims of the request's user access token; 401 when absent, invalid or
    signed out."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("authentication required")
    if token.startswith(API_KEY_PREFIX):
        raise Unauthorized("API keys are not accepted here: sign in as a user")
    rt = get_runtime(request)
    claims = rt.tokens.decode_access(token)
    if await deny_list(rt).is_denied(claims.jti):
        raise Unauthorized("this access token was signed out", reason="signed_out")
    request.state.access_claims = claims
    return claims


def _user_principal(
    request: Request, claims: AccessClaims, user: CallerUser | None
) -> UserPrincipal:
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


async def charge_api_request(request: Request, tenant_id: uuid.UUID) -> None:
    """Count the request against the tenant's `api_requests_per_minute` (once per request),
    or refuse it with 429. System admins are not charged."""
    if getattr(request.state, "api_request_charged", False):
        return
    request.state.api_request_charged = True
    await check_api_request(get_runtime(request), tenant_id)


async def resolve_user(request: Request) -> UserPrincipal:
    """The signed-in user from the access token; 401 when absent or invalid. The request
    counts against the rate limit of the token's active tenant."""
    cached = getattr(request.state, "user_principal", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    claims = await _access_claims(request)
    user = await read_user(get_runtime(request).db, claims.user_id)
    principal = _user_principal(request, claims, user)
    if not principal.is_system_admin and principal.token_tenant_id is not None:
        await charge_api_request(request, principal.token_tenant_id)
    return principal


async def _member_context(
    request: Request,
    claims: AccessClaims,
    tenant_id: uuid.UUID,
    found: CallerInTenant | None,
) -> TenantContext:
    """The caller's context in `tenant_id` from what `CallerLookup.in_tenant` read."""
    principal = _user_principal(request, claims, found.user if found is not None else None)
    assert found is not None
    ip = client_ip(request)
    if found.is_active_member:
        assert found.role is not None
        if found.tenant_status == "suspended" and not principal.is_system_admin:
            raise TenantSuspended("this tenant is suspended")
        if not principal.is_system_admin:
            if found.limits is not None:
                # Read in this request's transaction: the rate check needs no read of its own.
                get_runtime(request).rate.cache_limits(tenant_id, found.limits)
            await charge_api_request(request, tenant_id)
        return TenantContext(
            tenant_id=tenant_id,
            principal=principal,
            role=found.role,
            is_system_admin=principal.is_system_admin,
            client_ip=ip,
        )
    if principal.is_system_admin and found.tenant_status is not None:
        return TenantContext(
            tenant_id=tenant_id, principal=principal, role=None, is_system_admin=True, client_ip=ip
        )
    raise NotFound("tenant not found")


async def tenant_context_for(request: Request, tenant_id: uuid.UUID | None) -> TenantContext:
    """The signed-in user's context in `tenant_id` (None: the access token's active tenant).

    The user, the membership and the tenant are read in one statement, which is its own
    transaction.
    """
    claims = await _access_claims(request)
    tenant_id = tenant_id if tenant_id is not None else claims.tenant_id
    db = get_runtime(request).db
    if tenant_id is None:
        _user_principal(request, claims, await read_user(db, claims.user_id))
        raise NotFound("no active tenant: switch to a tenant first")
    found = await read_caller_in_tenant(db, claims.user_id, tenant_id)
    return await _member_context(request, claims, tenant_id, found)


class TenantTransaction:
    """`async with TenantTransaction(request, tenant_id) as scope`: the signed-in user's
    context in `tenant_id` and the transaction it was resolved in.

    The transaction is scoped to `tenant_id` from its start; the caller's user, membership and
    tenant are read in it (one statement, which reads no tenant-owned row directly), and the
    route then does its work in the same transaction: authentication adds no transaction of
    its own. Until the caller is resolved, the session's context grants nothing (no role, no
    admin rights); the resolved one replaces it before anything else runs. Commits when the
    block exits without an exception; a refused caller's transaction is rolled back.
    """

    def __init__(self, request: Request, tenant_id: uuid.UUID) -> None:
        self._request = request
        self._tenant_id = tenant_id
        self._exit = AsyncExitStack()

    async def __aenter__(self) -> TenantScope:
        request, tenant_id = self._request, self._tenant_id
        claims = await _access_claims(request)
        unresolved = TenantContext(
            tenant_id=tenant_id,
            principal=UserPrincipal(
                user_id=claims.user_id,
                email="",
                is_system_admin=False,
                token_tenant_id=claims.tenant_id,
            ),
            role=None,
        )
        async with AsyncExitStack() as stack:
            session = await stack.enter_async_context(get_runtime(request).db.tenant(unresolved))
            found = await CallerLookup(session).in_tenant(claims.user_id, tenant_id)
            ctx = await _member_context(request, claims, tenant_id, found)
            session.ctx = ctx
            self._exit = stack.pop_all()
        return TenantScope(ctx=ctx, session=session)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._exit.__aexit__(exc_type, exc, tb)


@dataclass(frozen=True, slots=True)
class TenantRead:
    """The caller's context in the tenant, the tenant's effective limits and the values read."""

    ctx: TenantContext
    limits: EffectiveLimits
    values: dict[str, Any]


@lru_cache(maxsize=16)
def _reading(wanted: TenantValues) -> CallerReading:
    return caller_reading(wanted.columns, wanted.parameters)


async def read_in_tenant(
    request: Request, tenant_id: uuid.UUID, wanted: TenantValues, values: Mapping[str, Any]
) -> TenantRead:
    """The signed-in user's context in `tenant_id` and the `wanted` values (with `values` for
    their parameters), in one statement that is its own transaction.

    The same rules as `tenant_context_for`: 401 for a missing, invalid or signed-out token or
    an inactive user, 404 for a tenant the caller is no member of (a system admin excepted),
    the suspended tenant refused to its members, the request charged to the tenant's rate
    limit. The values are read only for a caller admitted to the tenant, with row-level
    security in force (`iiot.callers.repository.caller_reading`).
    """
    claims = await _access_claims(request)
    found, read = await read_as_caller(
        get_runtime(request).db, _reading(wanted), claims.user_id, tenant_id, values
    )
    ctx = await _member_context(request, claims, tenant_id, found)
    if found is None or found.limits is None or read is None:
        # The statement admits exactly the callers `_member_context` admits.
        raise RuntimeError("an admitted caller's tenant values were not read")
    return TenantRead(ctx=ctx, limits=found.limits, values=read)


def new_tenant_context(request: Request, admin: UserPrincipal) -> TenantContext:
    """The context in which a system admin creates a tenant: a fresh tenant id, no member yet."""
    if not admin.is_system_admin:
        raise Forbidden("only a system admin creates tenants")
    return TenantContext(
        tenant_id=uuid.uuid4(),
        principal=admin,
        role=None,
        is_system_admin=True,
        client_ip=client_ip(request),
    )


def deleted_tenant_context(
    request: Request, admin: UserPrincipal, tenant_id: uuid.UUID
) -> TenantContext:
    """The context in which a system admin restores a soft-deleted tenant (no member can
    resolve one: the tenant is gone for everybody else until it is restored)."""
    if not admin.is_system_admin:
        raise Forbidden("only a system admin restores tenants")
    return TenantContext(
        tenant_id=tenant_id,
        principal=admin,
        role=None,
        is_system_admin=True,
        client_ip=client_ip(request),
    )


def presented_api_key(request: Request) -> str | None:
    """The `ik_...` API key the request carries, if any (X-API-Key or a bearer token)."""
    return presented(request, API_KEY_PREFIX)


def api_key_grants(scopes: frozenset[str], scope: str) -> bool:
    """Whether a key with `scopes` holds `scope`; `manage` implies `read`."""
    return scope in scopes or (scope == "read" and "manage" in scopes)


async def api_key_context(request: Request, token: str) -> TenantContext:
    """The context of the API key's tenant; 401 for an unknown, revoked or expired key."""
    rt = get_runtime(request)
    key = await read_api_key(rt.db, digest(token))
    now = datetime.now(UTC)
    if key is None or (key.expires_at is not None and key.expires_at <= now):
        raise Unauthorized("invalid API key")
    if key.tenant_status == "suspended":
        raise TenantSuspended("this tenant is suspended")
    await charge_api_request(request, key.tenant_id)
    role = next((r for scope, r in _SCOPE_ROLES if scope in key.scopes), None)
    ctx = TenantContext(
        tenant_id=key.tenant_id,
        principal=ApiKeyPrincipal(tenant_id=key.tenant_id, key_id=key.id, scopes=key.scopes),
        role=role,
        client_ip=client_ip(request),
    )
    last = key.last_used_at
    if last is None or (now - last).total_seconds() >= API_KEY_TOUCH_INTERVAL_SECONDS:
        async with rt.db.tenant(ctx) as session:
            await ApiKeyUse(session, ctx).touch(
                key.id, stale_seconds=API_KEY_TOUCH_INTERVAL_SECONDS
            )
    return ctx
