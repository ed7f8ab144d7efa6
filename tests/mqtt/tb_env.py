"""The separate virtual environment holding the ThingsBoard clients.

tb-mqtt-client ships its own fork of paho (`tb-paho-mqtt-client`, same `paho` package name) and
the ThingsBoard IoT Gateway pins its own versions of many packages (pymodbus 3.9.2 for the
Modbus connector), so they live in `.venv-tb` beside the project's `.venv`, made by
`make .venv-tb/.installed` (which `make test` runs first). A test that needs it creates it the
same way if it is missing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TB_VENV = ROOT / ".venv-tb"
TB_STAMP = TB_VENV / ".installed"
TB_PYTHON = TB_VENV / "bin" / "python"
SCENARIO = Path(__file__).resolve().parent / "tb_sdk_scenario.py"


def tb_python() -> Path:
    if not TB_STAMP.exists():
        subprocess.run(  # noqa: S603
            ["make", "-C", str(ROOT), ".venv-tb/.installed"],  # noqa: S607
            check=True,
        )
    return TB_PYTHON


def tb_gateway_command() -> list[str]:
    return [str(TB_VENV / "bin" / "thingsboard-gateway")]
