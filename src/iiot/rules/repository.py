"""Rule rows, their evaluation state, and the device and telemetry reads rules need.

Every statement is filtered by the context's tenant (and row-level security applies again
underneath), so an evaluation can never read another tenant's telemetry.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Double,
    Integer,
    ScalarSelect,
    Select,
    Uuid,
    any_,
    bindparam,
    cast,
    delete,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert

from iiot.db.repository import SystemRepository, TenantRepository
from iiot.models.devices import Device
from iiot.models.rules import Rule, RuleBatch, RuleState
from iiot.models.telemetry import TelemetryPoint, TelemetrySeries

RULES_CHANNEL = "iiot_rules"


class RuleRepository(TenantRepository[Rule]):
    model = Rule

    def _rules(self) -> Select[Rule]:
        return select(Rule).where(Rule.tenant_id == self.ctx.tenant_id)

    async def page(
        self,
        *,
        enabled: bool | None = None,
        device_id: uuid.UUID | None = None,
        rule_type: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Rule], int]:
        stmt = self._rules()
        if enabled is not None:
            stmt = stmt.where(Rule.enabled.is_(enabled))
        if device_id is not None:
            stmt = stmt.where(Rule.device_id == device_id)
        if rule_type is not None:
            stmt = stmt.where(Rule.rule_type == rule_type)
        total = await self.session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = await self.session.scalars(
            stmt.order_by(Rule.priority.desc(), Rule.created_at, Rule.id)
            .limit(limit)
            .offset(offset)
        )
        return list(rows), int(total or 0)

    async def enabled(self, *, time_based: bool = False) -> list[Rule]:
        stmt = self._rules().where(Rule.enabled.is_(True))
        if time_based:
            stmt = stmt.where(Rule.rule_type == "time_based")
        rows = await self.session.scalars(stmt.order_by(Rule.priority.desc(), Rule.id))
        return list(rows)

    async def get(self, rule_id: uuid.UUID, *, for_update: bool = False) -> Rule | None:
        stmt = self._rules().where(Rule.id == rule_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def delete(self, rule: Rule) -> None:
        await self.session.delete(rule)
        await self.session.flush()

    @staticmethod
    def count_figure(tenant_id: ColumnElement[uuid.UUID]) -> ScalarSelect[int]:
        """The tenant's rule count as a scalar subquery (for the usage statement)."""
        return (
            select(func.count()).select_from(Rule).where(Rule.tenant_id == tenant_id)
        ).scalar_subquery()

    async def count(self) -> int:
        total = await self.session.scalar(
            select(func.count()).select_from(Rule).where(Rule.tenant_id == self.ctx.tenant_id)
        )
        return int(total or 0)

    async def notify_changed(self) -> None:
        """Tell every process's rule cache, on commit of this transaction, to reload."""
        await self.session.execute(
            text("select pg_notify(:channel, :tenant)"),
            {"channel": RULES_CHANNEL, "tenant": str(self.ctx.tenant_id)},
        )


class OfflineRuleTenants(SystemRepository):
    """Tenants with an enabled device-offline rule, through a narrow SECURITY DEFINER function."""

    async def tenant_ids(self) -> list[uuid.UUID]:
        rows = await self.session.execute(text("select * from iiot_tenants_with_offline_rules()"))
        return [r[0] for r in rows]


@dataclass(frozen=True)
class DeviceInfo:
    id: uuid.UUID
    name: str
    type: str | None
    status: str
    last_seen_at: datetime | None
    created_at: datetime | None

    @classmethod
    def unresolved(cls, device_id: uuid.UUID) -> DeviceInfo:
        """A device known only by id: read from the database only if a rule fires for it."""
        return cls(device_id, "", None, "unresolved", None, None)

    @property
    def resolved(self) -> bool:
        return self.status != "unresolved"


def _device_info(d: Device) -> DeviceInfo:
    return DeviceInfo(d.id, d.name, d.type, d.status, d.last_seen_at, d.created_at)


class RuleDeviceRepository(TenantRepository[Device]):
    model = Device

    def _devices(self) -> Select[Device]:
        return select(Device).where(Device.tenant_id == self.ctx.tenant_id)

    async def exists(self, device_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(Device.id).where(Device.tenant_id == self.ctx.tenant_id, Device.id == device_id)
        )
        return found is not None

    async def by_ids(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, DeviceInfo]:
        rows = await self.session.scalars(self._devices().where(Device.id.in_(list(ids))))
        return {d.id: _device_info(d) for d in rows}

    async def targets(
        self, *, device_id: uuid.UUID | None, device_type: str | None, limit: int
    ) -> list[DeviceInfo]:
        stmt = self._devices()
        if device_id is not None:
            stmt = stmt.where(Device.id == device_id)
        elif device_type is not None:
            stmt = stmt.where(Device.type == device_type)
        rows = await self.session.scalars(stmt.order_by(Device.name, Device.id).limit(limit))
        return [_device_info(d) for d in rows]


@dataclass(frozen=True)
class Reading:
    ts: datetime
    value: float | None


def _num(row_num: float | None, row_bool: bool | None) -> float | None:
    if row_num is not None:
        return float(row_num)
    if row_bool is not None:
        return 1.0 if row_bool else 0.0
    return None


class ReadingRepository(TenantRepository[TelemetryPoint]):
    """Telemetry reads of the rules engine, always for one device of the context's tenant."""

    model = TelemetryPoint

    def _where(self, device_id: uuid.UUID, key: str) -> list[object]:
        series = (
            select(TelemetrySeries.id)
            .where(
                TelemetrySeries.tenant_id == self.ctx.tenant_id,
                TelemetrySeries.device_id == device_id,
                TelemetrySeries.key == key,
            )
            .scalar_subquery()
        )
        return [TelemetryPoint.tenant_id == self.ctx.tenant_id, TelemetryPoint.series_id == series]

    async def latest(
        self, device_id: uuid.UUID, key: str, until: datetime | None = None
    ) -> Reading | None:
        """The newest reading of `key` (at or before `until` when given)."""
        where = self._where(device_id, key)
        if until is not None:
            where.append(TelemetryPoint.ts <= until)
        row = (
            await self.session.execute(
                select(TelemetryPoint.ts, TelemetryPoint.value_num, TelemetryPoint.value_bool)
                .where(*where)  # type: ignore[arg-type]
                .order_by(TelemetryPoint.ts.desc())
                .limit(1)
            )
        ).first()
        return Reading(row[0], _num(row[1], row[2])) if row else None

    async def span(
        self, device_id: uuid.UUID, key: str, start: datetime, end: datetime
    ) -> tuple[Reading | None, list[Reading]]:
        """The last reading at or before `start`, and every reading in (start, end]."""
        where = self._where(device_id, key)
        before = (
            await self.session.execute(
                select(TelemetryPoint.ts, TelemetryPoint.value_num, TelemetryPoint.value_bool)
                .where(*where, TelemetryPoint.ts <= start)  # type: ignore[arg-type]
                .order_by(TelemetryPoint.ts.desc())
                .limit(1)
            )
        ).first()
        rows = await self.session.execute(
            select(TelemetryPoint.ts, TelemetryPoint.value_num, TelemetryPoint.value_bool)
            .where(*where, TelemetryPoint.ts > start, TelemetryPoint.ts <= end)  # type: ignore[arg-type]
            .order_by(TelemetryPoint.ts)
            .limit(100_000)
        )
        first = Reading(before[0], _num(before[1], before[2])) if before else None
        return first, [Reading(r[0], _num(r[1], r[2])) for r in rows]

    async def aggregate(
        self, device_id: uuid.UUID, key: str, function: str, start: datetime, end: datetime
    ) -> float | None:
        number = func.coalesce(
            TelemetryPoint.value_num,
            cast(cast(TelemetryPoint.value_bool, Integer), Double),
        )
        fn = {
            "avg": func.avg(number),
            "min": func.min(number),
            "max": func.max(number),
            "stddev": func.stddev_samp(number),
            "count": func.count(number),
        }[function]
        value = await self.session.scalar(
            select(fn).where(
                *self._where(device_id, key),  # type: ignore[arg-type]
                TelemetryPoint.ts > start,
                TelemetryPoint.ts <= end,
            )
        )
        return None if value is None else float(value)


def _lock_states(*, active_only: bool) -> Select[RuleState]:
    stmt = select(RuleState).where(
        RuleState.tenant_id == bindparam("t"),
        RuleState.device_id == any_(bindparam("devices", type_=ARRAY(Uuid()))),
        RuleState.rule_id == any_(bindparam("rules", type_=ARRAY(Uuid()))),
    )
    if active_only:
        stmt = stmt.where(RuleState.active.is_(True))
    return stmt.order_by(RuleState.rule_id, RuleState.device_id).with_for_update()


# Built once: the statement is the same for every evaluation.
_LOCK_ANY = _lock_states(active_only=False)
_LOCK_ACTIVE = _lock_states(active_only=True)


class RuleStateRepository(TenantRepository[RuleState]):
    model = RuleState

    async def lock(
        self,
        rule_ids: Sequence[uuid.UUID],
        device_ids: Sequence[uuid.UUID],
        *,
        create: Sequence[tuple[uuid.UUID, uuid.UUID]],
    ) -> dict[tuple[uuid.UUID, uuid.UUID], RuleState]:
        """Lock the state rows of the rules `rule_ids` on the devices `device_ids`, creating
        those of the pairs (rule_id, device_id) in `create`.

        With nothing to create only active rows matter (the ones a verdict may clear). Two
        array parameters instead of one per pair: a short statement that PostgreSQL and the
        driver can reuse. It may lock a few more rows than the pairs judged (other pairs of
        the same rules and devices); rows only exist for pairs that ever held.
        """
        if create:
            await self.session.execute(
                insert(RuleState)
                .values(
                    [
                        {"tenant_id": self.ctx.tenant_id, "rule_id": r, "device_id": d}
                        for r, d in create
                    ]
                )
                .on_conflict_do_nothing()
            )
        if not rule_ids or not device_ids:
            return {}
        rows = await self.session.scalars(
            _LOCK_ANY if create else _LOCK_ACTIVE,
            {"t": self.ctx.tenant_id, "rules": list(rule_ids), "devices": list(device_ids)},
            execution_options={"populate_existing": True},
        )
        return {(s.rule_id, s.device_id): s for s in rows}

    async def reset(self, rule_id: uuid.UUID) -> None:
        """Forget the rule's per-device state: its next true evaluation is a new edge."""
        await self.session.execute(
            delete(RuleState).where(
                RuleState.tenant_id == self.ctx.tenant_id, RuleState.rule_id == rule_id
            )
        )

    async def for_rule(self, rule_id: uuid.UUID) -> dict[uuid.UUID, RuleState]:
        rows = await self.session.scalars(
            select(RuleState).where(
                RuleState.tenant_id == self.ctx.tenant_id, RuleState.rule_id == rule_id
            )
        )
        return {s.device_id: s for s in rows}


@dataclass(frozen=True, slots=True)
class QueuedBatch:
    id: int
    points: str  # the ingest statement's JSON document of columns
    attempts: int


@dataclass(frozen=True, slots=True)
class ParkedBatch:
    id: int
    created_at: datetime
    attempts: int
    last_error: str | None
    parked_at: datetime


def _by_id(batch: QueuedBatch) -> int:
    return batch.id


class RuleBatchRepository(TenantRepository[RuleBatch]):
    """The tenant's committed batches waiting for the rules engine (see `rules.engine`)."""

    model = RuleBatch

    async def lock_tenant(self) -> bool:
        """One evaluator per tenant at a time, across processes (until the transaction ends)."""
        got = await self.session.scalar(
            text("select pg_try_advisory_xact_lock(727276, hashtext(:t))"),
            {"t": str(self.ctx.tenant_id)},
        )
        return bool(got)

    async def take(self, limit: int) -> list[QueuedBatch]:
        """Remove the oldest `limit` unparked batches and return them, oldest first.

        The removal commits with the evaluation's effects or not at all: a transaction that
        fails leaves them queued."""
        rows = await self.session.execute(
            text(
                "delete from rule_batches b where b.tenant_id = :t and b.id in ("
                " select id from rule_batches where tenant_id = :t and parked_at is null"
                " order by id limit :limit"
                ") returning b.id, b.points::text, b.attempts"
            ),
            {"t": self.ctx.tenant_id, "limit": limit},
        )
        return sorted((QueuedBatch(int(r[0]), r[1], int(r[2])) for r in rows), key=_by_id)

    async def series_names(self, ids: Iterable[int]) -> dict[int, tuple[uuid.UUID, str]]:
        rows = await self.session.execute(
            text(
                "select id, device_id, key from telemetry_series"
                " where tenant_id = :t and id = any(:ids)"
            ),
            {"t": self.ctx.tenant_id, "ids": list(ids)},
        )
        return {int(r[0]): (r[1], r[2]) for r in rows}

    async def failed(self, batch_id: int, error: str, park_after: int) -> bool:
        """Count a failed attempt; True when the batch is now parked."""
        parked = await self.session.scalar(
            text(
                "update rule_batches set attempts = attempts + 1, last_error = :error, "
                "parked_at = case when attempts + 1 >= :park_after then now() end "
                "where tenant_id = :t and id = :id returning parked_at is not null"
            ),
            {
                "t": self.ctx.tenant_id,
                "id": batch_id,
                "error": error[:2000],
                "park_after": park_after,
            },
        )
        return bool(parked)

    async def parked(self, limit: int) -> list[ParkedBatch]:
        rows = await self.session.execute(
            select(
                RuleBatch.id,
                RuleBatch.created_at,
                RuleBatch.attempts,
                RuleBatch.last_error,
                RuleBatch.parked_at,
            )
            .where(RuleBatch.tenant_id == self.ctx.tenant_id, RuleBatch.parked_at.is_not(None))
            .order_by(RuleBatch.id)
            .limit(limit)
        )
        return [ParkedBatch(int(r[0]), r[1], int(r[2]), r[3], r[4] or r[1]) for r in rows]


class RuleBatchPlatformRepository(SystemRepository):
    async def tenants_waiting(self, older_than_seconds: float) -> list[uuid.UUID]:
        rows = await self.session.execute(
            text("select * from iiot_rule_batch_tenants(make_interval(secs => :s))"),
            {"s": older_than_seconds},
        )
        return [r[0] for r in rows]
