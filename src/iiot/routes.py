"""Every router of the application, mounted in one place."""

from __future__ import annotations

from fastapi import FastAPI

from iiot.auth.api import router as auth_router
from iiot.platform.api import router as platform_router


def include_routes(app: FastAPI, api_prefix: str) -> None:
    app.include_router(platform_router)
    for router in (auth_router,):
        app.include_router(router, prefix=api_prefix)
