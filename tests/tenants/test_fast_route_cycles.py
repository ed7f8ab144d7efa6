"""A request served by a fast route leaves no reference cycle behind: its objects are freed by
reference counting, not by the garbage collector, whose collections of such garbage paused
every request in flight for tens of milliseconds (see `iiot.heap`)."""

from __future__ import annotations

import gc
from collections import Counter
from typing import Any

import pytest

from iiot.runtime import Runtime
from tests.fixtures.factories import World


async def _get(app: Any, path: str, authorization: str) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"authorization", authorization.encode())],
        "client": ("10.1.2.4", 1234),
        "server": ("test", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


@pytest.mark.parametrize("endpoint", ["stats", "quotas"])
async def test_a_fast_request_leaves_no_cycle(
    app: Any, runtime: Runtime, world: World, endpoint: str
) -> None:
    path = f"/api/v1/tenants/{world.tenant_a.id}/{endpoint}"
    authorization = world.a["viewer"].client.headers["authorization"]
    async with app.router.lifespan_context(app):
        for _ in range(3):  # warm: caches, prepared statements, connections
            assert await _get(app, path, authorization) == 200
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(20):
                assert await _get(app, path, authorization) == 200
            gc.collect()
            left = Counter(type(o).__name__ for o in gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    assert left == Counter(), left
