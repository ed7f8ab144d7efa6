"""Wire format of attributes and RPC calls for users."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from iiot.validation import JsonValue

DEFAULT_RPC_TIMEOUT_MS = 10_000
MAX_RPC_TIMEOUT_MS = 60_000
MIN_RPC_TIMEOUT_MS = 100
MAX_RPC_PARAMS_BYTES = 65_536

RpcStatus = Literal["queued", "delivered", "successful", "timeout", "offline"]


class AttributeValue(BaseModel):
    value: Any
    updated_at: datetime


class DeviceAttributes(BaseModel):
    """A device's attributes by scope: key -> value and the time it was last written."""

    client: dict[str, AttributeValue]
    shared: dict[str, AttributeValue]
    server: dict[str, AttributeValue]


def _bounded_params(value: Any) -> Any:
    if len(orjson.dumps(value)) > MAX_RPC_PARAMS_BYTES:
        raise ValueError(f"must serialise to at most {MAX_RPC_PARAMS_BYTES} bytes")
    return value


class RpcIn(BaseModel):
    """A call to a device. Two-way waits for the device's reply; one-way only for delivery."""

    model_config = ConfigDict(extra="forbid")

    method: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    params: Annotated[JsonValue, AfterValidator(_bounded_params)] = None
    timeout_ms: int = Field(
        default=DEFAULT_RPC_TIMEOUT_MS, ge=MIN_RPC_TIMEOUT_MS, le=MAX_RPC_TIMEOUT_MS
    )
    oneway: bool = False


class RpcOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="The request id the device sees")
    device_id: uuid.UUID
    method: str
    params: Any
    oneway: bool
    status: RpcStatus
    timeout_ms: int
    response: Any = Field(description="The device's reply (two-way calls)")
    created_at: datetime
    expires_at: datetime
    delivered_at: datetime | None
    completed_at: datetime | None


class RpcList(BaseModel):
    rpc: list[RpcOut]
    total: int
    limit: int
    offset: int
