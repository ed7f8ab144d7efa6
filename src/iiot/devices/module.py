"""Devices, their credentials and presence."""

from iiot.devices.api import router
from iiot.devices.presence import FLUSH_INTERVAL_SECONDS, flush
from iiot.devices.service import device_usage
from iiot.devices.token_cache import stop_listener
from iiot.modules import Hook, Job, Module

MODULE = Module(
    name="devices",
    api_routers=(router,),
    # Each process flushes its own last-seen map; a run skipped because another process held
    # the job's lock is caught up by the next one. On shutdown the last interval is flushed.
    jobs=(Job("device-presence", FLUSH_INTERVAL_SECONDS, flush),),
    shutdown=(Hook("device-presence", flush), Hook("device-token-listener", stop_listener)),
    usage_providers=(device_usage,),
)
