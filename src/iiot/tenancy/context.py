"""The tenant context: the one value that lets code reach a tenant's data.

Only `iiot.callers.resolver` creates a `TenantContext` (from a verified principal and a
membership read from the database on this request), and platform code creates one through
`system_context` for work a system admin or a job does on a named tenant. Services take
`(session, ctx, ...)`; repositories filter every statement by `ctx.tenant_id`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from iiot.tenancy.principals import Principal, SystemPrincipal, UserPrincipal
from iiot.tenancy.roles import Role


@dataclass(frozen=True, slots=True)
class TenantContext:
    tenant_id: uuid.UUID
    principal: Principal
    # The caller's membership role; None for a system admin who is not a member, or a job.
    role: Role | None
    is_system_admin: bool = False
    client_ip: str | None = None

    def has_role(self, minimum: Role) -> bool:
        if self.is_system_admin:
            return True
        return self.role is not None and self.role.at_least(minimum)

    @property
    def user_id(self) -> uuid.UUID | None:
        return self.principal.user_id if isinstance(self.principal, UserPrincipal) else None


def system_context(
    tenant_id: uuid.UUID, actor: Principal | None = None, client_ip: str | None = None
) -> TenantContext:
    """A context for platform work on one tenant (tenant creation, bootstrap, jobs)."""
    principal = actor or SystemPrincipal()
    is_admin = isinstance(principal, SystemPrincipal) or (
        isinstance(principal, UserPrincipal) and principal.is_system_admin
    )
    return TenantContext(
        tenant_id=tenant_id,
        principal=principal,
        role=None,
        is_system_admin=is_admin,
        client_ip=client_ip,
    )
