"""Caller policies specific to tenant management."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path
from starlette.requests import Request

from iiot.callers.access import Access, PathTenant, check_role
from iiot.callers.resolver import TenantRead, read_in_tenant
from iiot.db.driver import TenantValues
from iiot.errors import Forbidden
from iiot.modules import Wiring
from iiot.quotas import usage
from iiot.runtime import get_runtime
from iiot.tenancy.context import TenantContext
from iiot.tenancy.roles import Role


class SystemAdminOnTenant(PathTenant):
    """A system admin acting on tenant `{id}` (suspend, activate, delete).

    Non-members of the tenant get 404 as with `PathTenant`; its own members, admins
    included, get 403: these are platform operations."""

    def __init__(self) -> None:
        super().__init__(Role.admin)
        self.label = "system admin (tenant {id})"

    async def __call__(
        self, request: Request, id: Annotated[uuid.UUID, Path(description="Tenant id")]
    ) -> TenantContext:
        ctx = await super().__call__(request, id)
        if not ctx.is_system_admin:
            raise Forbidden("system admin only")
        return ctx


class TenantUsageRead(Access):
    """A member (with at least `minimum` role) of tenant `{id}`, or a system admin, reading the
    tenant's limits and the usage figures named `figures`: the caller is resolved and the
    figures read in one statement, its own transaction
    (`iiot.callers.resolver.read_in_tenant`). Non-members get 404, as with `PathTenant`."""

    tenant_scoped = True

    def __init__(self, minimum: Role, *, figures: frozenset[str]) -> None:
        self.minimum = minimum
        self.figures = figures
        self.label = f"{minimum.value}+ of tenant {{id}} or system admin"
        # The figures' reading for the last wiring seen (an app's modules do not change).
        self._wanted: tuple[Wiring, TenantValues] | None = None

    def _values(self, wiring: Wiring) -> TenantValues:
        last = self._wanted
        if last is not None and last[0] is wiring:
            return last[1]
        wanted = usage.tenant_values(tuple(wiring.usage_providers), self.figures)
        self._wanted = (wiring, wanted)
        return wanted

    async def __call__(
        self, request: Request, id: Annotated[uuid.UUID, Path(description="Tenant id")]
    ) -> TenantRead:
        wanted = self._values(get_runtime(request).wiring)
        read = await read_in_tenant(request, id, wanted, usage.values_at(datetime.now(UTC)))
        check_role(read.ctx, self.minimum)
        return read
