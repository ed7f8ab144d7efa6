"""The ingest route's OpenAPI request schema and its parser are one definition: every document
the published schema accepts is stored, every document it refuses is refused with 422.

Timestamps stay within the request's bounds (not later than now, within retention): those
bounds depend on the request's time and the tenant, which no static schema can say."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema_rs
import pytest
from fastapi import FastAPI

from iiot.telemetry.schemas import (
    PointIn,
    _plain_batch,
    ingest_body_schema,
    parse_ingest,
    parse_ingest_by_models,
    parse_points,
)
from tests.devices.support import make_device
from tests.fixtures.factories import Factory, World

NOW = datetime.now(UTC)
MS = int((NOW - timedelta(hours=1)).timestamp() * 1000)
ISO = (NOW - timedelta(minutes=30)).isoformat()


def documents(own: str) -> list[Any]:
    """Valid and invalid bodies, covering each rule of the wire format."""
    return [
        # valid
        {"telemetry": {"t": 1}},
        {"telemetry": {"t": 1.5, "on": True, "mode": "auto", "p": {"value": 2, "unit": "bar"}}},
        {"telemetry": {"q": {"value": "ok", "quality": "good"}}, "timestamp": ISO},
        {"telemetry": {"t": 1}, "timestamp": MS, "device_id": own},
        {"telemetry": {"t": 1}, "timestamp": float(MS + 1)},
        {"telemetry": {"t": 1}, "timestamp": ISO.replace("+00:00", "Z")},
        {"telemetry": {"t": 1}, "device_id": None, "timestamp": None},
        {"telemetry": {"k" * 255: "x" * 255}},
        {"points": [{"values": {"a": 1}}]},
        {
            "points": [
                {"ts": MS + 2, "values": {"a": 1, "b": False}},
                {"ts": ISO, "values": {"c": 2}},
            ]
        },
        {"device_id": own, "points": [{"device_id": own, "ts": MS + 3, "values": {"a": -1e300}}]},
        {"points": [{"ts": None, "device_id": None, "values": {"u": {"value": 1, "unit": None}}}]},
        # invalid
        [1, 2],
        "telemetry",
        {},
        {"values": {"t": 1}},
        {"telemetry": [1, 2]},
        {"telemetry": {}},
        {"telemetry": {"t": None}},
        {"telemetry": {"t": [1]}},
        {"telemetry": {"t": {"unit": "C"}}},
        {"telemetry": {"t": {"value": 1, "colour": "red"}}},
        {"telemetry": {"t": {"value": {"value": 1}}}},
        {"telemetry": {"t": {"value": 1, "unit": 5}}},
        {"telemetry": {"t": {"value": 1, "unit": "u" * 33}}},
        {"telemetry": {"t": {"value": 1, "quality": "q" * 33}}},
        {"telemetry": {"t": "x" * 256}},
        {"telemetry": {"t": {"value": "x" * 256}}},
        {"telemetry": {"k" * 256: 1}},
        {"telemetry": {"": 1}},
        {"telemetry": {"a\u0000b": 1}},
        {"telemetry": {"a": "x\u0000"}},
        {"telemetry": {"a": {"value": 1, "unit": "\u0000"}}},
        {"telemetry": {"t": 1}, "extra": True},
        {"telemetry": {"t": 1}, "timestamp": "yesterday"},
        {"telemetry": {"t": 1}, "timestamp": ISO[:19]},
        {"telemetry": {"t": 1}, "timestamp": True},
        {"telemetry": {"t": 1}, "timestamp": -5},
        {"telemetry": {"t": 1}, "timestamp": MS + 0.5},
        {"telemetry": {"t": 1}, "timestamp": str(MS)},
        {"telemetry": {"t": 1}, "device_id": "123"},
        {"telemetry": {"t": 1}, "device_id": 5},
        {"telemetry": {"t": 1}, "device_id": own.replace("-", "")},
        {"telemetry": {"t": 1}, "device_id": "{" + own + "}"},
        {"telemetry": {"t": True, "u": "1"}, "points": [{"values": {"a": 1}}]},
        {"points": {"a": 1}},
        {"points": []},
        {"points": [5]},
        {"points": [{"values": {"t": 1}, "x": 1}]},
        {"points": [{"timestamp": MS, "values": {"a": 1}}]},
        {"points": [{"ts": MS}]},
        {"points": [{"values": {"a": 1}}, {"values": {"b": [1]}}]},
        {"points": [{"values": {"a": 1}}], "extra": 1},
        {"points": [{"ts": "soon", "values": {"a": 1}}]},
        {"points": [{"device_id": "x", "values": {"a": 1}}]},
        {"telemetry": {"t": 1}, "timestamp": {"ms": MS}},
    ]


def request_schema(app: FastAPI) -> dict[str, Any]:
    operation = app.openapi()["paths"]["/api/v1/telemetry"]["post"]
    schema: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["schema"]
    return schema


def validator(app: FastAPI) -> Any:
    return jsonschema_rs.Draft202012Validator(request_schema(app), validate_formats=True)


async def test_route_and_published_schema_agree(factory: Factory, world: World) -> None:
    device = await make_device(factory, world.a["developer"])
    schema = validator(factory.app)
    disagreements = []
    docs = documents(str(device.id))
    assert sum(schema.is_valid(d) for d in docs) == 12  # the valid ones above
    for doc in docs:
        r = await device.client.post("/api/v1/telemetry", json=doc)
        expected = 201 if schema.is_valid(doc) else 422
        if r.status_code != expected:
            disagreements.append((doc, expected, r.status_code, r.text[:300]))
        if r.status_code == 422:
            problem = r.json()
            assert problem["code"] == "validation_error"
            assert all(e["field"] and e["reason"] for e in problem["errors"]), problem
    assert disagreements == []


def test_the_route_publishes_the_parsers_schema(app: FastAPI) -> None:
    assert request_schema(app) == ingest_body_schema()
    point = request_schema(app)["oneOf"][1]["properties"]["points"]["items"]
    assert set(point["properties"]) == {"device_id", "ts", "values"}
    assert point["additionalProperties"] is False


def _mutations(rng: random.Random, own: str) -> Any:
    """A random document near the valid forms: each part is valid or broken by chance."""

    def pick(*options: Any) -> Any:
        return rng.choice(options)

    def value() -> Any:
        return pick(
            rng.uniform(-1e6, 1e6),
            rng.randint(-(2**53), 2**53),
            pick(True, False),
            "s" * rng.choice((0, 1, 255, 256)),
            "nul\u0000",
            None,
            [1],
            {"value": rng.random(), "unit": pick("C", "u" * 33, 3, None)},
            {"value": "x", "quality": pick("good", "q" * 33)},
            {"value": 1, "other": 1},
            {"unit": "C"},
        )

    def values() -> Any:
        keys = [pick("k", "x" * 255, "x" * 256, "", "a\u0000") for _ in range(rng.randint(0, 3))]
        return pick({k: value() for k in keys}, [], "v", {"ok": 1.0})

    def when() -> Any:
        return pick(
            MS - rng.randint(0, 10**6),
            float(MS - rng.randint(0, 10**6)),
            ISO,
            ISO[:19],
            -1,
            "now",
            True,
            MS + 0.25,
            None,
        )

    def point() -> Any:
        out: dict[str, Any] = {"values": values()}
        if rng.random() < 0.5:
            out["ts"] = when()
        if rng.random() < 0.2:
            out["device_id"] = pick(own, "nope", None)
        if rng.random() < 0.1:
            out[pick("timestamp", "extra")] = 1
        return out

    if rng.random() < 0.5:
        body: dict[str, Any] = {"telemetry": values()}
        if rng.random() < 0.5:
            body["timestamp"] = when()
    else:
        body = {"points": pick([point() for _ in range(rng.randint(0, 4))], "p", [3])}
    if rng.random() < 0.2:
        body["device_id"] = pick(own, "nope", None)
    if rng.random() < 0.05:
        body["colour"] = "red"
    return body


@pytest.mark.parametrize("seed", range(4))
def test_parser_and_published_schema_agree_on_random_documents(app: FastAPI, seed: int) -> None:
    rng = random.Random(seed)
    own = uuid.uuid4()
    schema = validator(app)
    now = datetime.now(UTC)
    seen = {True: 0, False: 0}
    for _ in range(500):
        doc = _mutations(rng, str(own))
        parsed = parse_ingest(doc, now=now, oldest=now - timedelta(days=90), own_device=own)
        valid = schema.is_valid(doc)
        assert valid == (not parsed.errors), (doc, parsed.errors)
        seen[valid] += 1
    assert seen[True] > 20
    assert seen[False] > 20


def test_points_of_other_transports_are_validated_like_a_batch() -> None:
    device = uuid.uuid4()
    now = datetime.now(UTC)
    oldest = now - timedelta(days=90)
    good = [
        PointIn(ts=now - timedelta(seconds=i), values={"t": float(i), "on": True, "s": "x"})
        for i in range(3)
    ]
    direct = parse_points(device, good, now=now, oldest=oldest, own_device=device)
    as_batch = parse_ingest(
        {
            "device_id": str(device),
            "points": [{"ts": p.ts.isoformat(), "values": p.values} for p in good],
        },
        now=now,
        oldest=oldest,
        own_device=device,
    )
    assert direct.errors == as_batch.errors == []
    assert direct.rows == as_batch.rows
    assert len(direct.rows) == 9

    bad = [
        *good,
        PointIn(ts=now + timedelta(hours=1), values={"t": 1.0}),
        PointIn(ts=now, values={"ok": 1.0, "k" * 256: 1.0, "nan": float("nan")}),
        PointIn(ts=now, values={"nan": float("nan")}),
        PointIn(ts=now, values={"s": "x" * 256}),
    ]
    refused = parse_points(device, bad, now=now, oldest=oldest, own_device=device)
    assert len(refused.rows) == 0
    # Every invalid point, each with its first invalid key or value.
    assert sorted((e.index, e.field, e.reason) for e in refused.errors) == [
        (3, "ts", "timestamp is more than 10 minutes in the future"),
        (4, "values." + "k" * 40, "key must be 1-255 characters, no NUL"),
        (5, "values.nan", "NaN and Infinity are not allowed"),
        (6, "values.s", "strings: at most 255 characters, no NUL"),
    ]
    other = parse_points(uuid.uuid4(), good, now=now, oldest=oldest, own_device=device)
    assert [(e.index, e.field) for e in other.errors] == [(None, "device_id")]


def test_refusing_a_batch_of_invalid_points_costs_one_error_per_point() -> None:
    """Each point's first invalid value is its error, so a 10,000-point body of invalid
    values is refused with 10,000 errors (not 100,000), every point still listed."""
    own = uuid.uuid4()
    body = {"points": [{"values": {f"k{j}": [j] for j in range(10)}} for _ in range(10_000)]}
    parsed = parse_ingest(body, now=datetime.now(UTC), oldest=None, own_device=own)
    assert [e.index for e in parsed.errors] == list(range(10_000))
    assert {(e.field, e.reason) for e in parsed.errors} == {
        ("values.k0", "value must be a number, boolean or string")
    }


def _plain_mutation(rng: random.Random, now: datetime) -> dict[str, Any]:
    """A device's batch in the usual form (epoch milliseconds, numbers), often with one thing
    changed that the plain path must leave to the models or judge the same way."""
    start = int((now - timedelta(hours=1)).timestamp() * 1000)
    keys = [f"k{j}" for j in range(rng.randint(1, 4))]
    points: list[Any] = [
        {"ts": start + i * 10, "values": {k: rng.choice([0.5, -1e-3, 2e10, 21.37]) for k in keys}}
        for i in range(rng.randint(1, 6))
    ]
    body: dict[str, Any] = {"points": points}
    i = rng.randrange(len(points))
    point = points[i]
    change = rng.randint(0, 24)
    if change == 0:
        point["ts"] = float(point["ts"])
    elif change == 1:
        point["ts"] = -1
    elif change == 2:
        point["ts"] = 10**16  # beyond every accepted datetime
    elif change == 3:
        point["ts"] = int((now + timedelta(hours=1)).timestamp() * 1000)  # the future
    elif change == 4:
        point["ts"] = int((now - timedelta(days=200)).timestamp() * 1000)  # past retention
    elif change == 5:
        point["ts"] = True
    elif change == 6:
        point["values"][keys[0]] = 1  # an integer value
    elif change == 7:
        point["values"][keys[0]] = True
    elif change == 8:
        point["values"][keys[0]] = float(rng.choice(["nan", "inf", "-inf"]))
    elif change == 9:
        point["values"][rng.choice(["", "k" * 256, "a\x00b"])] = 1.0
    elif change == 10:
        point["values"] = {}
    elif change == 11:
        point["device_id"] = rng.choice([None, "nope"])
    elif change == 12:
        point["timestamp"] = point.pop("ts")
    elif change == 13:
        del point["ts"]
    elif change == 14:
        points[i] = rng.choice([[1], "p", None])
    elif change == 15:
        body["device_id"] = None
    elif change == 16:
        point["values"][keys[0]] = {"value": 1.5, "unit": "C"}
    elif change == 17:
        point["values"][keys[0]] = "text"
    elif change == 18:
        body["points"] = []
    elif change == 19:
        point["values"]["k" * 255] = 1.0  # the longest key
    elif change == 20:
        point["values"][keys[0]] = 1e308
        point["values"]["other"] = 1e308  # finite values whose sum is not
    return body


@pytest.mark.parametrize("seed", range(4))
def test_plain_batches_parse_as_the_models_parse_them(seed: int) -> None:
    """A device's usual batch is validated without the models: the same rows, the same
    errors, the same bounds, for the usual form and for each way of leaving it."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    oldest = now - timedelta(days=90)
    plain = 0
    for _ in range(400):
        body = _plain_mutation(rng, now)
        own = uuid.uuid4()
        fast = parse_ingest(body, now=now, oldest=oldest, own_device=own)
        models = parse_ingest_by_models(body, now=now, oldest=oldest, own_device=own)
        assert fast.rows == models.rows, body
        assert [e.as_dict() for e in fast.errors] == [e.as_dict() for e in models.errors], body
        assert (fast.point_count, fast.min_ts, fast.max_ts) == (
            models.point_count,
            models.min_ts,
            models.max_ts,
        )
        plain += _plain_batch(body["points"]) is not None if "points" in body else 0
    assert plain > 100  # the plain path was taken, and refused, often enough to mean something
    assert plain < 400
