"""Audit rows: written in the same transaction as the change they describe."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from iiot.db.repository import SystemRepository, TenantRepository
from iiot.models.audit import AuditEvent, PlatformAuditEvent


class AuditRepository(TenantRepository[AuditEvent]):
    model = AuditEvent

    async def list(
        self,
        *,
        action: str | None = None,
        actor_id: uuid.UUID | None = None,
        target_type: str | None = None,
        target_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[AuditEvent], int]:
        stmt = self.scoped()
        if action:
            stmt = stmt.where(AuditEvent.action.startswith(action, autoescape=True))
        if actor_id:
            stmt = stmt.where(AuditEvent.actor_id == actor_id)
        if target_type:
            stmt = stmt.where(AuditEvent.target_type == target_type)
        if target_id:
            stmt = stmt.where(AuditEvent.target_id == target_id)
        if since:
            stmt = stmt.where(AuditEvent.created_at >= since)
        if until:
            stmt = stmt.where(AuditEvent.created_at < until)
        total = await self.session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = await self.session.scalars(
            stmt.order_by(AuditEvent.created_at.desc(), AuditEvent.id).limit(limit).offset(offset)
        )
        return list(rows), int(total or 0)


class PlatformAuditRepository(SystemRepository):
    async def add(
        self,
        action: str,
        *,
        actor_id: uuid.UUID | None,
        subject: str | None = None,
        details: dict[str, Any] | None = None,
        ip: str | None = None,
    ) -> None:
        self.session.add(
            PlatformAuditEvent(
                action=action, actor_id=actor_id, subject=subject, details=details, ip=ip
            )
        )
        await self.session.flush()
