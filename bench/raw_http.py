"""A minimal HTTP/1.1 load generator on asyncio streams, for the ingest benchmarks.

The load generator runs on the same two cores as the server and PostgreSQL, so every
millisecond it spends is taken from them. httpx builds request and response objects, header
structures and a connection-pool state machine per request; this client writes one
pre-rendered request (head and body in one buffer) on a kept-alive connection and reads the
answer's status line, its `Content-Length` and its body, nothing else. Every answer is still
checked by the caller. Requests whose answer is not a complete HTTP/1.1 response with a
`Content-Length` (chunked, or a closed connection) raise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")


class Answer:
    __slots__ = ("body", "status")

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body


def render_post(url: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """One POST request as bytes (head + body), for a kept-alive connection to `url`."""
    host = urlsplit(url).netloc
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, url: str) -> Connection:
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port, limit=1 << 20)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> Answer:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, _, rest = head.partition(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = None
        for line in rest.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
            elif name.lower() == b"transfer-encoding":
                raise RuntimeError(f"unsupported answer framing: {line!r}")
        if length is None:
            raise RuntimeError(f"answer without Content-Length: {head[:300]!r}")
        return Answer(status, await self.reader.readexactly(length))

    def close(self) -> None:
        self.writer.close()


async def run(
    url: str,
    requests: Sequence[T],
    render: Callable[[T], bytes],
    check: Callable[[T, Answer], int],
    concurrency: int,
    latencies: list[float] | None = None,
    connections: list[Connection] | None = None,
) -> int:
    """Send every request (`render(item)` gives its bytes) with `concurrency` in flight, one
    kept-alive connection each; `check(item, answer)` judges each answer (raising on a wrong
    one) and returns what it counts. The sum of the counts. Pass `connections` to reuse them."""
    own = connections is None
    conns = connections or [await Connection.open(url) for _ in range(concurrency)]
    position = 0
    total = 0

    async def worker(conn: Connection) -> None:
        nonlocal position, total
        while position < len(requests):
            item = requests[position]
            position += 1
            t0 = time.perf_counter()
            answer = await conn.exchange(render(item))
            if latencies is not None:
                latencies.append(time.perf_counter() - t0)
            total += check(item, answer)

    try:
        await asyncio.gather(*(worker(c) for c in conns[:concurrency]))
    finally:
        if own:
            for c in conns:
                c.close()
    return total


async def open_connections(url: str, n: int) -> list[Connection]:
    return [await Connection.open(url) for _ in range(n)]
