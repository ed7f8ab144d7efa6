"""Shared fixtures: one migrated database per session, emptied after every test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from iiot.app import MODULES, create_app
from iiot.config import Settings
from iiot.identity import passwords
from iiot.metering.meter import usage_meter
from iiot.quotas.ratelimit import make_rate_limiter
from iiot.runtime import Runtime
from tests.fixtures import passwords as test_passwords
from tests.fixtures.database import Cleaner, TestDatabase, test_database
from tests.fixtures.factories import Factory, World, build_world

# Platform seed rows that survive between tests (tiers are restored to their seed instead).
KEEP_TABLES = frozenset({"alembic_version"})

# Modules with tests that run for seconds (servers in subprocesses, a browser, fuzzing), longest
# first. They start first, so that the parallel workers share them out and finish together
# on the short tests instead of one worker running a long test alone at the end.
LONG_RUNNING_FIRST = (
    "tests/test_schemathesis.py",
    "tests/web/test_ui_e2e.py",
    "tests/scaleout/test_two_processes.py",
    "tests/mqtt/test_protocol.py",
    "tests/test_serve_workers.py",
    "tests/test_cli.py",
    "tests/db/test_outage.py",
    "tests/connectivity/test_cross_process.py",
    "tests/rules/test_durable.py",
    "tests/stream/test_stream.py",
    "tests/test_cli_failures.py",
    "tests/telemetry/test_issue13_bounds.py",
    "tests/mqtt/test_serve_crash.py",
    "tests/mqtt/test_tb_iot_gateway.py",
    "tests/telemetry/test_storage_migration.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules of LONG_RUNNING_FIRST first, in that order; each module's tests stay
    together and in their order (module-scoped fixtures are set up once)."""
    rank = {path: n for n, path in enumerate(LONG_RUNNING_FIRST)}
    last = len(rank)
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], last))


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


@pytest.fixture(scope="session")
async def database_cleaner(db_urls: TestDatabase) -> AsyncIterator[Cleaner]:
    cleaner = Cleaner(db_urls.admin_url, keep=KEEP_TABLES)
    yield cleaner
    await cleaner.close()


@pytest.fixture(autouse=True)
def _password_hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cheap argon2id parameters, unless the test is about the cost of the hash."""
    if request.node.get_closest_marker("real_password_hashing") is None:
        monkeypatch.setattr(passwords, "_hasher", test_passwords.CHEAP)
        monkeypatch.setattr(passwords, "_DUMMY_HASH", test_passwords.CHEAP_DUMMY_HASH)


@pytest.fixture(autouse=True)
def _clean_database(request: pytest.FixtureRequest) -> None:
    """Every test that reaches the database leaves it as migrated. Every database fixture
    depends on `db_urls`; a test whose fixtures do not include it never touched the database,
    so it gets no cleanup at all. (Requested dynamically from a plain fixture so the async
    cleanup runs in the test's event loop, after the test's own fixtures are torn down.)"""
    if "db_urls" in request.fixturenames:
        request.getfixturevalue("_database_cleanup")


@pytest.fixture
async def _database_cleanup(
    request: pytest.FixtureRequest, database_cleaner: Cleaner
) -> AsyncIterator[None]:
    """Removes the rows the test wrote, restores the tiers and the rate counters."""
    yield
    if "runtime" in request.fixturenames:
        runtime: Runtime = request.getfixturevalue("runtime")
        runtime.rate = make_rate_limiter(None)
        usage_meter(runtime).discard()
    await database_cleaner.clean()


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
