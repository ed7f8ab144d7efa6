"""Slow or idle clients cannot hold `iiot serve`'s connections (issue 13, #7)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

from iiot.app import install_error_handlers
from iiot.http.limits import RequestBodyGuard
from iiot.http.server import OneWritePerTurn, protocol_with_header_timeout
from tests.fixtures.ports import free_port


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/")
    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    released = asyncio.Event()

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first"
            await asyncio.wait_for(released.wait(), 3)
            yield b"second"

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.post("/release")
    async def release() -> PlainTextResponse:
        released.set()
        return PlainTextResponse("ok")

    return app


@pytest.fixture
async def server() -> AsyncIterator[int]:
    port = free_port()
    config = uvicorn.Config(
        RequestBodyGuard(_app(), max_bytes=1024, read_timeout=0.5),
        host="127.0.0.1",
        port=port,
        http=protocol_with_header_timeout(0.5),
        lifespan="off",
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        await asyncio.sleep(0.01)
    yield port
    srv.should_exit = True
    await task


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> tuple[bool, bytes]:
    start = time.monotonic()
    data = await asyncio.wait_for(reader.read(), seconds)
    return time.monotonic() - start < seconds, data


async def test_a_silent_connection_is_closed(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    closed, data = await _closed_within(reader, 3)
    assert closed
    assert data == b""
    writer.close()


async def test_headers_dribbled_byte_by_byte_are_cut_off(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    start = time.monotonic()
    for byte in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
        writer.write(bytes([byte]))
        try:
            await writer.drain()
        except ConnectionError:
            break
        await asyncio.sleep(0.05)
        if reader.at_eof() or writer.is_closing():
            break
        if time.monotonic() - start > 3:
            break
    data = await asyncio.wait_for(reader.read(), 3)
    assert data == b""
    assert time.monotonic() - start < 3
    writer.close()


async def test_a_stalled_body_answers_408_and_a_prompt_one_is_served(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(4096), 3)
    assert data.startswith(b"HTTP/1.1 408"), data
    assert b"application/problem+json" in data
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 3)
    assert data.startswith(b"HTTP/1.1 200")
    assert data.endswith(b"3")
    writer.close()


async def test_oversized_headers_are_refused_and_the_connection_closed(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 3)
    assert data.startswith(b"HTTP/1.1 400"), data
    writer.close()


async def test_keep_alive_requests_within_the_deadline_are_served(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    for _ in range(3):
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert await asyncio.wait_for(reader.readexactly(1), 3) == b"2"
        await asyncio.sleep(0.3)  # under the 0.5 s deadline each time, 0.9 s in all
    writer.close()


async def test_a_responses_writes_in_one_turn_leave_together() -> None:
    """What a response writes in one turn of the event loop reaches the socket as one write
    at the end of that turn (read here from the other end of a socket pair)."""
    ours, peer = socket.socketpair()
    peer.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
    try:
        writes = OneWritePerTurn(transport, loop)  # type: ignore[arg-type]
        writes.write(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n")
        writes.write(b"abc")
        with pytest.raises(BlockingIOError):
            peer.recv(65536)  # nothing sent within the turn
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert peer.recv(65536) == b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc"
        writes.write(b"last")
        writes.close()  # what is pending goes before the close
        await asyncio.sleep(0)
        assert peer.recv(65536) == b"last"
    finally:
        transport.close()
        peer.close()


async def test_keep_alive_responses_arrive_whole(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    for _ in range(3):
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert await asyncio.wait_for(reader.readexactly(1), 3) == b"3"
    writer.close()


async def test_a_streamed_response_is_not_held_back(server: int) -> None:
    """A stream's first chunk arrives while the stream is still waiting for its second."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    received = b""
    while b"first" not in received:
        received += await asyncio.wait_for(reader.read(65536), 2)
    assert b"second" not in received
    _, other = await asyncio.open_connection("127.0.0.1", server)
    other.write(b"POST /release HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    await other.drain()
    while b"0\r\n\r\n" not in received:
        received += await asyncio.wait_for(reader.read(65536), 3)
    assert b"second" in received
    other.close()
    writer.close()
