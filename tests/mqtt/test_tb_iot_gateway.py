"""The ThingsBoard IoT Gateway (thingsboard-gateway from PyPI, unmodified, headless) with its
Modbus connector reading a pymodbus device: the register value becomes telemetry of a
sub-device the gateway's first message creates, and is queryable over REST."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from iiot.mqtt.server import MqttServer
from tests.devices.support import make_device
from tests.fixtures.factories import Factory
from tests.fixtures.ports import free_port
from tests.mqtt.conftest import port_of
from tests.mqtt.tb_env import tb_python

pytestmark = pytest.mark.timeout(120)

HERE = Path(__file__).resolve().parent
REGISTER_VALUE = 1234
DEVICE_NAME = "Modbus Pump"


def gateway_config(mqtt_port: int, token: str, modbus_port: int) -> dict[str, Any]:
    return {
        "thingsboard": {
            "host": "127.0.0.1",
            "port": mqtt_port,
            "remoteShell": False,
            "remoteConfiguration": False,
            "statistics": {"enable": False, "statsSendPeriodInSeconds": 3600},
            "deviceFiltering": {"enable": False},
            "maxPayloadSizeBytes": 8196,
            "minPackSendDelayMS": 50,
            "minPackSizeToSend": 500,
            "checkConnectorsConfigurationInSeconds": 60,
            "handleDeviceRenaming": True,
            "security": {"type": "accessToken", "accessToken": token},
            "qos": 1,
            "reportStrategy": {"type": "ON_RECEIVED"},
            "checkingDeviceActivity": {"checkDeviceInactivity": False},
        },
        "storage": {"type": "memory", "read_records_count": 100, "max_records_count": 100000},
        "grpc": {"enabled": False},
        "connectors": [{"type": "modbus", "name": "Modbus", "configuration": "modbus.json"}],
    }


def modbus_config(modbus_port: int) -> dict[str, Any]:
    return {
        "master": {
            "slaves": [
                {
                    "host": "127.0.0.1",
                    "port": modbus_port,
                    "type": "tcp",
                    "method": "socket",
                    "unitId": 1,
                    "deviceName": DEVICE_NAME,
                    "deviceType": "pump",
                    "timeout": 5,
                    "byteOrder": "BIG",
                    "wordOrder": "BIG",
                    "retries": 3,
                    "pollPeriod": 500,
                    "connectAttemptTimeMs": 500,
                    "connectAttemptCount": 5,
                    "waitAfterFailedAttemptsMs": 1000,
                    "attributes": [],
                    "timeseries": [
                        {
                            "tag": "pressure",
                            "type": "16int",
                            "functionCode": 3,
                            "objectsCount": 1,
                            "address": 0,
                        }
                    ],
                    "attributeUpdates": [],
                    "rpc": [],
                }
            ]
        }
    }


def logs_config(directory: Path) -> dict[str, Any]:
    """The gateway's logging, all to one file in the test's directory."""
    names = [
        "database",
        "service",
        "connector",
        "converter",
        "tb_connection",
        "storage",
        "extension",
    ]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "formatter": "plain",
                "filename": str(directory / "gateway.log"),
            }
        },
        "loggers": {n: {"handlers": ["file"], "level": "INFO", "propagate": False} for n in names},
        "root": {"level": "WARNING", "handlers": ["file"]},
    }


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()


@pytest.fixture
async def workdir() -> AsyncIterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="iiot-tbgw-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_iot_gateway_modbus_register_becomes_sub_device_telemetry(
    mqtt: MqttServer, factory: Factory, workdir: Path
) -> None:
    tenant = await factory.tenant()
    developer = await factory.member(tenant, "developer")
    gateway = await make_device(factory, developer, name="Edge gateway", is_gateway=True)
    python = str(tb_python())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    modbus_port = free_port()
    simulator = await asyncio.create_subprocess_exec(
        python,
        str(HERE / "modbus_sim.py"),
        str(modbus_port),
        str(REGISTER_VALUE),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    assert simulator.stdout is not None
    config = workdir / "config"
    config.mkdir()
    (config / "tb_gateway.json").write_text(
        json.dumps(gateway_config(port_of(mqtt), gateway.token, modbus_port))
    )
    (config / "modbus.json").write_text(json.dumps(modbus_config(modbus_port)))
    (config / "logs.json").write_text(json.dumps(logs_config(workdir)))
    (workdir / "logs").mkdir()
    gw_process = None
    try:
        line = await asyncio.wait_for(simulator.stdout.readline(), 15)
        assert line.strip() == b"listening"
        gw_process = await asyncio.create_subprocess_exec(
            python,
            "-c",
            "from thingsboard_gateway.tb_gateway import main; main()",
            cwd=workdir,
            env={**env, "TB_GW_CONFIG_DIR": str(config)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        # The gateway connects, asks getSessionLimits, starts the connector, polls the
        # register and sends it: the sub-device appears with its telemetry.
        deadline = time.monotonic() + 60
        value = None
        sub_id = None
        while time.monotonic() < deadline and value is None:
            await asyncio.sleep(0.5)
            assert gw_process.returncode is None, (workdir / "gateway.log").read_text()[-3000:]
            r = await developer.client.get("/api/v1/devices", params={"limit": 100})
            found = [d for d in r.json()["devices"] if d["name"] == DEVICE_NAME]
            if not found:
                continue
            sub_id = uuid.UUID(found[0]["id"])
            r = await developer.client.get(
                "/api/v1/telemetry/latest", params={"device_id": str(sub_id)}
            )
            assert r.status_code == 200, r.text
            for item in r.json()["values"]:
                if item.get("key") == "pressure":
                    value = item.get("value")
        log = (workdir / "gateway.log").read_text() if (workdir / "gateway.log").exists() else ""
        assert sub_id is not None, f"no sub-device created; gateway log:\n{log[-3000:]}"
        assert value == REGISTER_VALUE, f"telemetry not found; gateway log:\n{log[-3000:]}"
        r = await developer.client.get(f"/api/v1/devices/{sub_id}")
        assert r.json()["type"] == "pump"
    finally:
        if gw_process is not None:
            await stop(gw_process)
        await stop(simulator)
