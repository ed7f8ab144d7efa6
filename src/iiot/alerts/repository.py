"""Alert rows and their history. One open alert per (rule, device) is kept by a partial
unique index; a re-trigger bumps that row in one upsert. A new alert joins the group of the
latest alert of the same rule, device and severity that occurred within the grouping window,
or starts its own group."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, ScalarSelect, Select, func, select, text

from iiot.db.repository import TenantRepository
from iiot.models.alerts import Alert, AlertHistory

# Channel on which alert openings and changes are announced (live views); the payload is a
# small JSON object naming the tenant, the alert, its state and what happened.
ALERTS_CHANNEL = "iiot_alerts"
_NOTIFY = text("select pg_notify(:channel, :payload)")

_OPEN_OR_BUMP = text(
    """
    insert into alerts (tenant_id, id, rule_id, device_id, rule_name, device_name, severity,
                        state, message, key, value, threshold, occurrence_count, created_at,
                        last_occurred_at, group_id)
    values (:tenant_id, :id, :rule_id, :device_id, :rule_name, :device_name, :severity,
            'new', :message, :key, :value, :threshold, 1, :now, :now,
            coalesce((select coalesce(g.group_id, g.id) from alerts g
                      where g.tenant_id = cast(:tenant_id as uuid)
                        and g.rule_id = cast(:rule_id as uuid)
                        and g.device_id = cast(:device_id as uuid)
                        and g.severity = cast(:severity as varchar)
                        and g.last_occurred_at
                            >= cast(:now as timestamptz) - cast(:window as interval)
                        and g.last_occurred_at <= cast(:now as timestamptz)
                      order by g.last_occurred_at desc limit 1),
                     cast(:id as uuid)))
    on conflict (tenant_id, rule_id, device_id) where state <> 'resolved'
    do update set occurrence_count = alerts.occurrence_count + 1,
                  last_occurred_at = excluded.last_occurred_at,
                  value = excluded.value
    returning id, (xmax = 0) as inserted
    """
)


_GROUP = text(
    """
    select count(*) as alerts, coalesce(sum(occurrence_count), 0) as occurrences,
           min(created_at) as first_at, max(last_occurred_at) as last_at
    from alerts where tenant_id = :tenant_id and coalesce(group_id, id) = :group_id
    """
)


@dataclass(frozen=True)
class GroupFigures:
    alerts: int
    occurrences: int
    first_occurred_at: datetime
    last_occurred_at: datetime


@dataclass(frozen=True)
class AlertFilter:
    state: str | None = None
    severity: str | None = None
    device_id: uuid.UUID | None = None
    rule_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


class AlertRepository(TenantRepository[Alert]):
    model = Alert

    def _alerts(self) -> Select[Alert]:
        return select(Alert).where(Alert.tenant_id == self.ctx.tenant_id)

    async def open_or_bump(
        self,
        *,
        rule_id: uuid.UUID,
        device_id: uuid.UUID,
        rule_name: str,
        device_name: str | None,
        severity: str,
        message: str,
        key: str | None,
        value: float | None,
        threshold: float | None,
        now: datetime,
        group_window: timedelta,
    ) -> tuple[uuid.UUID, bool]:
        """The open alert of (rule, device), new or with one more occurrence; True if new."""
        row = (
            await self.session.execute(
                _OPEN_OR_BUMP,
                {
                    "tenant_id": self.ctx.tenant_id,
                    "id": uuid.uuid4(),
                    "rule_id": rule_id,
                    "device_id": device_id,
                    "rule_name": rule_name[:200],
                    "device_name": device_name[:200] if device_name else None,
                    "severity": severity,
                    "message": message[:2000],
                    "key": key[:200] if key else None,
                    "value": value,
                    "threshold": threshold,
                    "now": now,
                    "window": group_window,
                },
            )
        ).one()
        return row[0], bool(row[1])

    async def page(self, f: AlertFilter, *, limit: int, offset: int) -> tuple[list[Alert], int]:
        stmt = self._alerts()
        if f.state is not None:
            stmt = stmt.where(Alert.state == f.state)
        if f.severity is not None:
            stmt = stmt.where(Alert.severity == f.severity)
        if f.device_id is not None:
            stmt = stmt.where(Alert.device_id == f.device_id)
        if f.rule_id is not None:
            stmt = stmt.where(Alert.rule_id == f.rule_id)
        if f.since is not None:
            stmt = stmt.where(Alert.created_at >= f.since)
        if f.until is not None:
            stmt = stmt.where(Alert.created_at < f.until)
        total = await self.session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = await self.session.scalars(
            stmt.order_by(Alert.created_at.desc(), Alert.id).limit(limit).offset(offset)
        )
        return list(rows), int(total or 0)

    async def get(self, alert_id: uuid.UUID, *, for_update: bool = False) -> Alert | None:
        stmt = self._alerts().where(Alert.id == alert_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def open_for(self, rule_id: uuid.UUID, device_id: uuid.UUID) -> Alert | None:
        stmt = (
            self._alerts()
            .where(
                Alert.rule_id == rule_id, Alert.device_id == device_id, Alert.state != "resolved"
            )
            .with_for_update()
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def group(self, group_id: uuid.UUID) -> GroupFigures:
        row = (
            await self.session.execute(
                _GROUP, {"tenant_id": self.ctx.tenant_id, "group_id": group_id}
            )
        ).one()
        return GroupFigures(int(row.alerts), int(row.occurrences), row.first_at, row.last_at)

    async def notify(
        self, alert_id: uuid.UUID, *, state: str | None, event: str, severity: str | None = None
    ) -> None:
        """Announce an alert change to every process, on commit of this transaction."""
        payload = {
            "t": str(self.ctx.tenant_id),
            "id": str(alert_id),
            "state": state,
            "event": event,
            "severity": severity,
        }
        await self.session.execute(
            _NOTIFY, {"channel": ALERTS_CHANNEL, "payload": json.dumps(payload)}
        )

    async def history(self, alert_id: uuid.UUID) -> list[AlertHistory]:
        rows = await self.session.scalars(
            select(AlertHistory)
            .where(AlertHistory.tenant_id == self.ctx.tenant_id, AlertHistory.alert_id == alert_id)
            .order_by(AlertHistory.created_at, AlertHistory.id)
        )
        return list(rows)

    async def add_history(self, entry: AlertHistory) -> None:
        entry.tenant_id = self.ctx.tenant_id
        self.session.add(entry)
        await self.session.flush()

    @staticmethod
    def count_figure(
        tenant_id: ColumnElement[uuid.UUID],
        *,
        since: ColumnElement[datetime] | None = None,
        open_only: bool = False,
    ) -> ScalarSelect[int]:
        """`count` as a scalar subquery (for the usage statement)."""
        stmt = select(func.count()).select_from(Alert).where(Alert.tenant_id == tenant_id)
        if since is not None:
            stmt = stmt.where(Alert.created_at >= since)
        if open_only:
            stmt = stmt.where(Alert.state != "resolved")
        return stmt.scalar_subquery()

    async def count(self, *, since: datetime | None = None, open_only: bool = False) -> int:
        stmt = select(func.count()).select_from(Alert).where(Alert.tenant_id == self.ctx.tenant_id)
        if since is not None:
            stmt = stmt.where(Alert.created_at >= since)
        if open_only:
            stmt = stmt.where(Alert.state != "resolved")
        return int(await self.session.scalar(stmt) or 0)
