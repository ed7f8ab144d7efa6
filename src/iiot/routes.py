"""Every router of the application, mounted in one place."""

from __future__ import annotations

from fastapi import FastAPI

from iiot.alerts.api import router as alerts_router
from iiot.apikeys.api import router as apikeys_router
from iiot.audit.api import router as audit_router
from iiot.auth.api import router as auth_router
from iiot.devices.api import router as devices_router
from iiot.platform.api import router as platform_router
from iiot.rules.api import router as rules_router
from iiot.stream.api import router as stream_router
from iiot.telemetry.api import router as telemetry_router
from iiot.telemetry.query_api import router as telemetry_query_router
from iiot.tenants.api import router as tenants_router
from iiot.users.api import router as users_router
from iiot.web.pages import router as web_router
from iiot.web.spa import assets_router, client_router


def include_routes(app: FastAPI, api_prefix: str) -> None:
    app.include_router(platform_router)
    app.include_router(web_router)
    app.include_router(assets_router)
    for router in (
        auth_router,
        tenants_router,
        users_router,
        audit_router,
        devices_router,
        telemetry_router,
        telemetry_query_router,
        rules_router,
        alerts_router,
        apikeys_router,
        stream_router,
    ):
        app.include_router(router, prefix=api_prefix)
    # Last: the web UI's client routes answer any remaining GET outside the reserved paths.
    app.include_router(client_router)
