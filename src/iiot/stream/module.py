"""Live updates: the stream route, the in-process telemetry listener and the hub's stop."""

from iiot.modules import Hook, Module
from iiot.stream import hub
from iiot.stream.api import router

MODULE = Module(
    name="stream",
    api_routers=(router,),
    shutdown=(Hook("stream.hub", hub.shutdown),),
    telemetry_listeners=(hub.on_telemetry,),
)
