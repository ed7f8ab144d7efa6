"""Queueing messages in the caller's transaction and delivering them after commit."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from iiot.mail import smtp
from iiot.mail.repository import MailRepository
from iiot.models.base import utcnow
from iiot.models.mail import MailMessage

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)
# The development outbox: shown at INFO even when the process configured no logging (as
# `iiot serve` leaves the root logger to uvicorn), so a development server shows its mail.
dev_log = logging.getLogger("iiot.mail.development")
dev_log.setLevel(logging.INFO)

MAX_ATTEMPTS = 8
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
JOB_INTERVAL_SECONDS = 30


@dataclass
class DeliveryReport:
    sent: int = 0
    logged: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.logged + self.retrying + self.failed


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


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: 30 s, 60 s, 120 s ... capped at one hour."""
    return timedelta(
        seconds=min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS)
    )


def _ensure_dev_handler() -> None:
    if not dev_log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        dev_log.addHandler(handler)


async def _deliver_one(rt: Runtime, message: MailMessage, report: DeliveryReport) -> None:
    settings = rt.settings
    body = message.body or ""
    if not settings.smtp_host:
        _ensure_dev_handler()
        dev_log.info(
            "development outbox (no IIOT_SMTP_HOST): to=%s subject=%s\n%s",
            message.to_address,
            message.subject,
            body,
        )
        message.status, message.sent_at = "logged", utcnow()
        message.attempts += 1
        report.logged += 1
        return
    envelope = smtp.build_message(
        settings, to=message.to_address, subject=message.subject, body=body
    )
    message.attempts += 1
    try:
        await anyio.to_thread.run_sync(smtp.send, settings, envelope)
    except Exception as exc:  # noqa: BLE001 - any SMTP or network failure is retried
        message.last_error = f"{type(exc).__name__}: {exc}"[:500]
        if message.attempts >= MAX_ATTEMPTS:
            message.status, message.body = "failed", None
            report.failed += 1
            log.error("mail %s to %s given up: %s", message.id, message.to_address, exc)
        else:
            message.next_attempt_at = utcnow() + retry_delay(message.attempts)
            report.retrying += 1
            log.warning("mail %s to %s failed, will retry: %s", message.id, message.to_address, exc)
        return
    message.status, message.sent_at, message.body, message.last_error = "sent", utcnow(), None, None
    report.sent += 1


async def deliver_pending(rt: Runtime, *, limit: int = 200) -> DeliveryReport:
    """Deliver every due message (up to `limit`), one transaction per message.

    A message is locked with SKIP LOCKED while it is handed to the SMTP server, so several
    processes can run this at once without sending a message twice.
    """
    report = DeliveryReport()
    while report.handled < limit:
        async with rt.db.system() as session:
            message = await MailRepository(session).next_due_for_update()
            if message is None:
                break
            await _deliver_one(rt, message, report)
    return report


async def _deliver_in_background(rt: Runtime) -> None:
    try:
        await deliver_pending(rt)
    except Exception:
        log.exception("mail delivery failed; the periodic job will retry")


def _delivery_tasks(rt: Runtime) -> set[asyncio.Task[None]]:
    return set()


def deliver_soon(rt: Runtime) -> None:
    """Start delivering due messages in the background (call after the queueing commit)."""
    tasks = rt.state.get(_delivery_tasks)
    task = asyncio.create_task(_deliver_in_background(rt), name="mail:deliver")
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def wait_idle(rt: Runtime) -> None:
    """Wait for delivery tasks started by `deliver_soon` (shutdown, tests)."""
    tasks = rt.state.get(_delivery_tasks)
    while tasks:
        await asyncio.gather(*list(tasks), return_exceptions=True)
