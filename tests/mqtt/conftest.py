"""An MQTT endpoint on a free port, in the test process, on the test runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from iiot.mqtt.server import MqttServer
from iiot.runtime import Runtime
from tests.fixtures.ports import free_port


@pytest.fixture
async def mqtt(runtime: Runtime) -> AsyncIterator[MqttServer]:
    settings = runtime.settings.model_copy(
        update={
            "mqtt_port": free_port(),
            "mqtt_host": "127.0.0.1",
            "mqtt_connect_timeout_seconds": 1.0,
        }
    )
    server = MqttServer(runtime, settings)
    listeners = await server.start()
    assert listeners, "the MQTT listener did not start"
    yield server
    await server.stop()


def port_of(server: MqttServer) -> int:
    return server.listeners[0].port
