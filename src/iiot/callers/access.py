"""Who may call a route. Every route declares exactly one `Access` policy as a dependency.

The policies are FastAPI dependencies; the isolation test suite walks the app's routes and
fails for any route without one, so a new endpoint cannot forget to say who may call it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Path
from fastapi.dependencies.models import Dependant
from starlette.requests import Request

from iiot.callers.resolver import (
    TenantTransaction,
    api_key_context,
    api_key_grants,
    presented_api_key,
    resolve_user,
    tenant_context_for,
)
from iiot.db.session import TenantScope
from iiot.errors import Forbidden, NotFound
from iiot.tenancy.context import TenantContext
from iiot.tenancy.principals import ApiKeyPrincipal, UserPrincipal
from iiot.tenancy.roles import Role

# OpenAPI security schemes: how each kind of caller authenticates.
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A user's access token from /api/v1/auth/login",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "A tenant API key (`ik_...`); also accepted as a bearer token",
    },
    "deviceToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "A device token (`dt_...`); also accepted as a bearer token",
    },
    "metricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "IIOT_METRICS_TOKEN",
    },
}

SecurityRequirement = dict[str, list[str]]


class Access:
    """Base of every caller policy."""

    label = "unspecified"
    tenant_scoped = False
    # The OpenAPI security requirements of routes with this policy (any one of them).
    security: tuple[str, ...] = ("bearerAuth",)

    def openapi_security(self) -> list[SecurityRequirement]:
        return [{name: []} for name in self.security]

    def __repr__(self) -> str:
        return f"<Access {self.label}>"


class Public(Access):
    label = "public"
    security = ()

    async def __call__(self) -> None:
        return None


class AnyUser(Access):
    """Any signed-in user, whatever their tenant."""

    label = "authenticated user"

    async def __call__(self, request: Request) -> UserPrincipal:
        return await resolve_user(request)


class SystemAdmin(Access):
    label = "system admin"

    async def __call__(self, request: Request) -> UserPrincipal:
        principal = await resolve_user(request)
        if not principal.is_system_admin:
            raise Forbidden("system admin only")
        return principal


def check_role(ctx: TenantContext, minimum: Role) -> TenantContext:
    if not ctx.has_role(minimum):
        raise Forbidden(f"requires role {minimum.value} or above")
    return ctx


class TokenTenant(Access):
    """A member of the access token's active tenant with at least `minimum` role.

    `api_key_scope` names the API-key scope that grants the same access (integrations);
    without it, read routes take the `read` scope and writes the `manage` scope (`manage`
    implies `read`). `allow_api_keys=False` makes the route user-only (e.g. managing keys).
    """

    tenant_scoped = True

    def __init__(
        self,
        minimum: Role = Role.viewer,
        *,
        api_key_scope: str | None = None,
        allow_api_keys: bool = True,
    ) -> None:
        self.minimum = minimum
        self.api_key_scope = api_key_scope or ("read" if minimum == Role.viewer else "manage")
        self.allow_api_keys = allow_api_keys
        self.label = f"{minimum.value}+ of the active tenant"
        if allow_api_keys:
            self.label += f" or API key with scope {self.api_key_scope}"

    def openapi_security(self) -> list[SecurityRequirement]:
        schemes = ("bearerAuth", "apiKey") if self.allow_api_keys else ("bearerAuth",)
        return [{name: []} for name in schemes]

    async def __call__(self, request: Request) -> TenantContext:
        token = presented_api_key(request)
        if token is not None and self.allow_api_keys:
            ctx = await api_key_context(request, token)
            assert isinstance(ctx.principal, ApiKeyPrincipal)
            if not api_key_grants(ctx.principal.scopes, self.api_key_scope):
                raise Forbidden(f"requires an API key with scope {self.api_key_scope}")
            return ctx
        ctx = await tenant_context_for(request, None)
        return check_role(ctx, self.minimum)


class PathTenant(Access):
    """A member (with at least `minimum` role) of the tenant named by the `{id}` path
    parameter, or a system admin. Non-members get 404."""

    tenant_scoped = True

    def __init__(self, minimum: Role = Role.viewer, *, system_admin: bool = True) -> None:
        self.minimum = minimum
        self.system_admin = system_admin
        self.label = f"{minimum.value}+ of tenant {{id}}" + (
            " or system admin" if system_admin else ""
        )

    async def __call__(
        self, request: Request, id: Annotated[uuid.UUID, Path(description="Tenant id")]
    ) -> TenantContext:
        ctx = await tenant_context_for(request, id)
        if ctx.role is None and not self.system_admin:
            raise NotFound("tenant not found")
        return check_role(ctx, self.minimum)


class PathTenantScope(Access):
    """`PathTenant` whose caller is resolved in the transaction the route then works in: it
    yields a `TenantScope` (the context and its session). Declare it with
    `Depends(PathTenantScope(...), scope="function")` so the transaction commits when the route
    returns, before the answer is sent. Non-members get 404."""

    tenant_scoped = True

    def __init__(self, minimum: Role = Role.viewer) -> None:
        self.minimum = minimum
        self.label = f"{minimum.value}+ of tenant {{id}} or system admin"

    async def __call__(
        self, request: Request, id: Annotated[uuid.UUID, Path(description="Tenant id")]
    ) -> AsyncIterator[TenantScope]:
        async with TenantTransaction(request, id) as scope:
            check_role(scope.ctx, self.minimum)
            yield scope


def route_policies(dependant: Dependant) -> tuple[Access, ...]:
    """Every distinct Access policy anywhere in a route's dependency tree."""
    found: dict[int, Access] = {}

    def visit(dep: Dependant) -> None:
        for sub in dep.dependencies:
            if isinstance(sub.call, Access):
                found.setdefault(id(sub.call), sub.call)
            visit(sub)

    visit(dependant)
    return tuple(found.values())
