"""Device connectivity: attributes, RPC, gateway sub-devices, the live-session hub and the
ThingsBoard HTTP device API (`/api/v1/{token}/...`, mounted last among the API routers)."""

from iiot.connectivity.api import router
from iiot.connectivity.device_api import FAST_TB_TELEMETRY
from iiot.connectivity.device_api import router as device_api_router
from iiot.connectivity.hub import start_hub, stop_hub
from iiot.connectivity.rpc_service import EXPIRY_INTERVAL_SECONDS, expire_stale
from iiot.modules import Hook, Job, Module

MODULE = Module(
    name="connectivity",
    # The device API's `/{token}/...` routes come after every other router of this module;
    # the module itself is listed last in `iiot.app.MODULES` so they never shadow a route.
    api_routers=(router, device_api_router),
    fast_api_routes=(FAST_TB_TELEMETRY,),
    jobs=(Job("device-rpc-expiry", EXPIRY_INTERVAL_SECONDS, expire_stale),),
    startup=(Hook("device-session-hub", start_hub),),
    shutdown=(Hook("device-session-hub", stop_hub),),
)
