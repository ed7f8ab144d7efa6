"""Delivering due outbox rows of every kind: claim, hand over, record (see `iiot.outbox`)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from iiot.delivery.retry import Outcome, outcome
from iiot.metering.meter import Metric, usage_meter

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

# Attempts in flight at once per run (each may wait on a remote server for seconds).
CONCURRENCY = 16
JOB_INTERVAL_SECONDS = 15

M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class Ref:
    """One outbox row: its tenant (None for platform mail) and id."""

    tenant_id: uuid.UUID | None
    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Claimed(Generic[M]):
    """A claimed row: the attempt it is on (this one included) and what to hand over."""

    attempts: int
    message: M


@dataclass(frozen=True, slots=True)
class Handed:
    """The result of handing a message over: `error` None when it was accepted; `logged`
    when it was only written to the log (no mail server configured)."""

    error: str | None = None
    logged: bool = False


class Kind(Protocol[M]):
    name: str
    # Usage metric counted for the row's tenant when a message is sent.
    metric: Metric

    async def due(self, rt: Runtime, limit: int) -> list[Ref]:
        """Pending rows whose next attempt is due, oldest first."""

    async def claim(self, rt: Runtime, ref: Ref) -> Claimed[M] | None:
        """Take a pending, due row: count the attempt, lease it (`lease_until`), commit.
        None when it is not due any more or another process has it."""

    async def hand_over(self, rt: Runtime, message: M) -> Handed:
        """Send it; never raises for a refusal or a network failure (they are `error`)."""

    async def record(self, rt: Runtime, ref: Ref, result: Outcome) -> None:
        """Store the outcome on the row (a body that may carry a secret link is erased once
        it is no longer needed)."""


@dataclass
class DeliveryReport:
    sent: int = 0
    logged: int = 0
    retrying: int = 0
    failed: int = 0  # parked

    @property
    def handled(self) -> int:
        return self.sent + self.logged + self.retrying + self.failed

    def count(self, result: Outcome) -> None:
        if result.state == "sent":
            self.sent += 1
        elif result.state == "logged":
            self.logged += 1
        elif result.state == "retrying":
            self.retrying += 1
        else:
            self.failed += 1


async def attempt(
    rt: Runtime, kind: Kind[M], ref: Ref, report: DeliveryReport | None = None
) -> Outcome | None:
    """One delivery attempt of one row; None when the row was not ours to send."""
    claimed = await kind.claim(rt, ref)
    if claimed is None:
        return None
    try:
        handed = await kind.hand_over(rt, claimed.message)
    except Exception as exc:  # a kind's bug must not lose the message: retried like a refusal
        log.exception("%s %s: handing over failed", kind.name, ref.id)
        handed = Handed(error=f"{type(exc).__name__}: {exc}")
    result = outcome(claimed.attempts, handed.error, logged=handed.logged)
    await kind.record(rt, ref, result)
    if result.state == "sent" and ref.tenant_id is not None:
        usage_meter(rt).add(ref.tenant_id, kind.metric)
    elif result.state == "retrying":
        log.warning(
            "%s %s attempt %d failed, will retry: %s",
            kind.name,
            ref.id,
            claimed.attempts,
            result.error,
        )
    elif result.state == "parked":
        log.error(
            "%s %s parked after %d attempts: %s", kind.name, ref.id, claimed.attempts, result.error
        )
    if report is not None:
        report.count(result)
    return result


async def deliver(
    rt: Runtime, kind: Kind[M], refs: list[Ref], report: DeliveryReport | None = None
) -> None:
    """Attempt each of `refs` (a few at a time); one failing row delays no other."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(ref: Ref) -> None:
        async with gate:
            try:
                await attempt(rt, kind, ref, report)
            except Exception:
                log.exception("%s %s: delivery failed; the job retries it", kind.name, ref.id)

    await asyncio.gather(*(one(ref) for ref in refs))


async def deliver_due(
    rt: Runtime, kinds: Sequence[Kind[Any]], *, limit: int = 200
) -> DeliveryReport:
    """Deliver every due row of `kinds` (up to `limit` of each)."""
    report = DeliveryReport()
    for kind in kinds:
        await deliver(rt, kind, await kind.due(rt, limit), report)
    return report


def _delivery_tasks(rt: Runtime) -> set[asyncio.Task[None]]:
    return set()


def deliver_soon(rt: Runtime, kind: Kind[M], refs: list[Ref] | None = None) -> None:
    """After the commit that queued them: deliver `refs` (None: every due row of `kind`) in
    the background. Returns at once; what fails is retried by the job."""
    if refs is not None and not refs:
        return

    async def run() -> None:
        try:
            if refs is None:
                await deliver_due(rt, (kind,))
            else:
                await deliver(rt, kind, refs)
        except Exception:
            log.exception("%s delivery failed; the periodic job will retry", kind.name)

    tasks = rt.state.get(_delivery_tasks)
    task = asyncio.create_task(run(), name=f"outbox:{kind.name}")
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def wait_idle(rt: Runtime) -> None:
    """Wait for the background deliveries started by `deliver_soon` (shutdown, tests)."""
    tasks = rt.state.get(_delivery_tasks)
    while tasks:
        await asyncio.gather(*list(tasks), return_exceptions=True)
