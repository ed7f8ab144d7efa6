"""Platform: liveness, readiness and metrics."""

from iiot.modules import Module
from iiot.platform.api import router

MODULE = Module(name="platform", routers=(router,))
