"""Wiring of the MQTT endpoint: started with `iiot serve`, stopped before the database closes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from iiot.mqtt.server import mqtt_server

if TYPE_CHECKING:
    from iiot.runtime import Runtime


async def start_listeners(rt: Runtime) -> None:
    await mqtt_server(rt).start()


async def stop_listeners(rt: Runtime) -> None:
    server = rt.extras.get("mqtt_server")
    if server is not None:
        await server.stop()
