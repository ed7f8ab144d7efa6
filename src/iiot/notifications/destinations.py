"""Where a webhook may go: http(s) only, and no private, loopback or link-local address
unless `IIOT_WEBHOOK_ALLOW_PRIVATE` is set (so rules cannot probe the internal network)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from iiot.errors import ValidationFailed

_RESOLVE_TIMEOUT_SECONDS = 2.0


class DestinationRefused(ValidationFailed):
    code, title = "webhook_destination_refused", "Webhook destination refused"


async def addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), _RESOLVE_TIMEOUT_SECONDS
    )
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


async def check_destination(url: str, *, allow_private: bool, must_resolve: bool) -> None:
    """Refuse non-http(s) URLs and non-public destinations.

    At rule creation a name that does not resolve is accepted (`must_resolve=False`): DNS may
    be temporarily unavailable, and delivery checks again before every call.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused("webhook URL must be http(s) with a host")
    if allow_private:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = await addresses(parts.hostname, port)
    except (OSError, TimeoutError) as exc:
        if must_resolve:
            raise DestinationRefused(f"webhook host {parts.hostname} does not resolve") from exc
        return
    for ip in found:
        if not ip.is_global:
            raise DestinationRefused(
                f"webhook host {parts.hostname} is a private, loopback or link-local address"
            )
