"""Rule webhooks: delivery with retries."""

from iiot.modules import Job, Module
from iiot.notifications.webhooks import JOB_INTERVAL_SECONDS, deliver_pending

MODULE = Module(
    name="notifications", jobs=(Job("webhooks.deliver", JOB_INTERVAL_SECONDS, deliver_pending),)
)
