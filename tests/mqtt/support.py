"""MQTT test clients: paho-mqtt driven from async tests, and a raw client for what paho won't
send (malformed packets, no CONNECT, many idle connections)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from iiot.mqtt import codec

WAIT = 10.0


@dataclass
class Received:
    topic: str
    payload: Any


@dataclass
class PahoDevice:
    """A paho client; every wait happens in a thread so the server's loop keeps running."""

    port: int
    token: str | None
    protocol: int = paho.MQTTv311
    client_id: str = field(default_factory=lambda: f"t-{uuid.uuid4().hex[:8]}")

    def __post_init__(self) -> None:
        # No automatic reconnection: a test that is disconnected stays disconnected, and
        # `close` does not wait out paho's reconnect delay.
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=self.protocol,
            reconnect_on_failure=False,
        )
        if self.token is not None:
            self.client.username_pw_set(self.token)
        self.connack: ReasonCode | None = None
        self.connack_props: Properties | None = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.disconnect_reason: ReasonCode | None = None
        self.acks: dict[int, ReasonCode] = {}
        self.ack_events: dict[int, threading.Event] = {}
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.messages: list[Received] = []
        self.message_event = threading.Condition()
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # paho callbacks (network thread)
    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connack = rc
        self.connack_props = props
        self.connected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.disconnect_reason = rc
        self.disconnected.set()

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        with self._lock:
            self.acks[mid] = rc
            self.ack_events.setdefault(mid, threading.Event()).set()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        self.subacks[mid] = list(codes)

    def _on_message(self, client: Any, userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            payload: Any = orjson.loads(msg.payload)
        except orjson.JSONDecodeError:
            payload = msg.payload
        with self.message_event:
            self.messages.append(Received(msg.topic, payload))
            self.message_event.notify_all()

    # async API
    async def connect(self, *, keepalive: int = 30, expect_ok: bool = True) -> ReasonCode:
        self.client.connect("127.0.0.1", self.port, keepalive=keepalive)
        self.client.loop_start()
        assert await asyncio.to_thread(self.connected.wait, WAIT), "no CONNACK"
        assert self.connack is not None
        if expect_ok:
            assert not self.connack.is_failure, self.connack
        return self.connack

    async def publish(self, topic: str, payload: Any, qos: int = 1) -> int | None:
        """Publish and, for QoS 1, wait for the PUBACK; its reason code (None: no PUBACK)."""
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        info = self.client.publish(topic, data, qos=qos)
        if qos == 0:
            return None
        with self._lock:
            event = self.ack_events.setdefault(info.mid, threading.Event())

        def wait() -> bool:
            # An acknowledgement, or the server closing the connection.
            for _ in range(int(WAIT * 20)):
                if event.wait(0.05) or self.disconnected.is_set():
                    return event.is_set()
            return False

        if not await asyncio.to_thread(wait):
            return None
        return int(self.acks[info.mid].value)

    async def subscribe(self, *topics: str, qos: int = 1) -> list[ReasonCode]:
        result, mid = self.client.subscribe([(t, qos) for t in topics])
        assert result == paho.MQTT_ERR_SUCCESS

        def wait() -> bool:
            for _ in range(int(WAIT * 20)):
                if mid in self.subacks:
                    return True
                threading.Event().wait(0.05)
            return False

        assert await asyncio.to_thread(wait), "no SUBACK"
        return self.subacks[mid]

    async def next_message(self, topic_prefix: str, timeout: float = WAIT) -> Received:
        def wait() -> Received | None:
            with self.message_event:
                end = timeout
                while True:
                    for i, m in enumerate(self.messages):
                        if m.topic.startswith(topic_prefix):
                            return self.messages.pop(i)
                    if end <= 0:
                        return None
                    self.message_event.wait(0.05)
                    end -= 0.05

        found = await asyncio.to_thread(wait)
        assert found is not None, f"no message on {topic_prefix}"
        return found

    async def wait_disconnected(self, timeout: float = WAIT) -> bool:
        return await asyncio.to_thread(self.disconnected.wait, timeout)

    async def close(self) -> None:
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)


class RawClient:
    """Speaks bytes to the server: for malformed packets and protocol corner cases."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def connect(self, token: str | None, level: int = codec.MQTT_311) -> bytes:
        await self.send(
            codec.encode_client_connect(
                codec.Connect(level, f"raw-{uuid.uuid4().hex[:6]}", True, 30, username=token)
            )
        )
        return await self.read_packet()

    async def read_packet(self, timeout: float = WAIT) -> bytes:
        """One whole packet (first byte, length, body); b"" when the server closed."""
        try:
            first = await asyncio.wait_for(self.reader.readexactly(1), timeout)
            length, shift = 0, 0
            while True:
                byte = (await self.reader.readexactly(1))[0]
                length |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    break
                shift += 7
            return first + bytes([length]) + await self.reader.readexactly(length)
        except asyncio.IncompleteReadError:
            return b""

    async def closed_by_server(self, timeout: float = WAIT) -> bool:
        try:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
        except (TimeoutError, ConnectionError):
            return False
        while data:
            try:
                data = await asyncio.wait_for(self.reader.read(65536), timeout)
            except (TimeoutError, ConnectionError):
                return False
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
