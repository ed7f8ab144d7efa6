"""Rules CRUD: validation, roles, API-key scopes, audit, usage figures."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fixtures.factories import Factory, World
from tests.rules.helpers import make_device, make_rule

_VALID: dict[str, Any] = {
    "name": "Too hot",
    "rule_type": "threshold",
    "condition": {"key": "temperature", "operator": ">", "value": 80},
    "actions": [{"type": "alert"}],
}


def _with(**changes: Any) -> dict[str, Any]:
    return {**_VALID, **changes}


BAD_BODIES = {
    "unknown operator": _with(condition={"key": "t", "operator": "=>", "value": 1}),
    "unknown function": _with(
        rule_type="statistical",
        condition={
            "key": "t",
            "function": "median",
            "window_seconds": 60,
            "operator": ">",
            "value": 1,
        },
    ),
    "unknown rule type": _with(rule_type="magic"),
    "condition of another type": _with(condition={"key1": "a", "operator": ">", "key2": "b"}),
    "extra condition field": _with(
        condition={"key": "t", "operator": ">", "value": 1, "window_seconds": 5}
    ),
    "non-numeric threshold": _with(condition={"key": "t", "operator": ">", "value": "hot"}),
    "unknown offline check": _with(
        rule_type="time_based", condition={"check": "device_dead", "offline_after_seconds": 60}
    ),
    "no actions": _with(actions=[]),
    "unknown action": _with(actions=[{"type": "sms", "to": "+100"}]),
    "ftp webhook": _with(actions=[{"type": "webhook", "url": "ftp://example.com/x"}]),
    "javascript webhook": _with(actions=[{"type": "webhook", "url": "javascript:alert(1)"}]),
    "loopback webhook": _with(actions=[{"type": "webhook", "url": "http://127.0.0.1:8080/x"}]),
    "localhost webhook": _with(actions=[{"type": "webhook", "url": "http://localhost/x"}]),
    "private webhook": _with(actions=[{"type": "webhook", "url": "https://10.1.2.3/x"}]),
    "link-local webhook": _with(
        actions=[{"type": "webhook", "url": "http://169.254.169.254/latest/meta-data"}]
    ),
    "ipv6 loopback webhook": _with(actions=[{"type": "webhook", "url": "http://[::1]/x"}]),
    "oversized template": _with(actions=[{"type": "alert", "message": "x" * 501}]),
    "unknown placeholder": _with(actions=[{"type": "alert", "message": "{password}"}]),
    "attribute placeholder": _with(actions=[{"type": "alert", "message": "{rule_name.__class__}"}]),
    "bad email": _with(actions=[{"type": "email", "recipients": ["not-an-address"]}]),
    "bad severity": _with(severity="urgent"),
    "negative cooldown": _with(cooldown_seconds=-1),
    "two targets": _with(device_type="pump", device_id="00000000-0000-0000-0000-000000000001"),
    "unknown device": _with(device_id="00000000-0000-0000-0000-000000000001"),
    "extra field": _with(tenant_id="00000000-0000-0000-0000-000000000001"),
    "name too long": _with(name="n" * 201),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
async def test_bad_rules_are_refused_and_nothing_is_stored(
    case: str, world: World, owner_engine: AsyncEngine
) -> None:
    r = await world.a["developer"].client.post("/api/v1/rules", json=BAD_BODIES[case])
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("select count(*) from rules")) == 0


async def test_a_device_of_another_tenant_is_refused(
    world: World, owner_engine: AsyncEngine
) -> None:
    theirs = await make_device(world.b_admin, name="Beta pump")
    r = await world.a["developer"].client.post("/api/v1/rules", json=_with(device_id=theirs["id"]))
    assert r.status_code == 422
    assert "Beta pump" not in r.text
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("select count(*) from rules")) == 0


async def test_crud_round_trip_and_audit(world: World, owner_engine: AsyncEngine) -> None:
    dev = await make_device(world.a["developer"])
    created = await make_rule(world.a["developer"], device_id=dev["id"], priority=5)
    assert created["device_id"] == dev["id"]
    assert created["webhook_secret"] is None
    rid = created["id"]

    got = (await world.a["viewer"].client.get(f"/api/v1/rules/{rid}")).json()
    assert got["condition"] == {"key": "temperature", "operator": ">", "value": 80.0}
    listed = (await world.a["viewer"].client.get("/api/v1/rules")).json()
    assert listed["total"] == 1

    body = _with(name="Hotter", condition={"key": "temperature", "operator": ">", "value": 90})
    r = await world.a["developer"].client.put(f"/api/v1/rules/{rid}", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Hotter"
    assert r.json()["device_id"] is None

    assert (await world.a["developer"].client.delete(f"/api/v1/rules/{rid}")).status_code == 204
    assert (await world.a["viewer"].client.get(f"/api/v1/rules/{rid}")).status_code == 404
    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "select action, after from audit_events where target_id = :id "
                    "order by created_at"
                ),
                {"id": rid},
            )
        ).all()
    assert [r[0] for r in rows] == ["rule.created", "rule.updated", "rule.deleted"]
    assert rows[1][1]["name"] == "Hotter"


async def test_webhook_secret_is_shown_once(world: World) -> None:
    body = _with(actions=[{"type": "webhook", "url": "https://93.184.215.14/hook"}])
    created = await make_rule(world.a["developer"], **{k: body[k] for k in ("actions",)})
    secret = created["webhook_secret"]
    assert secret.startswith("whsec_")
    assert len(secret) > 40
    got = await world.a["developer"].client.get(f"/api/v1/rules/{created['id']}")
    assert secret not in got.text
    r = await world.a["developer"].client.put(f"/api/v1/rules/{created['id']}", json=body)
    assert r.json()["webhook_secret"] is None  # unchanged, not shown again


async def test_roles(world: World) -> None:
    for role in ("viewer", "operator"):
        r = await world.a[role].client.post("/api/v1/rules", json=_VALID)
        assert r.status_code == 403, role
    rule = await make_rule(world.a["admin"])
    assert (await world.a["viewer"].client.get("/api/v1/rules")).status_code == 200
    r = await world.a["operator"].client.delete(f"/api/v1/rules/{rule['id']}")
    assert r.status_code == 403
    assert (await world.anonymous.get("/api/v1/rules")).status_code == 401


async def _key(world: World, *scopes: str) -> str:
    r = await world.a["admin"].client.post(
        "/api/v1/api-keys", json={"name": "ci", "scopes": list(scopes)}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


async def test_api_key_scopes(world: World, factory: Factory) -> None:
    dev = await make_device(world.a["developer"])
    read = factory.client({"X-API-Key": await _key(world, "read")})
    assert (await read.get("/api/v1/rules")).status_code == 200
    r = await read.post("/api/v1/rules", json=_VALID)
    assert r.status_code == 403
    assert "manage" in r.json()["detail"]
    r = await read.post("/api/v1/telemetry", json={"device_id": dev["id"], "telemetry": {"t": 1}})
    assert r.status_code == 403

    manage = factory.client({"Authorization": f"Bearer {await _key(world, 'manage')}"})
    assert (await manage.post("/api/v1/rules", json=_VALID)).status_code == 201
    assert (await manage.get("/api/v1/rules")).status_code == 200  # manage implies read

    writer = factory.client({"X-API-Key": await _key(world, "telemetry:write")})
    r = await writer.post("/api/v1/telemetry", json={"device_id": dev["id"], "telemetry": {"t": 1}})
    assert r.status_code == 201, r.text
    assert (await writer.get("/api/v1/rules")).status_code == 403


async def test_revoked_key_is_refused_at_once(world: World, factory: Factory) -> None:
    key = await _key(world, "read")
    client = factory.client({"X-API-Key": key})
    assert (await client.get("/api/v1/rules")).status_code == 200
    [listed] = (await world.a["admin"].client.get("/api/v1/api-keys")).json()["api_keys"]
    assert listed["last_used_at"] is not None
    r = await world.a["admin"].client.delete(f"/api/v1/api-keys/{listed['id']}")
    assert r.status_code == 204
    r = await client.get("/api/v1/rules")
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized"
    assert (
        await factory.client({"X-API-Key": "ik_forged"}).get("/api/v1/rules")
    ).status_code == 401


async def test_last_used_is_written_at_most_once_a_minute(
    world: World, factory: Factory, owner_engine: AsyncEngine
) -> None:
    client = factory.client({"X-API-Key": await _key(world, "read")})
    await client.get("/api/v1/rules")
    async with owner_engine.connect() as conn:
        first = await conn.scalar(text("select last_used_at from api_keys"))
    await client.get("/api/v1/rules")
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("select last_used_at from api_keys")) == first


async def test_a_key_cannot_reach_user_only_routes(world: World, factory: Factory) -> None:
    client = factory.client({"Authorization": f"Bearer {await _key(world, 'manage')}"})
    assert (await client.get("/api/v1/auth/me")).status_code == 401
    r = await client.get(f"/api/v1/tenants/{world.tenant_a.id}")
    assert r.status_code == 401


async def test_usage_figures_are_real(world: World) -> None:
    await make_rule(world.a["developer"])
    await make_rule(world.a["developer"], name="Second")
    r = await world.a["viewer"].client.get(f"/api/v1/tenants/{world.tenant_a.id}/stats")
    assert r.status_code == 200, r.text
    assert r.json()["rule_count"] == 2
    assert r.json()["active_alerts"] == 0
