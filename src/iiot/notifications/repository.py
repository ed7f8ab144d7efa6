"""The webhook outbox. Due rows across tenants are found through
`iiot_due_webhook_deliveries()`; each row is then handled in its own tenant's session."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, text

from iiot.db.repository import SystemRepository, TenantRepository
from iiot.models.rules import WebhookDelivery

_DUE = text("select tenant_id, id from iiot_due_webhook_deliveries(:limit)")


class DueWebhooks(SystemRepository):
    async def due(self, limit: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
        rows = await self.session.execute(_DUE, {"limit": limit})
        return [(r[0], r[1]) for r in rows]


class WebhookRepository(TenantRepository[WebhookDelivery]):
    model = WebhookDelivery

    async def claim(self, delivery_id: uuid.UUID, now: datetime) -> WebhookDelivery | None:
        """The pending, due row, locked; None when another worker has it or it is not due."""
        stmt = (
            select(WebhookDelivery)
            .where(
                WebhookDelivery.tenant_id == self.ctx.tenant_id,
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
            )
            .with_for_update(skip_locked=True)
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def get(self, delivery_id: uuid.UUID) -> WebhookDelivery | None:
        stmt = select(WebhookDelivery).where(
            WebhookDelivery.tenant_id == self.ctx.tenant_id, WebhookDelivery.id == delivery_id
        )
        return (await self.session.scalars(stmt.with_for_update())).one_or_none()

    async def parked(self, limit: int) -> list[WebhookDelivery]:
        """Calls given up on, newest first."""
        stmt = (
            select(WebhookDelivery)
            .where(
                WebhookDelivery.tenant_id == self.ctx.tenant_id,
                WebhookDelivery.status == "failed",
            )
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
            .limit(limit)
        )
        return list(await self.session.scalars(stmt))
