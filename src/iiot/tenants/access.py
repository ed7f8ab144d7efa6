"""Caller policies specific to tenant management."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Path
from starlette.requests import Request

from iiot.callers.access import PathTenant
from iiot.errors import Forbidden
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
