"""Alert grouping: repeated alerts of one rule, device and severity within the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from iiot.runtime import Runtime
from tests.escalation.helpers import alert_detail, raise_at, rule_and_device
from tests.fixtures.factories import World

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
WINDOW = timedelta(minutes=30)


async def _resolve(world: World, alert_id: object) -> None:
    r = await world.a["operator"].client.post(f"/api/v1/alerts/{alert_id}/resolve", json={})
    assert r.status_code == 200, r.text


async def test_repeats_within_the_window_share_a_group(runtime: Runtime, world: World) -> None:
    rule, dev = await rule_and_device(world)
    first = await raise_at(runtime, world, rule, dev, T0, window=WINDOW)
    # While open, a repeat is one more occurrence of the same alert.
    assert (
        await raise_at(runtime, world, rule, dev, T0 + timedelta(minutes=5), window=WINDOW) == first
    )
    await _resolve(world, first)
    # Resolved, then raised again 29 minutes after its last occurrence: a new alert, same group.
    second = await raise_at(runtime, world, rule, dev, T0 + timedelta(minutes=34), window=WINDOW)
    assert second != first
    detail = await alert_detail(world.a["viewer"], second)
    assert detail["group_id"] == str(first)
    assert detail["occurrence_count"] == 1
    group = detail["group"]
    assert group["id"] == str(first)
    assert group["alert_count"] == 2
    assert group["occurrence_count"] == 3
    assert group["first_occurred_at"].startswith(T0.strftime("%Y-%m-%dT%H:%M"))
    first_detail = await alert_detail(world.a["viewer"], first)
    assert first_detail["group"] == group
    listed = await world.a["viewer"].client.get("/api/v1/alerts")
    assert {a["group_id"] for a in listed.json()["alerts"]} == {str(first)}

    await _resolve(world, second)
    # 31 minutes after the last occurrence: outside the window, a group of its own.
    third = await raise_at(runtime, world, rule, dev, T0 + timedelta(minutes=65), window=WINDOW)
    detail = await alert_detail(world.a["viewer"], third)
    assert detail["group_id"] == str(third)
    assert detail["group"]["alert_count"] == 1


async def test_other_severity_rule_or_device_starts_its_own_group(
    runtime: Runtime, world: World
) -> None:
    rule, dev = await rule_and_device(world)
    first = await raise_at(runtime, world, rule, dev, T0, window=WINDOW)
    await _resolve(world, first)
    other_severity = await raise_at(
        runtime, world, rule, dev, T0 + timedelta(minutes=1), severity="low", window=WINDOW
    )
    other_rule, other_dev = await rule_and_device(world, "Chiller")
    elsewhere = await raise_at(runtime, world, other_rule, other_dev, T0, window=WINDOW)
    for alert_id in (other_severity, elsewhere):
        detail = await alert_detail(world.a["viewer"], alert_id)
        assert detail["group_id"] == str(alert_id)
