"""Helpers shared by device and ingest tests: create devices through the API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.fixtures.factories import Actor, Factory


@dataclass
class DeviceHandle:
    id: uuid.UUID
    token: str
    body: dict[str, Any]
    client: httpx.AsyncClient  # sends the device token as X-API-Key


async def make_device(
    factory: Factory, developer: Actor, *, name: str | None = None, **fields: Any
) -> DeviceHandle:
    body = {"name": name or f"dev-{uuid.uuid4().hex[:8]}", **fields}
    r = await developer.client.post("/api/v1/devices", json=body)
    assert r.status_code == 201, r.text
    data = r.json()
    return DeviceHandle(
        id=uuid.UUID(data["id"]),
        token=data["token"],
        body=data,
        client=factory.client({"X-API-Key": data["token"]}),
    )
