"""Analytics of device telemetry (the original platform's five routes)."""

from iiot.analytics.api import router
from iiot.modules import Module

MODULE = Module(name="analytics", api_routers=(router,))
