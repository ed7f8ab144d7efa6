"""Isolation providers for API keys, rules and alerts: tenant B's objects."""

from __future__ import annotations

from typing import Any

from iiot.apikeys import service as apikey_service
from iiot.apikeys.schemas import ApiKeyCreate
from iiot.rules.engine import engine
from iiot.tenancy.context import system_context
from tests.fixtures.factories import Factory, World
from tests.isolation.registry import provider, request_body

_RULE = {
    "name": "beta-overheat-rule",
    "description": "beta-secret-description",
    "rule_type": "threshold",
    "condition": {"key": "beta_temp", "operator": ">", "value": 50},
    "severity": "critical",
    "actions": [{"type": "alert", "message": "beta-alert-message {value}"}],
}


@provider("/api/v1/api-keys/{id}")
async def other_api_key(factory: Factory, world: World) -> dict[str, str]:
    ctx = system_context(world.tenant_b.id)
    async with factory.rt.db.tenant(ctx) as session:
        created = await apikey_service.create_key(
            session, ctx, ApiKeyCreate(name="beta-integration-key", scopes=["read"])
        )
    world.b_markers += ["beta-integration-key", created.prefix]
    return {"id": str(created.id)}


_made: dict[int, tuple[World, dict[str, str]]] = {}


async def _beta_rule_and_alert(factory: Factory, world: World) -> dict[str, str]:
    """One rule with one alert in tenant B per world, shared by the rule and alert routes."""
    known = _made.get(id(world))
    if known is not None and known[0] is world:
        return known[1]
    client = world.b_admin.client
    r = await client.post("/api/v1/devices", json={"name": "beta-furnace-3", "type": "furnace"})
    assert r.status_code == 201, r.text
    device = r.json()
    r = await client.post("/api/v1/rules", json={**_RULE, "device_id": device["id"]})
    assert r.status_code == 201, r.text
    rule = r.json()
    sent = await factory.client({"X-API-Key": device["token"]}).post(
        "/api/v1/telemetry", json={"telemetry": {"beta_temp": 99.5}}
    )
    assert sent.status_code == 201, sent.text
    await engine(factory.rt).drain()
    r = await client.get("/api/v1/alerts")
    [alert] = r.json()["alerts"]
    world.b_markers += [
        rule["id"],
        alert["id"],
        device["id"],
        "beta-overheat-rule",
        "beta-secret-description",
        "beta-alert-message",
        "beta-furnace-3",
    ]
    made = {"rule_id": rule["id"], "alert_id": alert["id"]}
    _made[id(world)] = (world, made)
    return made


@provider("/api/v1/rules/{id}", "/api/v1/rules/{id}/test")
async def other_rule(factory: Factory, world: World) -> dict[str, str]:
    made = await _beta_rule_and_alert(factory, world)
    return {"id": made["rule_id"]}


@provider(
    "/api/v1/alerts/{id}",
    "/api/v1/alerts/{id}/acknowledge",
    "/api/v1/alerts/{id}/investigate",
    "/api/v1/alerts/{id}/resolve",
)
async def other_alert(factory: Factory, world: World) -> dict[str, str]:
    made = await _beta_rule_and_alert(factory, world)
    return {"id": made["alert_id"]}


@request_body("PUT", "/api/v1/rules/{id}")
async def rule_body(factory: Factory, world: World, params: dict[str, str]) -> dict[str, Any]:
    return {**_RULE, "name": "renamed"}
