"""The rules engine: evaluates each committed telemetry batch in the ingesting process.

The ingest path only puts the batch on this process's queue (no database work before the
acknowledgement); one worker evaluates batches in order, each in a tenant session of the
batch's tenant, so a rule never sees another tenant's telemetry. A failed evaluation is
retried; state, alerts, webhooks and e-mails of a batch commit together.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from iiot import events, mail
from iiot.auth.principals import SystemPrincipal
from iiot.notifications import webhooks
from iiot.rules import metrics
from iiot.rules.cache import RuleCache
from iiot.rules.evaluation import Judged, Outcome, apply, batch_values, judge
from iiot.rules.repository import DeviceInfo, ReadingRepository, RuleDeviceRepository
from iiot.tenancy.context import system_context

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
MAX_BATCHES_PER_EVALUATION = 64
ENGINE_ACTOR = SystemPrincipal(name="rules-engine")


class RulesEngine:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.cache = RuleCache(rt)
        self._queue: asyncio.Queue[events.TelemetryCommitted] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    def submit(self, event: events.TelemetryCommitted) -> None:
        self._queue.put_nowait(event)
        metrics.QUEUE_DEPTH.inc()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="rules-engine")

    async def drain(self) -> None:
        """Wait until every submitted batch has been evaluated."""
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            taken = [await self._queue.get()]
            # Batches that queued up while the last evaluation ran are evaluated together,
            # per tenant and in arrival order, in one transaction: the engine catches up
            # instead of falling further behind a fast ingest.
            while len(taken) < MAX_BATCHES_PER_EVALUATION and not self._queue.empty():
                taken.append(self._queue.get_nowait())
            try:
                by_tenant: dict[uuid.UUID, list[events.TelemetryCommitted]] = {}
                for event in taken:
                    by_tenant.setdefault(event.tenant_id, []).append(event)
                for tenant_id, batch in by_tenant.items():
                    await self._evaluate_with_retries(tenant_id, batch)
            finally:
                metrics.QUEUE_DEPTH.dec(len(taken))
                metrics.BATCHES.inc(len(taken))
                for _ in taken:
                    self._queue.task_done()

    async def _evaluate_with_retries(
        self, tenant_id: uuid.UUID, batches: list[events.TelemetryCommitted]
    ) -> None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with metrics.EVALUATION_SECONDS.time():
                    outcome = await self.evaluate(tenant_id, batches)
                metrics.TRIGGERS.inc(outcome.fired)
                return
            except Exception:
                if attempt == MAX_ATTEMPTS:
                    metrics.FAILURES.inc()
                    log.exception("evaluating batches of tenant %s failed", tenant_id)
                    return
                log.warning("evaluating batches failed (attempt %d); retrying", attempt)
                await asyncio.sleep(0.05 * 2**attempt)

    async def evaluate(
        self, tenant_id: uuid.UUID, batches: list[events.TelemetryCommitted]
    ) -> Outcome:
        """Evaluate the tenant's committed batches, in order, in one tenant transaction."""
        specs = await self.cache.rules_for(tenant_id)
        specs = [s for s in specs if s.rule_type != "time_based"]
        values = [batch_values(b.points) for b in batches if b.tenant_id == tenant_id]
        if not specs or not any(values):
            return Outcome()
        ctx = system_context(tenant_id, ENGINE_ACTOR)
        now = datetime.now(UTC)
        device_ids = {d for per_device in values for d in per_device}
        async with self.rt.db.tenant(ctx) as session:
            device_repo = RuleDeviceRepository(session, ctx)
            if any(s.device_type is not None for s in specs):
                devices = await device_repo.by_ids(device_ids)
            else:
                # No rule looks at device types: names are read only for devices that fire.
                devices = {d: DeviceInfo.unresolved(d) for d in device_ids}
            readings = ReadingRepository(session, ctx)
            # Verdicts per (rule, device), appended batch after batch.
            judged: dict[tuple[uuid.UUID, uuid.UUID], Judged] = {}
            for per_device in values:
                for device_id, readings_of_device in per_device.items():
                    device = devices.get(device_id)
                    if device is None:
                        continue
                    keys = set(readings_of_device)
                    for spec in specs:
                        if spec.applies_to(device.id, device.type) and spec.keys & keys:
                            verdicts = await judge(readings, spec, device, readings_of_device, now)
                            entry = judged.setdefault((spec.id, device.id), (spec, device, []))
                            entry[2].extend(verdicts)
            outcome = await apply(
                session, ctx, list(judged.values()), now, resolve=device_repo.by_ids
            )
        after_commit(self.rt, tenant_id, outcome)
        return outcome

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
        log.error("rules engine stopped with %d batches unevaluated", found._queue.qsize())
    await found.close()
    await webhooks.wait_for_deliveries(rt)


def engine(rt: Runtime) -> RulesEngine:
    return rt.state.get(RulesEngine)


async def on_telemetry_committed(rt: Runtime, event: events.TelemetryCommitted) -> None:
    engine(rt).submit(event)
