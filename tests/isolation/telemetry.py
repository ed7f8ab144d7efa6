"""Request bodies for the telemetry routes the isolation walk calls without path parameters."""

from __future__ import annotations

from typing import Any

from tests.fixtures.factories import Factory, World
from tests.isolation.registry import request_body


@request_body("POST", "/api/v1/telemetry")
async def ingest_body(factory: Factory, world: World, params: dict[str, str]) -> dict[str, Any]:
    """One value; the walk sets `device_id` to the device it names."""
    return {"telemetry": {"alpha_temp": 20.5}}
