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

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import psycopg
from sqlalchemy.ext.asyncio import AsyncSession

from iiot import events
from iiot.auth.principals import DevicePrincipal
from iiot.devices.presence import presence
from iiot.errors import BadRequest, NotFound, QuotaExceeded, Unauthorized, ValidationFailed
from iiot.quotas.repository import QuotaRepository
from iiot.telemetry.ingest_group import GROUP_MAX_ROWS, group_committer
from iiot.telemetry.partitions import keeper
from iiot.telemetry.repository import PendingWrite, TelemetryWriter, UsageRepository
from iiot.telemetry.schemas import (
    MAX_REPORTED_ERRORS,
    IngestAccepted,
    ParsedIngest,
    parse_ingest,
)
from iiot.tenancy.context import TenantContext

if TYPE_CHECKING:
    from iiot.runtime import Runtime

RETENTION_CACHE_SECONDS = 5.0


@dataclass(slots=True)
class PreparedIngest:
    parsed: ParsedIngest
    now: datetime
    token_digest: bytes | None
    # Set by `write`: the batch was queued for the rules engine in its transaction.
    rule_batch: int | None = None


def seconds_to_next_utc_midnight(now: datetime) -> int:
    tomorrow = (now + timedelta(days=1)).date()
    midnight = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC)
    return max(1, int((midnight - now).total_seconds()) + 1)


def _retention_cache(rt: Runtime) -> dict[uuid.UUID, tuple[int | None, float]]:
    return {}


async def _retention_days(rt: Runtime, ctx: TenantContext) -> int | None:
    """The tenant's effective retention, cached briefly (it changes rarely)."""
    cache = rt.state.get(_retention_cache)
    now = time.monotonic()
    hit = cache.get(ctx.tenant_id)
    if hit is not None and hit[1] > now:
        return hit[0]
    async with rt.db.system() as session:
        limits = await QuotaRepository(session, ctx).limits()
    if len(cache) > 10_000:
        cache.clear()
    cache[ctx.tenant_id] = (limits.max_retention_days, now + RETENTION_CACHE_SECONDS)
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
        raise BadRequest(f"malformed JSON: {exc}") from exc


async def prepare(
    rt: Runtime, ctx: TenantContext, body: bytes, token_digest: bytes | None
) -> PreparedIngest:
    """Decode and validate a request body; make sure its days' partitions exist."""
    if not body:
        raise BadRequest("empty body: expected a JSON object")
    document = decode(body)
    now = datetime.now(UTC)
    retention = await _retention_days(rt, ctx)
    oldest = now - timedelta(days=retention) if retention is not None else None
    own = ctx.principal.device_id if isinstance(ctx.principal, DevicePrincipal) else None
    parsed = parse_ingest(document, now=now, oldest=oldest, own_device=own)
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
        raise Unauthorized("invalid or revoked device token")
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
    prepared.rule_batch = outcome.rule_batch
    return IngestAccepted(points=outcome.inserted, duplicates=len(rows) - outcome.inserted)


async def after_commit(
    rt: Runtime, ctx: TenantContext, prepared: PreparedIngest, accepted: IngestAccepted
) -> None:
    """Record the devices as seen and tell the rules engine a batch of the tenant is queued.

    The batch itself was queued in the ingest transaction (`rule_batches`): this is only the
    fast path to its evaluation; a batch whose process dies here is found by the engine's
    sweep.
    """
    state = presence(rt)
    for device_id in set(prepared.parsed.rows.device_ids):
        state.seen(ctx.tenant_id, device_id, prepared.now)
    if accepted.points == 0 or prepared.rule_batch is None:
        return
    await events.telemetry_committed(rt, events.TelemetryCommitted(ctx.tenant_id, []))


async def telemetry_usage(session: AsyncSession, ctx: TenantContext) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    return {"telemetry_points_today": await UsageRepository(session, ctx).points_on(today)}
