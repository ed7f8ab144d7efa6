"""Webhook calls: queued in the outbox with the trigger, sent after commit, retried with
exponential backoff. A failing endpoint delays nothing but its own retries.

Each call is a POST of the JSON body with `X-IIoT-Timestamp` (Unix seconds) and
`X-IIoT-Signature` = hex HMAC-SHA256(secret, f"{timestamp}.{body}").
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from iiot.models.rules import WebhookDelivery
from iiot.notifications.destinations import DestinationRefused, check_destination
from iiot.notifications.repository import DueWebhooks, WebhookRepository
from iiot.tenancy.context import TenantContext, system_context

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
FIRST_RETRY_SECONDS = 10
MAX_RETRY_SECONDS = 3600
TIMEOUT_SECONDS = 5.0
# While a call is in flight its row is leased, so another process does not send it too.
LEASE_SECONDS = 60
JOB_INTERVAL_SECONDS = 15
WEBHOOK_CALLS = Counter(
    "iiot_webhook_calls_total", "Webhook delivery attempts by result", ["result"]
)


def sign(secret: str, timestamp: str, body: str) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()


def retry_delay(attempts: int) -> timedelta:
    return timedelta(
        seconds=min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS)
    )


async def enqueue(
    session: AsyncSession,
    ctx: TenantContext,
    *,
    rule_id: uuid.UUID | None,
    url: str,
    secret: str,
    payload: dict[str, Any],
) -> uuid.UUID:
    """Queue a call in the caller's transaction; it is sent only if that commits."""
    row = await WebhookRepository(session, ctx).add(
        WebhookDelivery(
            rule_id=rule_id,
            url=url,
            secret=secret,
            body=json.dumps(payload, separators=(",", ":"), default=str),
            status="pending",
            attempts=0,
            next_attempt_at=datetime.now(UTC),
        )
    )
    return row.id


@dataclass
class DeliveryReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def _new_client(rt: Runtime) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(TIMEOUT_SECONDS), follow_redirects=False, trust_env=False
    )


def _client(rt: Runtime) -> httpx.AsyncClient:
    return rt.state.get(_new_client)


def _delivery_tasks(rt: Runtime) -> set[asyncio.Task[None]]:
    return set()


async def _post(rt: Runtime, url: str, secret: str, body: str) -> str | None:
    """None on a 2xx answer, otherwise why the call failed."""
    try:
        await check_destination(
            url, allow_private=rt.settings.webhook_allow_private, must_resolve=True
        )
    except DestinationRefused as exc:
        return exc.detail
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "iiot-webhook/1",
        "X-IIoT-Timestamp": timestamp,
        "X-IIoT-Signature": sign(secret, timestamp, body),
    }
    try:
        response = await _client(rt).post(url, content=body.encode(), headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"


async def deliver_one(
    rt: Runtime, tenant_id: uuid.UUID, delivery_id: uuid.UUID, report: DeliveryReport | None = None
) -> None:
    ctx = system_context(tenant_id)
    now = datetime.now(UTC)
    async with rt.db.tenant(ctx) as session:
        row = await WebhookRepository(session, ctx).claim(delivery_id, now)
        if row is None:
            return
        row.attempts += 1
        row.next_attempt_at = now + timedelta(seconds=LEASE_SECONDS)
        url, secret, body, attempts = row.url, row.secret, row.body, row.attempts
    error = await _post(rt, url, secret, body)
    async with rt.db.tenant(ctx) as session:
        row = await WebhookRepository(session, ctx).get(delivery_id)
        if row is None:
            return
        if error is None:
            row.status = "delivered"
            row.delivered_at = datetime.now(UTC)
            row.last_error = None
            if report:
                report.delivered += 1
        elif attempts >= MAX_ATTEMPTS:
            row.status = "failed"
            row.last_error = error[:500]
            if report:
                report.failed += 1
        else:
            row.next_attempt_at = datetime.now(UTC) + retry_delay(attempts)
            row.last_error = error[:500]
            if report:
                report.retrying += 1
    WEBHOOK_CALLS.labels("ok" if error is None else "error").inc()
    if error is not None:
        log.warning("webhook %s attempt %d failed: %s", delivery_id, attempts, error)


async def deliver_pending(rt: Runtime, limit: int = 200) -> DeliveryReport:
    """Send every due call (the periodic job; tests call it directly)."""
    report = DeliveryReport()
    async with rt.db.system() as session:
        due = await DueWebhooks(session).due(limit)
    await asyncio.gather(*(deliver_one(rt, t, d, report) for t, d in due))
    return report


def deliver_soon(rt: Runtime, tenant_id: uuid.UUID, ids: list[uuid.UUID]) -> None:
    """Start sending just-committed calls in the background; the job retries failures."""
    if not ids:
        return
    tasks = rt.state.get(_delivery_tasks)

    async def run() -> None:
        for delivery_id in ids:
            try:
                await deliver_one(rt, tenant_id, delivery_id)
            except Exception:
                log.exception("webhook %s delivery failed", delivery_id)

    task = asyncio.create_task(run(), name="webhook-delivery")
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def wait_for_deliveries(rt: Runtime) -> None:
    """Wait for the background calls started by `deliver_soon` (tests, shutdown)."""
    tasks = rt.state.get(_delivery_tasks)
    while tasks:
        await asyncio.gather(*list(tasks), return_exceptions=True)
