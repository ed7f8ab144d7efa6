"""Online/offline bookkeeping of MQTT sessions in batches: a storm of connections is written in
a few transactions, each change is committed before its connection goes on, and the latest
change of a device wins."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.connectivity import service
from iiot.connectivity.identity import DeviceIdentity
from iiot.mqtt.bookkeeping import Bookkeeper
from iiot.runtime import Runtime
from tests.fixtures.factories import Factory
from tests.mqtt.test_protocol import seed_devices


async def _devices(
    rt: Runtime, engine: AsyncEngine, n: int, factory: Factory
) -> list[DeviceIdentity]:
    tenant = await factory.tenant(tier="enterprise")
    return [await service.authenticate(rt, t) for t in await seed_devices(engine, tenant.id, n)]


async def _online(engine: AsyncEngine, devices: Sequence[DeviceIdentity]) -> dict[uuid.UUID, bool]:
    """Each device that was marked: True when connected, False when disconnected."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "select id, disconnected_at is null as online from devices"
                " where id = any(:ids) and last_seen_at is not null"
            ),
            {"ids": [d.device_id for d in devices]},
        )
        return {row.id: row.online for row in rows}


async def test_a_storm_of_connections_is_written_in_a_few_transactions(
    runtime: Runtime, factory: Factory, owner_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await _devices(runtime, owner_engine, 30, factory)
    second = await _devices(runtime, owner_engine, 20, factory)
    writes: list[int] = []
    real = service.sessions_changed

    async def counted(rt: Runtime, changes: Sequence[tuple[DeviceIdentity, bool]]) -> None:
        writes.append(len(changes))
        await real(rt, changes)

    monkeypatch.setattr(service, "sessions_changed", counted)
    keeper = Bookkeeper(runtime)

    async def connect(device: DeviceIdentity) -> bool:
        await keeper.connected(device)
        # Committed before the connection goes on.
        return (await _online(owner_engine, [device])).get(device.device_id, False)

    assert all(await asyncio.gather(*(connect(d) for d in first + second)))
    assert sum(writes) == 50
    assert len(writes) <= 3  # what arrives together is written together, once per tenant
    assert await _online(owner_engine, first + second) == {
        d.device_id: True for d in first + second
    }

    await asyncio.gather(*(keeper.disconnected(d) for d in first))
    assert await _online(owner_engine, first + second) == {
        **{d.device_id: False for d in first},
        **{d.device_id: True for d in second},
    }


async def test_the_latest_change_of_a_device_wins(
    runtime: Runtime, factory: Factory, owner_engine: AsyncEngine
) -> None:
    busy, flapping, back = await _devices(runtime, owner_engine, 3, factory)
    keeper = Bookkeeper(runtime)
    # Changes that arrive together are written together: connected then disconnected, and
    # disconnected then connected again, each device written once, as it was last.
    await asyncio.gather(
        keeper.connected(busy),
        keeper.connected(flapping),
        keeper.disconnected(back),
        keeper.disconnected(flapping),
        keeper.connected(back),
    )
    assert await _online(owner_engine, [busy, flapping, back]) == {
        busy.device_id: True,
        flapping.device_id: False,
        back.device_id: True,
    }
