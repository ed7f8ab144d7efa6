"""The mail outbox table (platform table, reachable from any session)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from iiot.db.repository import SystemRepository
from iiot.models.mail import MailMessage


class MailRepository(SystemRepository):
    async def add(self, message: MailMessage) -> MailMessage:
        self.session.add(message)
        await self.session.flush()
        return message

    async def next_due_for_update(self) -> MailMessage | None:
        """The oldest pending message that is due, locked; rows other workers hold are skipped."""
        stmt = (
            select(MailMessage)
            .where(MailMessage.status == "pending", MailMessage.next_attempt_at <= func.now())
            .order_by(MailMessage.next_attempt_at, MailMessage.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def get(self, message_id: uuid.UUID) -> MailMessage | None:
        return await self.session.get(MailMessage, message_id)

    async def for_recipient(self, address: str) -> list[MailMessage]:
        stmt = (
            select(MailMessage)
            .where(func.lower(MailMessage.to_address) == address.strip().lower())
            .order_by(MailMessage.created_at, MailMessage.id)
        )
        return list(await self.session.scalars(stmt))
