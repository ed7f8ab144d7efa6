"""A device's ingest request takes the lean twin of `POST /api/v1/telemetry`
(`iiot.http.fast_routes`); every other caller takes the declared route. Both give the same
answers: the same requests sent to the app and to the same app without the fast routes get
the same status, content type and body, and store the same rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.app import API_PREFIX, create_app
from iiot.devices.access import DeviceOrMember
from iiot.http.fast_routes import FastRoute, check_twins
from iiot.runtime import Runtime
from iiot.telemetry.api import FAST_INGEST, WRITER
from iiot.telemetry.schemas import MAX_BODY_BYTES
from tests.devices.support import DeviceHandle, make_device
from tests.fixtures.factories import Factory, World
from tests.fixtures.fast_routes import WayRecorder, without_fast_routes

URL = "/api/v1/telemetry"


def _client(app: Any, headers: dict[str, str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("10.1.2.3", 1234)),
        base_url="http://test",
        headers=headers,
    )


async def _rows(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text(
                "select s.device_id, s.key, t.ts, t.value_num from telemetry t"
                " join telemetry_series s on s.id = t.series_id order by 1, 2, 3"
            )
        )
        return [tuple(r) for r in result]


def _answer(r: httpx.Response) -> tuple[int, str, Any]:
    body = r.json() if r.content else None
    return r.status_code, r.headers.get("content-type", ""), body


@pytest.fixture
async def device(factory: Factory, world: World) -> DeviceHandle:
    return await make_device(factory, world.a["developer"])


def test_the_fast_route_uses_the_declared_routes_policy() -> None:
    assert FAST_INGEST.access is WRITER
    assert isinstance(WRITER, DeviceOrMember)
    assert (FAST_INGEST.method, FAST_INGEST.path) == ("POST", "/telemetry")


def test_a_fast_route_without_its_declared_twin_is_refused() -> None:
    declared = {("POST", "/api/v1/telemetry"): (WRITER,)}
    check_twins([FAST_INGEST], API_PREFIX, declared)
    with pytest.raises(RuntimeError, match="no declared route"):
        check_twins([FAST_INGEST], API_PREFIX, {})
    other = DeviceOrMember()
    with pytest.raises(RuntimeError, match="Access policy"):
        check_twins([FAST_INGEST], API_PREFIX, {("POST", "/api/v1/telemetry"): (other,)})
    with pytest.raises(RuntimeError, match="Access policy"):
        check_twins([FAST_INGEST], API_PREFIX, {("POST", "/api/v1/telemetry"): (WRITER, other)})
    stray = FastRoute("POST", "/nowhere", WRITER, FAST_INGEST.endpoint, FAST_INGEST.takes)
    with pytest.raises(RuntimeError, match="no declared route"):
        check_twins([stray], API_PREFIX, declared)


async def test_devices_take_the_fast_route_and_other_callers_the_declared_one(
    runtime: Runtime, world: World, device: DeviceHandle
) -> None:
    recorder = WayRecorder(create_app(runtime=runtime))
    point = {"telemetry": {"t": 1.0}}
    async with _client(recorder, {"X-API-Key": device.token}) as c:
        assert (await c.post(URL, json=point)).status_code == 201
    async with _client(recorder, {"Authorization": f"Bearer {device.token}"}) as c:
        assert (await c.post(URL, json={"telemetry": {"u": 1.0}})).status_code == 201
    async with _client(recorder, world.a["operator"].headers) as c:
        r = await c.post(URL, json={"device_id": str(device.id), "telemetry": {"v": 2.0}})
        assert r.status_code == 201, r.text
    async with _client(recorder, {}) as c:
        assert (await c.post(URL, json=point)).status_code == 401
    async with _client(recorder, {"X-API-Key": device.token}) as c:
        # Other methods of the path are never the fast route's.
        assert (await c.put(URL, json=point)).status_code == 405
    assert recorder.ways[:4] == ["fast", "fast", "ingest_telemetry", "ingest_telemetry"]
    assert recorder.ways[4] != "fast"


def _ts(minutes: int) -> int:
    moment = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=minutes)
    return int(moment.timestamp() * 1000)


# (name, headers for the device token or a member, raw body or JSON, extra headers)
Case = tuple[str, Callable[[DeviceHandle, World], dict[str, str]], Any]


def _device(d: DeviceHandle, w: World) -> dict[str, str]:
    return {"X-API-Key": d.token}


def _operator(d: DeviceHandle, w: World) -> dict[str, str]:
    return dict(w.a["operator"].headers)


def _viewer(d: DeviceHandle, w: World) -> dict[str, str]:
    return dict(w.a["viewer"].headers)


def _unknown_token(d: DeviceHandle, w: World) -> dict[str, str]:
    return {"X-API-Key": "dt_" + "x" * 40}


def _long_token(d: DeviceHandle, w: World) -> dict[str, str]:
    return {"X-API-Key": "dt_" + "x" * 400}


def _oversized(d: DeviceHandle, w: World) -> dict[str, str]:
    return {"X-API-Key": d.token, "Content-Length": str(MAX_BODY_BYTES + 1)}


CASES: list[Case] = [
    ("one point", _device, {"points": [{"ts": "T1", "values": {"t": 1.5}}]}),
    ("the same point again", _device, {"points": [{"ts": "T1", "values": {"t": 1.5}}]}),
    (
        "two points, one a duplicate",
        _device,
        {"points": [{"ts": "T1", "values": {"t": 1.5}}, {"ts": "T2", "values": {"t": 2.5}}]},
    ),
    ("malformed JSON", _device, b'{"telemetry": {"t": 1'),
    ("empty body", _device, b""),
    ("NaN", _device, b'{"telemetry": {"t": NaN}}'),
    ("lone surrogate", _device, b'{"telemetry": {"t": "\\ud800"}}'),
    ("no telemetry", _device, {"values": {"t": 1}}),
    ("object value", _device, {"telemetry": {"t": {"a": 1}}}),
    ("far future", _device, {"points": [{"ts": "2999-01-01T00:00:00Z", "values": {"t": 1}}]}),
    ("another device's id", _device, {"device_id": "DEVICE", "telemetry": {"t": 1}}),
    ("unknown token", _unknown_token, {"telemetry": {"t": 1}}),
    ("overlong token", _long_token, {"telemetry": {"t": 1}}),
    ("declared body too large", _oversized, {"telemetry": {"t": 1}}),
    ("member", _operator, {"device_id": "OWN", "points": [{"ts": "T3", "values": {"t": 3.5}}]}),
    ("member without device", _operator, {"telemetry": {"t": 1}}),
    ("viewer", _viewer, {"device_id": "OWN", "telemetry": {"t": 1}}),
]


def _body(raw: Any, device: DeviceHandle, other: DeviceHandle, times: list[int]) -> bytes:
    if isinstance(raw, bytes):
        return raw
    text_ = orjson.dumps(raw).decode()
    for n, moment in enumerate(times, start=1):
        text_ = text_.replace(f'"T{n}"', str(moment))
    text_ = text_.replace("OWN", str(device.id)).replace("DEVICE", str(other.id))
    return text_.encode()


async def _send_all(
    app: Any, device: DeviceHandle, other: DeviceHandle, world: World, times: list[int]
) -> list[tuple[str, tuple[int, str, Any]]]:
    answers = []
    for name, headers, raw in CASES:
        async with _client(app, headers(device, world)) as c:
            r = await c.post(
                URL,
                content=_body(raw, device, other, times),
                headers={"content-type": "application/json"},
            )
        answers.append((name, _answer(r)))
    return answers


async def test_both_ways_give_the_same_answers_and_store_the_same_rows(
    runtime: Runtime, factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    developer = world.a["developer"]
    fast_device = await make_device(factory, developer)
    plain_device = await make_device(factory, developer)
    other = await make_device(factory, developer)
    times = [_ts(3), _ts(2), _ts(1)]
    fast = await _send_all(create_app(runtime=runtime), fast_device, other, world, times)
    plain_app = without_fast_routes(create_app(runtime=runtime))
    plain = await _send_all(plain_app, plain_device, other, world, times)
    assert fast == plain
    statuses = {name: answer[0] for name, answer in fast}
    assert statuses["one point"] == 201
    assert fast[1][1][2] == {"points": 0, "duplicates": 1}
    assert fast[2][1][2] == {"points": 1, "duplicates": 1}
    assert statuses["declared body too large"] == 413
    assert statuses["malformed JSON"] == 400
    assert statuses["unknown token"] == 401
    assert statuses["viewer"] == 403
    rows = await _rows(owner_engine)
    by_device: dict[Any, list[tuple[Any, ...]]] = {}
    for device_id, key, ts, value in rows:
        by_device.setdefault(device_id, []).append((key, ts, value))
    stored = list(by_device.values())
    assert len(stored) == 2
    assert stored[0] == stored[1]
    assert len(stored[0]) == 3
