"""Group commit for small ingest requests.

Every write counts its points on the tenant's `tenant_usage_daily` row, which it keeps
locked until its commit; many concurrent one-point requests of a tenant would queue on that
row, one commit (and WAL flush) each. Small requests therefore wait in a queue, and a few
flusher tasks write everything queued in one transaction with one commit and, per tenant,
one statement (`TelemetryWriter.write_group`). There is no timer: an idle system writes a
request at once, and a busy one gathers whatever arrived while the previous group committed.
Each request is answered after the commit that stored it. If a group cannot be committed as
a whole (a request would cross the quota, or the database refuses something) it is rolled
back and its requests are written one by one, so a failure reaches only the requests it
concerns.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from iiot.telemetry.repository import PendingWrite, TelemetryWriter, WriteOutcome

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

# Requests with at most this many rows go through the group; larger ones are written alone.
GROUP_MAX_ROWS = 64
GROUP_MAX_ITEMS = 512


@dataclass(slots=True)
class _Queued:
    item: PendingWrite
    done: asyncio.Future[WriteOutcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def settle(self, outcome: WriteOutcome | None, error: BaseException | None = None) -> None:
        if self.done.done():
            return  # the request went away; its data is committed (or not) all the same
        if error is not None:
            self.done.set_exception(error)
        else:
            assert outcome is not None
            self.done.set_result(outcome)


class GroupCommitter:
    """One flusher per tenant at a time: a tenant's writes queue on its counter row anyway,
    so a second concurrent transaction of that tenant would only wait for the first."""

    def __init__(self, writer: TelemetryWriter) -> None:
        self.writer = writer
        self._queues: dict[uuid.UUID, list[_Queued]] = {}
        self._flushers: dict[uuid.UUID, asyncio.Task[None]] = {}

    async def write(self, item: PendingWrite) -> WriteOutcome:
        queued = _Queued(item)
        tenant_id = item.ctx.tenant_id
        self._queues.setdefault(tenant_id, []).append(queued)
        if tenant_id not in self._flushers:
            task = asyncio.create_task(
                self._flush_while_queued(tenant_id), name="telemetry-group-commit"
            )
            self._flushers[tenant_id] = task
        # Shielded: a client that disconnects must not cancel a write others share.
        return await asyncio.shield(queued.done)

    async def _flush_while_queued(self, tenant_id: uuid.UUID) -> None:
        try:
            while queue := self._queues.get(tenant_id):
                group = queue[:GROUP_MAX_ITEMS]
                del queue[:GROUP_MAX_ITEMS]
                await self._flush(group)
        finally:
            self._flushers.pop(tenant_id, None)
            if not self._queues.get(tenant_id):
                self._queues.pop(tenant_id, None)

    async def _flush(self, group: list[_Queued]) -> None:
        outcomes: list[WriteOutcome] | None
        try:
            outcomes = await self.writer.write_group([q.item for q in group])
        except Exception as exc:
            if len(group) == 1:
                group[0].settle(None, exc)
                return
            log.warning("group of %d ingest requests failed; writing them one by one", len(group))
            outcomes = None
        if outcomes is not None:
            for queued, outcome in zip(group, outcomes, strict=True):
                queued.settle(outcome)
            return
        await asyncio.gather(*(self._write_alone(q) for q in group))

    async def _write_alone(self, queued: _Queued) -> None:
        try:
            queued.settle(await self.writer.write(queued.item))
        except Exception as exc:
            queued.settle(None, exc)


def _new_group_committer(rt: Runtime) -> GroupCommitter:
    return GroupCommitter(TelemetryWriter(rt.db.engine))


def group_committer(rt: Runtime) -> GroupCommitter:
    return rt.state.get(_new_group_committer)
