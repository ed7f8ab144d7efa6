"""Reading a tenant's audit trail (filters and pages)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from iiot.audit.repository import AuditRepository
from iiot.audit.schemas import AuditEventOut, AuditPage
from iiot.errors import ValidationFailed
from iiot.tenancy.context import TenantContext


async def list_events(
    session: AsyncSession,
    ctx: TenantContext,
    *,
    action: str | None,
    actor_id: uuid.UUID | None,
    target_type: str | None,
    target_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> AuditPage:
    if since is not None and until is not None and since >= until:
        raise ValidationFailed(
            "since must be before until", errors=[{"field": "since", "message": "after until"}]
        )
    rows, total = await AuditRepository(session, ctx).list(
        action=action,
        actor_id=actor_id,
        target_type=target_type,
        target_id=target_id,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return AuditPage(
        events=[
            AuditEventOut(
                id=e.id,
                created_at=e.created_at,
                actor_type=e.actor_type,
                actor_id=e.actor_id,
                action=e.action,
                target_type=e.target_type,
                target_id=e.target_id,
                before=e.before,
                after=e.after,
                ip=str(e.ip) if e.ip is not None else None,
            )
            for e in rows
        ],
        total=total,
        limit=limit,
        offset=offset,
    )
