"""API keys for integrations."""

from iiot.apikeys.api import router
from iiot.modules import Module

MODULE = Module(name="apikeys", api_routers=(router,))
