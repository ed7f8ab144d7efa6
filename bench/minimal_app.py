"""The framework reference of bench/ingest_single.py: a minimal FastAPI app (one uvicorn
process) that answers the single-point request with one `INSERT … ON CONFLICT DO NOTHING`
(autocommit: one committed statement per request) and nothing else: no authentication, no
validation beyond the JSON, no quota, no tenant isolation.

    IIOT_MINIMAL_DSN=postgresql://… uvicorn --factory minimal_app:create --app-dir bench
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI, Request, Response
from psycopg_pool import AsyncConnectionPool

TABLE_SQL = """
create table if not exists bench_minimal (
    device text not null,
    key text not null,
    ts timestamptz not null,
    value float8,
    primary key (device, key, ts)
)
"""
INSERT_SQL = (
    "insert into bench_minimal (device, key, ts, value) values (%s, %s, clock_timestamp(), %s) "
    "on conflict do nothing"
)


def create() -> FastAPI:
    pool = AsyncConnectionPool(
        os.environ["IIOT_MINIMAL_DSN"],
        min_size=10,
        max_size=10,
        open=False,
        kwargs={"autocommit": True},
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open()
        async with pool.connection() as conn:
            await conn.execute(TABLE_SQL)
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/api/v1/telemetry", status_code=201)
    async def ingest(request: Request) -> Response:
        body = orjson.loads(await request.body())
        device = request.headers.get("x-api-key", "")
        key, value = next(iter(body["telemetry"].items()))
        async with pool.connection() as conn:
            cur = await conn.execute(INSERT_SQL, (device, key, value))
        return Response(
            orjson.dumps({"points": cur.rowcount, "duplicates": 1 - cur.rowcount}),
            status_code=201,
            media_type="application/json",
        )

    return app
