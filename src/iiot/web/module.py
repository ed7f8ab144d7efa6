"""Web pages served by `iiot serve`."""

from iiot.modules import Module
from iiot.web.pages import router

MODULE = Module(name="web", routers=(router,))
