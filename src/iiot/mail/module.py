"""Outgoing mail: the outbox delivered after commit, with retries."""

from iiot.mail.outbox import JOB_INTERVAL_SECONDS, deliver_pending, wait_idle
from iiot.modules import Hook, Job, Module

MODULE = Module(
    name="mail",
    jobs=(Job("mail.deliver", JOB_INTERVAL_SECONDS, deliver_pending),),
    shutdown=(Hook("mail.wait_idle", wait_idle),),
)
