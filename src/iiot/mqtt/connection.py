"""One MQTT client connection: CONNECT authentication, the ThingsBoard topics, acknowledgements.

Packets are decoded as bytes arrive (`codec.PacketReader`). Each PUBLISH becomes a task;
telemetry tasks of a connection run concurrently (so the ingest group commit can gather them
with other connections' messages), every other message waits for the ones before it, and the
acknowledgements (PUBACK, or PUBREC for QoS 2) leave in the order the messages arrived, each
only after its message was committed. A refusal is never silent: MQTT 5 gets its reason code
in the PUBACK; MQTT 3.1.1, which has none, gets the connection closed without a PUBACK for a
quota or rate refusal, an unknown topic or a malformed payload (as ThingsBoard does).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import orjson

from iiot.connectivity import service, tb_json
from iiot.connectivity.hub import hub
from iiot.connectivity.identity import DeviceIdentity
from iiot.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    IIoTError,
    NotFound,
    QuotaExceeded,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)
from iiot.mqtt import codec, topics
from iiot.mqtt.codec import MQTT_5, MalformedPacket

if TYPE_CHECKING:
    from iiot.mqtt.server import MqttServer

log = logging.getLogger(__name__)

# What a handler returns: a reason code (SUCCESS or a refusal) and a reason string.
Outcome = tuple[int, str]
OK: Outcome = (codec.SUCCESS, "")


class Refusal(Exception):
    def __init__(self, reason_code: int, why: str) -> None:
        super().__init__(why)
        self.reason_code = reason_code
        self.why = why


def refusal_of(exc: IIoTError) -> Outcome:
    """The MQTT 5 reason code for a domain refusal."""
    if isinstance(exc, QuotaExceeded):
        return codec.QUOTA_EXCEEDED, exc.detail
    if isinstance(exc, RateLimited):
        return codec.MESSAGE_RATE_TOO_HIGH, exc.detail
    if isinstance(exc, ValidationFailed | BadRequest):
        return codec.PAYLOAD_FORMAT_INVALID, exc.detail
    if isinstance(exc, Unauthorized | Forbidden):
        return codec.NOT_AUTHORIZED, exc.detail
    if isinstance(exc, NotFound):
        return codec.TOPIC_NAME_INVALID, exc.detail
    return codec.IMPLEMENTATION_SPECIFIC_ERROR, exc.detail


class MqttDeviceSession:
    """The hub's handle on this connection for one device (the connection's own device, or a
    sub-device connected through this gateway connection)."""

    def __init__(self, conn: Connection, device: DeviceIdentity, gateway_name: str | None) -> None:
        self.device_id: uuid.UUID = device.device_id
        self.tenant_id: uuid.UUID = device.tenant_id
        self.device = device
        self._conn = conn
        self._name = gateway_name  # set: pushes go through the gateway topics

    async def push_attributes(self, shared: dict[str, Any], deleted: list[str]) -> None:
        data: dict[str, Any] = dict(shared)
        if deleted:
            data["deleted"] = list(deleted)
        if self._name is None:
            self._conn.deliver(topics.ATTRIBUTES, data)
        else:
            self._conn.deliver(topics.GATEWAY_ATTRIBUTES, {"device": self._name, "data": data})

    async def push_rpc_request(self, request_id: int, method: str, params: Any) -> bool:
        if self._name is None:
            body = {"method": method, "params": params}
            return self._conn.deliver(f"{topics.RPC_REQUEST}{request_id}", body)
        body = {
            "device": self._name,
            "data": {"id": request_id, "method": method, "params": params},
        }
        return self._conn.deliver(topics.GATEWAY_RPC, body)

    async def close(self, reason: str) -> None:
        self._conn.close(codec.NOT_AUTHORIZED, reason)


class _Pending:
    """A received PUBLISH waiting for its outcome; acknowledged in arrival order."""

    __slots__ = ("packet_id", "qos", "outcome")

    def __init__(self, packet_id: int, qos: int) -> None:
        self.packet_id = packet_id
        self.qos = qos
        self.outcome: Outcome | None = None


class Connection(asyncio.Protocol):
    def __init__(self, server: MqttServer) -> None:
        self.server = server
        self.rt = server.rt
        settings = server.settings
        self.reader = codec.PacketReader(settings.mqtt_max_packet_size)
        self.max_inflight = settings.mqtt_max_inflight
        self.transport: asyncio.Transport | None = None
        self.level = 0
        self.opened_at = time.monotonic()
        self.last_rx = self.opened_at
        self.keepalive = 0
        self.device: DeviceIdentity | None = None
        self.peer = "?"
        self.closed = False
        self._authenticating = False
        self._early: list[codec.Packet] = []
        self._subscriptions: dict[str, int] = {}
        self._acks: deque[_Pending] = deque()
        self._awaiting_pubrel: set[int] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_serial: asyncio.Task[Any] | None = None
        self._paused = False
        self._next_packet_id = 0
        self._sessions: list[MqttDeviceSession] = []
        self._sub_devices: dict[str, asyncio.Task[DeviceIdentity]] = {}
        self._sub_sessions: dict[str, MqttDeviceSession] = {}

    # ------------------------------------------------------------------ transport events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not subclasses of asyncio.Transport)
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.last_rx = time.monotonic()
        try:
            packets = self.reader.feed(data)
        except MalformedPacket as exc:
            log.info("MQTT %s: malformed packet (%s); closing", self.peer, exc)
            self.close(exc.reason_code, str(exc))
            return
        for packet in packets:
            if self.closed:
                return
            self._dispatch(packet)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        self._detach_all()
        if self.device is not None:
            device = self.device
            self._spawn(self._bookkeeping(self.server.bookkeeper.disconnected, device))

    # ------------------------------------------------------------------ closing

    def close(self, reason: int = codec.SUCCESS, why: str = "") -> None:
        if self.closed or self.transport is None:
            return
        self.closed = True
        if self.level == MQTT_5 and self.device is not None:
            packet = codec.encode_disconnect(self.level, reason, why[:200])
            if packet is not None:
                self.transport.write(packet)
        self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def check_timers(self, now: float) -> None:
        """Called by the server's sweeper: CONNECT timeout and keep-alive."""
        if self.closed:
            return
        if self.device is None and not self._authenticating:
            if now - self.opened_at > self.server.connect_timeout:
                log.info(
                    "MQTT %s: no CONNECT within %.0f s; closing",
                    self.peer,
                    self.server.connect_timeout,
                )
                self.abort()
        elif self.keepalive and now - self.last_rx > self.keepalive * 1.5:
            log.info("MQTT %s: keep-alive expired; closing", self.peer)
            self.close(codec.KEEP_ALIVE_TIMEOUT, "keep alive timeout")

    def _detach_all(self) -> None:
        registry = hub(self.rt)
        for session in self._sessions:
            registry.detach(session)
        self._sessions.clear()
        self._sub_sessions.clear()

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, packet: codec.Packet) -> None:
        if isinstance(packet, codec.Connect):
            self._authenticating = True
            self._spawn(self._connect(packet))
            return
        if self._authenticating:
            self._early.append(packet)
            return
        if isinstance(packet, codec.Publish):
            self._on_publish(packet)
        elif isinstance(packet, codec.PingReq):
            self._write(codec.PINGRESP_PACKET)
        elif isinstance(packet, codec.Subscribe):
            self._serial(self._subscribe(packet))
        elif isinstance(packet, codec.Unsubscribe):
            self._on_unsubscribe(packet)
        elif isinstance(packet, codec.Ack):
            self._on_ack(packet)
        elif isinstance(packet, codec.Disconnect):
            self.closed = True
            assert self.transport is not None
            self.transport.close()
        else:  # AUTH: no enhanced authentication
            self.close(codec.PROTOCOL_ERROR, "enhanced authentication is not supported")

    def _write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.server.tasks.add(task)
        task.add_done_callback(self.server.tasks.discard)
        return task

    def _serial(self, coro: Awaitable[Any]) -> None:
        """Run after every message received before it."""
        before = [t for t in self._tasks if not t.done()]

        async def run() -> None:
            if before:
                await asyncio.wait(before)
            await coro

        self._last_serial = self._spawn(run())

    async def _bookkeeping(
        self, fn: Callable[[DeviceIdentity], Awaitable[None]], device: DeviceIdentity
    ) -> None:
        """Online/offline bookkeeping, written in batches with other connections' (see
        `iiot.mqtt.bookkeeping`), so that a storm of (re)connections leaves the database pool
        to authentication and telemetry."""
        await self._safe(fn(device), fn.__name__)

    async def _safe(self, coro: Awaitable[Any], what: str) -> None:
        try:
            await coro
        except Exception:
            log.warning("MQTT %s: %s failed", self.peer, what, exc_info=True)

    # ------------------------------------------------------------------ CONNECT

    async def _connect(self, packet: codec.Connect) -> None:
        level = packet.protocol_level
        self.level = level
        props: codec.Properties = {}
        refused = self._refusal_before_auth(packet)
        device: DeviceIdentity | None = None
        if refused is None:
            try:
                device = await service.authenticate(self.rt, packet.username or "")
            except Unauthorized:
                refused = (codec.RC_NOT_AUTHORIZED, codec.BAD_USER_NAME_OR_PASSWORD)
            except Forbidden:
                refused = (codec.RC_NOT_AUTHORIZED, codec.NOT_AUTHORIZED)
            except Exception:
                log.exception("MQTT %s: authentication failed", self.peer)
                refused = (codec.RC_SERVER_UNAVAILABLE, codec.SERVER_UNAVAILABLE)
        if self.closed:
            return
        if refused is not None or device is None:
            code_311, code_5 = refused or (codec.RC_NOT_AUTHORIZED, codec.NOT_AUTHORIZED)
            log.info("MQTT %s: connection refused (%s)", self.peer, hex(code_5))
            self._write(codec.encode_connack(level, False, code_5 if level == MQTT_5 else code_311))
            self.close()
            return
        self.device = device
        self.keepalive = packet.keepalive
        if level == MQTT_5:
            props = {
                codec.PROP_MAXIMUM_QOS: 1,
                codec.PROP_RETAIN_AVAILABLE: 0,
                codec.PROP_RECEIVE_MAXIMUM: self.max_inflight,
                codec.PROP_MAXIMUM_PACKET_SIZE: self.reader.max_packet_size,
                codec.PROP_SHARED_SUB_AVAILABLE: 0,
                codec.PROP_SUB_ID_AVAILABLE: 0,
            }
            if not packet.client_id:
                props[codec.PROP_ASSIGNED_CLIENT_ID] = f"iiot-{device.device_id}"
        own = MqttDeviceSession(self, device, None)
        self._sessions.append(own)
        hub(self.rt).attach(own, device)
        self._write(codec.encode_connack(level, False, codec.SUCCESS, props))
        self._spawn(self._bookkeeping(self.server.bookkeeper.connected, device))
        self._authenticating = False
        early, self._early = self._early, []
        for queued in early:
            if self.closed:
                return
            self._dispatch(queued)

    def _refusal_before_auth(self, packet: codec.Connect) -> tuple[int, int] | None:
        if not packet.client_id and not packet.clean_start and packet.protocol_level != MQTT_5:
            return (codec.RC_IDENTIFIER_REJECTED, codec.CLIENT_IDENTIFIER_NOT_VALID)
        if not packet.username:
            return (codec.RC_NOT_AUTHORIZED, codec.BAD_USER_NAME_OR_PASSWORD)
        return None

    # ------------------------------------------------------------------ SUBSCRIBE

    async def _subscribe(self, packet: codec.Subscribe) -> None:
        codes: list[int] = []
        for topic_filter, options in packet.topics:
            qos = options & 0x03
            if topics.valid_filter(topic_filter) and topic_filter.startswith(
                topics.SUBSCRIBABLE_ROOTS
            ):
                granted = min(qos, 1)
                self._subscriptions[topic_filter] = granted
                codes.append(granted)
            else:
                codes.append(codec.TOPIC_FILTER_INVALID if self.level == MQTT_5 else 0x80)
        self._write(codec.encode_suback(packet.packet_id, codes, self.level))

    def _on_unsubscribe(self, packet: codec.Unsubscribe) -> None:
        codes = []
        for topic_filter in packet.topics:
            found = self._subscriptions.pop(topic_filter, None)
            codes.append(codec.SUCCESS if found is not None else 0x11)
        self._write(codec.encode_unsuback(packet.packet_id, codes, self.level))

    def _on_ack(self, packet: codec.Ack) -> None:
        if packet.kind == codec.PUBREL:
            self._awaiting_pubrel.discard(packet.packet_id)
            self._write(codec.encode_ack(codec.PUBCOMP, packet.packet_id, self.level))
        # PUBACK/PUBREC/PUBCOMP for what the server sent: nothing kept to release.

    # ------------------------------------------------------------------ outgoing

    def deliver(self, topic: str, body: Any) -> bool:
        """Publish to the client if it subscribed to `topic`; False when it did not."""
        if self.closed:
            return False
        qos = -1
        for topic_filter, granted in self._subscriptions.items():
            if granted > qos and topics.matches(topic_filter, topic):
                qos = granted
        if qos < 0:
            return False
        packet_id = 0
        if qos:
            self._next_packet_id = self._next_packet_id % 65535 + 1
            packet_id = self._next_packet_id
        self._write(codec.encode_publish(topic, orjson.dumps(body), qos, packet_id, self.level))
        return True

    def _respond(self, topic: str, body: Any) -> None:
        # A response to a request goes out whether or not the client subscribed (the
        # ThingsBoard SDKs subscribe first; a plain client asking should get its answer).
        if not self.deliver(topic, body):
            self._write(codec.encode_publish(topic, orjson.dumps(body), 0, 0, self.level))

    # ------------------------------------------------------------------ PUBLISH

    def _on_publish(self, packet: codec.Publish) -> None:
        if packet.qos == 2:
            if self.level == MQTT_5:
                self.close(codec.QOS_NOT_SUPPORTED, "maximum QoS is 1")
                return
            if packet.packet_id in self._awaiting_pubrel:
                self._write(codec.encode_ack(codec.PUBREC, packet.packet_id, self.level))
                return
            self._awaiting_pubrel.add(packet.packet_id)
        pending = _Pending(packet.packet_id, packet.qos)
        self._acks.append(pending)
        if len(self._acks) > self.max_inflight and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()
        handler, concurrent = self._handler(packet.topic)
        work = self._run(pending, handler, packet)
        if not concurrent:
            self._serial(work)
            return
        serial = self._last_serial
        if serial is None or serial.done():
            self._spawn(work)
            return

        async def after_serial() -> None:
            await asyncio.wait([serial])
            await work

        self._spawn(after_serial())

    async def _run(
        self,
        pending: _Pending,
        handler: Callable[[codec.Publish], Awaitable[Outcome]],
        packet: codec.Publish,
    ) -> None:
        try:
            outcome = await handler(packet)
        except Refusal as exc:
            outcome = (exc.reason_code, exc.why)
        except IIoTError as exc:
            outcome = refusal_of(exc)
        except Exception:
            log.exception("MQTT %s: handling a message on %s failed", self.peer, packet.topic)
            outcome = (codec.IMPLEMENTATION_SPECIFIC_ERROR, "internal error")
        pending.outcome = outcome
        self._send_acks()

    def _send_acks(self) -> None:
        acks = self._acks
        while acks and acks[0].outcome is not None:
            pending = acks.popleft()
            assert pending.outcome is not None
            reason, why = pending.outcome
            if reason >= 0x80:
                log.info("MQTT %s: message refused (0x%02x %s)", self.peer, reason, why)
                if reason == codec.NOT_AUTHORIZED:
                    self.close(reason, why)
                    return
                if self.level != MQTT_5:
                    # No reason codes in 3.1.1: closing is the only way not to be silent.
                    self.close()
                    return
            if pending.qos == 1:
                self._write(
                    codec.encode_ack(codec.PUBACK, pending.packet_id, self.level, reason, why[:200])
                )
            elif pending.qos == 2:
                self._write(
                    codec.encode_ack(codec.PUBREC, pending.packet_id, self.level, reason, why[:200])
                )
        if self._paused and len(acks) <= self.max_inflight // 2 and self.transport:
            self._paused = False
            self.transport.resume_reading()

    def _handler(self, topic: str) -> tuple[Callable[[codec.Publish], Awaitable[Outcome]], bool]:
        """The handler of a topic, and whether its messages may run concurrently (telemetry:
        rows are keyed by timestamp, so their order does not matter)."""
        if topic == topics.TELEMETRY:
            return self._telemetry, True
        if topic == topics.ATTRIBUTES:
            return self._client_attributes, False
        if topic.startswith(topics.ATTRIBUTES_REQUEST):
            return self._attribute_request, False
        if topic.startswith(topics.RPC_RESPONSE):
            return self._rpc_response, False
        if topic.startswith(topics.RPC_REQUEST):
            return self._client_rpc, False
        if topic == topics.GATEWAY_TELEMETRY:
            return self._gw_telemetry, True
        if topic.startswith(topics.GATEWAY_PREFIX):
            handler = self._gateway_handlers().get(topic)
            if handler is not None:
                return handler, False
        return self._unknown_topic, False

    def _gateway_handlers(self) -> dict[str, Callable[[codec.Publish], Awaitable[Outcome]]]:
        return {
            topics.GATEWAY_CONNECT: self._gw_connect,
            topics.GATEWAY_DISCONNECT: self._gw_disconnect,
            topics.GATEWAY_ATTRIBUTES: self._gw_attributes,
            topics.GATEWAY_ATTRIBUTES_REQUEST: self._gw_attribute_request,
            topics.GATEWAY_RPC: self._gw_rpc,
        }

    async def _unknown_topic(self, packet: codec.Publish) -> Outcome:
        return codec.TOPIC_NAME_INVALID, f"unknown topic {packet.topic[:100]}"

    def _me(self) -> DeviceIdentity:
        assert self.device is not None
        return self.device

    # ------------------------------------------------------------------ device topics

    async def _telemetry(self, packet: codec.Publish) -> Outcome:
        points = tb_json.parse_telemetry(packet.payload, datetime.now(UTC))
        if points:
            await service.ingest(self.rt, self._me(), points)
        return OK

    async def _client_attributes(self, packet: codec.Publish) -> Outcome:
        values = tb_json.parse_attributes(packet.payload)
        if values:
            await service.save_client_attributes(self.rt, self._me(), values)
        return OK

    async def _attribute_request(self, packet: codec.Publish) -> Outcome:
        request_id = topics.request_id(packet.topic, topics.ATTRIBUTES_REQUEST)
        if request_id is None:
            return codec.TOPIC_NAME_INVALID, "the request id must be a number"
        document = tb_json.decode_json(packet.payload) if packet.payload.strip() else {}
        if not isinstance(document, dict):
            raise Refusal(codec.PAYLOAD_FORMAT_INVALID, "expected {clientKeys, sharedKeys}")
        client, shared = tb_json.attribute_request_keys(
            _keys_text(document.get("clientKeys")), _keys_text(document.get("sharedKeys"))
        )
        found = await service.read_attributes(self.rt, self._me(), client, shared)
        self._respond(f"{topics.ATTRIBUTES_RESPONSE}{request_id}", found)
        return OK

    async def _rpc_response(self, packet: codec.Publish) -> Outcome:
        request_id = topics.request_id(packet.topic, topics.RPC_RESPONSE)
        if request_id is None:
            return codec.TOPIC_NAME_INVALID, "the request id must be a number"
        return await self._reply(self._me(), request_id, _json_or_text(packet.payload))

    async def _reply(self, device: DeviceIdentity, request_id: int, payload: Any) -> Outcome:
        """A reply to a call that is unknown or already over (timed out) is taken but has no
        one to reach: MQTT 5 says so with 0x10; it is no reason to drop a 3.1.1 connection."""
        try:
            await service.rpc_reply(self.rt, device, request_id, payload)
        except (NotFound, Conflict) as exc:
            return codec.NO_MATCHING_SUBSCRIBERS, exc.detail
        return OK

    async def _client_rpc(self, packet: codec.Publish) -> Outcome:
        request_id = topics.request_id(packet.topic, topics.RPC_REQUEST)
        if request_id is None:
            return codec.TOPIC_NAME_INVALID, "the request id must be a number"
        document = tb_json.decode_json(packet.payload)
        if not isinstance(document, dict) or not isinstance(document.get("method"), str):
            raise Refusal(codec.PAYLOAD_FORMAT_INVALID, "expected {method, params}")
        topic = f"{topics.RPC_RESPONSE}{request_id}"
        try:
            result = await service.client_rpc(
                self.rt, self._me(), document["method"], document.get("params")
            )
        except NotFound as exc:
            self._respond(topic, {"error": exc.detail})
            return OK
        self._respond(topic, result)
        return OK

    # ------------------------------------------------------------------ gateway topics

    def _gateway(self) -> DeviceIdentity:
        device = self._me()
        if not device.is_gateway:
            raise Refusal(codec.TOPIC_NAME_INVALID, "this device is not a gateway")
        return device

    async def _sub_device(self, name: str, device_type: str | None = None) -> DeviceIdentity:
        """The gateway's sub-device of that name (created on first use), registered in the
        hub for pushes through this connection. One look-up per name at a time."""
        gateway = self._gateway()
        task = self._sub_devices.get(name)
        if task is None or (task.done() and task.exception() is not None):
            task = asyncio.ensure_future(
                service.gateway_device(self.rt, gateway, name, device_type)
            )
            self._sub_devices[name] = task
        device = await asyncio.shield(task)
        if name not in self._sub_sessions and not self.closed:
            session = MqttDeviceSession(self, device, name)
            self._sub_sessions[name] = session
            self._sessions.append(session)
            hub(self.rt).attach(session, device)
            self._spawn(self._bookkeeping(self.server.bookkeeper.connected, device))
        return device

    def _gateway_document(self, packet: codec.Publish) -> dict[str, Any]:
        self._gateway()
        document = tb_json.decode_json(packet.payload)
        if not isinstance(document, dict):
            raise Refusal(codec.PAYLOAD_FORMAT_INVALID, "expected a JSON object")
        return document

    def _device_name(self, document: dict[str, Any]) -> str:
        name = document.get("device")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise Refusal(codec.PAYLOAD_FORMAT_INVALID, "expected a device name")
        return name.strip()

    async def _gw_connect(self, packet: codec.Publish) -> Outcome:
        document = self._gateway_document(packet)
        name = self._device_name(document)
        device_type = document.get("type")
        await self._sub_device(name, device_type if isinstance(device_type, str) else None)
        return OK

    async def _gw_disconnect(self, packet: codec.Publish) -> Outcome:
        document = self._gateway_document(packet)
        name = self._device_name(document)
        session = self._sub_sessions.pop(name, None)
        self._sub_devices.pop(name, None)
        if session is not None:
            hub(self.rt).detach(session)
            self._sessions.remove(session)
            await service.device_disconnected(self.rt, session.device)
        return OK

    async def _gw_telemetry(self, packet: codec.Publish) -> Outcome:
        self._gateway()
        per_device = tb_json.parse_gateway_telemetry(packet.payload, datetime.now(UTC))

        async def one(name: str, points: list[tb_json.PointIn]) -> None:
            device = await self._sub_device(name)
            if points:
                await service.ingest(self.rt, device, points)

        return await self._each(per_device, one)

    async def _gw_attributes(self, packet: codec.Publish) -> Outcome:
        self._gateway()
        per_device = tb_json.parse_gateway_attributes(packet.payload)

        async def one(name: str, values: dict[str, Any]) -> None:
            device = await self._sub_device(name)
            if values:
                await service.save_client_attributes(self.rt, device, values)

        return await self._each(per_device, one)

    async def _each(
        self, items: dict[str, Any], fn: Callable[[str, Any], Awaitable[None]]
    ) -> Outcome:
        """Every device's part is written (concurrently, so one group commit can take them);
        the first refusal is the message's outcome."""
        results = await asyncio.gather(
            *(fn(name, value) for name, value in items.items()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, Refusal):
                return result.reason_code, result.why
            if isinstance(result, IIoTError):
                return refusal_of(result)
            if isinstance(result, BaseException):
                raise result
        return OK

    async def _gw_attribute_request(self, packet: codec.Publish) -> Outcome:
        document = self._gateway_document(packet)
        name = self._device_name(document)
        request_id = document.get("id")
        if not isinstance(request_id, int) or isinstance(request_id, bool):
            raise Refusal(codec.PAYLOAD_FORMAT_INVALID, "expected a numeric id")
        if "keys" in document:
            keys = document["keys"]
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise Refusal(codec.PAYLOAD_FORMAT_INVALID, "keys must be a list of names")
        elif isinstance(document.get("key"), str):
            keys = [document["key"]]
        else:
            raise Refusal(codec.PAYLOAD_FORMAT_INVALID, "expected key or keys")
        client = bool(document.get("client", False))
        device = await self._sub_device(name)
        found = await service.read_attributes(
            self.rt, device, keys if client else [], [] if client else keys
        )
        values = found.get("client" if client else "shared", {})
        # ThingsBoard's shape: "values" for more than one key asked, "value" for one, neither
        # when nothing was found.
        body: dict[str, Any] = {"id": request_id, "device": name}
        if len(keys) > 1 and values:
            body["values"] = values
        elif len(keys) == 1 and keys[0] in values:
            body["value"] = values[keys[0]]
        self._respond(topics.GATEWAY_ATTRIBUTES_RESPONSE, body)
        return OK

    async def _gw_rpc(self, packet: codec.Publish) -> Outcome:
        document = self._gateway_document(packet)
        name = self._device_name(document)
        request_id = document.get("id")
        if not isinstance(request_id, int) or isinstance(request_id, bool):
            raise Refusal(codec.PAYLOAD_FORMAT_INVALID, "expected a numeric id")
        device = await self._sub_device(name)
        return await self._reply(device, request_id, document.get("data"))


def _keys_text(raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list) and all(isinstance(k, str) for k in raw):
        return ",".join(raw)
    raise Refusal(codec.PAYLOAD_FORMAT_INVALID, "keys must be a comma-separated string")


def _json_or_text(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload.decode("utf-8", errors="replace")
