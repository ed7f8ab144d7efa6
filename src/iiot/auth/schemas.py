"""Wire format of the authentication endpoints."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, field_validator


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # PostgreSQL text cannot hold NUL; refuse it here with the field's name.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class LoginRequest(StrictModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=256)
    tenant_id: uuid.UUID | None = None


class RefreshRequest(StrictModel):
    refresh_token: str = Field(min_length=1, max_length=512)


class SwitchTenantRequest(StrictModel):
    tenant_id: uuid.UUID


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


class PasswordChange(StrictModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class PasswordResetRequest(StrictModel):
    email: str = Field(min_length=3, max_length=320)


class PasswordResetConfirm(StrictModel):
    token: str = Field(min_length=1, max_length=512, pattern=r"^pr_[A-Za-z0-9_-]{43}$")
    password: str = Field(min_length=1, max_length=256)


class Accepted(BaseModel):
    status: str = "accepted"
    detail: str


class CookieSession(BaseModel):
    """A token pair in cookie mode: the refresh token travels only in an HttpOnly cookie."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    user: UserOut
