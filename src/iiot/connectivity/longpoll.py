"""The HTTP long-poll: one request of a device waiting for one RPC request or one shared
attribute update, as a `DeviceSession` of the hub for as long as it waits."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from iiot.connectivity.identity import DeviceIdentity


@dataclass(frozen=True, slots=True)
class RpcRequest:
    id: int
    method: str
    params: Any


@dataclass(frozen=True, slots=True)
class AttributeUpdate:
    shared: dict[str, Any]
    deleted: list[str]


class LongPollSession:
    """Takes the first RPC request (mode `rpc`) or attribute update (mode `attributes`)
    pushed to it; `wait` returns it, or None after the timeout or when closed."""

    def __init__(self, identity: DeviceIdentity, mode: Literal["rpc", "attributes"]) -> None:
        self.device_id: uuid.UUID = identity.device_id
        self.tenant_id: uuid.UUID = identity.tenant_id
        self.mode = mode
        self._result: asyncio.Future[RpcRequest | AttributeUpdate | None] = (
            asyncio.get_running_loop().create_future()
        )
        self.closed_reason: str | None = None

    async def push_attributes(self, shared: dict[str, Any], deleted: list[str]) -> None:
        if self.mode == "attributes" and not self._result.done():
            self._result.set_result(AttributeUpdate(shared=shared, deleted=deleted))

    async def push_rpc_request(self, request_id: int, method: str, params: Any) -> bool:
        if self.mode != "rpc" or self._result.done():
            return False
        self._result.set_result(RpcRequest(id=request_id, method=method, params=params))
        return True

    async def close(self, reason: str) -> None:
        self.closed_reason = reason
        if not self._result.done():
            self._result.set_result(None)

    async def wait(self, timeout: float) -> RpcRequest | AttributeUpdate | None:
        try:
            return await asyncio.wait_for(asyncio.shield(self._result), timeout)
        except TimeoutError:
            if self._result.done():
                return self._result.result()
            self._result.cancel()
            return None
