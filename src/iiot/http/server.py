"""`iiot serve`'s HTTP protocol: a connection must deliver complete request headers in time.

uvicorn closes an idle keep-alive connection after `timeout_keep_alive`, but a client that
connects and then sends nothing, or sends its headers a byte at a time, holds the connection
forever. This protocol arms a deadline when a connection opens and after every response, and
disarms it when the next request's headers are complete; if it fires first, the connection is
closed. The request line and headers are also limited in size (`max_header_bytes`; larger
ones answer 400 and close). The body is timed by `iiot.http.limits.RequestBodyGuard` (408).

It is uvicorn's httptools protocol (the C parser): per request it costs a fraction of the
pure-Python h11 one, which matters on the single-point ingest path. What a response writes
within one turn of the event loop (its status line and headers, then the body of an ordinary
response) leaves the process as one write: one system call and one segment instead of two,
and one wake-up of the client. A streamed response's later chunks still leave as they come.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class OneWritePerTurn:
    """A response cycle's transport: writes are gathered until the end of the current turn of
    the event loop and then written together (before anything else the loop does next)."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending = []
        if not self._transport.is_closing():
            self._transport.write(data)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._flush()
        self._transport.close()


class HeaderTimeoutProtocol(HttpToolsProtocol):
    header_timeout_seconds = 10.0
    max_header_bytes = 16 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(
            self.header_timeout_seconds, self._headers_overdue
        )

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_overdue(self) -> None:
        self._header_deadline = None
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.pipeline and not self.transport.is_closing():
            self.transport.close()

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            # Raised inside the parser's callback: uvicorn answers 400 and closes.
            raise httptools.HttpParserError("request line and headers too large")

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        previous = self.cycle
        super().on_headers_complete()
        if self.cycle is not None and self.cycle is not previous:
            self.cycle.transport = OneWritePerTurn(self.transport, self.loop)  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)


def protocol_with_header_timeout(seconds: float) -> type[HeaderTimeoutProtocol]:
    return type(
        "HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_seconds": seconds}
    )
