"""Wire format of members and invitations (field names kept from the original platform)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, field_validator

from iiot.tenancy.roles import Role


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class InviteRequest(StrictModel):
    email: str = Field(min_length=3, max_length=320)
    role: Role = Role.viewer
    # The original clients' flag: true makes the invitee an admin.
    is_tenant_admin: bool | None = None

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str) -> str:
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(f"not a valid e-mail address: {exc}") from exc


class InvitationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    role: str
    is_tenant_admin: bool
    status: Literal["pending"] = "pending"
    user_id: uuid.UUID
    expires_at: datetime
    created_at: datetime


class RoleUpdate(StrictModel):
    role: Role | None = None
    is_tenant_admin: bool | None = None


class RoleOut(BaseModel):
    user_id: uuid.UUID
    role: str
    is_tenant_admin: bool


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    full_name: str | None
    role: str
    is_tenant_admin: bool
    status: Literal["active", "invited"]
    created_at: datetime


class MemberList(BaseModel):
    users: list[MemberOut]
    total: int


class AcceptInvitation(StrictModel):
    token: str = Field(min_length=1, max_length=512)
    password: str | None = Field(default=None, min_length=1, max_length=256)
    full_name: str | None = Field(default=None, min_length=1, max_length=200)
