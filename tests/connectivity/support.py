"""Helpers of the connectivity tests: devices with tokens, a recording `DeviceSession`."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.connectivity.hub import hub
from iiot.runtime import Runtime


@dataclass
class RecordingSession:
    """A stand-in for a transport's session (the `DeviceSession` protocol only): records what
    the hub pushes. `takes_rpc=False` behaves like a device not subscribed to RPC."""

    device_id: uuid.UUID
    tenant_id: uuid.UUID
    takes_rpc: bool = True
    attributes: asyncio.Queue[tuple[dict[str, Any], list[str]]] = field(
        default_factory=asyncio.Queue
    )
    rpc: asyncio.Queue[tuple[int, str, Any]] = field(default_factory=asyncio.Queue)
    closed: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    async def push_attributes(self, shared: dict[str, Any], deleted: list[str]) -> None:
        await self.attributes.put((shared, deleted))

    async def push_rpc_request(self, request_id: int, method: str, params: Any) -> bool:
        if not self.takes_rpc:
            return False
        await self.rpc.put((request_id, method, params))
        return True

    async def close(self, reason: str) -> None:
        if not self.closed.done():
            self.closed.set_result(reason)


async def stored_points(engine: AsyncEngine, device_id: uuid.UUID) -> dict[str, list[Any]]:
    """The device's telemetry as key -> values (numbers, booleans or strings) by time."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "select key, coalesce(value_num::text, value_bool::text, value_str) "
                "from telemetry t join telemetry_series s "
                "on s.tenant_id = t.tenant_id and s.id = t.series_id "
                "where s.device_id = :d order by key, ts"
            ),
            {"d": device_id},
        )
        out: dict[str, list[Any]] = {}
        for key, value in rows:
            out.setdefault(key, []).append(value)
        return out


async def attached(rt: Runtime, device_id: uuid.UUID, timeout: float = 10.0) -> None:
    """Wait until a session of the device is attached to the runtime's hub (a long-poll
    request attaches only after its token was checked)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not hub(rt).sessions(device_id):
        assert loop.time() < deadline, "no session of the device was attached"
        await asyncio.sleep(0.01)
