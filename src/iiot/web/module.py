"""Web pages served by `iiot serve`: the invitation page, the web UI's assets, offline API
docs, and (listed last in `iiot.app.MODULES`) the web UI's client routes."""

from iiot.modules import Module
from iiot.web.pages import router
from iiot.web.spa import assets_router, client_router

MODULE = Module(name="web", routers=(router, assets_router))
# The catch-all of the web UI's client routes; it never matches a reserved path (API, docs,
# probes, assets, invitations), and is mounted after every other root router.
CLIENT_ROUTES = Module(name="web.client-routes", routers=(client_router,))
