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

    async def due(self, limit: int) -> list[tuple[uuid.UUID | None, uuid.UUID]]:
        """(tenant, id) of pending messages that are due, oldest first."""
        stmt = (
            select(MailMessage.for_tenant_id, MailMessage.id)
            .where(MailMessage.status == "pending", MailMessage.next_attempt_at <= func.now())
            .order_by(MailMessage.next_attempt_at, MailMessage.id)
            .limit(limit)
        )
        return [(r[0], r[1]) for r in await self.session.execute(stmt)]

    async def claim(self, message_id: uuid.UUID) -> MailMessage | None:
        """The pending, due message, locked; None when another worker has it or it is not
        due (any more)."""
        stmt = (
            select(MailMessage)
            .where(
                MailMessage.id == message_id,
                MailMessage.status == "pending",
                MailMessage.next_attempt_at <= func.now(),
            )
            .with_for_update(skip_locked=True)
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def get_for_update(self, message_id: uuid.UUID) -> MailMessage | None:
        stmt = select(MailMessage).where(MailMessage.id == message_id).with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def parked(self, tenant_id: uuid.UUID, limit: int) -> list[MailMessage]:
        """The tenant's messages given up on, newest first."""
        stmt = (
            select(MailMessage)
            .where(MailMessage.for_tenant_id == tenant_id, MailMessage.status == "failed")
            .order_by(MailMessage.created_at.desc(), MailMessage.id)
            .limit(limit)
        )
        return list(await self.session.scalars(stmt))
