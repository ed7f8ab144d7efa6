"""MQTT 3.1.1 and 5.0 packet codec, server side, without I/O.

`PacketReader.feed` takes bytes as they arrive and returns the complete packets decoded from
them; the `encode_*` functions build the packets a server sends. Anything that is not a
well-formed packet of the negotiated version raises `MalformedPacket` (its `reason_code` is the
MQTT 5 reason to send before closing); the caller closes that one connection.

Only what a server receives is decoded (CONNECT, PUBLISH, PUBACK/PUBREC/PUBREL/PUBCOMP,
SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT, AUTH) and only what it sends is encoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

# Packet types.
CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
PUBREC = 5
PUBREL = 6
PUBCOMP = 7
SUBSCRIBE = 8
SUBACK = 9
UNSUBSCRIBE = 10
UNSUBACK = 11
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14
AUTH = 15

MQTT_311 = 4
MQTT_5 = 5

# MQTT 5 reason codes used by the server.
SUCCESS = 0x00
NO_MATCHING_SUBSCRIBERS = 0x10
UNSPECIFIED_ERROR = 0x80
MALFORMED_PACKET = 0x81
PROTOCOL_ERROR = 0x82
IMPLEMENTATION_SPECIFIC_ERROR = 0x83
UNSUPPORTED_PROTOCOL_VERSION = 0x84
CLIENT_IDENTIFIER_NOT_VALID = 0x85
BAD_USER_NAME_OR_PASSWORD = 0x86
NOT_AUTHORIZED = 0x87
SERVER_UNAVAILABLE = 0x88
SERVER_SHUTTING_DOWN = 0x8B
KEEP_ALIVE_TIMEOUT = 0x8D
SESSION_TAKEN_OVER = 0x8E
TOPIC_FILTER_INVALID = 0x8F
TOPIC_NAME_INVALID = 0x90
PACKET_ID_IN_USE = 0x91
PACKET_ID_NOT_FOUND = 0x92
PACKET_TOO_LARGE = 0x95
MESSAGE_RATE_TOO_HIGH = 0x96
QUOTA_EXCEEDED = 0x97
ADMINISTRATIVE_ACTION = 0x98
PAYLOAD_FORMAT_INVALID = 0x99
QOS_NOT_SUPPORTED = 0x9B

# MQTT 3.1.1 CONNACK return codes.
RC_ACCEPTED = 0
RC_UNACCEPTABLE_PROTOCOL = 1
RC_IDENTIFIER_REJECTED = 2
RC_SERVER_UNAVAILABLE = 3
RC_BAD_CREDENTIALS = 4
RC_NOT_AUTHORIZED = 5

MAX_REMAINING_LENGTH = 268_435_455

# MQTT 5 property identifiers and their value types.
_BYTE, _U16, _U32, _VARINT, _STR, _BIN, _PAIR = range(7)
PROP_PAYLOAD_FORMAT = 0x01
PROP_MESSAGE_EXPIRY = 0x02
PROP_CONTENT_TYPE = 0x03
PROP_RESPONSE_TOPIC = 0x08
PROP_CORRELATION_DATA = 0x09
PROP_SUBSCRIPTION_ID = 0x0B
PROP_SESSION_EXPIRY = 0x11
PROP_ASSIGNED_CLIENT_ID = 0x12
PROP_SERVER_KEEP_ALIVE = 0x13
PROP_AUTH_METHOD = 0x15
PROP_AUTH_DATA = 0x16
PROP_REQUEST_PROBLEM_INFO = 0x17
PROP_WILL_DELAY = 0x18
PROP_REQUEST_RESPONSE_INFO = 0x19
PROP_RESPONSE_INFO = 0x1A
PROP_SERVER_REFERENCE = 0x1C
PROP_REASON_STRING = 0x1F
PROP_RECEIVE_MAXIMUM = 0x21
PROP_TOPIC_ALIAS_MAXIMUM = 0x22
PROP_TOPIC_ALIAS = 0x23
PROP_MAXIMUM_QOS = 0x24
PROP_RETAIN_AVAILABLE = 0x25
PROP_USER_PROPERTY = 0x26
PROP_MAXIMUM_PACKET_SIZE = 0x27
PROP_WILDCARD_SUB_AVAILABLE = 0x28
PROP_SUB_ID_AVAILABLE = 0x29
PROP_SHARED_SUB_AVAILABLE = 0x2A

_PROPERTY_TYPES: dict[int, int] = {
    PROP_PAYLOAD_FORMAT: _BYTE,
    PROP_MESSAGE_EXPIRY: _U32,
    PROP_CONTENT_TYPE: _STR,
    PROP_RESPONSE_TOPIC: _STR,
    PROP_CORRELATION_DATA: _BIN,
    PROP_SUBSCRIPTION_ID: _VARINT,
    PROP_SESSION_EXPIRY: _U32,
    PROP_ASSIGNED_CLIENT_ID: _STR,
    PROP_SERVER_KEEP_ALIVE: _U16,
    PROP_AUTH_METHOD: _STR,
    PROP_AUTH_DATA: _BIN,
    PROP_REQUEST_PROBLEM_INFO: _BYTE,
    PROP_WILL_DELAY: _U32,
    PROP_REQUEST_RESPONSE_INFO: _BYTE,
    PROP_RESPONSE_INFO: _STR,
    PROP_SERVER_REFERENCE: _STR,
    PROP_REASON_STRING: _STR,
    PROP_RECEIVE_MAXIMUM: _U16,
    PROP_TOPIC_ALIAS_MAXIMUM: _U16,
    PROP_TOPIC_ALIAS: _U16,
    PROP_MAXIMUM_QOS: _BYTE,
    PROP_RETAIN_AVAILABLE: _BYTE,
    PROP_USER_PROPERTY: _PAIR,
    PROP_MAXIMUM_PACKET_SIZE: _U32,
    PROP_WILDCARD_SUB_AVAILABLE: _BYTE,
    PROP_SUB_ID_AVAILABLE: _BYTE,
    PROP_SHARED_SUB_AVAILABLE: _BYTE,
}

_U16_STRUCT = struct.Struct("!H")
_U32_STRUCT = struct.Struct("!I")


class MalformedPacket(Exception):
    """The bytes are not a valid packet; the connection must be closed."""

    def __init__(self, message: str, reason_code: int = MALFORMED_PACKET) -> None:
        super().__init__(message)
        self.reason_code = reason_code


Properties = dict[int, Any]


@dataclass(slots=True)
class Connect:
    protocol_level: int
    client_id: str
    clean_start: bool
    keepalive: int
    username: str | None = None
    password: bytes | None = None
    will_topic: str | None = None
    will_payload: bytes | None = None
    will_qos: int = 0
    will_retain: bool = False
    properties: Properties = field(default_factory=dict)


@dataclass(slots=True)
class Publish:
    topic: str
    payload: bytes
    qos: int = 0
    packet_id: int = 0
    retain: bool = False
    dup: bool = False
    properties: Properties = field(default_factory=dict)


@dataclass(slots=True)
class Ack:
    """PUBACK, PUBREC, PUBREL or PUBCOMP."""

    kind: int
    packet_id: int
    reason_code: int = SUCCESS


@dataclass(slots=True)
class Subscribe:
    packet_id: int
    topics: list[tuple[str, int]]  # (filter, options byte; QoS in the low two bits)
    properties: Properties = field(default_factory=dict)


@dataclass(slots=True)
class Unsubscribe:
    packet_id: int
    topics: list[str]


@dataclass(slots=True)
class PingReq:
    pass


@dataclass(slots=True)
class Disconnect:
    reason_code: int = SUCCESS
    properties: Properties = field(default_factory=dict)


@dataclass(slots=True)
class Auth:
    reason_code: int = SUCCESS


Packet = Connect | Publish | Ack | Subscribe | Unsubscribe | PingReq | Disconnect | Auth


# ---------------------------------------------------------------------------- decoding


def _u16(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos + 2 > end:
        raise MalformedPacket("truncated two-byte integer")
    return (data[pos] << 8) | data[pos + 1], pos + 2


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = 0
    shift = 0
    for _ in range(4):
        if pos >= end:
            raise MalformedPacket("truncated variable byte integer")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise MalformedPacket("variable byte integer longer than four bytes")


def _binary(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    length, pos = _u16(data, pos, end)
    if pos + length > end:
        raise MalformedPacket("truncated field")
    return data[pos : pos + length], pos + length


def _string(data: bytes, pos: int, end: int) -> tuple[str, int]:
    raw, pos = _binary(data, pos, end)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPacket("string is not valid UTF-8") from exc
    if "\x00" in text:
        raise MalformedPacket("string contains U+0000")
    return text, pos


def _properties(data: bytes, pos: int, end: int) -> tuple[Properties, int]:
    length, pos = _varint(data, pos, end)
    stop = pos + length
    if stop > end:
        raise MalformedPacket("properties longer than the packet")
    props: Properties = {}
    while pos < stop:
        ident, pos = _varint(data, pos, stop)
        kind = _PROPERTY_TYPES.get(ident)
        value: Any
        if kind is None:
            raise MalformedPacket(f"unknown property 0x{ident:02x}")
        if kind == _BYTE:
            if pos >= stop:
                raise MalformedPacket("truncated property")
            value = data[pos]
            pos += 1
        elif kind == _U16:
            value, pos = _u16(data, pos, stop)
        elif kind == _U32:
            if pos + 4 > stop:
                raise MalformedPacket("truncated property")
            value = _U32_STRUCT.unpack_from(data, pos)[0]
            pos += 4
        elif kind == _VARINT:
            value, pos = _varint(data, pos, stop)
        elif kind == _STR:
            value, pos = _string(data, pos, stop)
        elif kind == _BIN:
            value, pos = _binary(data, pos, stop)
        else:
            name, pos = _string(data, pos, stop)
            text, pos = _string(data, pos, stop)
            props.setdefault(ident, []).append((name, text))
            continue
        if ident in props and ident != PROP_SUBSCRIPTION_ID:
            raise MalformedPacket(f"property 0x{ident:02x} given twice", PROTOCOL_ERROR)
        props[ident] = value
    return props, stop


def decode_connect(data: bytes) -> Connect:
    end = len(data)
    name, pos = _string(data, 0, end)
    if pos >= end:
        raise MalformedPacket("truncated CONNECT")
    level = data[pos]
    pos += 1
    if name == "MQIsdp" and level == 3:
        level = MQTT_311  # MQTT 3.1: same packets for what a device sends
    elif name != "MQTT":
        raise MalformedPacket("unknown protocol name", PROTOCOL_ERROR)
    if level not in (MQTT_311, MQTT_5):
        raise MalformedPacket("unsupported protocol level", UNSUPPORTED_PROTOCOL_VERSION)
    if pos >= end:
        raise MalformedPacket("truncated CONNECT")
    flags = data[pos]
    pos += 1
    if flags & 0x01:
        raise MalformedPacket("reserved CONNECT flag set")
    keepalive, pos = _u16(data, pos, end)
    props: Properties = {}
    if level == MQTT_5:
        props, pos = _properties(data, pos, end)
    client_id, pos = _string(data, pos, end)
    will = bool(flags & 0x04)
    will_qos = (flags >> 3) & 0x03
    will_retain = bool(flags & 0x20)
    if not will and (will_qos or will_retain):
        raise MalformedPacket("will QoS/retain without a will")
    if will_qos == 3:
        raise MalformedPacket("will QoS 3")
    connect = Connect(
        protocol_level=level,
        client_id=client_id,
        clean_start=bool(flags & 0x02),
        keepalive=keepalive,
        will_qos=will_qos,
        will_retain=will_retain,
        properties=props,
    )
    if will:
        if level == MQTT_5:
            _, pos = _properties(data, pos, end)
        connect.will_topic, pos = _string(data, pos, end)
        connect.will_payload, pos = _binary(data, pos, end)
    if flags & 0x80:
        connect.username, pos = _string(data, pos, end)
    if flags & 0x40:
        if level == MQTT_311 and not flags & 0x80:
            raise MalformedPacket("password without user name")
        connect.password, pos = _binary(data, pos, end)
    if pos != end:
        raise MalformedPacket("trailing bytes in CONNECT")
    return connect


def decode_publish(flags: int, data: bytes, level: int) -> Publish:
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3")
    end = len(data)
    # The topic, inlined: this is the hot path.
    if end < 2:
        raise MalformedPacket("truncated PUBLISH")
    tlen = (data[0] << 8) | data[1]
    pos = 2 + tlen
    if pos > end:
        raise MalformedPacket("truncated topic")
    try:
        topic = data[2:pos].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPacket("topic is not valid UTF-8") from exc
    packet_id = 0
    if qos:
        if pos + 2 > end:
            raise MalformedPacket("truncated packet identifier")
        packet_id = (data[pos] << 8) | data[pos + 1]
        pos += 2
        if packet_id == 0:
            raise MalformedPacket("packet identifier 0")
    props: Properties
    if level == MQTT_5:
        if pos < end and data[pos] == 0:
            props = {}
            pos += 1
        else:
            props, pos = _properties(data, pos, end)
    else:
        props = {}
    if "\x00" in topic or "+" in topic or "#" in topic:
        raise MalformedPacket("invalid topic name", TOPIC_NAME_INVALID)
    return Publish(
        topic=topic,
        payload=data[pos:],
        qos=qos,
        packet_id=packet_id,
        retain=bool(flags & 0x01),
        dup=bool(flags & 0x08),
        properties=props,
    )


def _decode_ack(kind: int, data: bytes, level: int) -> Ack:
    end = len(data)
    packet_id, pos = _u16(data, 0, end)
    reason = SUCCESS
    if level == MQTT_5 and pos < end:
        reason = data[pos]
        pos += 1
        if pos < end:
            _, pos = _properties(data, pos, end)
    if pos != end:
        raise MalformedPacket("trailing bytes in acknowledgement")
    return Ack(kind, packet_id, reason)


def _decode_subscribe(data: bytes, level: int) -> Subscribe:
    end = len(data)
    packet_id, pos = _u16(data, 0, end)
    if packet_id == 0:
        raise MalformedPacket("packet identifier 0")
    props: Properties = {}
    if level == MQTT_5:
        props, pos = _properties(data, pos, end)
    topics: list[tuple[str, int]] = []
    while pos < end:
        topic, pos = _string(data, pos, end)
        if pos >= end:
            raise MalformedPacket("subscription without options")
        options = data[pos]
        pos += 1
        reserved = 0xC0 if level == MQTT_5 else 0xFC
        if options & reserved or options & 0x03 == 3:
            raise MalformedPacket("invalid subscription options")
        if level == MQTT_5 and (options >> 4) & 0x03 == 3:
            raise MalformedPacket("invalid retain handling")
        topics.append((topic, options))
    if not topics:
        raise MalformedPacket("SUBSCRIBE without topics", PROTOCOL_ERROR)
    return Subscribe(packet_id, topics, props)


def _decode_unsubscribe(data: bytes, level: int) -> Unsubscribe:
    end = len(data)
    packet_id, pos = _u16(data, 0, end)
    if packet_id == 0:
        raise MalformedPacket("packet identifier 0")
    if level == MQTT_5:
        _, pos = _properties(data, pos, end)
    topics: list[str] = []
    while pos < end:
        topic, pos = _string(data, pos, end)
        topics.append(topic)
    if not topics:
        raise MalformedPacket("UNSUBSCRIBE without topics", PROTOCOL_ERROR)
    return Unsubscribe(packet_id, topics)


def _decode_disconnect(data: bytes, level: int) -> Disconnect:
    if level != MQTT_5:
        if data:
            raise MalformedPacket("DISCONNECT with a body")
        return Disconnect()
    end = len(data)
    if not end:
        return Disconnect()
    reason = data[0]
    props: Properties = {}
    pos = 1
    if pos < end:
        props, pos = _properties(data, pos, end)
    if pos != end:
        raise MalformedPacket("trailing bytes in DISCONNECT")
    return Disconnect(reason, props)


# Flags each packet type must carry in its fixed header (PUBLISH's vary).
_REQUIRED_FLAGS = {
    CONNECT: 0,
    PUBACK: 0,
    PUBREC: 0,
    PUBREL: 2,
    PUBCOMP: 0,
    SUBSCRIBE: 2,
    UNSUBSCRIBE: 2,
    PINGREQ: 0,
    DISCONNECT: 0,
    AUTH: 0,
}


def decode_packet(first: int, body: bytes, level: int) -> Packet:
    """One packet from its first byte and its body; `level` is the connection's version
    (0 before CONNECT: then only CONNECT is valid)."""
    kind = first >> 4
    flags = first & 0x0F
    if kind == PUBLISH:
        if not level:
            raise MalformedPacket("first packet is not CONNECT", PROTOCOL_ERROR)
        return decode_publish(flags, body, level)
    required = _REQUIRED_FLAGS.get(kind)
    if required is None:
        raise MalformedPacket(f"packet type {kind} is not sent to a server", PROTOCOL_ERROR)
    if flags != required:
        raise MalformedPacket("invalid fixed-header flags")
    if kind == CONNECT:
        if level:
            raise MalformedPacket("second CONNECT", PROTOCOL_ERROR)
        return decode_connect(body)
    if not level:
        raise MalformedPacket("first packet is not CONNECT", PROTOCOL_ERROR)
    if kind in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        return _decode_ack(kind, body, level)
    if kind == SUBSCRIBE:
        return _decode_subscribe(body, level)
    if kind == UNSUBSCRIBE:
        return _decode_unsubscribe(body, level)
    if kind == PINGREQ:
        if body:
            raise MalformedPacket("PINGREQ with a body")
        return PingReq()
    if kind == DISCONNECT:
        return _decode_disconnect(body, level)
    if level != MQTT_5:
        raise MalformedPacket("AUTH in MQTT 3.1.1", PROTOCOL_ERROR)
    reason = body[0] if body else SUCCESS
    if len(body) > 1:
        _, pos = _properties(body, 1, len(body))
        if pos != len(body):
            raise MalformedPacket("trailing bytes in AUTH")
    return Auth(reason)


class PacketReader:
    """Splits a byte stream into packets. `level` is set by the caller after CONNECT."""

    def __init__(self, max_packet_size: int) -> None:
        self.max_packet_size = max_packet_size
        self.level = 0
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Packet]:
        buf = self._buffer
        buf += data
        packets: list[Packet] = []
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            first = buf[pos]
            # Remaining length (variable byte integer), inlined.
            length = 0
            shift = 0
            i = pos + 1
            while True:
                if i >= size:
                    length = -1
                    break
                byte = buf[i]
                i += 1
                length |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise MalformedPacket("remaining length longer than four bytes")
            if length < 0:
                break
            if i - pos + length > self.max_packet_size:
                raise MalformedPacket("packet larger than allowed", PACKET_TOO_LARGE)
            stop = i + length
            if stop > size:
                break
            packet = decode_packet(first, bytes(buf[i:stop]), self.level)
            if isinstance(packet, Connect):
                self.level = packet.protocol_level
            packets.append(packet)
            pos = stop
        if pos:
            del buf[:pos]
        return packets

    @property
    def buffered(self) -> int:
        return len(self._buffer)


# ---------------------------------------------------------------------------- encoding


def _encode_varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _encode_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return _U16_STRUCT.pack(len(raw)) + raw


def encode_properties(props: Properties) -> bytes:
    out = bytearray()
    for ident, value in props.items():
        kind = _PROPERTY_TYPES[ident]
        if kind == _PAIR:
            for name, text in value:
                out += _encode_varint(ident) + _encode_string(name) + _encode_string(text)
            continue
        out += _encode_varint(ident)
        if kind == _BYTE:
            out.append(value)
        elif kind == _U16:
            out += _U16_STRUCT.pack(value)
        elif kind == _U32:
            out += _U32_STRUCT.pack(value)
        elif kind == _VARINT:
            out += _encode_varint(value)
        elif kind == _STR:
            out += _encode_string(value)
        else:
            out += _U16_STRUCT.pack(len(value)) + value
    return _encode_varint(len(out)) + bytes(out)


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + _encode_varint(len(body)) + body


def encode_connack(
    level: int, session_present: bool, code: int, props: Properties | None = None
) -> bytes:
    body = bytes((1 if session_present else 0, code))
    if level == MQTT_5:
        body += encode_properties(props or {})
    return _packet(CONNACK << 4, body)


def encode_ack(
    kind: int, packet_id: int, level: int, reason: int = SUCCESS, why: str = ""
) -> bytes:
    """PUBACK, PUBREC, PUBREL or PUBCOMP."""
    first = (kind << 4) | (2 if kind == PUBREL else 0)
    if level != MQTT_5 or (reason == SUCCESS and not why):
        return bytes((first, 2, packet_id >> 8, packet_id & 0xFF))
    body = _U16_STRUCT.pack(packet_id) + bytes((reason,))
    if why:
        body += encode_properties({PROP_REASON_STRING: why})
    return _packet(first, body)


def encode_publish(
    topic: str,
    payload: bytes,
    qos: int,
    packet_id: int,
    level: int,
    *,
    retain: bool = False,
    dup: bool = False,
) -> bytes:
    raw = topic.encode("utf-8")
    body = _U16_STRUCT.pack(len(raw)) + raw
    if qos:
        body += _U16_STRUCT.pack(packet_id)
    if level == MQTT_5:
        body += b"\x00"
    body += payload
    first = (PUBLISH << 4) | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    return _packet(first, body)


def encode_suback(packet_id: int, codes: list[int], level: int) -> bytes:
    body = _U16_STRUCT.pack(packet_id)
    if level == MQTT_5:
        body += b"\x00"
    return _packet(SUBACK << 4, body + bytes(codes))


def encode_unsuback(packet_id: int, codes: list[int], level: int) -> bytes:
    body = _U16_STRUCT.pack(packet_id)
    if level == MQTT_5:
        body += b"\x00" + bytes(codes)
    return _packet(UNSUBACK << 4, body)


PINGRESP_PACKET = bytes((PINGRESP << 4, 0))


def encode_disconnect(level: int, reason: int, why: str = "") -> bytes | None:
    """A server DISCONNECT exists only in MQTT 5; None for 3.1.1 (just close)."""
    if level != MQTT_5:
        return None
    body = bytes((reason,))
    if why:
        body += encode_properties({PROP_REASON_STRING: why})
    return _packet(DISCONNECT << 4, body)


# Used by tests and tools to build client packets.
def encode_client_connect(connect: Connect) -> bytes:
    level = connect.protocol_level
    flags = 0x02 if connect.clean_start else 0
    body = _encode_string("MQTT") + bytes((level,))
    if connect.will_topic is not None:
        flags |= 0x04 | (connect.will_qos << 3) | (0x20 if connect.will_retain else 0)
    if connect.username is not None:
        flags |= 0x80
    if connect.password is not None:
        flags |= 0x40
    body += bytes((flags,)) + _U16_STRUCT.pack(connect.keepalive)
    if level == MQTT_5:
        body += encode_properties(connect.properties)
    body += _encode_string(connect.client_id)
    if connect.will_topic is not None:
        if level == MQTT_5:
            body += b"\x00"
        body += _encode_string(connect.will_topic)
        payload = connect.will_payload or b""
        body += _U16_STRUCT.pack(len(payload)) + payload
    if connect.username is not None:
        body += _encode_string(connect.username)
    if connect.password is not None:
        body += _U16_STRUCT.pack(len(connect.password)) + connect.password
    return _packet(CONNECT << 4, body)


def encode_client_publish(publish: Publish, level: int) -> bytes:
    raw = publish.topic.encode("utf-8")
    body = _U16_STRUCT.pack(len(raw)) + raw
    if publish.qos:
        body += _U16_STRUCT.pack(publish.packet_id)
    if level == MQTT_5:
        body += encode_properties(publish.properties)
    body += publish.payload
    first = (
        (PUBLISH << 4)
        | (publish.qos << 1)
        | (0x08 if publish.dup else 0)
        | (0x01 if publish.retain else 0)
    )
    return _packet(first, body)


def encode_client_subscribe(subscribe: Subscribe, level: int) -> bytes:
    body = _U16_STRUCT.pack(subscribe.packet_id)
    if level == MQTT_5:
        body += encode_properties(subscribe.properties)
    for topic, options in subscribe.topics:
        body += _encode_string(topic) + bytes((options,))
    return _packet((SUBSCRIBE << 4) | 2, body)
