"""Isolation providers for escalation policies and on-call schedules: tenant B's objects."""

from __future__ import annotations

from typing import Any

from tests.fixtures.factories import Factory, World
from tests.isolation.registry import provider, request_body

_made: dict[int, tuple[World, dict[str, str]]] = {}

_SCHEDULE = {
    "name": "beta-night-rota",
    "time_zone": "Asia/Tokyo",
    "rotation_start": "2026-01-05T09:00:00",
    "participants": [{"email": "beta-oncall@beta.example", "name": "beta-oncall-person"}],
}
_TIER = {"delay_minutes": 5, "channels": ["email"], "recipients": ["beta-escalate@beta.example"]}
_POLICY = {"name": "beta-escalation-policy", "severities": ["critical"], "tiers": [_TIER]}
_OVERRIDE = {
    "starts_at": "2026-01-06T00:00:00Z",
    "ends_at": "2026-01-07T00:00:00Z",
    "email": "beta-override@beta.example",
}


async def _beta_objects(factory: Factory, world: World) -> dict[str, str]:
    known = _made.get(id(world))
    if known is not None and known[0] is world:
        return known[1]
    client = world.b_admin.client
    r = await client.post("/api/v1/oncall-schedules", json=_SCHEDULE)
    assert r.status_code == 201, r.text
    schedule = r.json()
    r = await client.post(f"/api/v1/oncall-schedules/{schedule['id']}/overrides", json=_OVERRIDE)
    assert r.status_code == 201, r.text
    override = r.json()
    r = await client.post("/api/v1/escalation-policies", json=_POLICY)
    assert r.status_code == 201, r.text
    policy = r.json()
    world.b_markers += [
        schedule["id"],
        override["id"],
        policy["id"],
        "beta-night-rota",
        "beta-oncall",
        "beta-escalat",
        "beta-override",
        "Asia/Tokyo",
    ]
    made = {"schedule": schedule["id"], "override": override["id"], "policy": policy["id"]}
    _made[id(world)] = (world, made)
    return made


@provider("/api/v1/escalation-policies/{id}")
async def other_policy(factory: Factory, world: World) -> dict[str, str]:
    return {"id": (await _beta_objects(factory, world))["policy"]}


@provider(
    "/api/v1/oncall-schedules/{id}",
    "/api/v1/oncall-schedules/{id}/on-call",
    "/api/v1/oncall-schedules/{id}/overrides",
)
async def other_schedule(factory: Factory, world: World) -> dict[str, str]:
    return {"id": (await _beta_objects(factory, world))["schedule"]}


@provider("/api/v1/oncall-schedules/{id}/overrides/{override_id}")
async def other_override(factory: Factory, world: World) -> dict[str, str]:
    made = await _beta_objects(factory, world)
    return {"id": made["schedule"], "override_id": made["override"]}


@request_body("PUT", "/api/v1/escalation-policies/{id}")
async def policy_body(factory: Factory, world: World, params: dict[str, str]) -> dict[str, Any]:
    return {**_POLICY, "name": "renamed"}


@request_body("PUT", "/api/v1/oncall-schedules/{id}")
async def schedule_body(factory: Factory, world: World, params: dict[str, str]) -> dict[str, Any]:
    return {**_SCHEDULE, "name": "renamed", "participants": [{"email": "a@alpha.example"}]}


@request_body("POST", "/api/v1/oncall-schedules/{id}/overrides")
async def override_body(factory: Factory, world: World, params: dict[str, str]) -> dict[str, Any]:
    return {**_OVERRIDE, "email": "a@alpha.example"}
