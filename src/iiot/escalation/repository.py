"""SQL of escalation policies, on-call schedules and the escalation job."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, Text, cast, func, select, text
from sqlalchemy.dialects.postgresql import insert

from iiot.db.repository import SystemRepository, TenantRepository
from iiot.models.alerts import Alert
from iiot.models.escalation import (
    AlertEscalation,
    EscalationPolicy,
    OnCallOverride,
    OnCallSchedule,
)

_PENDING_TENANTS = text("select * from iiot_tenants_with_pending_escalations()")

# For each unacknowledged alert and each enabled policy of its severity with tiers left: the
# next tier, and when it is due (the alert's creation, or the previous tier's firing, plus the
# tier's delay).
_DUE = text("""
with progress as (
    select a.id as alert_id, p.id as policy_id, p.tiers, a.created_at,
           (select count(*) from alert_escalations e
            where e.tenant_id = a.tenant_id and e.alert_id = a.id and e.policy_id = p.id)
             as fired,
           (select max(e.fired_at) from alert_escalations e
            where e.tenant_id = a.tenant_id and e.alert_id = a.id and e.policy_id = p.id)
             as last_fired_at
    from alerts a
    join escalation_policies p
      on p.tenant_id = a.tenant_id and p.enabled and a.severity = any(p.severities)
    where a.tenant_id = :tenant_id and a.state = 'new'
)
select alert_id, policy_id, fired::int as tier
from progress
where fired < jsonb_array_length(tiers)
  and coalesce(last_fired_at, created_at)
      + make_interval(mins => (tiers -> fired::int ->> 'delay_minutes')::int) <= :now
order by created_at, alert_id, policy_id
limit :limit
""")


@dataclass(frozen=True)
class DueTier:
    alert_id: uuid.UUID
    policy_id: uuid.UUID
    tier: int


class PendingEscalationTenants(SystemRepository):
    async def tenant_ids(self) -> list[uuid.UUID]:
        return [r[0] for r in await self.session.execute(_PENDING_TENANTS)]


class PolicyRepository(TenantRepository[EscalationPolicy]):
    model = EscalationPolicy

    def _policies(self) -> Select[EscalationPolicy]:
        return select(EscalationPolicy).where(EscalationPolicy.tenant_id == self.ctx.tenant_id)

    async def page(self, limit: int, offset: int) -> tuple[list[EscalationPolicy], int]:
        stmt = self._policies()
        total = await self.session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = await self.session.scalars(
            stmt.order_by(EscalationPolicy.name, EscalationPolicy.id).limit(limit).offset(offset)
        )
        return list(rows), int(total or 0)

    async def get(
        self, policy_id: uuid.UUID, *, for_update: bool = False
    ) -> EscalationPolicy | None:
        stmt = self._policies().where(EscalationPolicy.id == policy_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def name_taken(self, name: str, other_than: uuid.UUID | None = None) -> bool:
        stmt = self._policies().where(EscalationPolicy.name == name)
        if other_than is not None:
            stmt = stmt.where(EscalationPolicy.id != other_than)
        return (await self.session.scalars(stmt.limit(1))).first() is not None

    async def delete(self, policy: EscalationPolicy) -> None:
        await self.session.delete(policy)
        await self.session.flush()

    async def using_schedule(self, schedule_id: uuid.UUID) -> list[str]:
        """Names of the policies naming the schedule as a recipient."""
        needle = f'"schedule:{schedule_id}"'
        stmt = self._policies().where(func.strpos(cast(EscalationPolicy.tiers, Text), needle) > 0)
        return [p.name for p in await self.session.scalars(stmt)]


class ScheduleRepository(TenantRepository[OnCallSchedule]):
    model = OnCallSchedule

    def _schedules(self) -> Select[OnCallSchedule]:
        return select(OnCallSchedule).where(OnCallSchedule.tenant_id == self.ctx.tenant_id)

    async def page(self, limit: int, offset: int) -> tuple[list[OnCallSchedule], int]:
        stmt = self._schedules()
        total = await self.session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = await self.session.scalars(
            stmt.order_by(OnCallSchedule.name, OnCallSchedule.id).limit(limit).offset(offset)
        )
        return list(rows), int(total or 0)

    async def get(
        self, schedule_id: uuid.UUID, *, for_update: bool = False
    ) -> OnCallSchedule | None:
        stmt = self._schedules().where(OnCallSchedule.id == schedule_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def existing(self, ids: set[uuid.UUID]) -> set[uuid.UUID]:
        if not ids:
            return set()
        stmt = select(OnCallSchedule.id).where(
            OnCallSchedule.tenant_id == self.ctx.tenant_id, OnCallSchedule.id.in_(ids)
        )
        return set(await self.session.scalars(stmt))

    async def name_taken(self, name: str, other_than: uuid.UUID | None = None) -> bool:
        stmt = self._schedules().where(OnCallSchedule.name == name)
        if other_than is not None:
            stmt = stmt.where(OnCallSchedule.id != other_than)
        return (await self.session.scalars(stmt.limit(1))).first() is not None

    async def delete(self, schedule: OnCallSchedule) -> None:
        await self.session.delete(schedule)
        await self.session.flush()


class OverrideRepository(TenantRepository[OnCallOverride]):
    model = OnCallOverride

    def _overrides(self, schedule_id: uuid.UUID) -> Select[OnCallOverride]:
        return select(OnCallOverride).where(
            OnCallOverride.tenant_id == self.ctx.tenant_id,
            OnCallOverride.schedule_id == schedule_id,
        )

    async def not_ended(
        self, schedule_id: uuid.UUID, now: datetime, limit: int = 200
    ) -> list[OnCallOverride]:
        stmt = self._overrides(schedule_id).where(OnCallOverride.ends_at > now)
        rows = await self.session.scalars(
            stmt.order_by(OnCallOverride.starts_at, OnCallOverride.id).limit(limit)
        )
        return list(rows)

    async def covering(self, schedule_id: uuid.UUID, at: datetime) -> list[OnCallOverride]:
        stmt = self._overrides(schedule_id).where(
            OnCallOverride.starts_at <= at, OnCallOverride.ends_at > at
        )
        return list(await self.session.scalars(stmt))

    async def get(self, schedule_id: uuid.UUID, override_id: uuid.UUID) -> OnCallOverride | None:
        stmt = self._overrides(schedule_id).where(OnCallOverride.id == override_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def delete(self, override: OnCallOverride) -> None:
        await self.session.delete(override)
        await self.session.flush()


class EscalationRepository(TenantRepository[AlertEscalation]):
    model = AlertEscalation

    async def due(self, now: datetime, limit: int) -> list[DueTier]:
        rows = await self.session.execute(
            _DUE, {"tenant_id": self.ctx.tenant_id, "now": now, "limit": limit}
        )
        return [DueTier(r.alert_id, r.policy_id, r.tier) for r in rows]

    async def lock_unacknowledged(self, alert_id: uuid.UUID) -> Alert | None:
        """The alert, locked, if it is still unacknowledged and no other worker holds it."""
        stmt = (
            select(Alert)
            .where(
                Alert.tenant_id == self.ctx.tenant_id, Alert.id == alert_id, Alert.state == "new"
            )
            .with_for_update(skip_locked=True)
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def claim(
        self,
        alert_id: uuid.UUID,
        policy_id: uuid.UUID,
        tier: int,
        now: datetime,
        recipients: list[str],
    ) -> bool:
        """Record the tier as fired; False if it already was (it then does nothing)."""
        stmt = (
            insert(AlertEscalation)
            .values(
                tenant_id=self.ctx.tenant_id,
                alert_id=alert_id,
                policy_id=policy_id,
                tier=tier,
                fired_at=now,
                recipients=recipients,
            )
            .on_conflict_do_nothing()
            .returning(AlertEscalation.tier)
        )
        return (await self.session.execute(stmt)).first() is not None
