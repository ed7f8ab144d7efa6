"""Odd input that must be refused cleanly (no 500): NUL bytes, huge numbers, wrong types."""

from __future__ import annotations

from typing import Any

from tests.fixtures.factories import World


async def test_odd_input_is_a_clean_4xx(world: World) -> None:
    admin = world.system_admin.client
    tenant = f"/api/v1/tenants/{world.tenant_a.id}"
    calls: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]] = [
        ("GET", "/api/v1/tenants", {"search": "a\x00b"}, None),
        ("GET", "/api/v1/tenants", {"tier": "\x00"}, None),
        (
            "POST",
            "/api/v1/tenants",
            None,
            {"name": "a\x00b", "slug": "nul-name", "tier": "starter"},
        ),
        ("POST", "/api/v1/tenants", None, {"name": "ok", "slug": "nul-tier", "tier": "st\x00"}),
        ("PATCH", tenant, None, {"settings": {"k\x00": "v"}}),
        ("PATCH", tenant, None, {"settings": {"k": "v\x00"}}),
        ("PATCH", tenant, None, {"max_users": 1.5}),
        ("PATCH", tenant, None, {"max_users": True}),
        ("PATCH", tenant, None, {"max_users": "10"}),
        ("PATCH", tenant, None, {"max_users": 10**30}),
        ("PATCH", tenant, None, {"branding": None}),
        ("PATCH", tenant, None, {"enabled_features": None}),
        ("PATCH", tenant, None, {"status": None}),
        ("PATCH", "/api/v1/tiers/starter", None, {"features": None}),
        ("PATCH", "/api/v1/tiers/st%00", None, {"max_users": 1}),
        ("POST", f"{tenant}/users/invite", None, {"email": "a\x00b@example.com"}),
        ("GET", f"{tenant}/audit", {"action": "a\x00"}, None),
        ("GET", f"{tenant}/audit", {"target_id": "\x00"}, None),
        ("POST", "/api/v1/invitations/accept", None, {"token": "inv_\x00"}),
    ]
    for method, url, params, body in calls:
        r = await admin.request(method, url, params=params, json=body)
        assert 400 <= r.status_code < 500, (method, url, params, body, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
