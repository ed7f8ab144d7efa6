"""The MQTT endpoint as a module: its listeners start with `iiot serve` (after the database and
the device-session hub are ready) and stop on a graceful stop, before the database closes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console

from iiot.modules import Hook, Module
from iiot.mqtt.server import MqttServer, mqtt_server

if TYPE_CHECKING:
    from iiot.runtime import Runtime


async def start_listeners(rt: Runtime) -> None:
    """Start the listeners and say on the console where MQTT listens, or why it does not."""
    server = mqtt_server(rt)
    listeners = await server.start()
    console = Console(stderr=True)
    for listener in listeners:
        console.print(
            f"[green]MQTT listening on {listener.scheme}://{listener.host}:{listener.port}[/]"
        )
    for problem in server.problems:
        console.print(f"[bold red]{problem}[/]")
    if not listeners and not server.problems:
        console.print("MQTT is disabled (IIOT_MQTT_PORT=0).")


async def stop_listeners(rt: Runtime) -> None:
    server = rt.state.peek(MqttServer)
    if server is not None:
        await server.stop()


MODULE = Module(
    name="mqtt",
    startup=(Hook("mqtt-listeners", start_listeners),),
    shutdown=(Hook("mqtt-listeners", stop_listeners),),
)
