"""Runs the ThingsBoard Python SDK (tb-mqtt-client, unmodified) against an iiot MQTT port.

Run with the interpreter of the separate ThingsBoard venv (`.venv-tb`, see the Makefile):

    python tb_sdk_scenario.py device|gateway HOST PORT TOKEN

Prints one JSON object per line (`{"event": ..., ...}`) for the test to read, `ready` once the
device-initiated part is done; then serves server-side RPC and attribute pushes until its
standard input closes (or 20 s pass).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from tb_device_mqtt import TBDeviceMqttClient
from tb_gateway_mqtt import TBGatewayMqttClient

lock = threading.Lock()


def emit(event: str, **data: Any) -> None:
    with lock:
        print(json.dumps({"event": event, **data}, default=str), flush=True)


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def wait_stdin_closed() -> None:
    done = threading.Event()

    def read() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(20)


def device(host: str, port: int, token: str) -> None:
    client = TBDeviceMqttClient(host, port, username=token)

    def on_rpc(request_id: str, body: dict[str, Any]) -> None:
        emit("rpc", id=request_id, body=body)
        client.send_rpc_reply(request_id, {"echo": body.get("params")})

    client.set_server_side_rpc_request_handler(on_rpc)
    client.subscribe_to_all_attributes(lambda result, *_: emit("attributes_push", data=result))
    client.connect()
    emit("connected", ok=wait_for(client.is_connected))
    emit("session_limits", received=wait_for(lambda: client.rate_limits_received))
    info = client.send_telemetry({"sdk_temp": 21.5})
    emit("telemetry", rc=info.get())
    info = client.send_telemetry({"ts": int(time.time() * 1000) - 1000, "values": {"sdk_n": "7"}})
    emit("telemetry", rc=info.get())
    emit("attributes", rc=client.send_attributes({"sdk_attr": "x"}).get())
    got: dict[str, Any] = {}
    client.request_attributes(["sdk_attr"], None, lambda result, *_: got.update(result or {}))
    wait_for(lambda: bool(got))
    emit("attribute_response", data=got)
    limits: dict[str, Any] = {}
    client.send_rpc_call(
        "getSessionLimits", {}, lambda _id, result, *_: limits.update(result or {})
    )
    wait_for(lambda: bool(limits))
    emit("client_rpc", data=limits)
    emit("ready")
    wait_stdin_closed()
    client.disconnect()


def gateway(host: str, port: int, token: str) -> None:
    gw = TBGatewayMqttClient(host, port, username=token)

    def on_rpc(client: Any, content: dict[str, Any]) -> None:
        emit("rpc", body=content)
        gw.gw_send_rpc_reply(content["device"], content["data"]["id"], {"done": True})

    gw.gw_set_server_side_rpc_request_handler(on_rpc)
    gw.gw_subscribe_to_all_attributes(lambda content, *_: emit("attributes_push", data=content))
    gw.connect()
    emit("connected", ok=wait_for(gw.is_connected))
    emit("session_limits", received=wait_for(lambda: gw.rate_limits_received))
    emit("device_connect", rc=gw.gw_connect_device("SDK Pump", "sdk-pump").get())
    now = int(time.time() * 1000)
    info = gw.gw_send_telemetry("SDK Pump", {"ts": now, "values": {"flow": 3.5}})
    emit("telemetry", rc=info.get())
    emit("attributes", rc=gw.gw_send_attributes("SDK Pump", {"vendor": "acme"}).get())
    got: dict[str, Any] = {}
    gw.gw_request_client_attributes("SDK Pump", ["vendor"], lambda result, *_: got.update(result))
    wait_for(lambda: bool(got))
    emit("attribute_response", data=got)
    emit("ready")
    wait_stdin_closed()
    gw.disconnect()


if __name__ == "__main__":
    kind, host, port, token = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    (device if kind == "device" else gateway)(host, port, token)
