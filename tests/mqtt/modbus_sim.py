"""A Modbus TCP device for the ThingsBoard IoT Gateway test (pymodbus 3.9.2, in `.venv-tb`).

    python modbus_sim.py PORT VALUE

Holding registers 0-9 hold VALUE; prints `listening` once the port is open.
"""

from __future__ import annotations

import asyncio
import sys

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.server import StartAsyncTcpServer


async def serve(port: int, value: int) -> None:
    # Address 0 of the request is element 1 of the block (pymodbus counts from 1).
    # (pymodbus 3.9.2 takes the other blocks only when `di` is given too.)
    device = ModbusSlaveContext(
        di=ModbusSequentialDataBlock(0, [0] * 11),
        co=ModbusSequentialDataBlock(0, [0] * 11),
        ir=ModbusSequentialDataBlock(0, [0] * 11),
        hr=ModbusSequentialDataBlock(0, [value] * 11),
    )
    context = ModbusServerContext(slaves=device, single=True)
    loop = asyncio.get_running_loop()
    loop.call_later(0.5, lambda: print("listening", flush=True))
    await StartAsyncTcpServer(context=context, address=("127.0.0.1", port))


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2])))
