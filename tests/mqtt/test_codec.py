"""The MQTT codec: round trips, arbitrary chunking, and fuzzing (only MalformedPacket escapes)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iiot.mqtt import codec
from iiot.mqtt.codec import MQTT_5, MQTT_311, MalformedPacket, PacketReader

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)
topic_names = text.filter(lambda t: "+" not in t and "#" not in t)
levels = st.sampled_from([MQTT_311, MQTT_5])


@st.composite
def connects(draw: st.DrawFn) -> codec.Connect:
    level = draw(levels)
    will = draw(st.booleans())
    username = draw(st.one_of(st.none(), text))
    password = draw(st.one_of(st.none(), st.binary(max_size=20)))
    if level == MQTT_311 and username is None:
        password = None
    return codec.Connect(
        protocol_level=level,
        client_id=draw(text),
        clean_start=draw(st.booleans()),
        keepalive=draw(st.integers(0, 65535)),
        username=username,
        password=password,
        will_topic=draw(topic_names) if will else None,
        will_payload=draw(st.binary(max_size=30)) if will else None,
        will_qos=draw(st.integers(0, 2)) if will else 0,
        will_retain=draw(st.booleans()) if will else False,
        properties=(
            {codec.PROP_SESSION_EXPIRY: draw(st.integers(0, 2**32 - 1))}
            if level == MQTT_5 and draw(st.booleans())
            else {}
        ),
    )


@st.composite
def publishes(draw: st.DrawFn) -> codec.Publish:
    qos = draw(st.integers(0, 2))
    return codec.Publish(
        topic=draw(topic_names),
        payload=draw(st.binary(max_size=200)),
        qos=qos,
        packet_id=draw(st.integers(1, 65535)) if qos else 0,
        retain=draw(st.booleans()),
        dup=draw(st.booleans()) if qos else False,
    )


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return out


@FUZZ
@given(connects(), st.lists(publishes(), max_size=5), st.lists(st.integers(0, 10_000)))
def test_round_trip_in_any_chunking(
    connect: codec.Connect, items: list[codec.Publish], cuts: list[int]
) -> None:
    level = connect.protocol_level
    stream = codec.encode_client_connect(connect) + b"".join(
        codec.encode_client_publish(p, level) for p in items
    )
    reader = PacketReader(1 << 20)
    got: list[codec.Packet] = []
    for part in chunks(stream, cuts):
        got.extend(reader.feed(part))
    assert got[0] == connect
    assert got[1:] == items
    assert reader.buffered == 0


@FUZZ
@given(
    levels,
    st.integers(1, 65535),
    st.lists(st.tuples(topic_names.filter(bool), st.integers(0, 2)), min_size=1, max_size=4),
)
def test_subscribe_round_trip(level: int, packet_id: int, subs: list[tuple[str, int]]) -> None:
    reader = PacketReader(1 << 20)
    reader.level = level
    packet = codec.Subscribe(packet_id, subs)
    assert reader.feed(codec.encode_client_subscribe(packet, level)) == [packet]


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([0, MQTT_311, MQTT_5]))
def test_random_bytes_only_raise_malformed(data: bytes, level: int) -> None:
    reader = PacketReader(4096)
    reader.level = level
    reason = None
    try:
        reader.feed(data)
    except MalformedPacket as exc:
        reason = exc.reason_code
    assert reason is None or reason >= 0x80


@FUZZ
@given(connects(), publishes(), st.integers(0, 10_000), st.integers(0, 255))
def test_mutated_packets_only_raise_malformed(
    connect: codec.Connect, publish: codec.Publish, where: int, byte: int
) -> None:
    level = connect.protocol_level
    stream = bytearray(
        codec.encode_client_connect(connect) + codec.encode_client_publish(publish, level)
    )
    stream[where % len(stream)] = byte
    reader = PacketReader(1 << 16)
    try:
        for packet in reader.feed(bytes(stream)):
            assert isinstance(
                packet,
                codec.Connect
                | codec.Publish
                | codec.Ack
                | codec.PingReq
                | codec.Disconnect
                | codec.Subscribe
                | codec.Unsubscribe
                | codec.Auth,
            )
    except MalformedPacket:
        pass


def test_first_packet_must_be_connect() -> None:
    reader = PacketReader(4096)
    with pytest.raises(MalformedPacket) as info:
        reader.feed(codec.encode_client_publish(codec.Publish("a", b"x"), MQTT_311))
    assert info.value.reason_code == codec.PROTOCOL_ERROR


def test_oversized_packet_is_refused_before_its_body_arrives() -> None:
    reader = PacketReader(1024)
    reader.level = MQTT_5
    header = bytes((codec.PUBLISH << 4,)) + codec._encode_varint(5000)
    with pytest.raises(MalformedPacket) as info:
        reader.feed(header)
    assert info.value.reason_code == codec.PACKET_TOO_LARGE


def test_remaining_length_of_five_bytes_is_malformed() -> None:
    reader = PacketReader(1 << 30)
    with pytest.raises(MalformedPacket):
        reader.feed(b"\x10\xff\xff\xff\xff\x01")


def test_server_packets_have_the_wire_format() -> None:
    assert codec.encode_connack(MQTT_311, False, 5) == b"\x20\x02\x00\x05"
    assert codec.encode_ack(codec.PUBACK, 258, MQTT_311) == b"\x40\x02\x01\x02"
    assert (
        codec.encode_ack(codec.PUBACK, 1, MQTT_5, codec.QUOTA_EXCEEDED) == b"\x40\x03\x00\x01\x97"
    )
    assert codec.encode_suback(7, [1, 0x80], MQTT_311) == b"\x90\x04\x00\x07\x01\x80"
    assert codec.encode_publish("a/b", b"{}", 1, 9, MQTT_5) == b"\x32\x0a\x00\x03a/b\x00\x09\x00{}"
    assert codec.encode_disconnect(MQTT_311, 0x8D) is None
