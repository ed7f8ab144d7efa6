"""ThingsBoard's MQTT topics (device API `v1/devices/me/...`, gateway API `v1/gateway/...`)."""

from __future__ import annotations

DEVICE_PREFIX = "v1/devices/me/"
TELEMETRY = "v1/devices/me/telemetry"
ATTRIBUTES = "v1/devices/me/attributes"
ATTRIBUTES_REQUEST = "v1/devices/me/attributes/request/"
ATTRIBUTES_RESPONSE = "v1/devices/me/attributes/response/"
RPC_REQUEST = "v1/devices/me/rpc/request/"
RPC_RESPONSE = "v1/devices/me/rpc/response/"

GATEWAY_PREFIX = "v1/gateway/"
GATEWAY_CONNECT = "v1/gateway/connect"
GATEWAY_DISCONNECT = "v1/gateway/disconnect"
GATEWAY_TELEMETRY = "v1/gateway/telemetry"
GATEWAY_ATTRIBUTES = "v1/gateway/attributes"
GATEWAY_ATTRIBUTES_REQUEST = "v1/gateway/attributes/request"
GATEWAY_ATTRIBUTES_RESPONSE = "v1/gateway/attributes/response"
GATEWAY_RPC = "v1/gateway/rpc"

# Subscriptions are accepted under these roots (ThingsBoard's v1 and v2 topic families); the
# server publishes only on the topics above.
SUBSCRIBABLE_ROOTS = ("v1/", "v2/")


def valid_filter(topic_filter: str) -> bool:
    """A syntactically valid topic filter (`+` a whole level, `#` the whole last level)."""
    if not topic_filter or "\x00" in topic_filter:
        return False
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def matches(topic_filter: str, topic: str) -> bool:
    if topic_filter == topic:
        return True
    if "+" not in topic_filter and "#" not in topic_filter:
        return False
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    for index, level in enumerate(f_levels):
        if level == "#":
            return True
        if index >= len(t_levels):
            return False
        if level != "+" and level != t_levels[index]:
            return False
    return len(f_levels) == len(t_levels)


def request_id(topic: str, prefix: str) -> int | None:
    """The numeric request id ending a topic such as `.../rpc/request/42`."""
    tail = topic[len(prefix) :]
    if not tail.isdigit() or len(tail) > 18:
        return None
    return int(tail)
