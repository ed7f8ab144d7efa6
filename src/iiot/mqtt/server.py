"""The MQTT listeners of `iiot serve`: plain TCP on `IIOT_MQTT_PORT`, TLS on `IIOT_MQTT_TLS_PORT`
when a certificate and key are configured. Both run in the API's event loop.

A port that cannot be bound (another broker holds 1883) does not stop the server: the HTTP
API starts anyway and the log says plainly that MQTT is not listening and how to move it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from iiot.mqtt import codec
from iiot.mqtt.bookkeeping import Bookkeeper
from iiot.mqtt.connection import Connection

if TYPE_CHECKING:
    from iiot.config import Settings
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 0.5
DRAIN_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Listener:
    scheme: str  # "mqtt" or "mqtts"
    host: str
    port: int


class MqttServer:
    def __init__(self, rt: Runtime, settings: Settings | None = None) -> None:
        self.rt = rt
        self.settings = settings or rt.settings
        self.connect_timeout = self.settings.mqtt_connect_timeout_seconds
        self.connections: set[Connection] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.listeners: list[Listener] = []
        self.problems: list[str] = []
        self.bookkeeper = Bookkeeper(rt)
        self._servers: list[asyncio.Server] = []
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> list[Listener]:
        settings = self.settings
        host = settings.mqtt_host or settings.host
        loop = asyncio.get_running_loop()
        wanted: list[tuple[str, int, ssl.SSLContext | None]] = []
        if settings.mqtt_port:
            wanted.append(("mqtt", settings.mqtt_port, None))
        if settings.mqtt_tls_cert and settings.mqtt_tls_key and settings.mqtt_tls_port:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(settings.mqtt_tls_cert, settings.mqtt_tls_key)
            wanted.append(("mqtts", settings.mqtt_tls_port, tls))
        for scheme, port, context in wanted:
            try:
                server = await loop.create_server(
                    lambda: Connection(self), host, port, ssl=context, backlog=4096
                )
            except OSError as exc:
                message = (
                    f"MQTT is NOT listening on {scheme}://{host}:{port}: {exc.strerror or exc}. "
                    "The HTTP API runs without it; set IIOT_MQTT_PORT (or `iiot serve "
                    "--mqtt-port`) to a free port."
                )
                log.error("%s", message)
                self.problems.append(message)
                continue
            self._servers.append(server)
            bound = server.sockets[0].getsockname()[1] if server.sockets else port
            self.listeners.append(Listener(scheme, host, bound))
            log.info("MQTT listening on %s://%s:%d", scheme, host, bound)
        if not wanted:
            log.info("MQTT is disabled (IIOT_MQTT_PORT=0)")
        if self._servers:
            self._sweeper = asyncio.create_task(self._sweep(), name="mqtt-sweeper")
        return self.listeners

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_SECONDS)
            now = time.monotonic()
            for conn in list(self.connections):
                conn.check_timers(now)

    async def stop(self) -> None:
        """Stop accepting, let acknowledged-to-be work finish, then close every connection."""
        for server in self._servers:
            server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        pending = [t for t in self.tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=DRAIN_SECONDS)
        for conn in list(self.connections):
            conn.close(codec.SERVER_SHUTTING_DOWN, "server shutting down")
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        self._servers.clear()
        self.listeners.clear()


def mqtt_server(rt: Runtime) -> MqttServer:
    """The process's MQTT endpoint (listening once `start` ran)."""
    return rt.state.get(MqttServer)
