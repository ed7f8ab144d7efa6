"""Shared fixtures: one migrated database per session, emptied after every test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from iiot.app import MODULES, create_app
from iiot.config import Settings
from iiot.quotas.ratelimit import MemoryRateCounter
from iiot.runtime import Runtime
from tests.fixtures.database import TestDatabase, test_database
from tests.fixtures.factories import Factory, World, build_world

# Platform seed rows that survive between tests.
KEEP_TABLES = {"alembic_version", "tiers"}


@pytest.fixture(scope="session")
def db_urls() -> Iterator[TestDatabase]:
    with test_database() as db:
        yield db


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir: Path = tmp_path_factory.mktemp("iiot-data")
    return Settings(
        env="development",
        data_dir=data_dir,
        jwt_secret="test-secret-" + "x" * 40,
        run_background_jobs=False,
        public_url="http://iiot.test",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(scope="session")
async def runtime(db_urls: TestDatabase, settings: Settings) -> AsyncIterator[Runtime]:
    rt = Runtime.build(settings, db_urls.app_url, MODULES)
    yield rt
    await rt.db.dispose()


@pytest.fixture(scope="session")
async def owner_engine(db_urls: TestDatabase) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(db_urls.admin_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def app(runtime: Runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=runtime)


@pytest.fixture(autouse=True)
async def _clean_database(
    owner_engine: AsyncEngine, runtime: Runtime, _tier_seed: list[dict[str, object]]
) -> AsyncIterator[None]:
    """Every test starts from the migrated state: tables emptied, tiers as seeded."""
    yield
    runtime.rate = MemoryRateCounter()
    async with owner_engine.begin() as conn:
        tables = (
            await conn.execute(text("select tablename from pg_tables where schemaname = 'public'"))
        ).scalars()
        names = [t for t in tables if t not in KEEP_TABLES]
        if names:
            await conn.execute(text(f"truncate {', '.join(names)} restart identity cascade"))
        await conn.execute(text("delete from tiers"))
        for row in _tier_seed:
            columns = ", ".join(row)
            values = ", ".join(":" + k for k in row)
            await conn.execute(text(f"insert into tiers ({columns}) values ({values})"), row)


@pytest.fixture(scope="session")
async def _tier_seed(owner_engine: AsyncEngine) -> list[dict[str, object]]:
    """The tiers as migrated, restored after each test (tests may change them)."""
    async with owner_engine.connect() as conn:
        rows = await conn.execute(text("select * from tiers"))
        return [dict(r._mapping) for r in rows]


@pytest.fixture
async def factory(runtime: Runtime, app) -> AsyncIterator[Factory]:  # type: ignore[no-untyped-def]
    f = Factory(rt=runtime, app=app)
    yield f
    await f.aclose()


@pytest.fixture
async def world(factory: Factory) -> World:
    return await build_world(factory)


@pytest.fixture
async def anon(factory: Factory):  # type: ignore[no-untyped-def]
    return factory.client()
