"""The mail outbox (platform table): messages queued in the transaction that causes them
and delivered after it commits.

It is not tenant-owned (the delivery job works across tenants), so the tenant a message
belongs to is `for_tenant_id`, not `tenant_id`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from iiot.models.base import Base, new_id

MAIL_STATUSES = ("pending", "sent", "logged", "failed")


class MailMessage(Base):
    __tablename__ = "mail_outbox"
    __table_args__ = (
        CheckConstraint("status in ('pending','sent','logged','failed')", name="status_valid"),
        Index(
            "ix_mail_outbox_next_attempt_at",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_mail_outbox_for_tenant_id", "for_tenant_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    for_tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="cascade")
    )
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    # Cleared once the message is delivered or given up: it may carry a one-time link.
    body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]
