"""Telemetry ingest: the hot path from a request body to committed rows.

`prepare` decodes and validates the body (no database work unless a day's partition is
missing or the tenant's retention is not cached); `write` stores the points with one
statement that also counts them against the daily quota (see `TelemetryWriter`), in a short
transaction of its own or, for small requests, one shared with concurrent ones
(`ingest_group`), and returns only after that commit; `after_commit` records presence and
tells the rules engine. A batch is all-or-nothing: any
invalid point refuses the whole request (422, every offending point listed), and a batch that
would cross the daily quota is rolled back and refused (429) so the counter never overshoots.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import orjson
import psycopg

from iiot import events
from iiot.devices.access import explain_refusal
from iiot.devices.presence import presence
from iiot.errors import BadRequest, NotFound, QuotaExceeded, ValidationFailed
from iiot.metering.meter import usage_meter
from iiot.modules import UsageFigures, UsageParameters
from iiot.quotas import rates
from iiot.quotas.repository import QuotaRepository
from iiot.telemetry.ingest_group import GROUP_MAX_ROWS, group_committer
from iiot.telemetry.partitions import keeper
from iiot.telemetry.repository import PendingWrite, TelemetryWriter, UsageRepository
from iiot.telemetry.schemas import (
    MAX_REPORTED_ERRORS,
    IngestAccepted,
    ParsedIngest,
    PointIn,
    Rows,
    parse_ingest,
    parse_points,
)
from iiot.tenancy.context import TenantContext
from iiot.tenancy.principals import DevicePrincipal

if TYPE_CHECKING:
    from iiot.runtime import Runtime

RETENTION_CACHE_SECONDS = 5.0


@dataclass(slots=True)
class PreparedIngest:
    parsed: ParsedIngest
    now: datetime
    token_digest: bytes | None
    # Set by `write`: the batch was queued for the rules engine in its transaction.
    rules_queued: bool = False
    # Set by `write`: another process may have live subscribers of the tenant.
    watched: bool = True


def seconds_to_next_utc_midnight(now: datetime) -> int:
    tomorrow = (now + timedelta(days=1)).date()
    midnight = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC)
    return max(1, int((midnight - now).total_seconds()) + 1)


def _retention_cache(rt: Runtime) -> dict[uuid.UUID, tuple[int | None, float]]:
    return {}


def _retention_lookups(rt: Runtime) -> dict[uuid.UUID, asyncio.Future[int | None]]:
    return {}


async def _retention_days(rt: Runtime, ctx: TenantContext) -> int | None:
    """The tenant's effective retention, cached briefly (it changes rarely). One look-up per
    tenant at a time: concurrent requests wait for it (or keep the expired value meanwhile)
    instead of all querying the database when the entry expires."""
    cache = rt.state.get(_retention_cache)
    now = time.monotonic()
    hit = cache.get(ctx.tenant_id)
    if hit is not None and hit[1] > now:
        return hit[0]
    inflight = rt.state.get(_retention_lookups)
    pending = inflight.get(ctx.tenant_id)
    if pending is not None:
        if hit is not None:
            return hit[0]
        return await asyncio.shield(pending)
    future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
    inflight[ctx.tenant_id] = future
    try:
        async with rt.db.tenant(ctx) as session:
            limits = await QuotaRepository(session, ctx).limits()
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: waiters re-raise it, nobody else must log it
        raise
    finally:
        inflight.pop(ctx.tenant_id, None)
    if len(cache) > 10_000:
        cache.clear()
    cache[ctx.tenant_id] = (limits.max_retention_days, now + RETENTION_CACHE_SECONDS)
    future.set_result(limits.max_retention_days)
    return limits.max_retention_days


def decode(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if b"NaN" in body or b"Infinity" in body or "infinity" in str(exc):
            raise ValidationFailed(
                "NaN and Infinity are not allowed values",
                errors=[{"index": None, "field": "body", "reason": "NaN/Infinity not allowed"}],
            ) from exc
        if "surrogate" in exc.msg:
            raise ValidationFailed(
                "the body is not valid Unicode: lone UTF-16 surrogates are not allowed",
                errors=[{"index": None, "field": "body", "reason": "lone UTF-16 surrogate"}],
            ) from exc
        raise BadRequest(f"malformed JSON: {exc}") from exc


async def prepare(
    rt: Runtime, ctx: TenantContext, body: bytes, token_digest: bytes | None
) -> PreparedIngest:
    """Decode and validate a request body; make sure its days' partitions exist."""
    if not body:
        raise BadRequest("empty body: expected a JSON object")
    return await prepare_document(rt, ctx, decode(body), token_digest)


async def prepare_points(
    rt: Runtime,
    ctx: TenantContext,
    device_id: uuid.UUID,
    points: list[PointIn],
    token_digest: bytes | None,
) -> PreparedIngest:
    """Validate points another transport decoded (same rules and errors as a body)."""
    now = datetime.now(UTC)
    oldest = await _oldest(rt, ctx, now)
    own = ctx.principal.device_id if isinstance(ctx.principal, DevicePrincipal) else None
    parsed = parse_points(device_id, points, now=now, oldest=oldest, own_device=own)
    return await _prepared(rt, parsed, now, token_digest)


async def _oldest(rt: Runtime, ctx: TenantContext, now: datetime) -> datetime | None:
    retention = await _retention_days(rt, ctx)
    return now - timedelta(days=retention) if retention is not None else None


async def prepare_document(
    rt: Runtime, ctx: TenantContext, document: object, token_digest: bytes | None
) -> PreparedIngest:
    """Validate a decoded body; make sure its days' partitions exist."""
    now = datetime.now(UTC)
    oldest = await _oldest(rt, ctx, now)
    own = ctx.principal.device_id if isinstance(ctx.principal, DevicePrincipal) else None
    parsed = parse_ingest(document, now=now, oldest=oldest, own_device=own)
    return await _prepared(rt, parsed, now, token_digest)


async def _prepared(
    rt: Runtime, parsed: ParsedIngest, now: datetime, token_digest: bytes | None
) -> PreparedIngest:
    """Refuse the request if any point is invalid; make sure its days' partitions exist."""
    if parsed.errors:
        shown = parsed.errors[:MAX_REPORTED_ERRORS]
        indexes = sorted({e.index for e in parsed.errors if e.index is not None})
        raise ValidationFailed(
            f"{len(parsed.errors)} invalid value(s) in {max(len(indexes), 1)} point(s); "
            "nothing was stored",
            errors=[e.as_dict() for e in shown],
            invalid_points=indexes[:MAX_REPORTED_ERRORS],
        )
    if parsed.min_ts is not None and parsed.max_ts is not None:
        await keeper(rt).ensure(rt, parsed.min_ts.date(), parsed.max_ts.date())
    return PreparedIngest(parsed=parsed, now=now, token_digest=token_digest)


async def write(rt: Runtime, ctx: TenantContext, prepared: PreparedIngest) -> IngestAccepted:
    """Store the points and count them against today's quota; returns after the commit."""
    rows = prepared.parsed.rows
    item = PendingWrite(ctx, rows, prepared.now.date(), prepared.token_digest)
    try:
        if len(rows) <= GROUP_MAX_ROWS:
            outcome = await group_committer(rt).write(item)
        else:
            outcome = await TelemetryWriter(rt.db.engine).write(item)
    except psycopg.errors.ForeignKeyViolation as exc:
        # The device was deleted while this write was in flight; nothing was stored.
        raise NotFound("device not found") from exc
    if not outcome.credential_ok:
        # The token was good when resolved (perhaps from the cache) but not inside the write's
        # transaction: answer why (suspended tenant, disabled device, revoked token).
        assert prepared.token_digest is not None
        raise await explain_refusal(rt, prepared.token_digest)
    if outcome.missing_devices:
        unknown = set(outcome.missing_devices)
        bad = sorted(
            {i for i, d in zip(rows.point_index, rows.device_ids, strict=True) if d in unknown}
        )
        raise NotFound("device not found", invalid_points=bad[:MAX_REPORTED_ERRORS])
    if outcome.over_quota:
        assert outcome.limit is not None
        raise QuotaExceeded(
            "telemetry_points_per_day",
            limit=outcome.limit,
            current=outcome.used_before,
            status=429,
            retry_after=seconds_to_next_utc_midnight(prepared.now),
        )
    prepared.rules_queued = outcome.rules_queued
    prepared.watched = outcome.watched
    return IngestAccepted(points=outcome.inserted, duplicates=len(rows) - outcome.inserted)


async def admit(rt: Runtime, ctx: TenantContext, prepared: PreparedIngest) -> None:
    """Apply the rate limits to a validated message before it is written: one message per
    device it carries (a gateway's sub-devices count each) and its points against the
    tenant's ingest rate. Raises `RateLimited` (429) when one refuses."""
    limits = await rates.tenant_limits(rt, ctx.tenant_id)
    for device_id in prepared.parsed.rows.distinct_devices():
        await rates.check_device_message(rt, ctx.tenant_id, device_id, limits)
    await rates.check_points(rt, ctx.tenant_id, len(prepared.parsed.rows), limits)


def _meter(rt: Runtime, ctx: TenantContext, rows: Rows, stored: int) -> None:
    per_device = rows.points_per_device()
    meter = usage_meter(rt)
    meter.add(ctx.tenant_id, "device_messages", len(per_device))
    meter.add(ctx.tenant_id, "telemetry_points", len(rows))
    meter.add(ctx.tenant_id, "stored_points", stored)
    meter.add_device_points(ctx.tenant_id, per_device)


async def after_commit(
    rt: Runtime, ctx: TenantContext, prepared: PreparedIngest, accepted: IngestAccepted
) -> None:
    """Meter the message, record the devices as seen and tell the rules engine a batch of the
    tenant is queued.

    The batch itself was queued in the ingest transaction (`rule_batches`): this is only the
    fast path to its evaluation; a batch whose process dies here is found by the engine's
    sweep.
    """
    rows = prepared.parsed.rows
    _meter(rt, ctx, rows, accepted.points)
    state = presence(rt)
    for device_id in rows.distinct_devices():
        state.seen(ctx.tenant_id, device_id, prepared.now)
    if accepted.points == 0:
        return
    # The points travel with the event for live views (the stream); the rules engine reads
    # the durable batch instead. When some points were duplicates the event carries the whole
    # request: listeners must tolerate seeing a point again.
    values: list[float | bool | str | None]
    if rows.nums.count(None):
        values = [
            n if n is not None else (b if b is not None else s)
            for n, b, s in zip(rows.nums, rows.bools, rows.strs, strict=True)
        ]
    else:
        values = rows.nums  # type: ignore[assignment]  # numbers only: no None in it
    points = events.CommittedColumns(rows.device_ids, rows.keys, rows.ts, values)
    await events.telemetry_committed(
        rt,
        events.TelemetryCommitted(
            ctx.tenant_id, points, rules_queued=prepared.rules_queued, watched=prepared.watched
        ),
    )


def telemetry_usage(p: UsageParameters) -> UsageFigures:
    return {"telemetry_points_today": UsageRepository.points_on_figure(p.tenant_id, p.today)}
