"""Every request body is capped and must arrive in time (pure ASGI, before routing).

A body larger than its route's cap is refused with 413 as soon as that is known: at once
from `Content-Length`, or while it streams. A body that stalls longer than the read timeout
between two chunks is refused with 408, so a slow client cannot hold a worker and a
connection open. Both answers are problem details raised through the app's error handler.
"""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from iiot.errors import PROBLEM_CONTENT_TYPE


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is limited to {limit} bytes")


class BodyTimeout(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"the request body did not arrive within {seconds:g} seconds")


def _problem(status: int, code: str, title: str, detail: str) -> bytes:
    import orjson

    return orjson.dumps(
        {
            "type": f"https://iiot.dev/problems/{code.replace('_', '-')}",
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
        }
    )


class RequestBodyGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        read_timeout: float,
        overrides: dict[tuple[str, str], int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout
        self.overrides = overrides or {}

    def limit_for(self, scope: Scope) -> int:
        return self.overrides.get((scope["method"], scope["path"]), self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
        if declared is not None and declared > limit:
            body = _problem(
                413,
                "payload_too_large",
                "Payload too large",
                f"the request body is limited to {limit} bytes",
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [
                        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        received = 0
        complete = False
        timeout = self.read_timeout

        async def guarded_receive() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout(timeout):  # no task per receive, unlike wait_for
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, guarded_receive, send)
