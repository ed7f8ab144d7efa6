"""The original platform's rule format is accepted as input and stored in ours; a webhook
action may carry its own signing secret, which is never shown back."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.runtime import Runtime
from tests.fixtures.factories import World
from tests.rules.helpers import alerts, make_device, send, webhook_server

OWN_SECRET = "receiver-chosen-secret-0123456789"

ALIASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # name: (original input, what our format stores and shows)
    "conditions": (
        {
            "rule_type": "threshold",
            "conditions": {"key": "t", "operator": ">", "value": 5},
            "actions": [{"type": "alert"}],
        },
        {"condition": {"key": "t", "operator": ">", "value": 5.0}},
    ),
    "threshold duration": (
        {
            "rule_type": "threshold",
            "condition": {"key": "t", "operator": ">", "value": 5, "duration": 120},
            "actions": [{"type": "alert"}],
        },
        {"condition": {"key": "t", "operator": ">", "value": 5.0, "duration_seconds": 120}},
    ),
    "statistical window": (
        {
            "rule_type": "statistical",
            "condition": {
                "key": "t",
                "function": "avg",
                "window": 600,
                "operator": ">",
                "value": 1,
            },
            "actions": [{"type": "alert"}],
        },
        {
            "condition": {
                "key": "t",
                "function": "avg",
                "window_seconds": 600,
                "operator": ">",
                "value": 1.0,
            }
        },
    ),
    "statistical window default": (
        {
            "rule_type": "statistical",
            "condition": {"key": "t", "function": "max", "operator": ">", "value": 1},
            "actions": [{"type": "alert"}],
        },
        {
            "condition": {
                "key": "t",
                "function": "max",
                "window_seconds": 3600,
                "operator": ">",
                "value": 1.0,
            }
        },
    ),
    "email to_emails": (
        {
            "rule_type": "threshold",
            "condition": {"key": "t", "operator": ">", "value": 5},
            "actions": [{"type": "email", "to_emails": ["ops@example.com"]}],
        },
        {"actions": [{"type": "email", "recipients": ["ops@example.com"]}]},
    ),
    "severity warning": (
        {
            "rule_type": "threshold",
            "condition": {"key": "t", "operator": ">", "value": 5},
            "severity": "warning",
            "actions": [{"type": "alert", "severity": "warning", "message": "{value}"}],
        },
        {
            "severity": "medium",
            "actions": [{"type": "alert", "severity": "medium", "message": "{value}"}],
            "priority": 0,
        },
    ),
}


@pytest.mark.parametrize("alias", list(ALIASES))
async def test_original_spelling_is_stored_canonically(
    world: World, owner_engine: AsyncEngine, alias: str
) -> None:
    body, canonical = ALIASES[alias]
    client = world.a["developer"].client
    r = await client.post("/api/v1/rules", json={"name": f"original {alias}", **body})
    assert r.status_code == 201, r.text
    created = r.json()
    for field, value in canonical.items():
        assert created[field] == value, field
    fetched = (await client.get(f"/api/v1/rules/{created['id']}")).json()
    async with owner_engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    text("select condition, actions, severity from rules where id = :id"),
                    {"id": created["id"]},
                )
            )
            .mappings()
            .one()
        )
    for field, value in canonical.items():
        assert fetched[field] == value, field
        if field in row:
            assert row[field] == value, field


async def test_both_spellings_at_once_and_bad_values_are_refused(world: World) -> None:
    client = world.a["developer"].client
    cond = {"key": "t", "operator": ">", "value": 5}
    bad = [
        {"rule_type": "threshold", "condition": cond, "conditions": cond},
        {"rule_type": "threshold", "conditions": {**cond, "duration": 0}},
        {"rule_type": "threshold", "condition": cond, "severity": "catastrophic"},
        {
            "rule_type": "threshold",
            "condition": cond,
            "actions": [{"type": "webhook", "url": "https://example.com/h", "secret": "short"}],
        },
        {
            "rule_type": "threshold",
            "condition": cond,
            "actions": [
                {"type": "webhook", "url": "https://example.com/h", "secret": "a" * 16},
                {"type": "webhook", "url": "https://example.com/h", "secret": "b" * 16},
            ],
        },
    ]
    for body in bad:
        r = await client.post(
            "/api/v1/rules", json={"name": "x", "actions": [{"type": "alert"}], **body}
        )
        assert r.status_code == 422, (body, r.text)
    assert (await client.get("/api/v1/rules")).json()["total"] == 0


async def test_own_webhook_secret_signs_and_is_never_returned(
    world: World, runtime: Runtime, owner_engine: AsyncEngine, allow_local_webhooks: None
) -> None:
    dev = await make_device(world.a["developer"])
    client = world.a["developer"].client
    async with webhook_server() as hook:
        body = {
            "name": "own secret",
            "rule_type": "threshold",
            "conditions": {"key": "temperature", "operator": ">", "value": 50},
            "actions": [{"type": "webhook", "url": hook.url, "secret": OWN_SECRET}],
        }
        r = await client.post("/api/v1/rules", json=body)
        assert r.status_code == 201, r.text
        created = r.json()
        assert OWN_SECRET not in r.text
        assert created["webhook_secret"] is None  # nothing generated: every URL has its own
        assert created["actions"][0]["secret_hint"] == "…" + OWN_SECRET[-4:]
        listed = await client.get("/api/v1/rules")
        assert OWN_SECRET not in listed.text
        audit = await world.a["admin"].client.get(f"/api/v1/tenants/{world.tenant_a.id}/audit")
        assert audit.status_code == 200, audit.text
        assert OWN_SECRET not in audit.text

        await send(runtime, world.a["operator"].client, dev["id"], {"temperature": 90})
        [call] = hook.received
        ts = call.headers["x-iiot-timestamp"]
        expected = hmac.new(
            OWN_SECRET.encode(), f"{ts}.{call.body.decode()}".encode(), hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(call.headers["x-iiot-signature"], expected)

        # Saved again without the secret, the URL keeps its key; a new URL gets a generated one.
        body["actions"] = [
            {"type": "webhook", "url": hook.url},
            {"type": "webhook", "url": "https://example.com/other"},
        ]
        r = await client.put(f"/api/v1/rules/{created['id']}", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["webhook_secret"].startswith("whsec_")
        assert r.json()["actions"][0]["secret_hint"] == "…" + OWN_SECRET[-4:]
        assert "secret_hint" not in r.json()["actions"][1]
    assert await alerts(world.a["viewer"]) == []
