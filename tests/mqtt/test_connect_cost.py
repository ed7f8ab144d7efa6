"""What a CONNECT costs the database: a token this process has not seen is resolved in one
statement, its own transaction (the owner, both statuses, the device's name and gateway flag);
a token it holds costs nothing until a credential notice evicts it (a rename notifies too),
after which the change holds at the next CONNECT with the same refusal as ever."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event

from iiot.connectivity import service
from iiot.connectivity.identity import DeviceIdentity
from iiot.db.driver import DriverStatement
from iiot.db.listen import listener
from iiot.devices.repository import TOKEN_HOLDER_STATEMENT
from iiot.devices.token_cache import token_cache
from iiot.errors import Unauthorized
from iiot.identity.tokens import digest
from iiot.mqtt import codec
from iiot.mqtt.server import MqttServer
from iiot.runtime import Runtime
from tests.devices.support import make_device
from tests.fixtures.factories import Factory
from tests.mqtt.conftest import port_of
from tests.mqtt.support import RawClient

CONNACK_OK = b"\x20\x02\x00\x00"
# MQTT 3.1.1 "not authorized" (a bad, revoked or refused token alike).
CONNACK_NOT_AUTHORIZED = b"\x20\x02\x00\x05"


@dataclass
class Traffic:
    transactions: int = 0  # begun on the application's engine (the ORM sessions)
    statements: list[str] = field(default_factory=list)
    # Whether each statement's connection was in autocommit (the statement its own transaction).
    autocommit: list[bool] = field(default_factory=list)


@contextmanager
def database_traffic(rt: Runtime) -> Iterator[Traffic]:
    """What the application sends meanwhile: on its engine (SQLAlchemy events) and on its
    one-statement path (the database's statement observers)."""
    seen = Traffic()
    engine = rt.db.engine.sync_engine

    def on_begin(conn: Any) -> None:
        seen.transactions += 1

    def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.statements.append(statement)
        seen.autocommit.append(False)  # the engine's sessions always begin a transaction

    def on_driver_statement(statement: str, conn: Any) -> None:
        seen.statements.append(statement)
        seen.autocommit.append(bool(conn.autocommit))

    event.listen(engine, "begin", on_begin)
    event.listen(engine, "before_cursor_execute", on_statement)
    rt.db.statement_observers.append(on_driver_statement)
    try:
        yield seen
    finally:
        rt.db.statement_observers.remove(on_driver_statement)
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "begin", on_begin)


def _token_lookups(seen: Traffic) -> list[str]:
    return [s for s in seen.statements if "iiot_device_by_token" in s]


async def _connect(mqtt: MqttServer, token: str, level: int = codec.MQTT_311) -> bytes:
    client = await RawClient.open(port_of(mqtt))
    try:
        return await client.connect(token, level)
    finally:
        await client.close()


async def test_an_unseen_token_is_one_statement_and_a_seen_one_none(
    mqtt: MqttServer, factory: Factory
) -> None:
    tenant = await factory.tenant()
    developer = await factory.member(tenant, "developer")
    gateway = await make_device(factory, developer, name="Press 7", is_gateway=True)
    rt = mqtt.rt
    await token_cache(rt).wait_listening()
    token_cache(rt).clear()

    with database_traffic(rt) as seen:
        identity = await service.authenticate(rt, gateway.token)
    assert identity == DeviceIdentity(
        device_id=gateway.id,
        tenant_id=tenant.id,
        name="Press 7",
        is_gateway=True,
        token_digest=digest(gateway.token),
    )
    # One statement, alone in autocommit: no BEGIN, no COMMIT, no second transaction.
    assert len(seen.statements) == 1, seen.statements
    assert seen.autocommit == [True]
    assert seen.transactions == 0
    statement = seen.statements[0]
    assert "iiot_device_by_token" in statement
    # The device row is read with the owner's tenant set (row-level security in force).
    assert "set_config(" in statement
    assert "FROM devices" in statement

    with database_traffic(rt) as seen:
        assert await service.authenticate(rt, gateway.token) == identity
    assert seen.statements == []
    assert seen.transactions == 0

    # Over MQTT the same: the CONNECT of a held token looks nothing up.
    with database_traffic(rt) as seen:
        assert await _connect(mqtt, gateway.token) == CONNACK_OK
    assert _token_lookups(seen) == []


async def test_a_held_token_is_refused_once_revoked_disabled_or_suspended(
    mqtt: MqttServer, factory: Factory
) -> None:
    tenant = await factory.tenant()
    developer = await factory.member(tenant, "developer")
    rotated, disabled, suspended = [await make_device(factory, developer) for _ in range(3)]
    rt = mqtt.rt
    await token_cache(rt).wait_listening()
    for handle in (rotated, disabled, suspended):
        assert await _connect(mqtt, handle.token) == CONNACK_OK
        with database_traffic(rt) as seen:
            assert await _connect(mqtt, handle.token) == CONNACK_OK
        assert _token_lookups(seen) == []  # held by the cache from here on

    r = await developer.client.post(f"/api/v1/devices/{rotated.id}/credentials")
    assert r.status_code == 201, r.text
    r = await developer.client.patch(f"/api/v1/devices/{disabled.id}", json={"status": "disabled"})
    assert r.status_code == 200, r.text
    assert await listener(rt).sync()  # the notices committed so far are handled
    assert await _connect(mqtt, rotated.token) == CONNACK_NOT_AUTHORIZED
    assert (await _connect(mqtt, rotated.token, codec.MQTT_5))[3] == codec.BAD_USER_NAME_OR_PASSWORD
    assert await _connect(mqtt, disabled.token) == CONNACK_NOT_AUTHORIZED
    assert (await _connect(mqtt, disabled.token, codec.MQTT_5))[3] == codec.NOT_AUTHORIZED

    admin = await factory.system_admin()
    r = await admin.client.post(f"/api/v1/tenants/{tenant.id}/suspend")
    assert r.status_code == 200, r.text
    assert await listener(rt).sync()
    assert await _connect(mqtt, suspended.token) == CONNACK_NOT_AUTHORIZED
    assert (await _connect(mqtt, suspended.token, codec.MQTT_5))[3] == codec.NOT_AUTHORIZED


async def test_a_gateway_flag_change_holds_at_the_next_connect(
    mqtt: MqttServer, factory: Factory
) -> None:
    tenant = await factory.tenant()
    developer = await factory.member(tenant, "developer")
    handle = await make_device(factory, developer, is_gateway=True)
    rt = mqtt.rt
    await token_cache(rt).wait_listening()
    assert (await service.authenticate(rt, handle.token)).is_gateway
    r = await developer.client.patch(f"/api/v1/devices/{handle.id}", json={"is_gateway": False})
    assert r.status_code == 200, r.text
    assert await listener(rt).sync()
    assert not (await service.authenticate(rt, handle.token)).is_gateway


async def test_a_rename_holds_at_the_next_connect(mqtt: MqttServer, factory: Factory) -> None:
    tenant = await factory.tenant()
    developer = await factory.member(tenant, "developer")
    handle = await make_device(factory, developer, name="Press 7")
    rt = mqtt.rt
    await token_cache(rt).wait_listening()
    assert (await service.authenticate(rt, handle.token)).name == "Press 7"
    with database_traffic(rt) as seen:
        assert (await service.authenticate(rt, handle.token)).name == "Press 7"
    assert _token_lookups(seen) == []  # held by the cache

    r = await developer.client.patch(f"/api/v1/devices/{handle.id}", json={"name": "Press 8"})
    assert r.status_code == 200, r.text
    assert await listener(rt).sync()
    with database_traffic(rt) as seen:
        assert (await service.authenticate(rt, handle.token)).name == "Press 8"
    assert len(_token_lookups(seen)) == 1  # the entry was dropped and read again
    assert await _connect(mqtt, handle.token) == CONNACK_OK

    # A full replacement (PUT) that renames it too.
    r = await developer.client.put(f"/api/v1/devices/{handle.id}", json={"name": "Press 9"})
    assert r.status_code == 200, r.text
    assert await listener(rt).sync()
    assert (await service.authenticate(rt, handle.token)).name == "Press 9"


async def test_a_token_revoked_while_it_is_looked_up_is_refused(
    mqtt: MqttServer, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look-up's snapshot predates the rotation, whose notice is handled before the
    look-up returns: the token is read again, and refused."""
    tenant = await factory.tenant()
    developer = await factory.member(tenant, "developer")
    handle = await make_device(factory, developer)
    rt = mqtt.rt
    await token_cache(rt).wait_listening()
    token_cache(rt).clear()
    one_row = rt.db.one_row
    reads: list[tuple[Any, ...] | None] = []

    async def rotated_meanwhile(statement: DriverStatement, values: Any) -> Any:
        row = await one_row(statement, values)
        if statement is not TOKEN_HOLDER_STATEMENT:
            return row  # the rotation request's own caller look-up
        reads.append(row)
        if len(reads) == 1:
            r = await developer.client.post(f"/api/v1/devices/{handle.id}/credentials")
            assert r.status_code == 201, r.text
            assert await listener(rt).sync()  # the rotation's notice is handled
        return row

    monkeypatch.setattr(rt.db, "one_row", rotated_meanwhile)
    with pytest.raises(Unauthorized):
        await service.authenticate(rt, handle.token)
    assert reads[0] is not None  # the first read still found the token
    assert reads[1:] == [None]
