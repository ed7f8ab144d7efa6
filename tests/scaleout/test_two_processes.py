"""Scale-out on real engines: two `iiot serve` processes on one PostgreSQL and one Redis, and
a third behind PgBouncer in transaction-pooling mode.

The servers start once for the module; every test makes its own tenant, so the database
being emptied between tests does not matter to them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from iiot.config import Settings
from iiot.models.users import User
from iiot.runtime import Runtime
from tests.fixtures.database import TestDatabase
from tests.fixtures.factories import Actor, Factory
from tests.fixtures.tls import tls_context
from tests.scaleout.servers import (
    PgBouncer,
    Server,
    pgbouncer_binary,
    redis_for_tests,
    spawn_server,
    start_pgbouncer,
    stop_servers,
    wait_ready,
)

pytestmark = pytest.mark.timeout(120)

_ts = itertools.count(1)
_BASE = datetime.now(UTC) - timedelta(minutes=5)


def _at() -> str:
    return (_BASE + timedelta(milliseconds=10 * next(_ts))).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = redis_for_tests()
    if url is None:
        print("\nscale-out tests skipped: no Redis answers (IIOT_TEST_REDIS_URL)")
        pytest.skip("no Redis server: set IIOT_TEST_REDIS_URL or start redis-server")
    return url


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="iiot-scaleout-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
async def operator(runtime: Runtime) -> None:
    """A system admin, before the servers start: none of them creates a bootstrap admin (see
    `spawn_server`). No test signs in as it."""
    async with runtime.db.system() as session:
        session.add(User(email="operator@example.com", is_system_admin=True, status="active"))


@dataclass
class Cluster:
    pair: tuple[Server, Server]
    pooled: tuple[Server, PgBouncer] | None
    skipped: str | None  # why there is no pooled process


def _pgbouncer_missing(db_urls: TestDatabase) -> str | None:
    if pgbouncer_binary() is None:
        return "pgbouncer is not installed (apt-get install pgbouncer)"
    if make_url(db_urls.app_url).host is None:
        return "PgBouncer is tested against a PostgreSQL service (IIOT_TEST_DATABASE_URL)"
    return None


@pytest.fixture(scope="module")
def cluster(
    db_urls: TestDatabase, settings: Settings, redis_url: str, workdir: Path, operator: None
) -> Iterator[Cluster]:
    """Two processes on the session's database and one Redis database, and a third whose
    transactions go through PgBouncer (transaction pooling) while its LISTEN and advisory
    locks use IIOT_DATABASE_DIRECT_URL. All three start at once."""
    env = {
        "IIOT_DATABASE_URL": db_urls.app_url,
        "IIOT_REDIS_URL": redis_url,
        "IIOT_JWT_SECRET": settings.resolved_jwt_secret(),
    }
    skipped = _pgbouncer_missing(db_urls)
    bouncer: PgBouncer | None = None
    servers: list[Server] = []
    try:
        servers += [spawn_server("a", workdir, env), spawn_server("b", workdir, env)]
        if skipped is None:
            url = make_url(db_urls.app_url)
            assert url.username
            assert url.password
            assert url.database
            binary = pgbouncer_binary()
            assert binary is not None
            bouncer = start_pgbouncer(binary, workdir / "pgbouncer", db_urls.app_url)
            pooled_env = env | {
                "IIOT_DATABASE_URL": bouncer.url(url.username, url.password, url.database),
                "IIOT_DATABASE_DIRECT_URL": db_urls.app_url,
            }
            servers.append(spawn_server("pooled", workdir, pooled_env))
        for server in servers:
            wait_ready(server)
    except BaseException as exc:
        stop_servers(servers)
        if bouncer is not None:
            bouncer.stop()
            log = bouncer.workdir / "pgbouncer.log"
            raise RuntimeError(f"pgbouncer log: {log.read_text()[-2000:]}") from exc
        raise
    pooled = (servers[2], bouncer) if bouncer is not None else None
    yield Cluster(pair=(servers[0], servers[1]), pooled=pooled, skipped=skipped)
    stop_servers(servers)
    if bouncer is not None:
        bouncer.stop()


@pytest.fixture
def pair(cluster: Cluster) -> tuple[Server, Server]:
    return cluster.pair


@pytest.fixture
def pooled(cluster: Cluster) -> tuple[Server, PgBouncer]:
    if cluster.pooled is None:
        print(f"\nPgBouncer test skipped: {cluster.skipped}")
        pytest.skip(cluster.skipped or "no PgBouncer")
    return cluster.pooled


def _client(server: Server, headers: dict[str, str]) -> httpx.AsyncClient:
    # 8 requests in flight per process (16 at once across the pair): concurrent, yet within
    # the servers' small database pools on a shared machine.
    limits = httpx.Limits(max_connections=8)
    return httpx.AsyncClient(
        base_url=server.url, headers=headers, timeout=60, limits=limits, verify=tls_context()
    )


async def _device(server: Server, developer: Actor) -> dict[str, Any]:
    async with _client(server, developer.headers) as c:
        r = await c.post("/api/v1/devices", json={"name": f"d-{uuid.uuid4().hex[:6]}"})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def _spread(
    servers: tuple[Server, ...], headers: dict[str, str], n: int, method: str, path: str, **kw: Any
) -> list[httpx.Response]:
    """`n` concurrent requests, alternating between the servers."""
    clients = [_client(s, headers) for s in servers]
    try:
        return await asyncio.gather(
            *(clients[i % len(clients)].request(method, path, **kw) for i in range(n))
        )
    finally:
        for c in clients:
            await c.aclose()


async def test_a_tenant_limit_of_60_admits_60_across_both_processes(
    factory: Factory, pair: tuple[Server, Server]
) -> None:
    tenant = await factory.tenant(api_requests_per_minute=60)
    viewer = await factory.member(tenant, "viewer")
    results = await _spread(pair, viewer.headers, 100, "GET", "/api/v1/devices")
    by_server = Counter((str(r.url.port), r.status_code) for r in results)
    codes = Counter(r.status_code for r in results)
    print(f"\napi_requests_per_minute=60, 100 requests over 2 processes: {dict(codes)}")
    print(f"per process: {dict(by_server)}")
    unexpected = [r.text for r in results if r.status_code not in (200, 429)]
    assert unexpected == [], unexpected[:2]
    assert codes == {200: 60, 429: 40}
    assert {p for p, status in by_server if status == 200} == {str(s.port) for s in pair}
    refused = next(r for r in results if r.status_code == 429)
    body = refused.json()
    assert body["code"] == "rate_limited"
    assert body["limit"] == "api_requests_per_minute"
    assert body["window"] == "60s"
    assert 0 < body["retry_after"] <= 60
    assert refused.headers["retry-after"] == str(body["retry_after"])
    assert refused.headers["ratelimit-limit"] == "60"
    assert refused.headers["ratelimit-policy"] == "60;w=60"
    # The platform's own checks are exempt.
    async with _client(pair[0], {}) as c:
        assert (await c.get("/health")).status_code == 200
        assert (await c.get("/ready")).status_code == 200


async def test_a_device_message_limit_holds_across_both_processes(
    factory: Factory, pair: tuple[Server, Server]
) -> None:
    tenant = await factory.tenant(max_device_messages_per_minute=10)
    developer = await factory.member(tenant, "developer")
    device = await _device(pair[0], developer)
    other = await _device(pair[1], developer)
    results = await _spread(
        pair,
        {"X-API-Key": device["token"]},
        30,
        "POST",
        "/api/v1/telemetry",
        json={"telemetry": {"t": 1.5}},
    )
    codes = Counter(r.status_code for r in results)
    print(f"\nmax_device_messages_per_minute=10, 30 messages over 2 processes: {dict(codes)}")
    assert codes == {201: 10, 429: 20}
    body = next(r for r in results if r.status_code == 429).json()
    assert body["limit"] == "max_device_messages_per_minute"
    # The limit is per device: another device of the tenant is not affected.
    async with _client(pair[1], {"X-API-Key": other["token"]}) as c:
        r = await c.post("/api/v1/telemetry", json={"telemetry": {"t": 2.0}})
    assert r.status_code == 201, r.text


async def test_a_device_token_revoked_on_one_is_refused_on_the_other_within_a_second(
    factory: Factory, pair: tuple[Server, Server]
) -> None:
    tenant = await factory.tenant()
    developer = await factory.member(tenant, "developer")
    device = await _device(pair[0], developer)
    first, second = pair
    async with _client(second, {"X-API-Key": device["token"]}) as dev:
        # The second process has the token in its cache.
        for _ in range(2):
            r = await dev.post("/api/v1/telemetry", json={"telemetry": {"t": 1}})
            assert r.status_code == 201, r.text
        async with _client(first, developer.headers) as admin:
            r = await admin.post(f"/api/v1/devices/{device['id']}/credentials")
            assert r.status_code == 201, r.text
        revoked_at = time.monotonic()
        while True:
            r = await dev.post("/api/v1/telemetry", json={"telemetry": {"t": 1}})
            if r.status_code == 401:
                break
            assert r.status_code == 201, r.text
            assert time.monotonic() - revoked_at < 1.0, "still accepted a second after revoking"
            await asyncio.sleep(0.02)
    elapsed = time.monotonic() - revoked_at
    print(f"\nrevoked token refused by the other process after {elapsed * 1000:.0f} ms")


async def test_a_rule_edited_on_one_is_used_by_the_next_batch_on_the_other(
    factory: Factory, pair: tuple[Server, Server]
) -> None:
    tenant = await factory.tenant()
    developer = await factory.member(tenant, "developer")
    device = await _device(pair[0], developer)
    first, second = pair
    rule = {
        "name": "Too hot",
        "rule_type": "threshold",
        "condition": {"key": "temperature", "operator": ">", "value": 100},
        "severity": "high",
        "actions": [{"type": "alert", "message": "{key}={value}"}],
    }

    async def alerts(c: httpx.AsyncClient) -> list[dict[str, Any]]:
        r = await c.get("/api/v1/alerts")
        assert r.status_code == 200, r.text
        return r.json()["alerts"]  # type: ignore[no-any-return]

    async with (
        _client(first, developer.headers) as on_first,
        _client(second, {"X-API-Key": device["token"]}) as on_second,
    ):
        r = await on_first.post("/api/v1/rules", json=rule)
        assert r.status_code == 201, r.text
        rule_id = r.json()["id"]
        reading = {"timestamp": _at(), "telemetry": {"temperature": 60}}
        assert (await on_second.post("/api/v1/telemetry", json=reading)).status_code == 201
        await asyncio.sleep(0.3)  # the evaluation runs after the acknowledgement
        assert await alerts(on_first) == []  # 60 is not above 100: the second has the rule
        rule["condition"]["value"] = 50
        r = await on_first.put(f"/api/v1/rules/{rule_id}", json=rule)
        assert r.status_code == 200, r.text
        reading = {"timestamp": _at(), "telemetry": {"temperature": 60}}
        assert (await on_second.post("/api/v1/telemetry", json=reading)).status_code == 201
        deadline = time.monotonic() + 5
        while not (found := await alerts(on_first)) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    assert len(found) == 1, found


async def test_the_api_works_through_pgbouncer_in_transaction_pooling_mode(
    factory: Factory,
    pair: tuple[Server, Server],
    pooled: tuple[Server, PgBouncer],
    db_urls: TestDatabase,
) -> None:
    server, bouncer = pooled
    tenant = await factory.tenant()
    other = await factory.tenant()
    developer = await factory.member(tenant, "developer")
    outsider = await factory.member(other, "developer")
    device = await _device(server, developer)
    await _device(server, outsider)
    async with (
        _client(server, developer.headers) as api,
        _client(server, {"X-API-Key": device["token"]}) as dev,
    ):
        # Many concurrent tenant transactions share PgBouncer's 5 server connections: each
        # sees only its tenant (the tenant is set per transaction with set_config(.., true)).
        listed = await asyncio.gather(*(api.get("/api/v1/devices") for _ in range(20)))
        assert {r.status_code for r in listed} == {200}
        assert all([d["id"] for d in r.json()["devices"]] == [device["id"]] for r in listed), (
            listed[0].text
        )
        r = await dev.post("/api/v1/telemetry", json={"timestamp": _at(), "telemetry": {"t": 7}})
        assert r.status_code == 201, r.text
        r = await api.get("/api/v1/telemetry/latest", params={"device_id": device["id"]})
        assert r.status_code == 200, r.text
        assert "7" in r.text, r.text
        # LISTEN runs on the direct connection: a token revoked through another process is
        # refused here at once.
        async with _client(pair[0], developer.headers) as elsewhere:
            r = await elsewhere.post(f"/api/v1/devices/{device['id']}/credentials")
            assert r.status_code == 201, r.text
        deadline = time.monotonic() + 1.0
        while (
            r := await dev.post("/api/v1/telemetry", json={"telemetry": {"t": 1}})
        ).status_code != 401:
            assert time.monotonic() < deadline, "revocation not seen through the direct URL"
            await asyncio.sleep(0.02)
    # The API's transactions went through PgBouncer.
    import psycopg

    url = make_url(db_urls.app_url)
    with psycopg.connect(
        f"postgresql://{url.username}:{url.password}@127.0.0.1:{bouncer.port}/pgbouncer",
        autocommit=True,
    ) as admin:
        stats = {row[0]: row for row in admin.execute("show stats").fetchall()}
    assert url.database in stats
    assert int(stats[url.database][1]) > 20  # total_xact_count


async def _stream_events(
    server: Server, headers: dict[str, str], device_id: str, got: list[tuple[str, Any]]
) -> asyncio.Task[None]:
    """Open a live stream of one device on `server` and collect its events until cancelled;
    returns once the stream said `ready`."""
    ready = asyncio.Event()

    async def read() -> None:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=30, verify=tls_context()) as c,
            c.stream(
                "GET",
                "/api/v1/stream",
                params={"devices": device_id},
                headers={**headers, "Accept": "text/event-stream"},
            ) as response,
        ):
            assert response.status_code == 200
            event = "message"
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    got.append((event, json.loads(line[6:])))
                    if event == "ready":
                        ready.set()

    task = asyncio.create_task(read())
    await asyncio.wait_for(ready.wait(), 10)
    return task


async def test_a_stream_on_one_process_gets_every_point_written_through_the_others(
    factory: Factory, cluster: Cluster
) -> None:
    """Writes publish to other processes only while one of them watches the tenant: a point
    acknowledged by any process after the stream said `ready` reaches it, through PgBouncer
    too."""
    tenant = await factory.tenant()
    developer = await factory.member(tenant, "developer")
    first, second = cluster.pair
    writers = [first, second] + ([cluster.pooled[0]] if cluster.pooled else [])
    device = await _device(first, developer)
    got: list[tuple[str, Any]] = []
    async with _client(first, {"X-API-Key": device["token"]}) as dev:
        # Nobody watches yet: stored, not published.
        r = await dev.post("/api/v1/telemetry", json={"timestamp": _at(), "telemetry": {"t": 0}})
        assert r.status_code == 201, r.text
    reader = await _stream_events(second, developer.headers, device["id"], got)
    try:
        sent = []
        for i in range(30):
            server = writers[i % len(writers)]
            async with _client(server, {"X-API-Key": device["token"]}) as dev:
                r = await dev.post(
                    "/api/v1/telemetry", json={"timestamp": _at(), "telemetry": {"t": i + 1}}
                )
            assert r.status_code == 201, r.text
            sent.append(float(i + 1))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            values = [p[2] for e, d in got if e == "telemetry" for p in d["points"]]
            if len(values) >= len(sent):
                break
            await asyncio.sleep(0.05)
        assert sorted(values) == sent, got
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def test_the_stream_publisher_keeps_publishing_through_pgbouncer(
    cluster: Cluster, db_urls: TestDatabase
) -> None:
    """A process behind PgBouncer publishes its live points on a connection to the pooler. Its
    NOTIFYs land on whichever server session the pooler hands out, while other clients keep
    those sessions changing: none may fail (a failed one loses the batches it carried)."""
    import psycopg

    from iiot.stream.hub import PUBLISH, publishing_connection

    if cluster.pooled is None:
        pytest.skip(cluster.skipped or "no pooled process")
    bouncer = cluster.pooled[1]
    url = make_url(db_urls.app_url)
    assert url.username
    assert url.password
    assert url.database
    pooler = bouncer.url(url.username, url.password, url.database)
    stop = asyncio.Event()

    async def churn() -> None:
        async with await psycopg.AsyncConnection.connect(
            pooler, autocommit=True, prepare_threshold=None
        ) as other:
            while not stop.is_set():
                async with other.transaction():
                    await other.execute("select pg_sleep(0.001)")

    churners = [asyncio.create_task(churn()) for _ in range(3)]
    failures: list[str] = []
    try:
        async with await publishing_connection(pooler) as conn:
            for i in range(300):
                try:
                    await conn.execute(PUBLISH, ("iiot_test_publisher", str(i)))
                except psycopg.Error as exc:
                    failures.append(type(exc).__name__)
    finally:
        stop.set()
        await asyncio.gather(*churners)
    assert failures == []
