"""On-call schedules: a weekly rotation in the schedule's time zone, overrides on top."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fixtures.factories import World

PEOPLE = [
    {"email": "ana@example.com", "name": "Ana"},
    {"email": "ben@example.com", "name": "Ben"},
    {"email": "cem@example.com", "name": "Cem"},
]


async def _schedule(world: World) -> dict[str, Any]:
    # Hand-over Mondays 09:00 Berlin time; Berlin moves to summer time on 2026-03-29.
    r = await world.a["developer"].client.post(
        "/api/v1/oncall-schedules",
        json={
            "name": "Berlin plant",
            "time_zone": "Europe/Berlin",
            "rotation_start": "2026-03-02T09:00:00",
            "participants": PEOPLE,
        },
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def _who(world: World, schedule: dict[str, Any], at: str) -> dict[str, Any]:
    r = await world.a["viewer"].client.get(
        f"/api/v1/oncall-schedules/{schedule['id']}/on-call", params={"at": at}
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_weekly_rotation_in_the_schedules_time_zone(world: World) -> None:
    s = await _schedule(world)
    # 09:00 in Berlin in winter is 08:00 UTC.
    assert (await _who(world, s, "2026-03-02T07:59:59Z"))["email"] == "cem@example.com"
    first = await _who(world, s, "2026-03-02T08:00:00Z")
    assert first["email"] == "ana@example.com"
    assert first["source"] == "rotation"
    assert first["since"] == "2026-03-02T08:00:00Z"
    assert first["until"] == "2026-03-09T08:00:00Z"
    assert (await _who(world, s, "2026-03-09T08:00:00Z"))["email"] == "ben@example.com"
    assert (await _who(world, s, "2026-03-16T08:00:00Z"))["email"] == "cem@example.com"
    # The shift across the change to summer time ends at 09:00 local = 07:00 UTC.
    across = await _who(world, s, "2026-03-29T12:00:00Z")
    assert across["email"] == "ana@example.com"
    assert across["until"] == "2026-03-30T07:00:00Z"
    assert (await _who(world, s, "2026-03-30T06:59:59Z"))["email"] == "ana@example.com"
    assert (await _who(world, s, "2026-03-30T07:00:00Z"))["email"] == "ben@example.com"
    # Any offset may be asked for; it is the same instant.
    assert (await _who(world, s, "2026-03-30T09:00:00+02:00"))["email"] == "ben@example.com"


async def test_overrides_win_and_the_newest_overlapping_one_counts(world: World) -> None:
    s = await _schedule(world)
    client = world.a["developer"].client
    url = f"/api/v1/oncall-schedules/{s['id']}/overrides"
    r = await client.post(
        url,
        json={
            "starts_at": "2026-03-03T00:00:00Z",
            "ends_at": "2026-03-05T00:00:00Z",
            "email": "sub@example.com",
        },
    )
    assert r.status_code == 201, r.text
    first = r.json()
    r = await client.post(
        url,
        json={
            "starts_at": "2026-03-04T00:00:00Z",
            "ends_at": "2026-03-04T12:00:00Z",
            "email": "late@example.com",
            "name": "Late",
        },
    )
    assert r.status_code == 201, r.text
    second = r.json()
    assert (await _who(world, s, "2026-03-02T23:59:59Z"))["email"] == "ana@example.com"
    sub = await _who(world, s, "2026-03-03T10:00:00Z")
    assert (sub["email"], sub["source"], sub["override_id"]) == (
        "sub@example.com",
        "override",
        first["id"],
    )
    assert (await _who(world, s, "2026-03-04T06:00:00Z"))["email"] == "late@example.com"
    assert (await _who(world, s, "2026-03-04T12:00:00Z"))["email"] == "sub@example.com"
    assert (await _who(world, s, "2026-03-05T00:00:00Z"))["email"] == "ana@example.com"
    r = await client.delete(f"{url}/{second['id']}")
    assert r.status_code == 204
    assert (await _who(world, s, "2026-03-04T06:00:00Z"))["email"] == "sub@example.com"
    assert (await client.delete(f"{url}/{second['id']}")).status_code == 404


async def test_schedule_input_is_checked(world: World) -> None:
    client = world.a["developer"].client
    base = {
        "name": "x",
        "time_zone": "UTC",
        "rotation_start": "2026-03-02T09:00:00",
        "participants": PEOPLE,
    }
    for bad in (
        {"time_zone": "Mars/Olympus"},
        {"rotation_start": "2026-03-02T09:00:00Z"},  # wall-clock time, no offset
        {"participants": []},
        {"participants": [{"email": "nobody"}]},
    ):
        r = await client.post("/api/v1/oncall-schedules", json={**base, **bad})
        assert r.status_code == 422, (bad, r.text)
    s = await _schedule(world)
    now = datetime.now(UTC)
    for bad_override in (
        {"starts_at": "2026-03-03T00:00:00", "ends_at": "2026-03-04T00:00:00Z"},
        {"starts_at": "2026-03-04T00:00:00Z", "ends_at": "2026-03-03T00:00:00Z"},
        {
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(days=120)).isoformat(),
        },
    ):
        r = await client.post(
            f"/api/v1/oncall-schedules/{s['id']}/overrides",
            json={**bad_override, "email": "a@example.com"},
        )
        assert r.status_code == 422, (bad_override, r.text)
    r = await client.put(f"/api/v1/oncall-schedules/{s['id']}", json={**base, "name": s["name"]})
    assert r.status_code == 200, r.text
    assert r.json()["time_zone"] == "UTC"
    r = await world.a["viewer"].client.post("/api/v1/oncall-schedules", json=base)
    assert r.status_code == 403
