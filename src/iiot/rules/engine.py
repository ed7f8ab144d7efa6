"""The rules engine: evaluates every committed telemetry batch exactly once, durably.

The ingest statement queues each accepted batch of a tenant with enabled telemetry rules in
`rule_batches`, in the ingest transaction: once a device has its acknowledgement, the batch
is in the database. After the commit the ingesting process nudges its engine (no database
work before the acknowledgement); the engine then, in one tenant transaction:

1. takes the tenant's evaluation lock (a transaction-level advisory lock: one evaluator per
   tenant across all processes, so batches are judged in order),
2. reads the tenant's oldest queued batches (up to `MAX_BATCHES_PER_EVALUATION`),
3. deletes them (in the same statement),
4. evaluates them in order (rule state, alerts, webhooks and e-mails),

and commits: the effects and the removal of the batches commit together, so a crash at any
point leaves the batches queued and nothing applied, and a committed evaluation is never
repeated. Batches of a process that died before evaluating are found by the
`rules.queued-batches` job (every `SWEEP_INTERVAL_SECONDS`, in one process at a time), which
nudges its own process's engine. A failed evaluation is retried batch by batch with back-off;
a batch failing `MAX_ATTEMPTS` times is parked (`parked_at`): counted in
`iiot_rules_batches_parked_total`, logged as an error, and listed to the tenant's admins
(`GET /rules/parked-batches`); it stays in the table, never dropped silently.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from iiot import events, mail
from iiot.db.outage import is_database_unavailable
from iiot.db.session import TenantSession
from iiot.metering.meter import usage_meter
from iiot.notifications import webhooks
from iiot.rules import metrics
from iiot.rules.cache import RuleCache
from iiot.rules.evaluation import BatchValues, Outcome, apply, batch_values, columns_values, judge
from iiot.rules.matching import RuleIndex, Verdicts
from iiot.rules.repository import (
    DeviceInfo,
    QueuedBatch,
    ReadingRepository,
    RuleBatchPlatformRepository,
    RuleBatchRepository,
    RuleDeviceRepository,
)
from iiot.rules.specs import RuleSpec
from iiot.tenancy.context import TenantContext, system_context
from iiot.tenancy.principals import SystemPrincipal

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
MAX_BATCHES_PER_EVALUATION = 64
ENGINE_ACTOR = SystemPrincipal(name="rules-engine")
SWEEP_JOB = "rules.queued-batches"
SWEEP_INTERVAL_SECONDS = 5.0
# The sweep leaves younger batches to the process that ingested them.
SWEEP_AFTER_SECONDS = 2.0
# How long a nudge waits for another process's evaluation of the same tenant to end.
LOCK_WAIT_SECONDS = 2.0
_LOCKED = -1


class RulesEngine:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.cache = RuleCache(rt)
        # Tenants with queued batches to evaluate (a nudge each).
        self._queue: asyncio.Queue[uuid.UUID] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        # Tenants whose last evaluation failed: their batches are taken one at a time.
        self._one_by_one: set[uuid.UUID] = set()
        # The index of each tenant's rule list as the cache last returned it.
        self._indexes: dict[uuid.UUID, tuple[list[RuleSpec], RuleIndex]] = {}

    def submit(self, event: events.TelemetryCommitted) -> None:
        if event.rules_queued:
            self.nudge(event.tenant_id)

    def nudge(self, tenant_id: uuid.UUID) -> None:
        """The tenant has queued batches: evaluate them soon in this process."""
        self._queue.put_nowait(tenant_id)
        metrics.QUEUE_DEPTH.inc()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="rules-engine")

    async def drain(self) -> None:
        """Wait until every nudge so far has been handled (its batches evaluated, unless
        another process holds the tenant's evaluation)."""
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            taken = [await self._queue.get()]
            while not self._queue.empty():
                taken.append(self._queue.get_nowait())
            try:
                for tenant_id in dict.fromkeys(taken):
                    await self._consume(tenant_id)
            except Exception as exc:
                if is_database_unavailable(exc):
                    log.warning("rules engine: database unavailable; the sweep retries later")
                else:
                    log.exception("rules engine failed")
            finally:
                metrics.QUEUE_DEPTH.dec(len(taken))
                for _ in taken:
                    self._queue.task_done()

    async def _consume(self, tenant_id: uuid.UUID) -> None:
        """Evaluate the tenant's queued batches until none is left."""
        waited = 0.0
        while True:
            done = await self._round(tenant_id)
            if done == _LOCKED:
                if waited >= LOCK_WAIT_SECONDS:
                    return  # the other process evaluates them; the sweep covers the rest
                await asyncio.sleep(0.05)
                waited += 0.05
                continue
            if done == 0:
                return

    async def _round(self, tenant_id: uuid.UUID) -> int:
        """One transaction: lock, read, evaluate, delete. The number of batches evaluated."""
        ctx = system_context(tenant_id, ENGINE_ACTOR)
        limit = 1 if tenant_id in self._one_by_one else MAX_BATCHES_PER_EVALUATION
        queued: list[QueuedBatch] = []
        try:
            with metrics.EVALUATION_SECONDS.time():
                async with self.rt.db.tenant(ctx) as session:
                    repo = RuleBatchRepository(session, ctx)
                    if not await repo.lock_tenant():
                        return _LOCKED
                    # Removed in this transaction: they stay queued unless it commits.
                    queued = await repo.take(limit)
                    if not queued:
                        self._one_by_one.discard(tenant_id)
                        return 0
                    index = await self._index(tenant_id)
                    values = await self._values(repo, queued, index.keys) if index.keys else []
                    outcome = await self._evaluate_in(session, ctx, values, index)
        except Exception as exc:
            if is_database_unavailable(exc) or not queued:
                raise
            await self._failed(ctx, queued, exc)
            return len(queued)
        if limit == 1:
            self._one_by_one.discard(tenant_id)
        metrics.BATCHES.inc(len(queued))
        metrics.TRIGGERS.inc(outcome.fired)
        after_commit(self.rt, tenant_id, outcome)
        return len(queued)

    async def _failed(self, ctx: TenantContext, queued: list[QueuedBatch], exc: Exception) -> None:
        tenant_id = ctx.tenant_id
        if len(queued) > 1:
            # Find the failing batch: evaluate the next ones one at a time.
            log.warning(
                "evaluating %d batches of tenant %s failed; one by one", len(queued), tenant_id
            )
            self._one_by_one.add(tenant_id)
            return
        batch = queued[0]
        async with self.rt.db.tenant(ctx) as session:
            parked = await RuleBatchRepository(session, ctx).failed(
                batch.id, f"{type(exc).__name__}: {exc}", MAX_ATTEMPTS
            )
        if parked:
            metrics.FAILURES.inc()
            metrics.PARKED.inc()
            log.error(
                "rule batch %d of tenant %s parked after %d failed evaluations: %s",
                batch.id,
                tenant_id,
                batch.attempts + 1,
                exc,
                exc_info=exc,
            )
            return
        log.warning(
            "evaluating rule batch %d of tenant %s failed (attempt %d); retrying",
            batch.id,
            tenant_id,
            batch.attempts + 1,
        )
        await asyncio.sleep(0.05 * 2 ** (batch.attempts + 1))

    async def _index(self, tenant_id: uuid.UUID) -> RuleIndex:
        specs = await self.cache.rules_for(tenant_id)
        known = self._indexes.get(tenant_id)
        if known is not None and known[0] is specs:
            return known[1]
        index = RuleIndex(specs)
        self._indexes[tenant_id] = (specs, index)
        return index

    async def _values(
        self, repo: RuleBatchRepository, queued: list[QueuedBatch], keys: frozenset[str]
    ) -> list[dict[uuid.UUID, BatchValues]]:
        """The batches' readings per device and key (only the keys some rule reads), from the
        queued documents read as columns."""
        docs: list[dict[str, Any]] = [orjson.loads(q.points) for q in queued]
        found = await repo.series_names({s for d in docs for s in d["ds"]})
        # Series missing here belong to devices deleted since: their readings are skipped.
        names = {sid: name for sid, name in found.items() if name[1] in keys}
        return [columns_values(doc, names, datetime.fromisoformat) for doc in docs]

    async def evaluate(
        self, tenant_id: uuid.UUID, batches: list[events.TelemetryCommitted]
    ) -> Outcome:
        """Evaluate the tenant's batches given in memory, in order, in one tenant transaction."""
        values = [batch_values(b.points) for b in batches if b.tenant_id == tenant_id]
        ctx = system_context(tenant_id, ENGINE_ACTOR)
        index = await self._index(tenant_id)
        async with self.rt.db.tenant(ctx) as session:
            outcome = await self._evaluate_in(session, ctx, values, index)
        after_commit(self.rt, tenant_id, outcome)
        return outcome

    async def _evaluate_in(
        self,
        session: TenantSession,
        ctx: TenantContext,
        values: list[dict[uuid.UUID, BatchValues]],
        index: RuleIndex,
    ) -> Outcome:
        if not index.specs or not any(values):
            return Outcome()
        now = datetime.now(UTC)
        device_ids = {d for per_device in values for d in per_device}
        device_repo = RuleDeviceRepository(session, ctx)
        if index.typed:
            devices = await device_repo.by_ids(device_ids)
        else:
            # No rule looks at device types: names are read only for devices that fire.
            devices = {d: DeviceInfo.unresolved(d) for d in device_ids}
        readings = ReadingRepository(session, ctx)
        verdicts = Verdicts()
        for per_device in values:
            for device_id, readings_of_device in per_device.items():
                device = devices.get(device_id)
                if device is None:
                    continue
                for spec in verdicts.judge_batch(index, device, readings_of_device):
                    found = await judge(readings, spec, device, readings_of_device, now)
                    verdicts.add(spec, device, found)
        usage_meter(self.rt).add(ctx.tenant_id, "rule_evaluations", verdicts.evaluations)
        judged, quiet = verdicts.judged()
        return await apply(session, ctx, judged, now, resolve=device_repo.by_ids, quiet=quiet)

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        await self.cache.close()


def after_commit(rt: Runtime, tenant_id: uuid.UUID, outcome: Outcome) -> None:
    """Start sending what the committed evaluation queued; the periodic jobs retry."""
    webhooks.deliver_soon(rt, tenant_id, outcome.webhooks)
    if outcome.mails:
        mail.deliver_soon(rt)


async def shutdown(rt: Runtime, timeout_seconds: float = 10.0) -> None:
    """Evaluate what is still queued (up to `timeout_seconds`), then stop the engine.

    Called on a graceful stop, before the database is disposed, so that batches already
    acknowledged to their senders are not left unevaluated.
    """
    found = rt.state.peek(RulesEngine)
    if found is None:
        return
    try:
        await asyncio.wait_for(found.drain(), timeout_seconds)
    except TimeoutError:
        log.warning(
            "rules engine stopped with %d tenants' batches queued; they stay queued in the "
            "database for the next start or another process",
            found._queue.qsize(),
        )
    await found.close()
    await webhooks.wait_for_deliveries(rt)


def engine(rt: Runtime) -> RulesEngine:
    return rt.state.get(RulesEngine)


async def on_telemetry_committed(rt: Runtime, event: events.TelemetryCommitted) -> None:
    engine(rt).submit(event)


async def sweep_queued_batches(rt: Runtime) -> int:
    """The job: nudge this process's engine for every tenant with batches waiting longer
    than `SWEEP_AFTER_SECONDS` (their process died, or was busy); wait for the evaluation."""
    async with rt.db.system() as session:
        tenants = await RuleBatchPlatformRepository(session).tenants_waiting(SWEEP_AFTER_SECONDS)
    if not tenants:
        return 0
    found = engine(rt)
    for tenant_id in tenants:
        found.nudge(tenant_id)
    await found.drain()
    return len(tenants)
