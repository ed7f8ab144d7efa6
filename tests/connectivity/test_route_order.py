"""`/api/v1/{token}/...` never shadows a route of the API, whatever is mounted later."""

from __future__ import annotations

import re

from fastapi import APIRouter, FastAPI
from starlette.routing import compile_path

from iiot.app import create_app
from tests.fixtures.routes import WalkedRoute, api_routes

TOKEN_PREFIX = "/api/v1/{token}/"


def _sample(path: str) -> str:
    return re.sub(r"{[^}]+}", "sample", path)


def shadowed(app: FastAPI) -> list[str]:
    """Routes whose own requests would be dispatched to a device-API route (first match
    wins, in mounting order)."""
    ordered: list[tuple[WalkedRoute, re.Pattern[str]]] = [
        (r, compile_path(r.path)[0]) for r in api_routes(app)
    ]
    found: list[str] = []
    for route, _ in ordered:
        if route.path.startswith(TOKEN_PREFIX):
            continue
        sample = _sample(route.path)
        first = next(r for r, regex in ordered if r.method == route.method and regex.match(sample))
        if first.path.startswith(TOKEN_PREFIX):
            found.append(f"{route.id} is shadowed by {first.id}")
    return found


def test_no_api_route_is_shadowed_by_the_device_api() -> None:
    app = create_app()
    routes = {r.id for r in api_routes(app)}
    assert "POST /api/v1/{token}/telemetry" in routes
    assert "POST /api/v1/telemetry" in routes
    assert shadowed(app) == []


def test_the_check_sees_a_shadowed_route() -> None:
    from iiot.connectivity.device_api import router as device_api

    late = APIRouter()

    @late.post("/things/telemetry")
    async def things() -> dict[str, str]:
        """A route mounted after the device API."""
        return {}

    app = FastAPI()
    app.include_router(device_api)  # declared under /api/v1
    app.include_router(late, prefix="/api/v1")
    assert shadowed(app) == [
        "POST /api/v1/things/telemetry is shadowed by POST /api/v1/{token}/telemetry"
    ]
