"""Helpers for rule and alert tests: devices, telemetry through the real ingest endpoint,
rules through the API, and waiting for the engine to finish the batches it was given."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from iiot.notifications.webhooks import wait_for_deliveries
from iiot.rules.engine import engine
from iiot.runtime import Runtime
from tests.fixtures.factories import Actor

_ts = itertools.count(1)
_BASE = datetime.now(UTC) - timedelta(minutes=8)


def next_ts() -> datetime:
    """Strictly increasing timestamps within the ingest window, unique per test session."""
    return _BASE + timedelta(milliseconds=next(_ts) * 10)


async def make_device(actor: Actor, name: str = "Pump 1", type: str = "pump") -> dict[str, Any]:
    r = await actor.client.post("/api/v1/devices", json={"name": name, "type": type})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def send(
    rt: Runtime,
    client: httpx.AsyncClient,
    device_id: str,
    values: dict[str, Any],
    ts: datetime | None = None,
) -> None:
    """Ingest one reading per key and wait for the engine to evaluate it."""
    at = ts or next_ts()
    r = await client.post(
        "/api/v1/telemetry",
        json={
            "device_id": device_id,
            "timestamp": at.isoformat().replace("+00:00", "Z"),
            "telemetry": values,
        },
    )
    assert r.status_code == 201, r.text
    await settle(rt)


async def settle(rt: Runtime) -> None:
    await engine(rt).drain()
    await wait_for_deliveries(rt)


async def make_rule(actor: Actor, **body: Any) -> dict[str, Any]:
    payload = {
        "name": "Too hot",
        "rule_type": "threshold",
        "condition": {"key": "temperature", "operator": ">", "value": 80},
        "severity": "high",
        "actions": [{"type": "alert", "message": "{device_name}: {key}={value} > {threshold}"}],
    }
    payload.update(body)
    r = await actor.client.post("/api/v1/rules", json=payload)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def alerts(actor: Actor, **params: Any) -> list[dict[str, Any]]:
    r = await actor.client.get("/api/v1/alerts", params=params)
    assert r.status_code == 200, r.text
    return r.json()["alerts"]  # type: ignore[no-any-return]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookServer:
    """A real HTTP server on 127.0.0.1 that records requests and answers with `statuses`."""

    statuses: list[int] = field(default_factory=lambda: [200])
    received: list[Received] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = (await reader.readline()).decode().strip()
        headers: dict[str, str] = {}
        while (line := (await reader.readline()).decode().strip()) != "":
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        method, path, _ = request_line.split(" ", 2)
        self.received.append(Received(method, path, headers, body))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        writer.write(
            f"HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".encode()
        )
        await writer.drain()
        writer.close()


@asynccontextmanager
async def webhook_server(statuses: list[int] | None = None) -> AsyncIterator[WebhookServer]:
    server = WebhookServer(statuses=statuses or [200])
    listener = await asyncio.start_server(server._handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        await listener.wait_closed()
