"""Problems of the device API (rendered as problem details like every IIoTError)."""

from __future__ import annotations

from iiot.errors import Conflict, IIoTError


class DeviceOffline(Conflict):
    code, title = "device_offline", "Device offline"


class RpcTimeout(IIoTError):
    status, code, title = 504, "rpc_timeout", "RPC timed out"


class PollTimeout(IIoTError):
    """An RPC long-poll ended without a request (ThingsBoard answers 408 as well)."""

    status, code, title = 408, "no_rpc_request", "No RPC request within the timeout"
