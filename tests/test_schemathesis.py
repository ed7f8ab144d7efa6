"""Property-based fuzzing of the whole OpenAPI document against a running server (issue 13).

Schemathesis generates requests from `/openapi.json` for every operation, as a system admin
(also admin of a tenant), as a viewer of that tenant and as a device, with a bounded number of
examples per operation, and sends them to a real uvicorn server over HTTP. Any 500, any status
code the document does not declare for the operation, any response whose content type,
headers or body the document does not describe, fails the test.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.devices.support import make_device
from tests.fixtures.factories import Factory, World
from tests.fixtures.live_server import live_server

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

__all__ = ["live_server"]


@dataclass
class Tally:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def _generate(schema: Any, examples: int) -> list[tuple[Any, list[schemathesis.Case]]]:
    """Every operation with up to `examples` cases generated for it."""
    return [(op, _cases(op, examples)) for op in (r.ok() for r in schema.get_all_operations())]


def _cases(operation: Any, examples: int) -> list[schemathesis.Case]:
    cases: list[schemathesis.Case] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def generate(case: schemathesis.Case) -> None:
        cases.append(case)

    generate()
    return cases


def _fuzz(
    generated: list[tuple[Any, list[schemathesis.Case]]],
    base_url: str,
    headers: dict[str, str],
    examples: int,
    only: set[str] | None,
) -> Tally:
    tally = Tally()
    session = requests.Session()
    # No ~/.netrc, proxy or CA bundle lookups from the environment on every request: the
    # server is on 127.0.0.1 and the test sets the credentials itself.
    session.trust_env = False
    for operation, cases in generated:
        key = (operation.method.upper(), operation.path)
        if only is not None and operation.path not in only:
            continue
        sent = {} if key in SESSION_ENDING else headers
        for case in cases[:examples]:
            _send(case, base_url, dict(sent), session, tally)
    session.close()
    return tally


def _send(
    case: schemathesis.Case,
    base_url: str,
    sent: dict[str, str],
    session: requests.Session,
    tally: Tally,
) -> None:
    response = case.call(base_url=base_url, headers=sent, session=session, timeout=20)
    tally.requests += 1
    tally.statuses[response.status_code] += 1
    try:
        case.validate_response(response, checks=CHECKS)
    except (AssertionError, BaseExceptionGroup) as exc:  # every failure is collected
        first = str(exc).strip().splitlines()[:6]
        tally.failures.append(
            f"{case.method} {case.formatted_path} -> {response.status_code}: " + " | ".join(first)
        )


@pytest.mark.timeout(300)
async def test_no_request_makes_a_500_or_breaks_the_schema(
    factory: Factory, world: World, live_server: str
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
    # Generation is derandomized: the first n cases of an operation are the same whether n or
    # more are asked for, so every caller's cases are generated once, as many as the most
    # any caller sends, and each caller sends its first EXAMPLES[name] of them.
    generated = await asyncio.to_thread(_generate, schema, max(EXAMPLES.values()))
    # The requests are sent from a thread: the server answers them in this event loop.
    tallies = {
        name: await asyncio.to_thread(_fuzz, generated, live_server, headers, EXAMPLES[name], only)
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
