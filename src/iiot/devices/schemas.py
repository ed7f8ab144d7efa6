"""Wire format of devices and device credentials."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from iiot.validation import JsonObject as BoundedJsonObject
from iiot.validation import check_json

# Upper bound on the serialised size of `config` and `metadata` each.
MAX_JSON_BYTES = 16_384

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]
TypeName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]
Protocol = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)]


def _device_json(value: dict[str, Any]) -> dict[str, Any]:
    return check_json(value, max_bytes=MAX_JSON_BYTES)  # type: ignore[no-any-return]


JsonObject = Annotated[BoundedJsonObject, AfterValidator(_device_json)]

# A device has two separate states. Its administrative state, `enabled` (true/false), is what a
# user sets: a disabled device's ingest is refused. Its connectivity, `online`/`offline`, is
# derived from when it was last heard from. The original clients' single `status` field is
# kept, readable and writable: it reads `disabled` for a disabled device and the connectivity
# otherwise; written, `disabled` disables and `enabled` (or `online`/`offline`) enables.
WritableStatus = Literal["enabled", "disabled", "online", "offline"]
DeviceStatus = Literal["online", "offline", "disabled"]
Connectivity = Literal["online", "offline"]


class _AdminState(BaseModel):
    @model_validator(mode="after")
    def _enabled_agrees_with_status(self) -> _AdminState:
        enabled: bool | None = getattr(self, "enabled", None)
        status: str | None = getattr(self, "status", None)
        sent_both = enabled is not None and "status" in self.model_fields_set
        if sent_both and status is not None and enabled != (status != "disabled"):
            raise ValueError("enabled and status disagree: send one of them")
        return self

    def written_enabled(self) -> bool | None:
        """The administrative state this body asks for, from `enabled` or the legacy `status`."""
        enabled: bool | None = getattr(self, "enabled", None)
        if enabled is not None:
            return enabled
        status: str | None = getattr(self, "status", None)
        return None if status is None else status != "disabled"


class DeviceIn(_AdminState):
    """A full device description (POST and PUT)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    type: TypeName | None = None
    location: ShortText | None = None
    area: Label | None = None
    protocol: Protocol | None = None
    config: JsonObject = Field(default_factory=dict)
    metadata: JsonObject = Field(default_factory=dict)
    enabled: bool | None = Field(default=None, description="Administrative state")
    status: WritableStatus = Field(default="enabled", description="Legacy: prefer `enabled`")
    is_gateway: bool = Field(
        default=False, description="A gateway speaks for sub-devices it names (ThingsBoard API)"
    )


class DevicePatch(_AdminState):
    """Any subset of a device's fields (PATCH)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    type: TypeName | None = None
    location: ShortText | None = None
    area: Label | None = None
    protocol: Protocol | None = None
    config: JsonObject | None = None
    metadata: JsonObject | None = None
    enabled: bool | None = Field(default=None, description="Administrative state")
    status: WritableStatus | None = Field(default=None, description="Legacy: prefer `enabled`")
    is_gateway: bool | None = None


class LatestValue(BaseModel):
    value: float | bool | str | None
    ts: datetime
    unit: str | None = None
    quality: str | None = None


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    type: str | None
    location: str | None
    area: str | None
    protocol: str | None
    config: dict[str, Any]
    metadata: dict[str, Any]
    enabled: bool = Field(description="Administrative state: a disabled device may not ingest")
    connectivity: Connectivity = Field(description="Heard from within the last few minutes")
    status: DeviceStatus = Field(
        description="Legacy summary: `disabled` when not enabled, the connectivity otherwise"
    )
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
