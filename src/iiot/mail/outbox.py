"""E-mail as an outbox kind: queued in the caller's transaction, handed to SMTP after commit
(or, with no `IIOT_SMTP_HOST`, to the development log)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from iiot.delivery import loop as delivery
from iiot.delivery.loop import Claimed, DeliveryReport, Handed, Ref
from iiot.delivery.retry import Outcome, Parked, lease_until
from iiot.mail import smtp
from iiot.mail.repository import MailRepository
from iiot.metering.meter import Metric
from iiot.models.base import utcnow
from iiot.models.mail import MailMessage

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)
# The development outbox: shown at INFO even when the process configured no logging (as
# `iiot serve` leaves the root logger to uvicorn), so a development server shows its mail.
dev_log = logging.getLogger("iiot.mail.development")
dev_log.setLevel(logging.INFO)

# The table's word for each outcome (`parked` is `failed`).
_STATUS = {"sent": "sent", "logged": "logged", "parked": "failed", "retrying": "pending"}


@dataclass(frozen=True, slots=True)
class Letter:
    to: str
    subject: str
    body: str


async def enqueue(
    session: AsyncSession,
    *,
    to: str,
    subject: str,
    body: str,
    tenant_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Queue a message in the caller's transaction; it is delivered only if that commits."""
    message = await MailRepository(session).add(
        MailMessage(
            for_tenant_id=tenant_id,
            to_address=to.strip()[:320],
            subject=subject.replace("\r", " ").replace("\n", " ")[:300],
            body=body,
        )
    )
    return message.id


def _ensure_dev_handler() -> None:
    if not dev_log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        dev_log.addHandler(handler)


class MailKind:
    name = "mail"
    metric: Metric = "emails_sent"

    async def due(self, rt: Runtime, limit: int) -> list[Ref]:
        async with rt.db.system() as session:
            return [Ref(t, i) for t, i in await MailRepository(session).due(limit)]

    async def claim(self, rt: Runtime, ref: Ref) -> Claimed[Letter] | None:
        now = utcnow()
        async with rt.db.system() as session:
            message = await MailRepository(session).claim(ref.id)
            if message is None:
                return None
            message.attempts += 1
            message.next_attempt_at = lease_until(now)
            letter = Letter(message.to_address, message.subject, message.body or "")
            return Claimed(message.attempts, letter)

    async def hand_over(self, rt: Runtime, message: Letter) -> Handed:
        settings = rt.settings
        if not settings.smtp_host:
            _ensure_dev_handler()
            dev_log.info(
                "development outbox (no IIOT_SMTP_HOST): to=%s subject=%s\n%s",
                message.to,
                message.subject,
                message.body,
            )
            return Handed(logged=True)
        envelope = smtp.build_message(
            settings, to=message.to, subject=message.subject, body=message.body
        )
        try:
            await anyio.to_thread.run_sync(smtp.send, settings, envelope)
        except Exception as exc:  # noqa: BLE001 - any SMTP or network failure is retried
            return Handed(error=f"{type(exc).__name__}: {exc}")
        return Handed()

    async def record(self, rt: Runtime, ref: Ref, result: Outcome) -> None:
        async with rt.db.system() as session:
            message = await MailRepository(session).get_for_update(ref.id)
            if message is None:
                return
            message.status = _STATUS[result.state]
            message.last_error = result.error
            if result.next_attempt_at is not None:
                message.next_attempt_at = result.next_attempt_at
            if result.state in ("sent", "logged"):
                message.sent_at = result.at
            if result.state in ("sent", "parked"):
                # It may carry a one-time link: not kept once handed over or given up.
                message.body = None


MAIL = MailKind()


async def deliver_pending(rt: Runtime, *, limit: int = 200) -> DeliveryReport:
    """Deliver every due message now and wait for it (jobs and tests)."""
    return await delivery.deliver_due(rt, (MAIL,), limit=limit)


def deliver_soon(rt: Runtime) -> None:
    """Start delivering due messages in the background (call after the queueing commit)."""
    delivery.deliver_soon(rt, MAIL)


async def parked(session: AsyncSession, tenant_id: uuid.UUID, limit: int) -> list[Parked]:
    """The tenant's messages given up on (any session: the outbox is a platform table)."""
    return [
        Parked("mail", m.id, m.to_address, m.subject, None, m.attempts, m.last_error, m.created_at)
        for m in await MailRepository(session).parked(tenant_id, limit)
    ]
