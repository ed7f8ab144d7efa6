"""Usage metering: each process's periodic flush (the report route: iiot.tenants.usage_api)."""

from iiot.metering.meter import start_flusher, stop_and_flush
from iiot.modules import Hook, Module

MODULE = Module(
    name="metering",
    startup=(Hook("usage-flush", start_flusher),),
    # Listed last in the app: rule evaluations, mail and webhooks finished on shutdown are
    # counted before the last flush.
    shutdown=(Hook("usage-flush", stop_and_flush),),
)
