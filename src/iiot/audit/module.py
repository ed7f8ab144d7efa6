"""The audit trail."""

from iiot.audit.api import router
from iiot.modules import Module

MODULE = Module(name="audit", api_routers=(router,))
