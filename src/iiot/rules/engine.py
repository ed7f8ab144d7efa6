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
from iiot.rules.cache import RuleCache
from iiot.rules.evaluation import Judged, Outcome, apply, batch_values, judge
from iiot.rules.repository import ReadingRepository, RuleDeviceRepository
from iiot.tenancy.context import system_context

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

_EXTRAS_KEY = "rules.engine"
MAX_ATTEMPTS = 5
ENGINE_ACTOR = SystemPrincipal(name="rules-engine")


class RulesEngine:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.cache = RuleCache(rt)
        self._queue: asyncio.Queue[events.TelemetryCommitted] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    def submit(self, event: events.TelemetryCommitted) -> None:
        self._queue.put_nowait(event)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="rules-engine")

    async def drain(self) -> None:
        """Wait until every submitted batch has been evaluated."""
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._evaluate_with_retries(event)
            finally:
                self._queue.task_done()

    async def _evaluate_with_retries(self, event: events.TelemetryCommitted) -> None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                await self.evaluate(event)
                return
            except Exception:
                if attempt == MAX_ATTEMPTS:
                    log.exception("evaluating a batch of tenant %s failed", event.tenant_id)
                    return
                log.warning("evaluating a batch failed (attempt %d); retrying", attempt)
                await asyncio.sleep(0.05 * 2**attempt)

    async def evaluate(self, event: events.TelemetryCommitted) -> Outcome:
        specs = await self.cache.rules_for(event.tenant_id)
        specs = [s for s in specs if s.rule_type != "time_based"]
        if not specs or not event.points:
            return Outcome()
        per_device = batch_values(event.points)
        ctx = system_context(event.tenant_id, ENGINE_ACTOR)
        now = datetime.now(UTC)
        async with self.rt.db.tenant(ctx) as session:
            devices = await RuleDeviceRepository(session, ctx).by_ids(per_device)
            readings = ReadingRepository(session, ctx)
            judged: list[Judged] = []
            for device_id, values in per_device.items():
                device = devices.get(device_id)
                if device is None:
                    continue
                keys = set(values)
                for spec in specs:
                    if spec.applies_to(device.id, device.type) and spec.keys & keys:
                        verdicts = await judge(readings, spec, device, values, now)
                        judged.append((spec, device, verdicts))
            outcome = await apply(session, ctx, judged, now)
        after_commit(self.rt, event.tenant_id, outcome)
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


def engine(rt: Runtime) -> RulesEngine:
    found = rt.extras.get(_EXTRAS_KEY)
    if found is None:
        found = rt.extras[_EXTRAS_KEY] = RulesEngine(rt)
    return found


async def _on_telemetry(rt: Runtime, event: events.TelemetryCommitted) -> None:
    engine(rt).submit(event)


events.on_telemetry_committed(_on_telemetry)
