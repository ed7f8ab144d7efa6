"""The outbox: one job delivering due messages of every kind, and waiting for those in
flight on a graceful stop."""

from __future__ import annotations

from typing import TYPE_CHECKING

from iiot.delivery.loop import JOB_INTERVAL_SECONDS, DeliveryReport, deliver_due, wait_idle
from iiot.mail.outbox import MAIL
from iiot.modules import Hook, Job, Module
from iiot.notifications.webhooks import WEBHOOKS
from iiot.outbox.api import router

if TYPE_CHECKING:
    from iiot.runtime import Runtime

KINDS = (MAIL, WEBHOOKS)


async def deliver_pending(rt: Runtime) -> DeliveryReport:
    """Every due e-mail and webhook call (the periodic job)."""
    return await deliver_due(rt, KINDS)


MODULE = Module(
    name="outbox",
    api_routers=(router,),
    jobs=(Job("outbox.deliver", JOB_INTERVAL_SECONDS, deliver_pending),),
    shutdown=(Hook("outbox.wait_idle", wait_idle),),
)
