"""Property-based fuzzing of the whole OpenAPI document against a running server (issue 13).

Schemathesis generates requests from `/openapi.json` for every operation, as a system admin
(also admin of a tenant), as a viewer of that tenant and as a device, with a bounded number of
examples per operation, and sends them to a real uvicorn server over HTTP. Any 500, any status
code the document does not declare for the operation, any response whose content type,
headers or body the document does not describe, fails the test.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from iiot.app import MODULES, create_app
from iiot.config import Settings
from iiot.runtime import Runtime
from tests.devices.support import make_device
from tests.fixtures.database import TestDatabase
from tests.fixtures.factories import Factory, World

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = {"admin": 6, "viewer": 4, "device": 6}
# Calls that would end the caller's own session; they are fuzzed without credentials.
SESSION_ENDING = {("POST", "/api/v1/auth/logout"), ("POST", "/api/v1/auth/password")}


@dataclass
class Tally:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


class ServerThread:
    """`iiot`'s app served by uvicorn on a free port, in a thread with its own event loop."""

    def __init__(self, settings: Settings, database_url: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self._settings, self._url = settings, database_url
        self._server: uvicorn.Server | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        rt = Runtime.build(self._settings, self._url, MODULES)
        config = uvicorn.Config(
            create_app(runtime=rt),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        try:
            await self._server.serve()
        finally:
            await rt.db.dispose()

    def __enter__(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 20
        while self._server is None or not self._server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.should_exit = True
        self._thread.join(15)


def _fuzz(
    schema: Any, base_url: str, headers: dict[str, str], examples: int, only: set[str] | None
) -> Tally:
    tally = Tally()
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if only is not None and operation.path not in only:
            continue
        _fuzz_operation(
            operation, base_url, {} if key in SESSION_ENDING else headers, examples, session, tally
        )
    session.close()
    return tally


def _fuzz_operation(
    operation: Any,
    base_url: str,
    sent: dict[str, str],
    examples: int,
    session: requests.Session,
    tally: Tally,
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers=sent, session=session, timeout=20)
        tally.requests += 1
        tally.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as exc:  # every failure is collected
            first = str(exc).strip().splitlines()[:6]
            tally.failures.append(
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                + " | ".join(first)
            )

    run()


@pytest.mark.timeout(300)
async def test_no_request_makes_a_500_or_breaks_the_schema(
    factory: Factory, world: World, db_urls: TestDatabase, settings: Settings
) -> None:
    admin = await factory.system_admin(world.tenant_a)
    device = await make_device(factory, world.a["developer"])
    document = factory.app.openapi()
    schema = schemathesis.openapi.from_dict(document)
    device_paths = {
        path
        for path, item in document["paths"].items()
        for op in item.values()
        if {"deviceToken": []} in op.get("security", [])
    }
    callers = [
        ("admin", {"Authorization": f"Bearer {admin.token}"}, None),
        ("viewer", {"Authorization": f"Bearer {world.a['viewer'].token}"}, None),
        ("device", {"X-API-Key": device.token}, device_paths),
    ]
    started = time.monotonic()
    with ServerThread(settings, db_urls.app_url) as base_url:
        tallies = {
            name: await asyncio.to_thread(_fuzz, schema, base_url, headers, EXAMPLES[name], only)
            for name, headers, only in callers
        }
    elapsed = time.monotonic() - started
    requests_sent = sum(t.requests for t in tallies.values())
    failures = [f"[{name}] {f}" for name, t in tallies.items() for f in t.failures]
    statuses = sum((t.statuses for t in tallies.values()), Counter())
    print(  # noqa: T201 - the figures the run is judged by
        f"\nschemathesis: {requests_sent} requests, {len(failures)} failures, "
        f"{len(document['paths'])} paths, {elapsed:.1f} s; "
        f"statuses {dict(sorted(statuses.items()))}"
    )
    assert requests_sent > 300
    assert statuses[500] == 0
    assert not failures, "\n".join(failures[:40])
