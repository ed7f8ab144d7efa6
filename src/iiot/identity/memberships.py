"""A user's membership of a tenant, as the token pair and the login see it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from iiot.tenancy.roles import Role


@dataclass(frozen=True)
class MembershipView:
    tenant_id: uuid.UUID
    tenant_name: str
    tenant_slug: str
    tenant_status: str
    role: Role
    status: str  # active | invited
