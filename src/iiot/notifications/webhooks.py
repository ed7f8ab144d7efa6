"""Rule and escalation webhooks, one kind of the outbox (`iiot.outbox`): queued with the
trigger, sent after commit, retried under the outbox's policy. A failing endpoint delays
nothing but its own retries.

Each call is a POST of the JSON body with `X-IIoT-Timestamp` (Unix seconds) and
`X-IIoT-Signature` = hex HMAC-SHA256(secret, f"{timestamp}.{body}").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter

from iiot.db.session import TenantSession
from iiot.delivery import loop as delivery
from iiot.delivery.loop import Claimed, DeliveryReport, Handed, Ref
from iiot.delivery.retry import Outcome, Parked, lease_until
from iiot.metering.meter import Metric
from iiot.models.base import utcnow
from iiot.models.rules import WebhookDelivery
from iiot.notifications.destinations import DestinationRefused, check_destination
from iiot.notifications.repository import DueWebhooks, WebhookRepository
from iiot.tenancy.context import TenantContext, system_context

if TYPE_CHECKING:
    import httpx

    from iiot.runtime import Runtime

TIMEOUT_SECONDS = 5.0
WEBHOOK_CALLS = Counter(
    "iiot_webhook_calls_total", "Webhook delivery attempts by result", ["result"]
)
# The table's word for each outcome (`parked` is `failed`).
_STATUS = {"sent": "delivered", "parked": "failed", "retrying": "pending"}


def sign(secret: str, timestamp: str, body: str) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()


async def enqueue(
    session: TenantSession,
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


@dataclass(frozen=True, slots=True)
class Call:
    url: str
    secret: str
    body: str


def _new_client(rt: Runtime) -> httpx.AsyncClient:
    # Imported by the first call: most processes never send a webhook (httpx: 0.08 s of CPU).
    import httpx

    return httpx.AsyncClient(
        timeout=httpx.Timeout(TIMEOUT_SECONDS), follow_redirects=False, trust_env=False
    )


def _client(rt: Runtime) -> httpx.AsyncClient:
    return rt.state.get(_new_client)


async def _post(rt: Runtime, call: Call) -> str | None:
    """None on a 2xx answer, otherwise why the call failed."""
    try:
        await check_destination(
            call.url, allow_private=rt.settings.webhook_allow_private, must_resolve=True
        )
    except DestinationRefused as exc:
        return exc.detail
    import httpx

    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "iiot-webhook/1",
        "X-IIoT-Timestamp": timestamp,
        "X-IIoT-Signature": sign(call.secret, timestamp, call.body),
    }
    try:
        response = await _client(rt).post(call.url, content=call.body.encode(), headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"


class WebhookKind:
    name = "webhook"
    metric: Metric = "webhooks_sent"

    async def due(self, rt: Runtime, limit: int) -> list[Ref]:
        async with rt.db.system() as session:
            return [Ref(t, d) for t, d in await DueWebhooks(session).due(limit)]

    async def claim(self, rt: Runtime, ref: Ref) -> Claimed[Call] | None:
        assert ref.tenant_id is not None
        ctx = system_context(ref.tenant_id)
        now = utcnow()
        async with rt.db.tenant(ctx) as session:
            row = await WebhookRepository(session, ctx).claim(ref.id, now)
            if row is None:
                return None
            row.attempts += 1
            row.next_attempt_at = lease_until(now)
            return Claimed(row.attempts, Call(row.url, row.secret, row.body))

    async def hand_over(self, rt: Runtime, message: Call) -> Handed:
        error = await _post(rt, message)
        WEBHOOK_CALLS.labels("ok" if error is None else "error").inc()
        return Handed(error=error)

    async def record(self, rt: Runtime, ref: Ref, result: Outcome) -> None:
        assert ref.tenant_id is not None
        ctx = system_context(ref.tenant_id)
        async with rt.db.tenant(ctx) as session:
            row = await WebhookRepository(session, ctx).get(ref.id)
            if row is None:
                return
            row.status = _STATUS[result.state]
            row.last_error = result.error
            if result.next_attempt_at is not None:
                row.next_attempt_at = result.next_attempt_at
            if result.state == "sent":
                row.delivered_at = result.at


WEBHOOKS = WebhookKind()


async def deliver_pending(rt: Runtime, limit: int = 200) -> DeliveryReport:
    """Send every due call now and wait for it (tests)."""
    return await delivery.deliver_due(rt, (WEBHOOKS,), limit=limit)


def deliver_soon(rt: Runtime, tenant_id: uuid.UUID, ids: list[uuid.UUID]) -> None:
    """Start sending just-committed calls in the background; the job retries failures."""
    delivery.deliver_soon(rt, WEBHOOKS, [Ref(tenant_id, i) for i in ids])


async def wait_for_deliveries(rt: Runtime) -> None:
    """Wait for the background deliveries started by `deliver_soon` (tests, shutdown)."""
    await delivery.wait_idle(rt)


async def parked(session: TenantSession, ctx: TenantContext, limit: int) -> list[Parked]:
    """The tenant's calls given up on (URL and error only: no body, no secret)."""
    return [
        Parked("webhook", d.id, d.url, None, d.rule_id, d.attempts, d.last_error, d.created_at)
        for d in await WebhookRepository(session, ctx).parked(limit)
    ]
