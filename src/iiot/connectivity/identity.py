"""Who a device session speaks for."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """An authenticated device, or a gateway's sub-device.

    `token_digest` is the digest of the token that authenticated the session (for a sub-device,
    the gateway's): every write re-checks that credential inside its transaction. `gateway_id`
    is set for a sub-device reached through a gateway.
    """

    device_id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    is_gateway: bool
    token_digest: bytes | None = None
    gateway_id: uuid.UUID | None = None
