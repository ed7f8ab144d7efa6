"""Outgoing e-mail, one kind of the outbox (`iiot.outbox`).

Usage from any domain:

    from iiot import mail

    # Inside the transaction that causes the message (tenant or system session): the message
    # is committed together with the change, or not at all.
    await mail.enqueue(session, to="ops@example.com", subject="...", body="...",
                       tenant_id=ctx.tenant_id)

    # After the session block has committed (e.g. in the route, after `async with`):
    mail.deliver_soon(rt)          # starts a background delivery task, returns at once

    # or, from a test, deliver everything due and wait for it:
    report = await mail.deliver_pending(rt)

The outbox's job `outbox.deliver` retries failed deliveries with exponential backoff; a
message is parked (status `failed`, body erased) after `MAX_ATTEMPTS`. With no
`IIOT_SMTP_HOST`, messages go to the development outbox: they stay in the `mail_outbox` table
(status `logged`) and are written to the log, so a development server works without a mail
server.
"""

from iiot.delivery.loop import DeliveryReport, wait_idle
from iiot.delivery.retry import MAX_ATTEMPTS
from iiot.mail.outbox import deliver_pending, deliver_soon, enqueue

__all__ = [
    "MAX_ATTEMPTS",
    "DeliveryReport",
    "deliver_pending",
    "deliver_soon",
    "enqueue",
    "wait_idle",
]
