"""Wire format of API keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from iiot.validation import BoundedDatetime

ApiKeyScope = Literal["telemetry:write", "read", "manage"]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    scopes: list[ApiKeyScope] = Field(min_length=1, max_length=3)
    expires_at: BoundedDatetime | None = Field(
        default=None, description="Optional expiry (RFC 3339 with a time zone)"
    )


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    created_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret, shown only in this response")


class ApiKeyList(BaseModel):
    api_keys: list[ApiKeyOut]
    total: int
