"""Wire format of devices and device credentials."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

# Upper bound on the serialised size of `config` and `metadata` each.
MAX_JSON_BYTES = 16_384

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]
TypeName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]
Protocol = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)]


def _bounded_json(value: dict[str, Any]) -> dict[str, Any]:
    if len(orjson.dumps(value)) > MAX_JSON_BYTES:
        raise ValueError(f"must serialise to at most {MAX_JSON_BYTES} bytes")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_bounded_json)]

# Written status: `disabled` stops the device's ingest; `enabled` (or the read values `online`
# and `offline`) enables it again. Read status is derived from `last_seen`.
WritableStatus = Literal["enabled", "disabled", "online", "offline"]
DeviceStatus = Literal["online", "offline", "disabled"]


class DeviceIn(BaseModel):
    """A full device description (POST and PUT)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    type: TypeName | None = None
    location: ShortText | None = None
    area: Label | None = None
    protocol: Protocol | None = None
    config: JsonObject = Field(default_factory=dict)
    metadata: JsonObject = Field(default_factory=dict)
    status: WritableStatus = "enabled"
    is_gateway: bool = Field(
        default=False, description="A gateway speaks for sub-devices it names (ThingsBoard API)"
    )


class DevicePatch(BaseModel):
    """Any subset of a device's fields (PATCH)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    type: TypeName | None = None
    location: ShortText | None = None
    area: Label | None = None
    protocol: Protocol | None = None
    config: JsonObject | None = None
    metadata: JsonObject | None = None
    status: WritableStatus | None = None
    is_gateway: bool | None = None


class LatestValue(BaseModel):
    value: float | bool | str | None
    ts: datetime
    unit: str | None = None
    quality: str | None = None


class DeviceOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    type: str | None
    location: str | None
    area: str | None
    protocol: str | None
    config: dict[str, Any]
    metadata: dict[str, Any]
    status: DeviceStatus
    last_seen: datetime | None
    is_gateway: bool
    gateway_id: uuid.UUID | None = Field(
        description="The gateway that created this sub-device and speaks for it"
    )
    created_at: datetime
    updated_at: datetime


class DeviceDetail(DeviceOut):
    latest_telemetry: dict[str, LatestValue]


class DeviceCreated(DeviceOut):
    """A new device with its first token, shown only in this response."""

    token: str


class DeviceList(BaseModel):
    devices: list[DeviceOut]
    total: int
    limit: int
    offset: int


class CredentialOut(BaseModel):
    """A new device token, shown only in this response; the previous one is revoked."""

    id: uuid.UUID
    device_id: uuid.UUID
    token: str
    created_at: datetime
    revoked: int = Field(description="How many earlier tokens this revoked")
