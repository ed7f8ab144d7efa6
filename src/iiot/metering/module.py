"""Usage metering: the usage report route and each process's periodic flush."""

from iiot.metering.api import router
from iiot.metering.meter import start_flusher, stop_and_flush
from iiot.modules import Hook, Module

MODULE = Module(
    name="metering",
    api_routers=(router,),
    startup=(Hook("usage-flush", start_flusher),),
    # Listed last in the app: rule evaluations, mail and webhooks finished on shutdown are
    # counted before the last flush.
    shutdown=(Hook("usage-flush", stop_and_flush),),
)
