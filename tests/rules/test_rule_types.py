"""Each rule type triggers and clears; edge triggering; cooldown; auto-resolve; dry run."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.rules.engine import engine
from iiot.rules.offline import evaluate_offline_rules
from iiot.runtime import Runtime
from tests.fixtures.factories import World
from tests.rules.helpers import alerts, make_device, make_rule, next_ts, send, settle


async def _state(owner_engine: AsyncEngine, rule_id: str) -> dict[str, object]:
    async with owner_engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    text("select * from rule_states where rule_id = :r"), {"r": rule_id}
                )
            )
            .mappings()
            .one()
        )
    return dict(row)


async def test_threshold_fires_on_the_edge_only(
    world: World, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    dev = await make_device(world.a["developer"])
    rule = await make_rule(world.a["developer"])
    op = world.a["operator"].client

    await send(runtime, op, dev["id"], {"temperature": 20})
    assert await alerts(world.a["viewer"]) == []

    await send(runtime, op, dev["id"], {"temperature": 90})
    [alert] = await alerts(world.a["viewer"])
    assert alert["rule_id"] == rule["id"]
    assert alert["device_id"] == dev["id"]
    assert alert["severity"] == "high"
    assert alert["state"] == "new"
    assert alert["message"] == "Pump 1: temperature=90 > 80"
    assert alert["occurrence_count"] == 1

    # Still true: nothing repeats.
    await send(runtime, op, dev["id"], {"temperature": 95})
    [alert] = await alerts(world.a["viewer"])
    assert alert["occurrence_count"] == 1
    state = await _state(owner_engine, rule["id"])
    assert state["active"] is True
    assert state["trigger_count"] == 1

    # Clears, then fires again: the open alert counts a second occurrence.
    await send(runtime, op, dev["id"], {"temperature": 70})
    assert (await _state(owner_engine, rule["id"]))["active"] is False
    await send(runtime, op, dev["id"], {"temperature": 85})
    [alert] = await alerts(world.a["viewer"])
    assert alert["occurrence_count"] == 2
    assert (await _state(owner_engine, rule["id"]))["trigger_count"] == 2


async def test_spike_inside_one_batch_is_not_missed(world: World, runtime: Runtime) -> None:
    dev = await make_device(world.a["developer"])
    await make_rule(world.a["developer"])
    t0 = next_ts()
    r = await world.a["operator"].client.post(
        "/api/v1/telemetry",
        json={
            "points": [
                {
                    "device_id": dev["id"],
                    "ts": (t0 + timedelta(milliseconds=i)).isoformat(),
                    "values": {"temperature": v},
                }
                for i, v in enumerate([20, 99, 20])
            ]
        },
    )
    assert r.status_code == 201, r.text
    await settle(runtime)
    [alert] = await alerts(world.a["viewer"])
    assert alert["value"] == 99


async def test_cooldown_suppresses_a_quick_retrigger(world: World, runtime: Runtime) -> None:
    dev = await make_device(world.a["developer"])
    await make_rule(world.a["developer"], cooldown_seconds=3600)
    op = world.a["operator"].client
    for value in (90, 10, 90, 10, 90):
        await send(runtime, op, dev["id"], {"temperature": value})
    [alert] = await alerts(world.a["viewer"])
    assert alert["occurrence_count"] == 1


async def test_auto_resolve_closes_the_alert_when_the_condition_clears(
    world: World, runtime: Runtime
) -> None:
    dev = await make_device(world.a["developer"])
    await make_rule(world.a["developer"], auto_resolve=True)
    op = world.a["operator"].client
    await send(runtime, op, dev["id"], {"temperature": 90})
    await send(runtime, op, dev["id"], {"temperature": 10})
    [alert] = await alerts(world.a["viewer"])
    assert alert["state"] == "resolved"
    detail = (await world.a["viewer"].client.get(f"/api/v1/alerts/{alert['id']}")).json()
    assert [h["to_state"] for h in detail["history"]] == ["new", "resolved"]
    assert detail["history"][1]["actor_type"] == "system"
    # A new trigger opens a new alert.
    await send(runtime, op, dev["id"], {"temperature": 90})
    assert [a["state"] for a in await alerts(world.a["viewer"])] == ["new", "resolved"]


async def test_threshold_with_duration_needs_every_reading_over_the_span(
    world: World, runtime: Runtime
) -> None:
    dev = await make_device(world.a["developer"])
    await make_rule(
        world.a["developer"],
        condition={"key": "pressure", "operator": ">=", "value": 5, "duration_seconds": 60},
    )
    op = world.a["operator"].client
    t0 = next_ts()
    await send(runtime, op, dev["id"], {"pressure": 6}, t0)
    await send(runtime, op, dev["id"], {"pressure": 7}, t0 + timedelta(seconds=30))
    assert await alerts(world.a["viewer"]) == []  # held for 30 s only
    await send(runtime, op, dev["id"], {"pressure": 4}, t0 + timedelta(seconds=45))
    await send(runtime, op, dev["id"], {"pressure": 6}, t0 + timedelta(seconds=70))
    assert await alerts(world.a["viewer"]) == []  # a dip inside the span
    await send(runtime, op, dev["id"], {"pressure": 8}, t0 + timedelta(seconds=110))
    assert await alerts(world.a["viewer"]) == []  # 4 at t+45 is still the reading at span start
    await send(runtime, op, dev["id"], {"pressure": 9}, t0 + timedelta(seconds=131))
    [alert] = await alerts(world.a["viewer"])
    assert alert["value"] == 9


async def test_comparison_on_latest_values(world: World, runtime: Runtime) -> None:
    dev = await make_device(world.a["developer"])
    await make_rule(
        world.a["developer"],
        rule_type="comparison",
        condition={"key1": "outlet", "operator": ">", "key2": "inlet"},
    )
    op = world.a["operator"].client
    await send(runtime, op, dev["id"], {"outlet": 10, "inlet": 20})
    assert await alerts(world.a["viewer"]) == []
    await send(runtime, op, dev["id"], {"outlet": 25})  # compared with the stored inlet (20)
    [alert] = await alerts(world.a["viewer"])
    assert alert["value"] == 25
    assert alert["threshold"] == 20
    await send(runtime, op, dev["id"], {"inlet": 30})  # clears
    await send(runtime, op, dev["id"], {"outlet": 31})
    [alert] = await alerts(world.a["viewer"])
    assert alert["occurrence_count"] == 2


async def test_statistical_average_over_a_window(world: World, runtime: Runtime) -> None:
    dev = await make_device(world.a["developer"])
    await make_rule(
        world.a["developer"],
        rule_type="statistical",
        condition={
            "key": "vibration",
            "function": "avg",
            "window_seconds": 60,
            "operator": ">",
            "value": 5,
        },
    )
    op = world.a["operator"].client
    t0 = next_ts()
    await send(runtime, op, dev["id"], {"vibration": 2}, t0)
    await send(runtime, op, dev["id"], {"vibration": 7}, t0 + timedelta(seconds=10))
    assert await alerts(world.a["viewer"]) == []  # avg 4.5
    await send(runtime, op, dev["id"], {"vibration": 9}, t0 + timedelta(seconds=20))
    [alert] = await alerts(world.a["viewer"])  # avg 6
    assert alert["value"] == 6
    # Old readings leave the window: avg of the last minute only.
    await send(runtime, op, dev["id"], {"vibration": 1}, t0 + timedelta(seconds=75))
    await send(runtime, op, dev["id"], {"vibration": 1}, t0 + timedelta(seconds=90))
    assert (await alerts(world.a["viewer"]))[0]["occurrence_count"] == 1


async def test_statistical_count_and_stddev(world: World, runtime: Runtime) -> None:
    dev = await make_device(world.a["developer"])
    await make_rule(
        world.a["developer"],
        name="Chatty",
        rule_type="statistical",
        condition={
            "key": "door",
            "function": "count",
            "window_seconds": 300,
            "operator": ">=",
            "value": 3,
        },
    )
    op = world.a["operator"].client
    for _ in range(2):
        await send(runtime, op, dev["id"], {"door": True})
    assert await alerts(world.a["viewer"]) == []
    await send(runtime, op, dev["id"], {"door": False})
    [alert] = await alerts(world.a["viewer"])
    assert alert["value"] == 3


async def test_device_offline_is_evaluated_by_the_job(
    world: World, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    dev = await make_device(world.a["developer"], name="Remote RTU", type="rtu")
    await make_rule(
        world.a["developer"],
        name="Offline",
        rule_type="time_based",
        device_type="rtu",
        condition={"check": "device_offline", "offline_after_seconds": 60},
        auto_resolve=True,
    )
    assert await evaluate_offline_rules(runtime) == 0  # just created: not silent for 60 s
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("update devices set created_at = now() - interval '1 hour' where id = :d"),
            {"d": dev["id"]},
        )
    assert await evaluate_offline_rules(runtime) == 1
    assert await evaluate_offline_rules(runtime) == 0  # stays offline: no repeat
    [alert] = await alerts(world.a["viewer"])
    assert alert["device_name"] == "Remote RTU"
    await send(runtime, world.a["operator"].client, dev["id"], {"temperature": 1})
    await evaluate_offline_rules(runtime)
    [alert] = await alerts(world.a["viewer"])
    assert alert["state"] == "resolved"


async def test_dry_run_changes_nothing(world: World, runtime: Runtime) -> None:
    dev = await make_device(world.a["developer"])
    other = await make_device(world.a["developer"], name="Pump 2")
    rule = await make_rule(world.a["developer"])
    # Write readings while the rule is disabled, so no alert exists yet.
    body = {k: rule[k] for k in ("name", "rule_type", "condition", "severity", "actions")}
    r = await world.a["developer"].client.put(
        f"/api/v1/rules/{rule['id']}", json={**body, "enabled": False}
    )
    assert r.status_code == 200, r.text
    await send(runtime, world.a["operator"].client, dev["id"], {"temperature": 99})
    await send(runtime, world.a["operator"].client, other["id"], {"temperature": 1})
    r = await world.a["developer"].client.post(f"/api/v1/rules/{rule['id']}/test")
    assert r.status_code == 200, r.text
    results = {x["device_name"]: x for x in r.json()["results"]}
    assert results["Pump 1"]["matched"] is True
    assert results["Pump 1"]["value"] == 99
    assert results["Pump 1"]["would_fire"] is False  # disabled
    assert results["Pump 2"]["matched"] is False
    assert await alerts(world.a["viewer"]) == []


async def test_a_changed_condition_starts_from_not_holding(world: World, runtime: Runtime) -> None:
    dev = await make_device(world.a["developer"])
    rule = await make_rule(world.a["developer"])
    op = world.a["operator"].client
    await send(runtime, op, dev["id"], {"temperature": 90})
    body = {k: rule[k] for k in ("rule_type", "condition", "severity", "actions")}
    dev_client = world.a["developer"].client
    r = await dev_client.put(f"/api/v1/rules/{rule['id']}", json={**body, "name": "Renamed"})
    assert r.status_code == 200
    await send(runtime, op, dev["id"], {"temperature": 91})
    assert (await alerts(world.a["viewer"]))[0]["occurrence_count"] == 1  # a rename: no edge
    body["condition"] = {"key": "temperature", "operator": ">", "value": 85}
    r = await dev_client.put(f"/api/v1/rules/{rule['id']}", json={**body, "name": "Renamed"})
    assert r.status_code == 200
    await send(runtime, op, dev["id"], {"temperature": 92})
    assert (await alerts(world.a["viewer"]))[0]["occurrence_count"] == 2


async def test_batches_queued_together_keep_every_edge(world: World, runtime: Runtime) -> None:
    dev = await make_device(world.a["developer"])
    await make_rule(world.a["developer"])
    stopped = engine(runtime)
    for value in (90, 10, 95, 20, 99):
        r = await world.a["operator"].client.post(
            "/api/v1/telemetry",
            json={
                "device_id": dev["id"],
                "timestamp": next_ts().isoformat(),
                "telemetry": {"temperature": value},
            },
        )
        assert r.status_code == 201
    assert stopped._queue.qsize() >= 1  # nothing awaited the worker in between
    await settle(runtime)
    [alert] = await alerts(world.a["viewer"])
    assert alert["occurrence_count"] == 3


async def test_dry_run_of_an_offline_rule(
    world: World, runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    dev = await make_device(world.a["developer"], name="Quiet RTU")
    rule = await make_rule(
        world.a["developer"],
        name="Offline",
        rule_type="time_based",
        device_id=dev["id"],
        condition={"check": "device_offline", "offline_after_seconds": 300},
    )
    async with owner_engine.begin() as conn:
        await conn.execute(text("update devices set created_at = now() - interval '1 hour'"))
    r = await world.a["developer"].client.post(f"/api/v1/rules/{rule['id']}/test")
    [result] = r.json()["results"]
    assert result["matched"] is True
    assert result["would_fire"] is True
    assert result["value"] >= 3600
    assert await alerts(world.a["viewer"]) == []
    assert (
        await world.a["viewer"].client.post(f"/api/v1/rules/{rule['id']}/test")
    ).status_code == 403


async def test_a_type_rule_applies_to_devices_of_that_type_only(
    world: World, runtime: Runtime
) -> None:
    pump = await make_device(world.a["developer"], name="Pump 1", type="pump")
    valve = await make_device(world.a["developer"], name="Valve 1", type="valve")
    await make_rule(world.a["developer"], device_type="pump")
    op = world.a["operator"].client
    await send(runtime, op, valve["id"], {"temperature": 99})
    assert await alerts(world.a["viewer"]) == []
    await send(runtime, op, pump["id"], {"temperature": 99})
    [alert] = await alerts(world.a["viewer"])
    assert alert["device_id"] == pump["id"]
