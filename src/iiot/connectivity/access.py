"""Caller policy of the ThingsBoard HTTP device API: the device token is in the path.

`/api/v1/{token}/...` authenticates the token exactly like the `dt_` token of
`POST /api/v1/telemetry` (the process's token cache, refused with 401 when unknown or
revoked, 403 for a disabled device or suspended tenant). The token never reaches a log line:
the access log redacts it (see `iiot.connectivity.logging`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from starlette.requests import Request

from iiot.callers.access import Access
from iiot.connectivity import service
from iiot.connectivity.identity import DeviceIdentity
from iiot.runtime import get_runtime

MAX_TOKEN_IN_PATH = 512


class DeviceTokenInPath(Access):
    """The device whose token is the `{token}` path segment."""

    label = "device token in the path"
    tenant_scoped = False

    async def __call__(
        self,
        request: Request,
        token: Annotated[
            str, Path(description="The device's access token", max_length=MAX_TOKEN_IN_PATH)
        ],
    ) -> DeviceIdentity:
        identity = await service.authenticate(get_runtime(request), token)
        request.state.device_token_digest = identity.token_digest
        return identity
