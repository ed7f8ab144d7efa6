"""A device's `POST /api/v1/{token}/telemetry` takes the lean twin of the declared ThingsBoard
route (`iiot.http.fast_routes`); the device API's other routes stay declared. Both ways give
the same answers: the same requests sent to the app and to the same app without the fast
routes get the same status, content type and body, and store the same rows."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.app import API_PREFIX, create_app
from iiot.connectivity.access import MAX_TOKEN_IN_PATH, DeviceTokenInPath
from iiot.connectivity.device_api import FAST_TB_TELEMETRY, TOKEN_IN_PATH
from iiot.http.fast_routes import check_twins
from iiot.runtime import Runtime
from iiot.telemetry.schemas import MAX_BODY_BYTES
from tests.devices.support import DeviceHandle, make_device
from tests.fixtures.factories import Factory, World
from tests.fixtures.fast_routes import WayRecorder, without_fast_routes


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("10.1.2.3", 1234)),
        base_url="http://test",
    )


def test_the_fast_route_uses_the_declared_routes_policy() -> None:
    assert FAST_TB_TELEMETRY.access is TOKEN_IN_PATH
    assert isinstance(TOKEN_IN_PATH, DeviceTokenInPath)
    assert (FAST_TB_TELEMETRY.method, FAST_TB_TELEMETRY.path) == ("POST", "/{token}/telemetry")
    declared = {("POST", "/api/v1/{token}/telemetry"): (TOKEN_IN_PATH,)}
    check_twins([FAST_TB_TELEMETRY], API_PREFIX, declared)
    with pytest.raises(RuntimeError, match="Access policy"):
        check_twins(
            [FAST_TB_TELEMETRY],
            API_PREFIX,
            {("POST", "/api/v1/{token}/telemetry"): (DeviceTokenInPath(),)},
        )
    # It must not shadow a declared route whose segment is fixed.
    with pytest.raises(RuntimeError, match="shadows"):
        check_twins(
            [FAST_TB_TELEMETRY],
            API_PREFIX,
            {**declared, ("POST", "/api/v1/devices/telemetry"): (TOKEN_IN_PATH,)},
        )


async def test_telemetry_takes_the_fast_route_and_the_rest_of_the_device_api_not(
    runtime: Runtime, factory: Factory, world: World
) -> None:
    dev = await make_device(factory, world.a["developer"])
    recorder = WayRecorder(create_app(runtime=runtime))
    async with _client(recorder) as c:
        r = await c.post(f"/api/v1/{dev.token}/telemetry", json={"t": 1.0})
        assert r.status_code == 200, r.text
        r = await c.post(f"/api/v1/{dev.token}/attributes", json={"fw": "1.0"})
        assert r.status_code == 200, r.text
        assert (await c.get(f"/api/v1/{dev.token}/attributes")).status_code == 200
        # An overlong path segment is the declared route's to refuse (422).
        too_long = "x" * (MAX_TOKEN_IN_PATH + 1)
        assert (await c.post(f"/api/v1/{too_long}/telemetry", json={"t": 1})).status_code == 422
        # Other methods of the path are never the fast route's.
        assert (await c.put(f"/api/v1/{dev.token}/telemetry", json={"t": 1})).status_code == 405
    assert recorder.ways[:4] == ["fast", "post_attributes", "get_attributes", "post_telemetry"]
    assert recorder.ways[4] != "fast"


def _ms(seconds_ago: int) -> int:
    return int(time.time() - seconds_ago) * 1000


# (name, token: "own", "unknown", "long" or "overlong", raw body or JSON, extra headers)
CASES: list[tuple[str, str, Any, dict[str, str]]] = [
    ("one value", "own", {"temp": 21.5}, {}),
    ("numeric string and flag", "own", {"rpm": "1200", "on": True}, {}),
    ("with a timestamp", "own", {"ts": "T1", "values": {"rpm": 1300}}, {}),
    ("the same point again", "own", {"ts": "T1", "values": {"rpm": 1300}}, {}),
    (
        "an array, one a duplicate",
        "own",
        [{"ts": "T1", "values": {"rpm": 1300}}, {"ts": "T2", "values": {"rpm": 1400}}],
        {},
    ),
    ("an object value", "own", {"ts": "T3", "values": {"cfg": {"mode": 2}}}, {}),
    ("malformed JSON", "own", b'{"temp": 1', {}),
    ("empty body", "own", b"", {}),
    ("blank body", "own", b"   ", {}),
    ("NaN", "own", b'{"temp": NaN}', {}),
    ("a number as the body", "own", b"42", {}),
    ("far future", "own", {"ts": 32_503_680_000_000, "values": {"t": 1}}, {}),
    ("declared body too large", "own", {"t": 1}, {"content-length": str(MAX_BODY_BYTES + 1)}),
    ("unknown token", "unknown", {"t": 1}, {}),
    ("long token", "long", {"t": 1}, {}),
    ("overlong token", "overlong", {"t": 1}, {}),
]


def _token(kind: str, dev: DeviceHandle) -> str:
    return {
        "own": dev.token,
        "unknown": "x" * 20,
        "long": "x" * MAX_TOKEN_IN_PATH,
        "overlong": "x" * (MAX_TOKEN_IN_PATH + 1),
    }[kind]


def _body(raw: Any, times: list[int]) -> bytes:
    if isinstance(raw, bytes):
        return raw
    text_ = orjson.dumps(raw).decode()
    for n, moment in enumerate(times, start=1):
        text_ = text_.replace(f'"T{n}"', str(moment))
    return text_.encode()


async def _send_all(app: Any, dev: DeviceHandle, times: list[int]) -> list[tuple[str, Any]]:
    answers = []
    async with _client(app) as c:
        for name, token, raw, headers in CASES:
            r = await c.post(
                f"/api/v1/{_token(token, dev)}/telemetry",
                content=_body(raw, times),
                headers={"content-type": "application/json", **headers},
            )
            body = r.json() if r.content else None
            if isinstance(body, dict):
                body.pop("instance", None)  # the problem's instance is the request's path
            answers.append((name, (r.status_code, r.headers.get("content-type", ""), body)))
    return answers


async def _rows(engine: AsyncEngine, device: DeviceHandle) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text(
                "select s.key, t.ts, t.value_num, t.value_bool, t.value_str from telemetry t"
                " join telemetry_series s on s.id = t.series_id"
                " where s.device_id = :d and t.ts < now() - interval '1 minute'"
                " order by 1, 2"
            ),
            {"d": device.id},
        )
        return [tuple(r) for r in result]


async def test_both_ways_give_the_same_answers_and_store_the_same_rows(
    runtime: Runtime, factory: Factory, world: World, owner_engine: AsyncEngine
) -> None:
    developer = world.a["developer"]
    fast_device = await make_device(factory, developer)
    plain_device = await make_device(factory, developer)
    times = [_ms(300), _ms(200), _ms(100)]
    fast = await _send_all(create_app(runtime=runtime), fast_device, times)
    plain_app = without_fast_routes(create_app(runtime=runtime))
    plain = await _send_all(plain_app, plain_device, times)
    assert fast == plain
    statuses = {name: answer[0] for name, answer in fast}
    assert statuses["one value"] == 200
    assert fast[0][1][1] == "application/json"
    assert fast[0][1][2] == {"points": 1, "duplicates": 0}
    assert fast[3][1][2] == {"points": 0, "duplicates": 1}
    assert fast[4][1][2] == {"points": 1, "duplicates": 1}
    assert statuses["malformed JSON"] == 422
    assert statuses["empty body"] == 400
    assert statuses["far future"] == 422
    assert statuses["declared body too large"] == 413
    assert statuses["unknown token"] == 401
    assert statuses["long token"] == 401
    assert statuses["overlong token"] == 422
    fast_rows = await _rows(owner_engine, fast_device)
    assert fast_rows == await _rows(owner_engine, plain_device)
    assert [r[0] for r in fast_rows] == ["cfg", "rpm", "rpm"]
