"""Wire format of a token pair and of the signed-in user it describes."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict


class TenantRef(BaseModel):
    id: uuid.UUID
    name: str
    slug: str


class TenantMembershipRef(TenantRef):
    role: str
    status: str = "active"


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str | None
    is_system_admin: bool
    role: str | None
    is_tenant_admin: bool
    tenant: TenantRef | None
    tenants: list[TenantMembershipRef]


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    user: UserOut
