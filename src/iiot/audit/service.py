"""Audit events: recording who did what to which object (with before/after values), and
reading a tenant's trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from iiot.audit.repository import AuditRepository, PlatformAuditRepository
from iiot.audit.schemas import AuditEventOut, AuditPage
from iiot.db.session import TenantSession
from iiot.errors import ValidationFailed
from iiot.models.audit import AuditEvent
from iiot.tenancy.context import TenantContext
from iiot.tenancy.principals import principal_actor_id


async def record(
    session: TenantSession,
    ctx: TenantContext,
    action: str,
    *,
    target_type: str | None = None,
    target_id: uuid.UUID | str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    await AuditRepository(session, ctx).add(
        AuditEvent(
            actor_type=ctx.principal.kind,
            actor_id=principal_actor_id(ctx.principal),
            action=action,
            target_type=target_type,
            target_id=str(target_id) if target_id is not None else None,
            before=_jsonable(before),
            after=_jsonable(after),
            ip=ctx.client_ip,
        )
    )


async def record_platform(
    session: AsyncSession,
    action: str,
    *,
    actor_id: uuid.UUID | None,
    subject: str | None = None,
    details: dict[str, Any] | None = None,
    ip: str | None = None,
) -> None:
    await PlatformAuditRepository(session).add(
        action, actor_id=actor_id, subject=subject, details=_jsonable(details), ip=ip
    )


def _jsonable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    out: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, uuid.UUID):
            out[key] = str(item)
        elif hasattr(item, "isoformat"):
            out[key] = item.isoformat()
        elif isinstance(item, dict):
            out[key] = _jsonable(item)
        else:
            out[key] = item
    return out


def changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The subset of fields whose value differs, as (before, after)."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


async def list_events(
    session: TenantSession,
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
