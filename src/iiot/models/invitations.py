"""Invitations into a tenant (tenant-owned: row-level security applies).

The token itself is never stored: only its SHA-256 digest, looked up across tenants by the
SECURITY DEFINER function `iiot_invitation_by_token(digest)` when an invitation is accepted.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from iiot.models.base import Base, Timestamps, new_id


class Invitation(Base, Timestamps):
    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint("role in ('viewer','operator','developer','admin')", name="role_valid"),
        # The token is looked up before its tenant is known; it is 256 random bits, so the
        # digest alone is unique across tenants.
        Index("ix_invitations_token_hash", "token_hash", unique=True),
        Index("ix_invitations_tenant_id_user_id", "tenant_id", "user_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="cascade"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="cascade"))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    invited_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="set null")
    )
